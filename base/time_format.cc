#include "base/time_format.h"

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

namespace vmvault {
namespace {

using std::chrono::days;
using std::chrono::sys_days;
using std::chrono::year_month_day;

struct Civil {
  int year;
  unsigned month, day, hour, minute, second;
  sys_days date;
};

Civil ToCivil(int64_t micros) {
  int64_t secs = micros / 1'000'000;
  if (micros < 0 && micros % 1'000'000 != 0) --secs;  // floor
  int64_t day_number = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --day_number;
  }
  const sys_days date{days{day_number}};
  const year_month_day ymd{date};
  return Civil{static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
               static_cast<unsigned>(ymd.day()), static_cast<unsigned>(sod / 3600),
               static_cast<unsigned>(sod % 3600 / 60), static_cast<unsigned>(sod % 60), date};
}

}  // namespace

std::string_view PeriodName(Period p) {
  switch (p) {
    case Period::kDay: return "day";
    case Period::kWeek: return "week";
    case Period::kMonth: return "month";
    case Period::kQuarter: return "quarter";
    case Period::kHalf: return "half";
    case Period::kYear: return "year";
  }
  return "month";
}

std::optional<Period> ParsePeriod(std::string_view name) {
  for (Period p : {Period::kDay, Period::kWeek, Period::kMonth, Period::kQuarter, Period::kHalf,
                   Period::kYear}) {
    if (PeriodName(p) == name) return p;
  }
  return std::nullopt;
}

std::string FormatBackupTime(int64_t micros) {
  const Civil c = ToCivil(micros);
  return fmt::format("{:04}-{:02}-{:02}T{:02}{:02}{:02}Z", c.year, c.month, c.day, c.hour,
                     c.minute, c.second);
}

std::optional<int64_t> ParseBackupTime(std::string_view text) {
  if (text.size() != 18 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
      text[17] != 'Z') {
    return std::nullopt;
  }
  int y, mo, d, h, mi, s;
  const std::string str(text);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d%2d%2dZ", &y, &mo, &d, &h, &mi, &s) != 6) {
    return std::nullopt;
  }
  const year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)},
                           std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59 || h < 0 || mi < 0 || s < 0) return std::nullopt;
  const int64_t day_number = sys_days{ymd}.time_since_epoch().count();
  return (day_number * 86400 + h * 3600 + mi * 60 + s) * 1'000'000;
}

std::string FormatIsoTime(int64_t micros) {
  const Civil c = ToCivil(micros);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.year, c.month, c.day, c.hour,
                     c.minute, c.second);
}

std::string PeriodOf(int64_t micros, Period p) {
  const Civil c = ToCivil(micros);
  switch (p) {
    case Period::kDay:
      return fmt::format("{:04}-{:02}-{:02}", c.year, c.month, c.day);
    case Period::kWeek: {
      // ISO 8601: the week belongs to the year of its Thursday.
      const std::chrono::weekday wd{c.date};
      const int iso_wd = wd.iso_encoding();  // Monday = 1
      const sys_days thursday = c.date + days{4 - iso_wd};
      const year_month_day tymd{thursday};
      const sys_days jan1{tymd.year() / std::chrono::January / 1};
      const int week = static_cast<int>((thursday - jan1).count() / 7) + 1;
      return fmt::format("{:04}-W{:02}", static_cast<int>(tymd.year()), week);
    }
    case Period::kMonth:
      return fmt::format("{:04}-{:02}", c.year, c.month);
    case Period::kQuarter:
      return fmt::format("{:04}-Q{}", c.year, (c.month - 1) / 3 + 1);
    case Period::kHalf:
      return fmt::format("{:04}-H{}", c.year, (c.month - 1) / 6 + 1);
    case Period::kYear:
      return fmt::format("{:04}", c.year);
  }
  return {};
}

}  // namespace vmvault
