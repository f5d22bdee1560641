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

bool FoundAtRunTime(SourceKind kind) {
  return kind == SourceKind::kDomain || kind == SourceKind::kVirtualBox;
}

std::vector<FoundVm> SelectFound(const SourceConfig& source, const std::vector<FoundVm>& found) {
  std::vector<FoundVm> out;
  for (const FoundVm& f : found) {
    bool in = source.names.empty() && source.kind == SourceKind::kVirtualBox;
    for (const std::string& p : source.names) in = in || GlobMatch(p, f.name);
    for (const std::string& p : source.exclude) in = in && !GlobMatch(p, f.name);
    if (in) out.push_back(f);
  }
  return out;
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
// (or when the last backup recorded no stamps: a running domain, a block device).
std::string SourceChange(const SourceConfig& source, const store::BackupRecord& last,
                         const StampFn& stamp) {
  if (source.kind == SourceKind::kFile || source.kind == SourceKind::kDevice) {
    if (last.disks.size() != source.paths.size()) {
      return fmt::format("its disks changed ({} in the last backup, {} configured)",
                         last.disks.size(), source.paths.size());
    }
  }
  for (size_t i = 0; i < last.disks.size(); ++i) {
    const store::DiskRecord::SourceStamp& before = last.disks[i].source_stamp;
    if (!before.known()) continue;
    // File and device sources: the configured path; others: the file the backup read.
    const std::string& path = source.kind == SourceKind::kFile ||
                                      source.kind == SourceKind::kDevice
                                  ? source.paths[i]
                                  : last.disks[i].source_path;
    const store::DiskRecord::SourceStamp now = stamp(path);
    if (now != before) return fmt::format("source {} changed", Printable(path));
  }
  return "";
}

}  // namespace

namespace {

// Decides one entry whose vm, name and running are set (vm "" when `name` failed).
Status Decide(const Config& config, const store::Catalog& catalog,
              const std::map<std::string, store::VmStateRecord, std::less<>>& states,
              int64_t now_us, const StampFn& stamp,
              const std::function<bool(int64_t, uint64_t)>& alive, const SourceConfig& source,
              const Status& name, QueueEntry& e) {
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
  } else if (!name.ok()) {
    e.reason = name.message();
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
    e.due = true;
    e.state = store::VmState::kBackupNecessary;
    if (rec != nullptr && rec->state == store::VmState::kBackupInProgress) {
      e.reason = fmt::format("{}; {}", store::InterruptedNote(*rec), ago);
    } else if (rec != nullptr && rec->state == store::VmState::kBackupNecessary &&
               rec->since_us > last->time_us && !rec->note.empty()) {
      e.reason = fmt::format("{}; {}", rec->note, ago);
    } else if (age >= interval.count() * 1'000'000) {
      e.reason = ago;
    } else if (const std::string changed = e.running ? "" : SourceChange(source, *last, stamp);
               !changed.empty()) {
      e.reason = fmt::format("{} since the {}", changed, ago);
    } else {
      e.due = false;
      e.state = store::VmState::kClean;
      e.reason = fmt::format("{}; next due in {}", ago,
                             FormatDuration(Seconds((interval.count() * 1'000'000 - age +
                                                     999'999) / 1'000'000)));
    }
  }
  if (e.due && e.running) {
    e.state = store::VmState::kRunning;
    e.reason += "; running";
  }
  return Status::OK();
}

}  // namespace

Result<std::vector<QueueEntry>> BuildQueue(
    const Config& config, const store::Catalog& catalog,
    const std::map<std::string, store::VmStateRecord, std::less<>>& states, int64_t now_us,
    const StampFn& stamp, const Inventory& inventory,
    const std::function<bool(int64_t, uint64_t)>& alive) {
  std::vector<QueueEntry> queue;
  for (size_t i = 0; i < config.sources.size(); ++i) {
    const SourceConfig& source = config.sources[i];
    auto found = inventory.find(i);
    if (FoundAtRunTime(source.kind) && source.enabled && config.Scheduled(source)) {
      if (found == inventory.end() || !found->second.ok()) {
        QueueEntry e;
        e.source = i;
        e.reason = found == inventory.end()
                       ? fmt::format("the {} source's VMs are found when it runs",
                                     SourceKindName(source.kind))
                       : found->second.status().message();
        queue.push_back(std::move(e));
        continue;
      }
      const std::vector<FoundVm> selected = SelectFound(source, *found->second);
      if (selected.empty()) {
        QueueEntry e;
        e.source = i;
        e.reason = fmt::format("no {} matches", source.kind == SourceKind::kDomain
                                                    ? "domain"
                                                    : "VirtualBox machine");
        queue.push_back(std::move(e));
      }
      for (const FoundVm& f : selected) {
        QueueEntry e;
        e.source = i;
        e.name = f.name;
        e.running = f.running;
        e.vm = SanitizeName(f.name);
        VV_RETURN_IF_ERROR(
            Decide(config, catalog, states, now_us, stamp, alive, source, Status::OK(), e));
        queue.push_back(std::move(e));
      }
      continue;
    }
    QueueEntry e;
    e.source = i;
    Result<std::string> name = SourceVmName(source);
    if (name.ok()) e.vm = *name;
    VV_RETURN_IF_ERROR(
        Decide(config, catalog, states, now_us, stamp, alive, source, name.status(), e));
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

std::optional<size_t> PickNextJob(const std::vector<QueueEntry>& queue,
                                  const std::vector<bool>& started, int jobs_running,
                                  bool live_job_running, int concurrency, bool window_open) {
  if (!window_open || jobs_running >= std::max(1, concurrency)) return std::nullopt;
  for (size_t i = 0; i < queue.size(); ++i) {
    if (!queue[i].due || started[i]) continue;
    if (queue[i].running && live_job_running) continue;
    return i;
  }
  return std::nullopt;
}

size_t ThreadsPerJob(size_t hardware, int concurrency) {
  return std::max<size_t>(1, hardware / static_cast<size_t>(std::max(1, concurrency)));
}

}  // namespace vmvault::ingest
