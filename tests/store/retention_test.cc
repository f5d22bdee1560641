// The retention engine: Proxmox Backup Server's examples (its tests/prune.rs), ISO weeks
// across year ends, month and year boundaries, hourly gaps, overlapping rules, the
// limits, and the guarantees (the newest backup stays; verdicts in input order).
#include "store/retention.h"

#include <map>
#include <random>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/time_format.h"

namespace vmvault::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Names = std::set<std::string>;

constexpr int64_t kHour = 3600LL * 1'000'000;
constexpr int64_t kDay = 24 * kHour;

// "2019-11-15T093915Z" as microseconds.
int64_t T(const std::string& name) {
  const auto t = ParseBackupTime(name);
  EXPECT_TRUE(t.has_value()) << name;
  return t.value_or(0);
}

// Backups named by their times, ids in time order.
std::vector<BackupTime> Backups(const std::vector<std::string>& names) {
  std::vector<BackupTime> out;
  for (const std::string& n : names) out.push_back({out.size() + 1, T(n)});
  return out;
}

// One backup a day at 03:30 from `first` (a date, "2026-12-21") for `days` days.
std::vector<BackupTime> Daily(const std::string& first, int days) {
  std::vector<BackupTime> out;
  for (int d = 0; d < days; ++d) {
    out.push_back({static_cast<uint64_t>(d + 1), T(first + "T033000Z") + d * kDay});
  }
  return out;
}

struct Outcome {
  Names kept, removed;
  std::map<std::string, std::string> rule;  // by name, for kept backups
};

Outcome Prune(const std::vector<BackupTime>& backups, const RetentionPolicy& p, int64_t now = 0) {
  if (now == 0) {
    for (const BackupTime& b : backups) now = std::max(now, b.time_us);
  }
  const std::vector<RetentionVerdict> v = ApplyRetention(backups, p, now);
  EXPECT_EQ(v.size(), backups.size());
  Outcome o;
  for (const RetentionVerdict& r : v) {
    const std::string name = FormatBackupTime(r.time_us);
    if (r.keep) {
      o.kept.insert(name);
      o.rule.emplace(name, r.rule);
      EXPECT_FALSE(r.rule.empty()) << name << " is kept without a reason";
    } else {
      o.removed.insert(name);
    }
  }
  return o;
}

RetentionPolicy Policy(int last, int hourly, int daily, int weekly, int monthly, int yearly) {
  RetentionPolicy p;
  p.keep_last = last;
  p.keep_hourly = hourly;
  p.keep_daily = daily;
  p.keep_weekly = weekly;
  p.keep_monthly = monthly;
  p.keep_yearly = yearly;
  return p;
}

// Proxmox Backup Server's test_prune_hourly.
TEST(RetentionTest, PbsHourly) {
  const auto list = Backups({"2019-11-15T093915Z", "2019-11-15T104915Z", "2019-11-15T105915Z",
                             "2019-11-15T113915Z", "2019-11-15T114915Z", "2019-11-15T115915Z"});
  EXPECT_EQ(Prune(list, Policy(0, 3, 0, 0, 0, 0)).removed,
            (Names{"2019-11-15T104915Z", "2019-11-15T113915Z", "2019-11-15T114915Z"}));
  const Outcome two = Prune(list, Policy(0, 2, 0, 0, 0, 0));
  EXPECT_EQ(two.kept, (Names{"2019-11-15T105915Z", "2019-11-15T115915Z"}));
  EXPECT_EQ(two.rule.at("2019-11-15T115915Z"), "hourly 2019-11-15T11");
  EXPECT_EQ(two.rule.at("2019-11-15T105915Z"), "hourly 2019-11-15T10");
}

// Proxmox Backup Server's test_prune_simple2.
TEST(RetentionTest, PbsSimple2) {
  const auto list = Backups({"2018-11-15T115915Z", "2019-11-15T115915Z", "2019-11-21T115915Z",
                             "2019-11-22T115915Z", "2019-11-29T115915Z", "2019-12-01T115915Z",
                             "2019-12-02T115915Z", "2019-12-03T115915Z", "2019-12-04T115915Z"});
  EXPECT_EQ(Prune(list, Policy(0, 0, 1, 0, 0, 0)).kept, (Names{"2019-12-04T115915Z"}));
  EXPECT_EQ(Prune(list, Policy(1, 0, 1, 0, 0, 0)).kept,
            (Names{"2019-12-03T115915Z", "2019-12-04T115915Z"}));
  EXPECT_EQ(Prune(list, Policy(0, 0, 1, 1, 0, 0)).kept,
            (Names{"2019-12-01T115915Z", "2019-12-04T115915Z"}));
  const Outcome dwm = Prune(list, Policy(0, 0, 1, 1, 1, 0));
  EXPECT_EQ(dwm.kept, (Names{"2019-11-22T115915Z", "2019-12-01T115915Z", "2019-12-04T115915Z"}));
  EXPECT_EQ(dwm.rule.at("2019-12-04T115915Z"), "daily 2019-12-04");
  EXPECT_EQ(dwm.rule.at("2019-12-01T115915Z"), "weekly 2019-W48");
  // November's newest, 11-29, is in 2019-W48 with 12-01, so weekly marked it removed.
  EXPECT_EQ(dwm.rule.at("2019-11-22T115915Z"), "monthly 2019-11");
  const Outcome my = Prune(list, Policy(0, 0, 0, 0, 1, 1));
  EXPECT_EQ(my.kept, (Names{"2018-11-15T115915Z", "2019-12-04T115915Z"}));
  EXPECT_EQ(my.rule.at("2018-11-15T115915Z"), "yearly 2018");
}

// Proxmox Backup Server's test_prune_simple.
TEST(RetentionTest, PbsSimple) {
  const auto list = Backups(
      {"2019-12-02T115915Z", "2019-12-03T115915Z", "2019-12-04T115915Z", "2019-12-04T125915Z"});
  const std::string d2 = "2019-12-02T115915Z", d3 = "2019-12-03T115915Z",
                    d4a = "2019-12-04T115915Z", d4b = "2019-12-04T125915Z";
  EXPECT_THAT(Prune(list, Policy(4, 0, 0, 0, 0, 0)).removed, IsEmpty());
  EXPECT_EQ(Prune(list, Policy(3, 0, 0, 0, 0, 0)).removed, (Names{d2}));
  EXPECT_EQ(Prune(list, Policy(2, 0, 0, 0, 0, 0)).removed, (Names{d2, d3}));
  const Outcome last1 = Prune(list, Policy(1, 0, 0, 0, 0, 0));
  EXPECT_EQ(last1.removed, (Names{d2, d3, d4a}));
  EXPECT_EQ(last1.rule.at(d4b), "last 1");
  EXPECT_THAT(Prune(list, Policy(2, 0, 2, 0, 0, 0)).removed, IsEmpty());
  EXPECT_EQ(Prune(list, Policy(0, 0, 3, 0, 0, 0)).removed, (Names{d4a}));
  EXPECT_EQ(Prune(list, Policy(0, 0, 2, 0, 0, 0)).removed, (Names{d2, d4a}));
  // All in one week, one month, one year: one backup each.
  EXPECT_EQ(Prune(list, Policy(0, 0, 0, 5, 0, 0)).removed, (Names{d2, d3, d4a}));
  EXPECT_EQ(Prune(list, Policy(0, 0, 1, 5, 0, 0)).removed, (Names{d2, d3, d4a}));
  EXPECT_EQ(Prune(list, Policy(0, 0, 0, 0, 6, 0)).removed, (Names{d2, d3, d4a}));
  EXPECT_EQ(Prune(list, Policy(0, 0, 0, 0, 0, 7)).removed, (Names{d2, d3, d4a}));
  EXPECT_EQ(Prune(list, Policy(0, 0, 0, 5, 6, 7)).removed, (Names{d2, d3, d4a}));
  // PBS's compute_prune_info removes everything with keep-last 0; a policy without a
  // keep rule keeps everything here, as PBS's prune command does.
  const Outcome none = Prune(list, Policy(0, 0, 0, 0, 0, 0));
  EXPECT_THAT(none.removed, IsEmpty());
  EXPECT_EQ(none.rule.at(d2), "no keep rule");
}

TEST(RetentionTest, IsoWeek53AndWeek1AcrossTheYearEnd) {
  // 2026-12-21 (Monday) to 2027-01-10: 2026-W52, then 2026-W53 (12-28 to 2027-01-03:
  // 2026 began on a Thursday), then 2027-W01.
  const auto days = Daily("2026-12-21", 21);
  const Outcome w = Prune(days, Policy(0, 0, 0, 3, 0, 0));
  EXPECT_EQ(w.kept, (Names{"2027-01-10T033000Z", "2027-01-03T033000Z", "2026-12-27T033000Z"}));
  EXPECT_EQ(w.rule.at("2027-01-10T033000Z"), "weekly 2027-W01");
  EXPECT_EQ(w.rule.at("2027-01-03T033000Z"), "weekly 2026-W53");
  EXPECT_EQ(w.rule.at("2026-12-27T033000Z"), "weekly 2026-W52");
  // Years are calendar years, not ISO week-years.
  const Outcome y = Prune(days, Policy(0, 0, 0, 0, 0, 2));
  EXPECT_EQ(y.kept, (Names{"2027-01-10T033000Z", "2026-12-31T033000Z"}));
  EXPECT_EQ(y.rule.at("2026-12-31T033000Z"), "yearly 2026");

  // 2024-12-30 (Monday) and 12-31 are in 2025-W01, 12-29 (Sunday) in 2024-W52.
  const auto turn = Backups(
      {"2024-12-29T120000Z", "2024-12-30T120000Z", "2024-12-31T120000Z", "2025-01-01T120000Z"});
  const Outcome w1 = Prune(turn, Policy(0, 0, 0, 1, 0, 0));
  EXPECT_EQ(w1.kept, (Names{"2025-01-01T120000Z"}));
  EXPECT_EQ(w1.rule.at("2025-01-01T120000Z"), "weekly 2025-W01");
  EXPECT_EQ(Prune(turn, Policy(0, 0, 0, 2, 0, 0)).kept,
            (Names{"2025-01-01T120000Z", "2024-12-29T120000Z"}));
  EXPECT_EQ(Prune(turn, Policy(0, 0, 0, 0, 0, 2)).kept,
            (Names{"2025-01-01T120000Z", "2024-12-31T120000Z"}));
}

TEST(RetentionTest, DayMonthAndYearBoundariesAreUtcAndExact) {
  const auto list = Backups({"2025-12-31T235959Z", "2026-01-01T000000Z", "2026-01-31T235959Z",
                             "2026-02-01T000000Z", "2026-02-28T120000Z"});
  const Outcome m = Prune(list, Policy(0, 0, 0, 0, 3, 0));
  EXPECT_EQ(m.kept, (Names{"2026-02-28T120000Z", "2026-01-31T235959Z", "2025-12-31T235959Z"}));
  EXPECT_EQ(m.rule.at("2025-12-31T235959Z"), "monthly 2025-12");
  const Outcome y = Prune(list, Policy(0, 0, 0, 0, 0, 2));
  EXPECT_EQ(y.kept, (Names{"2026-02-28T120000Z", "2025-12-31T235959Z"}));
  const Outcome d = Prune(list, Policy(0, 0, 4, 0, 0, 0));
  EXPECT_EQ(d.kept, (Names{"2026-02-28T120000Z", "2026-02-01T000000Z", "2026-01-31T235959Z",
                           "2026-01-01T000000Z"}));
  EXPECT_EQ(d.rule.at("2026-02-01T000000Z"), "daily 2026-02-01");
  // A leap day is a day of its own.
  EXPECT_EQ(Prune(Backups({"2028-02-28T230000Z", "2028-02-29T010000Z", "2028-03-01T010000Z"}),
                  Policy(0, 0, 2, 0, 0, 0))
                .kept,
            (Names{"2028-03-01T010000Z", "2028-02-29T010000Z"}));
}

TEST(RetentionTest, HourlyCountsOnlyHoursThatHaveABackup) {
  const auto list = Backups({"2026-11-21T011000Z", "2026-11-21T015000Z", "2026-11-21T035959Z",
                             "2026-11-21T040000Z", "2026-11-21T050000Z", "2026-11-21T053000Z",
                             "2026-11-21T090000Z"});
  const Outcome h = Prune(list, Policy(0, 3, 0, 0, 0, 0));
  EXPECT_EQ(h.kept, (Names{"2026-11-21T090000Z", "2026-11-21T053000Z", "2026-11-21T040000Z"}));
  EXPECT_EQ(h.rule.at("2026-11-21T040000Z"), "hourly 2026-11-21T04");
  EXPECT_EQ(Prune(list, Policy(0, 5, 0, 0, 0, 0)).kept,
            (Names{"2026-11-21T090000Z", "2026-11-21T053000Z", "2026-11-21T040000Z",
                   "2026-11-21T035959Z", "2026-11-21T015000Z"}));
}

TEST(RetentionTest, OverlappingRulesDoNotSpendSlotsOnCoveredPeriods) {
  // Three backups a day for four days.
  std::vector<std::string> names;
  for (const char* day : {"2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"}) {
    for (const char* at : {"T040000Z", "T120000Z", "T200000Z"}) {
      names.push_back(std::string(day) + at);
    }
  }
  const Outcome o = Prune(Backups(names), Policy(2, 0, 3, 0, 0, 0));
  // keep-last takes 21st 20:00 and 12:00; the 21st is then covered, so keep-daily's
  // three days are the 20th, 19th and 18th.
  EXPECT_EQ(o.kept, (Names{"2026-11-21T200000Z", "2026-11-21T120000Z", "2026-11-20T200000Z",
                           "2026-11-19T200000Z", "2026-11-18T200000Z"}));
  EXPECT_EQ(o.rule.at("2026-11-21T120000Z"), "last 2");
  EXPECT_EQ(o.rule.at("2026-11-18T200000Z"), "daily 2026-11-18");

  // hourly covers today's hours, daily then covers the other days, weekly the week.
  const Outcome hdw = Prune(Backups(names), Policy(0, 2, 2, 1, 0, 0));
  EXPECT_EQ(hdw.kept, (Names{"2026-11-21T200000Z", "2026-11-21T120000Z", "2026-11-20T200000Z",
                             "2026-11-19T200000Z"}));
  EXPECT_EQ(hdw.rule.at("2026-11-19T200000Z"), "daily 2026-11-19");
}

TEST(RetentionTest, AWeekAcrossAMonthEndCoversItLikeProxmoxNotBorg) {
  // Every day of January 2026, then Sunday 02-01. keep-weekly 1 keeps 02-01 and marks
  // 01-26 to 01-31 (its week) removed; keep-monthly then skips them and keeps 01-25
  // for January. borg would keep 01-31, the newest of January.
  const auto days = Daily("2026-01-01", 32);
  const Outcome o = Prune(days, Policy(0, 0, 0, 1, 2, 0));
  EXPECT_EQ(o.kept, (Names{"2026-02-01T033000Z", "2026-01-25T033000Z"}));
  EXPECT_EQ(o.rule.at("2026-02-01T033000Z"), "weekly 2026-W05");
  EXPECT_EQ(o.rule.at("2026-01-25T033000Z"), "monthly 2026-01");
}

TEST(RetentionTest, MaxAgeRemovesOlderKeptBackupsButNotTheNewest) {
  RetentionPolicy p = Policy(0, 0, 10, 0, 0, 0);
  p.max_age = std::chrono::days(5);
  const auto days = Daily("2026-11-12", 10);  // 11-12 to 11-21, 03:30
  const int64_t now = T("2026-11-21T033000Z");
  const std::vector<RetentionVerdict> v = ApplyRetention(days, p, now);
  for (const RetentionVerdict& r : v) {
    const int64_t age = now - r.time_us;
    EXPECT_EQ(r.keep, age <= 5 * kDay) << FormatBackupTime(r.time_us);  // exactly 5 days stays
    EXPECT_EQ(r.limit, r.keep ? RetentionLimit::kNone : RetentionLimit::kMaxAge);
    EXPECT_EQ(r.rule, "daily " + PeriodOf(r.time_us, Period::kDay));
  }

  // Everything older than max-age: the newest stays, marked as spared.
  const std::vector<RetentionVerdict> old = ApplyRetention(days, p, now + 30 * kDay);
  for (const RetentionVerdict& r : old) {
    EXPECT_EQ(r.keep, r.id == 10) << FormatBackupTime(r.time_us);
    EXPECT_EQ(r.limit, RetentionLimit::kMaxAge);
  }
}

TEST(RetentionTest, MaxCountDropsTheOldestKeptFirst) {
  RetentionPolicy p = Policy(0, 0, 7, 0, 0, 0);
  p.max_count = 3;
  const Outcome o = Prune(Daily("2026-11-01", 10), p);
  EXPECT_EQ(o.kept, (Names{"2026-11-10T033000Z", "2026-11-09T033000Z", "2026-11-08T033000Z"}));
  const std::vector<RetentionVerdict> v = ApplyRetention(Daily("2026-11-01", 10), p, 0);
  EXPECT_EQ(v[4].limit, RetentionLimit::kMaxCount);  // 11-05: daily kept it
  EXPECT_EQ(v[4].rule, "daily 2026-11-05");
  EXPECT_EQ(v[1].limit, RetentionLimit::kNone);  // 11-02: daily did not reach it
  EXPECT_EQ(v[1].rule, "");
}

TEST(RetentionTest, LimitsAloneApplyToEveryBackup) {
  RetentionPolicy count;
  count.max_count = 2;
  EXPECT_EQ(Prune(Daily("2026-11-01", 5), count).kept,
            (Names{"2026-11-05T033000Z", "2026-11-04T033000Z"}));
  RetentionPolicy age;
  age.max_age = std::chrono::hours(36);
  const Outcome o = Prune(Daily("2026-11-01", 5), age, T("2026-11-05T120000Z"));
  EXPECT_EQ(o.kept, (Names{"2026-11-05T033000Z", "2026-11-04T033000Z"}));
  EXPECT_EQ(o.rule.at("2026-11-04T033000Z"), "no keep rule");
  // Both: max-age first, then max-count of what is left.
  age.max_count = 1;
  EXPECT_EQ(Prune(Daily("2026-11-01", 5), age, T("2026-11-05T120000Z")).kept,
            (Names{"2026-11-05T033000Z"}));
}

TEST(RetentionTest, EmptyListAndOneBackup) {
  EXPECT_THAT(ApplyRetention({}, Policy(1, 0, 0, 0, 0, 0), 0), IsEmpty());
  RetentionPolicy harsh = Policy(0, 0, 0, 0, 0, 1);
  harsh.max_age = std::chrono::hours(1);
  harsh.max_count = 1;
  const auto v = ApplyRetention(Backups({"2020-01-01T000000Z"}), harsh, T("2026-01-01T000000Z"));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].keep);
  EXPECT_EQ(v[0].rule, "yearly 2020");
  EXPECT_EQ(v[0].limit, RetentionLimit::kMaxAge);
}

TEST(RetentionTest, VerdictsFollowTheInputOrderAndEqualTimesGoById) {
  std::vector<BackupTime> list = {
      {7, T("2026-11-21T033000Z")}, {3, T("2026-11-20T033000Z")}, {9, T("2026-11-21T033000Z")}};
  const auto v = ApplyRetention(list, Policy(1, 0, 0, 0, 0, 0), 0);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].id, 7u);
  EXPECT_EQ(v[1].id, 3u);
  EXPECT_EQ(v[2].id, 9u);
  EXPECT_FALSE(v[0].keep);
  EXPECT_FALSE(v[1].keep);
  EXPECT_TRUE(v[2].keep);  // the same second as 7, and the higher id: the newer
}

TEST(RetentionTest, TheNewestIsAlwaysKeptAndEveryKeptBackupHasAReason) {
  std::mt19937 rng(42);
  for (int round = 0; round < 500; ++round) {
    std::vector<BackupTime> list;
    const int n = 1 + static_cast<int>(rng() % 40);
    const int64_t start = T("2024-12-01T000000Z");
    for (int i = 0; i < n; ++i) {
      list.push_back({static_cast<uint64_t>(i + 1),
                      start + static_cast<int64_t>(rng() % (800 * 24)) * kHour / 3});
    }
    RetentionPolicy p = Policy(rng() % 3, rng() % 4, rng() % 4, rng() % 3, rng() % 3, rng() % 2);
    if (rng() % 3 == 0) p.max_count = 1 + static_cast<int>(rng() % 5);
    if (rng() % 3 == 0) p.max_age = std::chrono::hours(1 + rng() % 2000);
    const int64_t now = start + 300 * kDay;
    const auto v = ApplyRetention(list, p, now);
    size_t newest = 0, kept = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& a = list[i];
      const auto& b = list[newest];
      if (a.time_us > b.time_us || (a.time_us == b.time_us && a.id > b.id)) newest = i;
      kept += v[i].keep ? 1 : 0;
      // Whatever is kept, or removed by a limit, was selected by a rule.
      const bool selected = v[i].keep || v[i].limit != RetentionLimit::kNone;
      EXPECT_EQ(!v[i].rule.empty(), selected) << "round " << round;
    }
    EXPECT_TRUE(v[newest].keep) << "round " << round;
    EXPECT_LE(kept, static_cast<size_t>(p.max_count.value_or(kMaxKeep)));
    EXPECT_TRUE(!p.KeepsEverything() || kept == list.size());
  }
}

}  // namespace
}  // namespace vmvault::store
