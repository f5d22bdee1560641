// BackupBuilder: what every source (image files, block devices, libvirt domains,
// VirtualBox machines) does to turn disks into one committed backup. It finds or
// prepares the VM record and the parent backup, reads each disk through the chunking
// pipeline (pipeline.h), with changed-block tracking when the source knows what
// changed, and commits the backup in one atomic catalog write. Until Commit() nothing
// is visible; a builder dropped before Commit() leaves no backup (chunks stored by then
// are unreferenced until a later backup uses them or gc removes them).
//
// The caller owns the repository (opened for writing) and keeps it alive as long as
// the builder. Not thread-safe; one builder per backup.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/image.h"
#include "base/result.h"
#include "ingest/hooks.h"
#include "ingest/image_source.h"
#include "store/catalog.h"
#include "store/repository.h"

namespace vmvault::ingest {

// One disk ready to be read.
struct DiskSource {
  std::string name;    // the disk's name in the mount (validated by the caller)
  std::string path;    // where it came from, for the record
  std::string format;  // qemu's name of the source format
  uint64_t size = 0;
  std::vector<Extent> extents;     // which ranges hold data; others read as zeros
  // The source's allocated bytes when `extents` does not say (a disk not read because
  // it is unchanged); by default the sum of the data extents.
  std::optional<uint64_t> allocated;
  ImageSource* source = nullptr;   // not owned; null only when nothing is to be read
  // Changed-block tracking (pipeline.h): the parent's index of this disk, and what
  // changed since. `read_mode` is recorded as given ("full", "incremental",
  // "unchanged"), with `read_note` saying why a full read replaced an incremental one.
  const store::DiskIndex* base = nullptr;
  std::vector<Extent> changed;
  std::string read_mode = "full";
  std::string read_note;
  store::DiskRecord::SourceStamp stamp;
};

struct BackupOptions {
  size_t threads = 0;     // worker threads per disk; 0 = all hardware threads
  bool progress = false;  // draw a progress bar (only when stderr is a terminal)
};

class BackupBuilder {
 public:
  // Starts a backup of VM `vm_name` (validated by the caller) at the clock's now.
  // `tier` (validated) replaces the VM's tier when set; `origin` is recorded for a new
  // VM ("/vms/web.qcow2", "qemu:///system domain web").
  static Result<std::unique_ptr<BackupBuilder>> Start(store::Repository& repo,
                                                      const std::string& vm_name,
                                                      const std::optional<std::string>& tier,
                                                      const std::string& origin,
                                                      const Clock& clock,
                                                      const BackupOptions& options);

  // The backup being built: set method, config, checkpoint, ... before Commit().
  store::BackupRecord& record() { return backup_; }
  // The VM's latest committed backup, or null for a VM's first backup.
  const store::BackupRecord* parent() const { return parent_ ? &*parent_ : nullptr; }
  // The parent's record of disk `name`, or null.
  const store::DiskRecord* ParentDisk(const std::string& name) const;
  // The parent's index of disk `name` when the parent has that disk with this size and
  // the repository's chunk size; nullopt (and *why_not) otherwise.
  Result<std::optional<store::DiskIndex>> ParentIndex(const std::string& name, uint64_t size,
                                                      std::string* why_not) const;

  // Reads one disk into the repository. The disk is part of the backup once this
  // returns OK.
  Status AddDisk(const DiskSource& disk);

  // Commits the backup (disks in the order added) and logs a one-line summary.
  Result<store::BackupRecord> Commit();
  // Commits the backup; then, when `post_snapshot` (a post-snapshot hook's failure,
  // see CaptureBetweenHooks) is not OK, returns it as the error, saying that the backup
  // was made and kept, so the run's exit status and alerts still report the hook; the
  // backup is then in *kept (see KeptDespite).
  Result<store::BackupRecord> CommitThenReport(const Status& post_snapshot,
                                               std::optional<store::BackupRecord>* kept);

 private:
  BackupBuilder(store::Repository& repo, const Clock& clock, BackupOptions options)
      : repo_(repo), clock_(clock), options_(options) {}

  store::Repository& repo_;
  const Clock& clock_;
  const BackupOptions options_;
  int64_t start_us_ = 0;
  store::VmRecord vm_;
  store::BackupRecord backup_;
  std::optional<store::BackupRecord> parent_;
  std::vector<store::DiskIndex> indexes_;
};

// The error that reports a failed post-snapshot hook of backup `made`, which was
// committed: it says the backup was made and kept. Sets *kept to `made`, for the
// post-backup hooks and the schedule, which the error alone would not tell.
Status KeptDespite(const store::BackupRecord& made, const Status& post_snapshot,
                   std::optional<store::BackupRecord>* kept);

// One VM's backup: the committed backup, or the error. When a backup was committed and
// the run still failed (KeptDespite), it returns that error and sets *kept.
using BackupStep =
    std::function<Result<store::BackupRecord>(std::optional<store::BackupRecord>* kept)>;

// Validates `name` as a VM name when given, else sanitizes `fallback` into one.
Result<std::string> ChooseVmName(const std::optional<std::string>& name,
                                 std::string_view fallback);

// The whole index of disk `disk` (its position in the record) of a committed backup.
Result<store::DiskIndex> LoadDiskIndex(const store::Catalog& catalog, uint64_t backup_id,
                                       uint32_t disk, const store::DiskRecord& record);

// st_dev, st_ino, st_size and st_mtim of `path`; unknown (all 0) when it cannot be
// stat'ed or is not a regular file.
store::DiskRecord::SourceStamp StampOf(const std::string& path);

// Runs `backup` (one backup of VM `vm_name`) between the pre- and post-backup hooks of
// `hooks` (none when `hooks.hooks` is null), with {{Repository}}, {{VM}}, {{Tier}} (`tier`,
// else the VM's, else the default: what BackupBuilder gives the backup) and, after,
// {{Backup}} and {{Status}}. `*made` receives the committed backup, even when a post
// hook then fails or the backup was kept despite an error (then {{Backup}} names it and
// {{Status}} is failed). Returns the pre hooks' failure (the backup skipped), else the
// backup's, else the post hooks'.
Status BackupBetweenHooks(const store::Repository& repo, const IngestHooks& hooks,
                          const std::string& vm_name, const std::optional<std::string>& tier,
                          const BackupStep& backup, std::optional<store::BackupRecord>* made);

}  // namespace vmvault::ingest
