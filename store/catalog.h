// The catalog: VMs, backups and the dense index of every disk of every backup, kept in
// the kCatalog and kIndex key spaces of a KvEngine. The key layout is in
// store/FORMAT.md.
//
// A disk's index has one ChunkId per chunk slot (the zero id for a hole), so the chunk
// that holds any offset is found in O(1). It is stored in pages of kIndexPageSlots
// slots; pages that are all holes are not stored, so a 1 TiB sparse disk costs only
// the pages that hold data.
//
// A backup appears atomically: CommitBackup first flushes the engine, which makes every
// chunk put so far durable, then writes the VM record, the backup record and every
// index page in one synced write. So no index entry ever names a chunk that is not on
// disk. It disappears atomically too (DeleteBackups, for prune), records, pages and
// summaries together; its chunks stay until garbage collection.
//
// A reader may still hold a backup that is removed meanwhile (a mount serving an open
// file of it, whose engine follows the writer): its index page or summary is then
// missing, which must not read as holes. So a missing page or summary of a backup whose record is gone is
// NotFound, never zeros. Catalog is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/partition_table.h"
#include "base/result.h"
#include "base/time_format.h"
#include "store/chunk_id.h"
#include "store/disk_summary.h"
#include "store/kv_engine.h"

namespace vmvault::store {

inline constexpr uint32_t kIndexPageSlots = 4096;
inline constexpr uint32_t kMinChunkSize = 64 << 10;
inline constexpr uint32_t kMaxChunkSize = 4 << 20;
// The largest disk a record may describe (qemu's limit too).
inline constexpr uint64_t kMaxDiskSize = uint64_t{1} << 62;

// A disk's index while it is built: one id per chunk slot, ceil(size / chunk_size) long.
using DiskIndex = std::vector<ChunkId>;

struct DiskRecord {
  std::string name;           // the disk's file name in the mount, e.g. "vda", "disk0"
  uint64_t virtual_size = 0;  // bytes
  uint32_t chunk_size = 0;
  std::string source_format;  // as qemu-img names it: raw, qcow2, vmdk, vdi, vhdx, vpc
  std::string source_path;
  uint64_t allocated_bytes = 0;  // bytes in the source's data extents
  uint64_t bytes_read = 0;       // bytes read from the source
  uint64_t data_chunks = 0;      // slots that are not holes
  uint64_t new_chunks = 0;       // chunks this backup stored first
  uint64_t new_stored_bytes = 0; // their stored (compressed) size
  uint64_t stored_bytes = 0;     // stored size of all the chunks this disk references
  // The partition table found at ingest (base/partition_table.h); empty when the disk
  // has none, and for backups made before format version 2.
  std::vector<Partition> partitions;
  // How the disk was read (optional fields; records without them read as "full"):
  //   "full": every data extent of the source;
  //   "incremental": only the ranges changed since the parent backup's checkpoint, the
  //     other slots' ids taken from the parent's index;
  //   "unchanged": nothing; the source had not changed since the parent backup, whose
  //     index this disk reuses.
  std::string read_mode = "full";
  std::string read_note;       // why a full read was needed where "incremental" was asked
  uint64_t reused_chunks = 0;  // data slots whose id came from the parent's index
  // The source file's identity when it was read (all 0 when unknown, e.g. a running
  // domain): an offline source with the same identity cannot have changed.
  struct SourceStamp {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const SourceStamp&) const = default;
    bool known() const { return ino != 0 || size != 0; }
  } source_stamp;
};

// Corruption unless the record's chunk size is a power of two in [kMinChunkSize,
// kMaxChunkSize] and its size at most kMaxDiskSize: what every reader of an index
// assumes. `what` names the disk in the message.
Status CheckDiskShape(const DiskRecord& d, std::string_view what);
// ceil(virtual_size / chunk_size). REQUIRES: CheckDiskShape(d) is OK.
inline uint64_t SlotCount(const DiskRecord& d) {
  return d.virtual_size / d.chunk_size + (d.virtual_size % d.chunk_size != 0 ? 1 : 0);
}

struct BackupRecord {
  uint64_t id = 0;      // assigned by CommitBackup; unique and increasing
  std::string vm;
  int64_t time_us = 0;  // the backup's point in time, UTC
  std::string tier = "warm";      // hot | warm | cold
  std::string method = "offline"; // offline | paused | snapshot | pull-backup
  std::optional<uint64_t> parent_id;
  std::vector<DiskRecord> disks;
  std::string config_kind;  // "" | "libvirt-xml" | "vbox"
  std::string config;       // the VM's configuration at backup time
  int64_t duration_us = 0;
  std::string host;
  // Running libvirt domains (optional fields): the vmvault checkpoint created with this
  // backup ("" when none), whether the guest's filesystems were frozen through its
  // agent, and how long the guest was paused (0 when it never was).
  std::string checkpoint;
  bool fs_frozen = false;
  int64_t pause_us = 0;

  // "2026-11-21T033000Z"
  std::string name() const { return FormatBackupTime(time_us); }
};

struct VmRecord {
  std::string name;
  std::string tier = "warm";
  Period period = Period::kMonth;
  int64_t created_us = 0;
  std::string origin;  // where it came from: an image path, a libvirt URI + domain
};

// The result of the last `vmvault verify` of a backup.
struct VerifyRecord {
  int64_t time_us = 0;
  bool ok = true;
  double sample_percent = 100;  // of the backup's distinct chunks re-read and re-hashed
  uint64_t chunks = 0;          // distinct chunks the backup references
  std::vector<std::string> problems;  // one line each, naming the disk
};

class Catalog {
 public:
  // `kv` is not owned and must outlive the catalog.
  explicit Catalog(KvEngine* kv) : kv_(kv) {}

  Result<std::vector<VmRecord>> ListVms() const;  // by name
  Result<VmRecord> GetVm(std::string_view name) const;
  Result<std::vector<BackupRecord>> ListBackups(std::string_view vm) const;  // oldest first
  Result<BackupRecord> GetBackup(uint64_t id) const;

  // A number that changes whenever the catalog does (a commit, a verification, a
  // deletion), so a reader can tell cheaply whether its view is still current. 0 for
  // an empty catalog.
  Result<uint64_t> Generation() const;
  // Changes the generation without changing a record, so mounts reopen their view of
  // the repository (garbage collection, after it deleted chunks).
  Status BumpGeneration();

  // Replaces *slots with page `page` of disk `disk` (its position in BackupRecord::disks)
  // of backup `backup_id`: kIndexPageSlots ids, all zero when the page is not stored.
  // NotFound when the backup has been removed. A stored page holds exactly the slots of
  // the disk it covers; given `expected_slots` (that count: kIndexPageSlots, less on the
  // last page), a stored page of another length is Corruption, never holes.
  Status ReadIndexPage(uint64_t backup_id, uint32_t disk, uint64_t page,
                       std::vector<ChunkId>* slots, uint64_t expected_slots = 0) const;

  // The per-page data counts of a disk (disk_summary.h). Backups committed before
  // format version 2 have none stored; theirs is computed from the stored index pages.
  // NotFound when the backup has been removed.
  Result<DiskSummary> ReadDiskSummary(uint64_t backup_id, uint32_t disk,
                                      const DiskRecord& record) const;
  // The summary stored at commit (or by the upgrade from format 1), checked against
  // `record`; nullopt when the disk has none stored (a format 1 repository opened only
  // for reading). Unlike a computed one, it tells an index page that is absent because
  // it held only holes from one that is missing. NotFound when the backup has been
  // removed.
  Result<std::optional<DiskSummary>> ReadStoredDiskSummary(uint64_t backup_id, uint32_t disk,
                                                           const DiskRecord& record) const;
  // Calls fn(page, ids, n) for every stored index page of a disk, in page order, with
  // the page's n slots (4096, fewer on the last page), until fn returns false. A page
  // whose key or length does not fit the disk is Corruption; a backup that has been
  // removed (before or during the scan) is NotFound.
  Status ForEachIndexPage(
      uint64_t backup_id, uint32_t disk, const DiskRecord& record,
      const std::function<bool(uint64_t page, const ChunkId* ids, size_t n)>& fn) const;

  // Stores the summary of every disk that has none (the upgrade from format 1). Disks
  // whose record or index does not read are counted in *skipped (may be null) and left
  // as they are. Fails only when the catalog cannot be listed or written.
  Status AddMissingSummaries(uint64_t* skipped = nullptr);

  // The last verification of a backup (nullopt: never verified), and recording one
  // (which bumps the generation, so mounts show it in manifest.json).
  Result<std::optional<VerifyRecord>> GetVerification(uint64_t backup_id) const;
  Status RecordVerification(uint64_t backup_id, const VerifyRecord& record) {
    return RecordVerifications({{backup_id, record}});
  }
  // Several at once: one synced write, one generation bump. Backups that have been
  // removed meanwhile are skipped.
  Status RecordVerifications(const std::vector<std::pair<uint64_t, VerifyRecord>>& records);

  // Commits a backup: assigns backup->id, moves backup->time_us to the next free second
  // when the VM already has a backup in that second, and writes the VM record, the
  // backup record, the index pages and the disk summaries in one synced, atomic write.
  // REQUIRES: indexes.size() == backup->disks.size(), and every chunk the indexes name
  // was Put on the same engine.
  Status CommitBackup(const VmRecord& vm, BackupRecord* backup,
                      const std::vector<DiskIndex>& indexes);

  // Removes backups: each one's record, its index pages, disk summaries and
  // verification record, and the record of every VM left without a backup, in one
  // synced, atomic write that moves the generation (so mounts drop them from their
  // tree). Chunks stay: garbage collection removes the ones nothing references.
  // NotFound, and nothing removed, when an id names no backup. Duplicate ids count once.
  Status DeleteBackups(const std::vector<uint64_t>& ids);

 private:
  // OK when backup `id` has a record; NotFound naming it when it has been removed.
  Status CheckBackupExists(uint64_t id) const;
  // Adds the next value of the generation to `batch`. REQUIRES: commit_mu_ is held.
  Status AddGenerationBump(KvBatch* batch) const;
  // Adds a delete of every key of `space` that starts with `prefix` to `batch`.
  Status DeletePrefix(KvSpace space, std::string_view prefix, KvBatch* batch) const;
  Result<DiskSummary> ComputeDiskSummary(uint64_t backup_id, uint32_t disk,
                                         const DiskRecord& record) const;

  KvEngine* kv_;
  // Serializes, within this process, the writes that read the generation or the next id.
  std::mutex commit_mu_;
};

// JSON forms of the records, as stored (see FORMAT.md). Decoding is strict: a record
// that does not parse is Corruption.
std::string EncodeBackupRecord(const BackupRecord& rec);
Result<BackupRecord> DecodeBackupRecord(std::string_view json);
std::string EncodeVmRecord(const VmRecord& rec);
Result<VmRecord> DecodeVmRecord(std::string_view json);

}  // namespace vmvault::store
