#include "store/retention.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <unordered_set>

#include <fmt/format.h>

#include "base/time_format.h"

namespace vmvault::store {
namespace {

enum class Mark { kNone, kKeep, kRemove };

// One keep rule: its name and how it names the period of a backup. Backups with the
// same period name are in the same period.
struct KeepRule {
  const char* name;
  int keep;
  std::function<std::string(size_t position, int64_t time_us)> period;
  bool numbered = false;  // its verdicts say "last 2" (the slot), not the period
};

std::vector<KeepRule> KeepRules(const RetentionPolicy& p) {
  auto calendar = [](Period period) {
    return [period](size_t, int64_t t) { return PeriodOf(t, period); };
  };
  return {
      // Every backup is a period of its own: the position counts them newest first.
      {"last", p.keep_last, [](size_t position, int64_t) { return std::to_string(position); },
       /*numbered=*/true},
      // "2026-11-21T03" of "2026-11-21T033000Z".
      {"hourly", p.keep_hourly,
       [](size_t, int64_t t) { return FormatBackupTime(t).substr(0, 13); }},
      {"daily", p.keep_daily, calendar(Period::kDay)},
      {"weekly", p.keep_weekly, calendar(Period::kWeek)},
      {"monthly", p.keep_monthly, calendar(Period::kMonth)},
      {"yearly", p.keep_yearly, calendar(Period::kYear)},
  };
}

// The backups newest first, as positions in `backups`.
std::vector<size_t> NewestFirst(const std::vector<BackupTime>& backups) {
  std::vector<size_t> order(backups.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (backups[a].time_us != backups[b].time_us) return backups[a].time_us > backups[b].time_us;
    return backups[a].id > backups[b].id;
  });
  return order;
}

// Marks the backups rule by rule, then applies the limits, writing the verdicts.
class Marker {
 public:
  Marker(const std::vector<BackupTime>& backups, std::vector<RetentionVerdict>* verdicts)
      : backups_(backups),
        order_(NewestFirst(backups)),
        verdicts_(*verdicts),
        marks_(backups.size(), Mark::kNone) {}

  // One rule, as the header describes it.
  void Apply(const KeepRule& rule) {
    if (rule.keep <= 0) return;
    std::vector<std::string> periods(order_.size());
    std::unordered_set<std::string> covered;  // periods an earlier rule kept a backup of
    for (size_t pos = 0; pos < order_.size(); ++pos) {
      periods[pos] = rule.period(pos + 1, backups_[order_[pos]].time_us);
      if (marks_[order_[pos]] == Mark::kKeep) covered.insert(periods[pos]);
    }
    std::unordered_set<std::string> chosen;  // this rule's periods
    for (size_t pos = 0; pos < order_.size(); ++pos) {
      const size_t i = order_[pos];
      if (marks_[i] != Mark::kNone || covered.count(periods[pos]) != 0) continue;
      if (chosen.count(periods[pos]) != 0) {
        marks_[i] = Mark::kRemove;  // an older backup of a period this rule kept
        continue;
      }
      if (chosen.size() >= static_cast<size_t>(rule.keep)) break;
      chosen.insert(periods[pos]);
      marks_[i] = Mark::kKeep;
      verdicts_[i].rule = rule.numbered ? fmt::format("{} {}", rule.name, chosen.size())
                                        : fmt::format("{} {}", rule.name, periods[pos]);
    }
  }

  void KeepAll() {
    for (size_t i = 0; i < marks_.size(); ++i) {
      marks_[i] = Mark::kKeep;
      verdicts_[i].rule = "no keep rule";
    }
  }

  // max-age, then max-count, over the kept backups; never the newest.
  void Limit(const RetentionPolicy& p, int64_t now_us) {
    for (size_t i = 0; i < marks_.size(); ++i) verdicts_[i].keep = marks_[i] == Mark::kKeep;
    if (order_.empty()) return;
    const size_t newest = order_.front();
    if (p.max_age) {
      const int64_t cutoff =
          now_us - std::chrono::duration_cast<std::chrono::microseconds>(*p.max_age).count();
      for (size_t i : order_) {
        if (verdicts_[i].keep && backups_[i].time_us < cutoff) {
          Drop(i, newest, RetentionLimit::kMaxAge);
        }
      }
    }
    if (p.max_count) {
      int kept = 0;
      for (size_t i : order_) {
        if (verdicts_[i].keep && ++kept > *p.max_count) Drop(i, newest, RetentionLimit::kMaxCount);
      }
    }
  }

 private:
  void Drop(size_t i, size_t newest, RetentionLimit why) {
    verdicts_[i].limit = why;
    verdicts_[i].keep = i == newest;
  }

  const std::vector<BackupTime>& backups_;
  const std::vector<size_t> order_;
  std::vector<RetentionVerdict>& verdicts_;
  std::vector<Mark> marks_;
};

}  // namespace

std::vector<RetentionVerdict> ApplyRetention(const std::vector<BackupTime>& backups,
                                             const RetentionPolicy& policy, int64_t now_us) {
  std::vector<RetentionVerdict> verdicts(backups.size());
  for (size_t i = 0; i < backups.size(); ++i) {
    verdicts[i].id = backups[i].id;
    verdicts[i].time_us = backups[i].time_us;
  }
  Marker marker(backups, &verdicts);
  if (policy.HasKeepRule()) {
    for (const KeepRule& rule : KeepRules(policy)) marker.Apply(rule);
  } else {
    marker.KeepAll();
  }
  marker.Limit(policy, now_us);
  return verdicts;
}

}  // namespace vmvault::store
