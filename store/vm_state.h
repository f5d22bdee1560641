// The schedule's state of each VM (vmvault schedule, show-queue, archive, activate),
// kept in the catalog key space under `st/<name>` (store/FORMAT.md, "VM states"), and
// when each alert the schedule sends was last sent, under `al/<key>` (so an alert about
// one VM falling behind is not repeated within a day, ingest/alerts.h).
// These records are optional: a repository without them (older, or never scheduled)
// reads as every VM having no state, which the scheduler treats as NEW or CLEAN from
// the catalog. They do not move the catalog generation: a mount reads a VM's state
// when its xattr user.vmvault.state is asked for, and rebuilds nothing.
//
// Writing needs the repository's writer lock (a Repository opened with kWrite): the
// only writers of BACKUP_IN_PROGRESS are schedulers holding that lock for their whole
// run, which is what makes crash recovery sound (RecoverInterrupted).
//
// Free functions over a KvEngine; thread-safe as the engine is.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/kv_engine.h"

namespace vmvault::store {

enum class VmState {
  kNew,               // seen, never backed up
  kBackupNecessary,   // due: interval elapsed, source changed, or the last attempt failed
  kBackupInProgress,  // a scheduler (pid, pid_start) is backing it up now
  kClean,             // backed up, not due
  kRunning,           // running: needs a live method; running VMs go one at a time
  kArchived,          // out of the schedule until `vmvault activate`
};
// "NEW", "BACKUP_NECESSARY", "BACKUP_IN_PROGRESS", "CLEAN", "RUNNING", "ARCHIVED".
std::string_view VmStateName(VmState s);
std::optional<VmState> ParseVmState(std::string_view name);

inline constexpr int kVmStateRecordVersion = 1;

struct VmStateRecord {
  VmState state = VmState::kNew;
  int64_t since_us = 0;     // when it entered this state (UTC)
  // kBackupInProgress: the process backing it up and its start time (clock ticks since
  // boot, /proc/PID/stat field 22), so a reused pid is not taken for it. 0 otherwise.
  int64_t pid = 0;
  uint64_t pid_start = 0;
  std::string host;
  std::string note;  // why: the reason of the last decision, or the last error
  // When the schedule first saw the VM (kept across states; 0 when unknown): a VM with
  // no backup is behind schedule measured from here (alerts.h).
  int64_t seen_us = 0;
};

std::string EncodeVmStateRecord(const VmStateRecord& rec);
// Corruption when it does not parse or has another version.
Result<VmStateRecord> DecodeVmStateRecord(std::string_view json);

// The record of one VM, nullopt when it has none.
Result<std::optional<VmStateRecord>> GetVmState(const KvEngine& kv, std::string_view vm);
// Every record, by VM name.
Result<std::map<std::string, VmStateRecord, std::less<>>> ListVmStates(const KvEngine& kv);
// Writes several records in one synced write.
Status PutVmStates(KvEngine& kv, const std::map<std::string, VmStateRecord, std::less<>>& records);

// Whether process `pid` exists and started at `start` (0: any start time).
bool ProcessAlive(int64_t pid, uint64_t start);
// The start time of process `pid` (field 22 of /proc/PID/stat), nullopt when it is gone.
std::optional<uint64_t> ProcessStartTime(int64_t pid);

// After a crash no VM stays BACKUP_IN_PROGRESS: every such record whose process is not
// alive (`alive(pid, pid_start)` false), or every one at all when `lock_held` (the
// caller holds the writer lock, so no other scheduler runs), becomes BACKUP_NECESSARY
// with a note naming the interrupted process, in one write. Returns the VMs recovered.
Result<std::vector<std::string>> RecoverInterrupted(
    KvEngine& kv, bool lock_held, int64_t now_us,
    const std::function<bool(int64_t pid, uint64_t start)>& alive = ProcessAlive);

// The note RecoverInterrupted writes: "interrupted backup (pid 123 gone)".
std::string InterruptedNote(const VmStateRecord& rec);

// --- Alerts sent ---

inline constexpr int kAlertRecordVersion = 1;

struct AlertRecord {
  int64_t last_sent_us = 0;  // when an alert with this key was last sent (UTC)
  std::string subject;       // its subject, for people reading the repository
};

std::string EncodeAlertRecord(const AlertRecord& rec);
// Corruption when it does not parse or has another version.
Result<AlertRecord> DecodeAlertRecord(std::string_view json);

// When each alert key was last sent ("behind:web01" -> time), every record.
Result<std::map<std::string, int64_t>> ListAlertsSent(const KvEngine& kv);
// Records that an alert with `key` (not empty) was sent at `sent_us`, in a synced write.
Status PutAlertSent(KvEngine& kv, std::string_view key, const AlertRecord& rec);

}  // namespace vmvault::store
