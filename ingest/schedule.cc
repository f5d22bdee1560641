#include "ingest/schedule.h"

#include <time.h>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/names.h"
#include "ingest/file_ingest.h"

namespace vmvault::ingest {

int LocalMinuteOfDay(int64_t now_us) {
  const time_t t = static_cast<time_t>(now_us / 1'000'000 - (now_us % 1'000'000 < 0 ? 1 : 0));
  struct tm local {};
  ::localtime_r(&t, &local);
  return local.tm_hour * 60 + local.tm_min;
}

WindowCheck CheckWindow(const std::optional<BackupWindow>& window, int64_t now_us) {
  WindowCheck c;
  c.minute_of_day = LocalMinuteOfDay(now_us);
  if (!window) {
    c.minutes_left = kMinutesPerDay;
    return c;
  }
  c.open = window->Contains(c.minute_of_day);
  if (c.open) {
    c.minutes_left = window->MinutesLeft(c.minute_of_day);
  } else {
    c.minutes_until_open = (window->start - c.minute_of_day + kMinutesPerDay) % kMinutesPerDay;
  }
  return c;
}

std::string WindowClosedMessage(const BackupWindow& window, const WindowCheck& check) {
  const int start = window.start;
  return fmt::format(
      "outside the backup window {} (it is {:02}:{:02} local time); it opens at {:02}:{:02}, in "
      "{}",
      window.ToString(), check.minute_of_day / 60, check.minute_of_day % 60, start / 60,
      start % 60, FormatDuration(Seconds(int64_t{check.minutes_until_open} * 60)));
}

bool ScheduleSupports(SourceKind kind) {
  return kind == SourceKind::kFile || kind == SourceKind::kDevice;
}

Result<std::string> SourceVmName(const SourceConfig& source) {
  switch (source.kind) {
    case SourceKind::kFile:
    case SourceKind::kDevice:
    case SourceKind::kLvm:
      return VmNameForFiles(source.vm.empty() ? std::nullopt : std::optional(source.vm),
                            source.paths);
    case SourceKind::kDomain:
    case SourceKind::kVirtualBox:
      if (source.names.size() == 1 && !IsGlob(source.names.front())) {
        return SanitizeName(source.names.front());
      }
      break;
  }
  return Status::InvalidArgument(
      fmt::format("the {} source's VMs are found when it runs", SourceKindName(source.kind)));
}

std::string DescribeAge(int64_t age_us) {
  const int64_t s = std::max<int64_t>(0, age_us / 1'000'000);
  auto unit = [](int64_t n, const char* what) {
    return fmt::format("{} {}{} ago", n, what, n == 1 ? "" : "s");
  };
  if (s < 60) return "just now";
  if (s < 3600) return unit(s / 60, "minute");
  if (s < 86400) return unit(s / 3600, "hour");
  return unit(s / 86400, "day");
}

namespace {

// Why the VM's source files differ from what its last backup read; "" when they do not
// (or when the last backup recorded no stamps).
std::string SourceChange(const SourceConfig& source, const store::BackupRecord& last,
                         const StampFn& stamp) {
  if (source.kind != SourceKind::kFile && source.kind != SourceKind::kDevice) return "";
  if (last.disks.size() != source.paths.size()) {
    return fmt::format("its disks changed ({} in the last backup, {} configured)",
                       last.disks.size(), source.paths.size());
  }
  for (size_t i = 0; i < source.paths.size(); ++i) {
    const store::DiskRecord::SourceStamp& before = last.disks[i].source_stamp;
    if (!before.known()) continue;
    const store::DiskRecord::SourceStamp now = stamp(source.paths[i]);
    if (now.known() && now != before) {
      return fmt::format("source {} changed", Printable(source.paths[i]));
    }
  }
  return "";
}

}  // namespace

Result<std::vector<QueueEntry>> BuildQueue(
    const Config& config, const store::Catalog& catalog,
    const std::map<std::string, store::VmStateRecord, std::less<>>& states, int64_t now_us,
    const StampFn& stamp, const std::function<bool(int64_t, uint64_t)>& alive) {
  std::vector<QueueEntry> queue;
  for (size_t i = 0; i < config.sources.size(); ++i) {
    const SourceConfig& source = config.sources[i];
    QueueEntry e;
    e.source = i;
    Result<std::string> name = SourceVmName(source);
    if (name.ok()) e.vm = *name;
    const store::VmStateRecord* rec = nullptr;
    if (auto it = states.find(e.vm); name.ok() && it != states.end()) rec = &it->second;
    std::optional<store::BackupRecord> last;
    if (name.ok()) {
      VV_ASSIGN_OR_RETURN(std::vector<store::BackupRecord> backups, catalog.ListBackups(e.vm));
      if (!backups.empty()) {
        last = std::move(backups.back());
        e.last_backup_us = last->time_us;
      }
    }
    e.state = last ? store::VmState::kClean : store::VmState::kNew;
    if (rec != nullptr && rec->state == store::VmState::kArchived) {
      e.state = store::VmState::kArchived;
      e.reason = "archived";
    } else if (!source.enabled) {
      e.reason = "disabled";
    } else if (!config.Scheduled(source)) {
      e.reason = fmt::format("outside tag filter ({})", fmt::join(config.schedule.tags, ", "));
    } else if (!ScheduleSupports(source.kind)) {
      e.reason = fmt::format("{} sources are not scheduled yet (use vmvault ingest)",
                             SourceKindName(source.kind));
    } else if (!name.ok()) {
      e.reason = name.status().message();
    } else if (rec != nullptr && rec->state == store::VmState::kBackupInProgress &&
               alive(rec->pid, rec->pid_start)) {
      e.state = store::VmState::kBackupInProgress;
      e.reason = fmt::format("backup in progress (pid {})", rec->pid);
    } else if (!last) {
      e.state = store::VmState::kNew;
      e.due = true;
      e.reason = "never backed up";
    } else {
      const Seconds interval = config.Tier(source.tier).interval;
      const int64_t age = now_us - last->time_us;
      const std::string ago = fmt::format("last backup {}, interval {}", DescribeAge(age),
                                          FormatDuration(interval));
      const std::string changed = SourceChange(source, *last, stamp);
      e.due = true;
      e.state = store::VmState::kBackupNecessary;
      if (rec != nullptr && rec->state == store::VmState::kBackupInProgress) {
        e.reason = fmt::format("{}; {}", store::InterruptedNote(*rec), ago);
      } else if (rec != nullptr && rec->state == store::VmState::kBackupNecessary &&
                 rec->since_us > last->time_us && !rec->note.empty()) {
        e.reason = fmt::format("{}; {}", rec->note, ago);
      } else if (age >= interval.count() * 1'000'000) {
        e.reason = ago;
      } else if (!changed.empty()) {
        e.reason = fmt::format("{} since the {}", changed, ago);
      } else {
        e.due = false;
        e.state = store::VmState::kClean;
        e.reason = fmt::format("{}; next due in {}", ago,
                               FormatDuration(Seconds((interval.count() * 1'000'000 - age +
                                                       999'999) / 1'000'000)));
      }
    }
    queue.push_back(std::move(e));
  }
  // Due first: never backed up (in file order), then the oldest last backup first;
  // the rest after them in file order.
  std::stable_sort(queue.begin(), queue.end(), [](const QueueEntry& a, const QueueEntry& b) {
    if (a.due != b.due) return a.due;
    if (!a.due) return false;
    const int64_t ta = a.last_backup_us.value_or(INT64_MIN);
    const int64_t tb = b.last_backup_us.value_or(INT64_MIN);
    return ta < tb;
  });
  return queue;
}

}  // namespace vmvault::ingest
