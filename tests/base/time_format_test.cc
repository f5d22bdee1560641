#include "base/time_format.h"

#include <gtest/gtest.h>

namespace vmvault {
namespace {

constexpr int64_t kSec = 1'000'000;

// 2026-11-21T03:30:00Z
constexpr int64_t kT = 1795231800LL * kSec;

TEST(TimeFormatTest, BackupNamesRoundTrip) {
  EXPECT_EQ(FormatBackupTime(kT), "2026-11-21T033000Z");
  EXPECT_EQ(FormatIsoTime(kT), "2026-11-21T03:30:00Z");
  EXPECT_EQ(ParseBackupTime("2026-11-21T033000Z"), kT);
  EXPECT_FALSE(ParseBackupTime("2026-13-21T033000Z"));
  EXPECT_FALSE(ParseBackupTime("garbage"));
}

TEST(TimeFormatTest, Periods) {
  EXPECT_EQ(PeriodOf(kT, Period::kDay), "2026-11-21");
  EXPECT_EQ(PeriodOf(kT, Period::kWeek), "2026-W47");
  EXPECT_EQ(PeriodOf(kT, Period::kMonth), "2026-11");
  EXPECT_EQ(PeriodOf(kT, Period::kQuarter), "2026-Q4");
  EXPECT_EQ(PeriodOf(kT, Period::kHalf), "2026-H2");
  EXPECT_EQ(PeriodOf(kT, Period::kYear), "2026");
}

TEST(TimeFormatTest, IsoWeeksAtYearEdges) {
  // 2021-01-03 (Sunday) belongs to 2020-W53; 2024-12-30 (Monday) to 2025-W01.
  EXPECT_EQ(PeriodOf(*ParseBackupTime("2021-01-03T120000Z"), Period::kWeek), "2020-W53");
  EXPECT_EQ(PeriodOf(*ParseBackupTime("2024-12-30T000000Z"), Period::kWeek), "2025-W01");
  EXPECT_EQ(PeriodOf(*ParseBackupTime("2026-01-01T000000Z"), Period::kWeek), "2026-W01");
}

TEST(TimeFormatTest, ParsePeriodNames) {
  EXPECT_EQ(ParsePeriod("quarter"), Period::kQuarter);
  EXPECT_FALSE(ParsePeriod("fortnight"));
}

}  // namespace
}  // namespace vmvault
