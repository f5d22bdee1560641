// UTC time stamps and periods as they appear in the mount and in the catalog.
// A backup directory is named by its UTC time, "2026-11-21T033000Z"; a period
// directory by the period that holds it: "2026-11-21" (day), "2026-W47" (ISO week),
// "2026-11" (month), "2026-Q4", "2026-H2" or "2026".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmvault {

enum class Period { kDay, kWeek, kMonth, kQuarter, kHalf, kYear };

// "day", "week", "month", "quarter", "half", "year".
std::string_view PeriodName(Period p);
std::optional<Period> ParsePeriod(std::string_view name);

// "2026-11-21T033000Z" for the second that holds `micros`.
std::string FormatBackupTime(int64_t micros);
// The inverse of FormatBackupTime, in whole seconds as micros.
std::optional<int64_t> ParseBackupTime(std::string_view text);
// ISO 8601 with seconds, "2026-11-21T03:30:00Z", for manifests and listings.
std::string FormatIsoTime(int64_t micros);

// The name of the period of kind `p` that holds `micros`.
std::string PeriodOf(int64_t micros, Period p);

}  // namespace vmvault
