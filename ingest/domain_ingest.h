// libvirt domain ingest: `vmvault ingest --domain NAME ... | --all-domains
// [--connect URI] [--method backup|snapshot|pause]`. Each domain becomes one backup of
// the VM of the same name, with the domain's XML kept as the backup's domain.xml.
//
// A shut-off domain's disks are read directly (qemu-img and qemu-nbd). A disk whose
// file has the same device, inode, size and modification time as at the last backup,
// and no backing file, cannot have changed: the backup reuses the last index without
// reading it. A running (or paused) domain keeps running, copied by one of:
//
//   backup    a pull-mode backup job (virDomainBackupBegin): libvirt serves each disk's
//             point-in-time content as an NBD export on a unix socket, read with
//             libnbd. The job creates a checkpoint; the next backup asks only for the
//             extents dirty since it (the qemu:dirty-bitmap context) and takes every
//             other chunk's id from the last backup's index. Without a usable
//             checkpoint it reads everything (dedup still applies) and says why.
//   snapshot  an external disk-only snapshot, a read of the images under it, then an
//             active block commit and pivot back onto them.
//   pause     suspend, read the images, resume; the pause is logged and recorded.
//
// The guest's filesystems are frozen through its agent around the moment the copy is
// taken, when an agent answers. Every failure path ends the backup job, deletes the
// checkpoint it made and commits any overlay back, so a failed backup leaves neither a
// partial backup nor a job, checkpoint or overlay behind; what cannot be removed is
// named in the error.
//
// The caller owns the repository (opened for writing). One call at a time per
// repository.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "ingest/command_runner.h"
#include "ingest/hooks.h"
#include "store/catalog.h"
#include "store/repository.h"

namespace vmvault::ingest {

// The prefix of every checkpoint vmvault makes; `vmvault scrub` removes stale ones.
inline constexpr char kCheckpointPrefix[] = "vmvault-";

struct DomainIngestOptions {
  std::string uri;                   // "" = libvirt's default
  std::vector<std::string> domains;  // by name
  bool all_domains = false;          // every domain of the connection instead
  std::string method = "backup";     // backup | snapshot | pause (for running domains)
  bool include_readonly = false;     // also back up read-only disks
  bool include_removable = false;    // also back up cdrom and floppy media
  std::optional<std::string> tier;
  // Where sockets, scratch files and overlays go (a private folder is made inside).
  std::string work_dir = "/var/tmp";
  size_t threads = 0;
  bool progress = false;
  // The snapshot hooks around the capture of each running domain ({{Method}} as
  // above); with hooks.each_backup also the backup hooks around each domain's backup.
  IngestHooks hooks;
  // When not null, receives each backup that was committed although its domain's run
  // then failed (a post-snapshot or post-backup hook): the error says so, this names it.
  std::vector<store::BackupRecord>* kept = nullptr;
};

// OK for "backup", "snapshot" and "pause".
Status ValidateMethod(std::string_view method);

// Backs up each domain in turn, running domains first, and returns the committed
// backups. A domain that fails does not stop the others; the result is then the first
// error, with the count of failures.
Result<std::vector<store::BackupRecord>> IngestDomains(store::Repository& repo,
                                                       const DomainIngestOptions& options,
                                                       CommandRunner& runner,
                                                       const Clock& clock);

struct ScrubOptions {
  std::string uri;
  std::string domain;
  bool all = false;  // also the checkpoint the latest backup needs (forces a full read)
  bool dry_run = false;
};

// Removes the vmvault checkpoints of a domain except the one its latest backup in
// `repo` (may be null) recorded, and the vmvault bitmaps left in its qcow2 images
// without a checkpoint. Returns one line per thing removed (or, with dry_run, that
// would be).
Result<std::vector<std::string>> ScrubDomain(const store::Repository* repo,
                                             const ScrubOptions& options,
                                             CommandRunner& runner);

}  // namespace vmvault::ingest
