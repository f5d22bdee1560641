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
// tag-filtered sources are never due. Domain and VirtualBox sources name their VMs by
// pattern: the caller lists what each such source finds now (an Inventory: libvirt's
// domains, the machines under the VirtualBox path, and whether each runs) and every
// VM found is one entry. A due VM that runs is RUNNING: it needs a live method, and
// PickNextJob never starts two such jobs at once. A shut-off domain whose disk files
// have the stamps its last backup recorded is not due before its interval.
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
  // domain, virtualbox: the domain's or machine's name as libvirt or VirtualBox gives
  // it (vm is its sanitized form). "" for other kinds.
  std::string name;
  bool running = false;      // a domain or machine that runs (or is paused) now
  store::VmState state = store::VmState::kNew;
  bool due = false;          // the schedule backs it up
  std::string reason;        // "never backed up", "last backup 8 days ago, interval 7d", ...
  std::optional<int64_t> last_backup_us;
};

// A domain or VirtualBox machine a source finds.
struct FoundVm {
  std::string name;      // as libvirt or VirtualBox names it
  bool running = false;  // running or paused: its disks are in use
};
// What each domain and virtualbox source (by index in Config::sources) finds now, or
// why it cannot look (libvirt does not answer, the path is gone). Sources missing
// from the map are listed as not looked at.
using Inventory = std::map<size_t, Result<std::vector<FoundVm>>>;

// The names among `found` a domain or virtualbox source selects: those matching one of
// its `names` patterns (virtualbox: every one when it has none) and none of `exclude`.
std::vector<FoundVm> SelectFound(const SourceConfig& source, const std::vector<FoundVm>& found);

// The stamp of a source file now (ingest::StampOf in production).
using StampFn = std::function<store::DiskRecord::SourceStamp(const std::string& path)>;

// The VM a source backs up: `vm`, else the stem of its first path, as `vmvault ingest`
// names it. InvalidArgument for kinds whose VMs are found at run time (domain,
// virtualbox) and for invalid names.
Result<std::string> SourceVmName(const SourceConfig& source);
// Whether a source's VMs are found at run time (domain, virtualbox).
bool FoundAtRunTime(SourceKind kind);

// The queue, as described above. `states` may lack any VM; a BACKUP_IN_PROGRESS state
// whose process is alive (`alive`) is "backup in progress", otherwise it counts as
// interrupted.
Result<std::vector<QueueEntry>> BuildQueue(
    const Config& config, const store::Catalog& catalog,
    const std::map<std::string, store::VmStateRecord, std::less<>>& states, int64_t now_us,
    const StampFn& stamp, const Inventory& inventory = {},
    const std::function<bool(int64_t, uint64_t)>& alive = store::ProcessAlive);

// Which due entry of `queue` a schedule starts next: the first due one not `started`,
// skipping RUNNING ones while `live_job_running` (running VMs go one at a time). None
// when `jobs_running` has reached `concurrency`, when the window is closed (running
// jobs finish, no new one starts), or when nothing may start now.
// REQUIRES: started.size() == queue.size().
std::optional<size_t> PickNextJob(const std::vector<QueueEntry>& queue,
                                  const std::vector<bool>& started, int jobs_running,
                                  bool live_job_running, int concurrency, bool window_open);

// Worker threads per job when `concurrency` jobs share `hardware` threads: at least 1.
size_t ThreadsPerJob(size_t hardware, int concurrency);

// "just now", "5 minutes ago", "3 hours ago", "1 day ago", "8 days ago".
std::string DescribeAge(int64_t age_us);

}  // namespace vmvault::ingest
