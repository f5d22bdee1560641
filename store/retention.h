// Retention: which backups of one VM a policy keeps. Pure functions over (id, time)
// pairs and a fixed "now": no I/O, no clock, thread-safe. `vmvault prune` applies it
// and deletes what it does not keep (Catalog::DeleteBackups).
//
// The keep rules are Proxmox Backup Server's (pbs-datastore/src/prune.rs), applied in
// this order: keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly,
// keep-yearly. Each rule walks the backups from newest to oldest and:
//   - skips a backup an earlier rule already marked (kept, or removed as an older
//     backup of a period that rule kept);
//   - skips a backup whose period already holds a backup an earlier rule kept: that
//     period is covered and takes none of this rule's N slots;
//   - keeps the first (newest) backup of each new period and marks the older backups
//     of that period removed;
//   - stops at the first backup of period N+1.
// keep-last's periods are single backups; keep-hourly's are UTC hours, keep-daily's
// UTC days, keep-weekly's ISO 8601 weeks (Monday to Sunday, numbered in the ISO
// week-year: 2027-01-01 is in 2026-W53, 2024-12-30 in 2025-W01), keep-monthly's and
// keep-yearly's calendar months and years. Whatever no rule keeps is removed. A policy
// with no keep rule (every N is 0) keeps every backup.
//
// Then the limits, on what the rules kept: max-age removes every kept backup older
// than now - max_age (strictly older), then max-count keeps the max_count newest of
// the rest. Neither ever removes the VM's newest backup, so a VM with backups keeps
// at least one. (The rules always keep the newest backup: it is the first backup the
// first rule meets.)
//
// Where others differ:
//   - PBS and borg group by local time; vmvault by UTC, as the mount does.
//   - PBS's compute_prune_info removes everything for an all-zero policy (its API
//     layer then keeps everything, as vmvault does); borg refuses to run without a
//     rule. Neither has max-age or max-count (borg's --keep-within keeps backups; it
//     does not remove kept ones).
//   - borg (prune_split) keeps the newest backup of a period unless that very backup
//     was kept by an earlier rule; PBS (and vmvault) count a period as covered when an
//     earlier rule kept any backup in it, and skip backups earlier rules marked
//     removed. Periods nest (hour, day, month, year; day in week), so this differs only
//     where a week straddles a month or year end: with keep-weekly 1 and
//     keep-monthly 2, backups every day to Sunday 2026-02-01 keep 02-01 (weekly);
//     borg's monthly then keeps 01-31 (the newest of January), vmvault 01-25 (01-26
//     to 01-31 were marked removed in 02-01's week).
//   - borg (1.2 and later) also keeps the oldest backup when a rule found fewer
//     periods than its N; PBS and vmvault do not.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmvault::store {

// Limits the configuration file and the command line both enforce.
inline constexpr int kMaxKeep = 1'000'000;               // for any keep-N and max-count
inline constexpr std::chrono::seconds kMinMaxAge{3600};  // a shorter max-age is a mistake

struct RetentionPolicy {
  int keep_last = 0;     // the newest N
  int keep_hourly = 0;   // the newest backup of each of the last N hours that have one
  int keep_daily = 0;    // ... days
  int keep_weekly = 0;   // ... ISO weeks (Monday to Sunday)
  int keep_monthly = 0;  // ... months
  int keep_yearly = 0;   // ... years
  std::optional<std::chrono::seconds> max_age;  // no kept backup older than this, but the newest
  std::optional<int> max_count;                 // at most this many kept backups (>= 1)

  bool HasKeepRule() const {
    return keep_last > 0 || keep_hourly > 0 || keep_daily > 0 || keep_weekly > 0 ||
           keep_monthly > 0 || keep_yearly > 0;
  }
  // True when the policy removes nothing.
  bool KeepsEverything() const {
    return !HasKeepRule() && !max_age.has_value() && !max_count.has_value();
  }
};

// One backup as retention sees it.
struct BackupTime {
  uint64_t id = 0;
  int64_t time_us = 0;  // UTC
};

// What a limit did to a backup.
enum class RetentionLimit {
  kNone,
  kMaxAge,    // older than now - max_age
  kMaxCount,  // beyond the max_count newest kept backups
};

struct RetentionVerdict {
  uint64_t id = 0;
  int64_t time_us = 0;
  bool keep = false;
  // The rule that selected the backup, with its period: "last 2", "hourly 2026-11-21T03",
  // "daily 2026-11-21", "weekly 2026-W47", "monthly 2026-11", "yearly 2026"; "no keep
  // rule" when the policy has none. Empty when no rule selected it.
  std::string rule;
  // Set when a limit removed a backup the rule selected (keep is false), or when it
  // would have removed the newest backup, which stays (keep is true).
  RetentionLimit limit = RetentionLimit::kNone;
};

// One verdict per backup, in the order given. Backups with equal times are ordered by
// id (the higher id is the newer).
std::vector<RetentionVerdict> ApplyRetention(const std::vector<BackupTime>& backups,
                                             const RetentionPolicy& policy, int64_t now_us);

}  // namespace vmvault::store
