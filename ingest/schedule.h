// What `vmvault schedule` and `vmvault show-queue` decide, as pure functions over the
// configuration, the catalog and the VM states (store/vm_state.h): whether the backup
// window is open now (the window is in local time, the clock in UTC), and the queue:
// every configured VM with its state and the reason for it, the due ones first (never
// backed up, in the order of the configuration file, then the oldest last backup
// first), then the others.
//
// A VM is due (BACKUP_NECESSARY) when it has no backup, when its tier's interval has
// elapsed since its last backup, when one of its source files changed since (size,
// mtime, inode: DiskRecord::source_stamp), or when its last attempt failed or was
// interrupted after its last backup. Archived (`vmvault archive`), disabled and
// tag-filtered sources are never due. This slice schedules file and device sources;
// domain, virtualbox and lvm sources are listed with a reason and skipped.
//
// Everything is thread-safe; nothing here writes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "ingest/config.h"
#include "store/catalog.h"
#include "store/vm_state.h"

namespace vmvault::ingest {

// The local minute of the day (0..1439) at `now_us` (UTC), in the TZ of the process.
int LocalMinuteOfDay(int64_t now_us);

struct WindowCheck {
  bool open = true;
  int minute_of_day = 0;       // local
  int minutes_until_open = 0;  // 0 when open
  int minutes_left = 0;        // until it closes; 24 h when there is no window
};
// Whether a backup may start at `now_us`.
WindowCheck CheckWindow(const std::optional<BackupWindow>& window, int64_t now_us);
// "outside the backup window 22:00-06:00 (it is 14:03 local time); it opens at 22:00,
// in 7h57m". REQUIRES: !check.open.
std::string WindowClosedMessage(const BackupWindow& window, const WindowCheck& check);

struct QueueEntry {
  std::string vm;            // "" when the source names no valid VM (reason says why)
  size_t source = 0;         // its index in Config::sources
  store::VmState state = store::VmState::kNew;
  bool due = false;          // the schedule backs it up
  std::string reason;        // "never backed up", "last backup 8 days ago, interval 7d", ...
  std::optional<int64_t> last_backup_us;
};

// The stamp of a source file now (ingest::StampOf in production).
using StampFn = std::function<store::DiskRecord::SourceStamp(const std::string& path)>;

// The VM a source backs up: `vm`, else the stem of its first path, as `vmvault ingest`
// names it. InvalidArgument for kinds whose VMs are found at run time (domain,
// virtualbox) and for invalid names.
Result<std::string> SourceVmName(const SourceConfig& source);
// Whether `vmvault schedule` can back up this kind (file, device).
bool ScheduleSupports(SourceKind kind);

// The queue, as described above. `states` may lack any VM; a BACKUP_IN_PROGRESS state
// whose process is alive (`alive`) is "backup in progress", otherwise it counts as
// interrupted.
Result<std::vector<QueueEntry>> BuildQueue(
    const Config& config, const store::Catalog& catalog,
    const std::map<std::string, store::VmStateRecord, std::less<>>& states, int64_t now_us,
    const StampFn& stamp,
    const std::function<bool(int64_t, uint64_t)>& alive = store::ProcessAlive);

// "just now", "5 minutes ago", "3 hours ago", "1 day ago", "8 days ago".
std::string DescribeAge(int64_t age_us);

}  // namespace vmvault::ingest
