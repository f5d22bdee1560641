#include "ingest/backup_builder.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/names.h"
#include "base/partition_table.h"
#include "base/progress.h"
#include "base/thread_pool.h"
#include "ingest/pipeline.h"

namespace vmvault::ingest {

Result<std::string> ChooseVmName(const std::optional<std::string>& name,
                                 std::string_view fallback) {
  if (name) {
    VV_RETURN_IF_ERROR(ValidateName(*name, "VM name"));
    return *name;
  }
  return SanitizeName(fallback);
}

Result<store::DiskIndex> LoadDiskIndex(const store::Catalog& catalog, uint64_t backup_id,
                                       uint32_t disk, const store::DiskRecord& record) {
  VV_RETURN_IF_ERROR(store::CheckDiskShape(record, record.name));
  store::DiskIndex index(store::SlotCount(record));
  VV_RETURN_IF_ERROR(catalog.ForEachIndexPage(
      backup_id, disk, record, [&](uint64_t page, const store::ChunkId* ids, size_t n) {
        std::copy(ids, ids + n, index.begin() + page * store::kIndexPageSlots);
        return true;
      }));
  return index;
}

store::DiskRecord::SourceStamp StampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
          static_cast<uint64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

Result<std::unique_ptr<BackupBuilder>> BackupBuilder::Start(
    store::Repository& repo, const std::string& vm_name, const std::optional<std::string>& tier,
    const std::string& origin, const Clock& clock, const BackupOptions& options) {
  std::unique_ptr<BackupBuilder> b(new BackupBuilder(repo, clock, options));
  b->start_us_ = clock.NowMicros();
  auto existing = repo.catalog().GetVm(vm_name);
  if (existing.ok()) {
    b->vm_ = std::move(existing).value();
  } else if (existing.status().IsNotFound()) {
    b->vm_.name = vm_name;
    b->vm_.created_us = b->start_us_;
    b->vm_.origin = origin;
  } else {
    return existing.status();
  }
  if (tier) b->vm_.tier = *tier;

  store::BackupRecord& backup = b->backup_;
  backup.vm = vm_name;
  backup.time_us = b->start_us_;
  backup.tier = b->vm_.tier;
  backup.method = "offline";
  backup.host = HostName();
  auto previous = repo.catalog().ListBackups(vm_name);
  if (previous.ok()) {
    if (!previous->empty()) {
      backup.parent_id = previous->back().id;
      b->parent_ = std::move(previous->back());
    }
  } else if (!previous.status().IsNotFound()) {
    return previous.status();
  }
  return b;
}

const store::DiskRecord* BackupBuilder::ParentDisk(const std::string& name) const {
  if (!parent_) return nullptr;
  for (const store::DiskRecord& d : parent_->disks) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

Result<std::optional<store::DiskIndex>> BackupBuilder::ParentIndex(const std::string& name,
                                                                   uint64_t size,
                                                                   std::string* why_not) const {
  const store::DiskRecord* d = ParentDisk(name);
  if (d == nullptr) {
    *why_not = parent_ ? fmt::format("the parent backup has no disk {}", name)
                       : "this is the VM's first backup";
    return std::optional<store::DiskIndex>();
  }
  if (d->virtual_size != size) {
    *why_not = fmt::format("the disk was {} bytes in the parent backup and is {} now",
                           d->virtual_size, size);
    return std::optional<store::DiskIndex>();
  }
  if (d->chunk_size != repo_.config().chunk_size) {
    *why_not = "the parent backup used another chunk size";
    return std::optional<store::DiskIndex>();
  }
  const uint32_t disk_no = static_cast<uint32_t>(d - parent_->disks.data());
  VV_ASSIGN_OR_RETURN(store::DiskIndex index,
                      LoadDiskIndex(repo_.catalog(), parent_->id, disk_no, *d));
  return std::optional<store::DiskIndex>(std::move(index));
}

Status BackupBuilder::AddDisk(const DiskSource& disk) {
  const size_t threads =
      options_.threads != 0 ? options_.threads : ThreadPool::HardwareThreads();
  uint64_t to_read = 0;
  for (const Extent& e : disk.extents) {
    if (e.data) to_read += e.length;
  }
  if (disk.base != nullptr) {
    uint64_t changed = 0;
    for (const Extent& e : disk.changed) {
      if (e.data) changed += e.length;
    }
    to_read = std::min(to_read, changed);
  }
  Progress bar(disk.name, to_read, options_.progress && Progress::StderrIsTerminal());
  PipelineOptions popts;
  popts.chunk_size = repo_.config().chunk_size;
  popts.zstd_level = repo_.config().zstd_level;
  popts.threads = threads;
  popts.progress = &bar;
  popts.base = disk.base;
  popts.changed = disk.changed;
  ImageSource* source = disk.source;
  auto ingested = IngestDisk(
      [source]() -> Result<std::unique_ptr<Image>> {
        if (source == nullptr) return Status::FailedPrecondition("this disk has no source to read");
        return source->OpenReader();
      },
      disk.size, disk.extents, repo_.hasher(), repo_.chunks(), popts);
  bar.Finish();
  if (!ingested.ok()) {
    return ingested.status().WithContext(fmt::format("ingesting '{}'", Printable(disk.path)));
  }
  store::DiskRecord rec;
  rec.name = disk.name;
  rec.virtual_size = disk.size;
  rec.chunk_size = repo_.config().chunk_size;
  rec.source_format = disk.format;
  rec.source_path = disk.path;
  for (const Extent& e : disk.extents) {
    if (e.data) rec.allocated_bytes += e.length;
  }
  if (disk.allocated) rec.allocated_bytes = *disk.allocated;
  const DiskStats& st = ingested->stats;
  rec.bytes_read = st.bytes_read;
  rec.data_chunks = st.data_chunks;
  rec.new_chunks = st.new_chunks;
  rec.new_stored_bytes = st.new_stored_bytes;
  rec.stored_bytes = st.stored_bytes;
  rec.reused_chunks = st.reused_chunks;
  rec.read_mode = disk.read_mode;
  rec.read_note = disk.read_note;
  rec.source_stamp = disk.stamp;
  // The partition table, so the mount can show each partition as its own file. The
  // disk is stored by now: failing to read the table costs the partition files only.
  // A disk read from nothing keeps the parent's table.
  if (source == nullptr) {
    if (const store::DiskRecord* p = ParentDisk(disk.name)) rec.partitions = p->partitions;
  } else {
    auto reader = source->OpenReader();
    auto partitions = reader.ok() ? ReadPartitions(**reader)
                                  : Result<std::vector<Partition>>(reader.status());
    if (partitions.ok()) {
      rec.partitions = std::move(partitions).value();
    } else {
      spdlog::warn("cannot read the partition table of '{}' (the backup will have no partition "
                   "files): {}",
                   Printable(disk.path), partitions.status().ToString());
    }
  }
  backup_.disks.push_back(std::move(rec));
  indexes_.push_back(std::move(ingested->index));
  return Status::OK();
}

Result<store::BackupRecord> BackupBuilder::Commit() {
  backup_.duration_us = clock_.NowMicros() - start_us_;
  VV_RETURN_IF_ERROR(repo_.catalog().CommitBackup(vm_, &backup_, indexes_));

  uint64_t logical = 0, allocated = 0, read = 0, new_stored = 0;
  for (const store::DiskRecord& d : backup_.disks) {
    logical += d.virtual_size;
    allocated += d.allocated_bytes;
    read += d.bytes_read;
    new_stored += d.new_stored_bytes;
  }
  const double secs = static_cast<double>(std::max<int64_t>(backup_.duration_us, 0)) / 1e6;
  // A rate over less than a tenth of a second says nothing.
  const std::string rate = secs >= 0.1 ? fmt::format(" ({:.0f} MB/s)", read / secs / 1e6) : "";
  spdlog::info(
      "backed up {} as {} ({} disk{}, {}): {} logical, {} allocated, {} read, {} newly stored, "
      "in {:.1f} s{}",
      backup_.vm, backup_.name(), backup_.disks.size(), backup_.disks.size() == 1 ? "" : "s",
      backup_.method, HumanBytes(logical), HumanBytes(allocated), HumanBytes(read),
      HumanBytes(new_stored), secs, rate);
  return backup_;
}

Result<store::BackupRecord> BackupBuilder::CommitThenReport(
    const Status& post_snapshot, std::optional<store::BackupRecord>* kept) {
  VV_ASSIGN_OR_RETURN(store::BackupRecord made, Commit());
  if (post_snapshot.ok()) return made;
  return KeptDespite(made, post_snapshot, kept);
}

Status KeptDespite(const store::BackupRecord& made, const Status& post_snapshot,
                   std::optional<store::BackupRecord>* kept) {
  *kept = made;
  return Status(post_snapshot.code(), fmt::format("backup {} of {} was made and kept, but {}",
                                                  made.name(), made.vm, post_snapshot.message()));
}

Status BackupBetweenHooks(const store::Repository& repo, const IngestHooks& hooks,
                          const std::string& vm_name, const std::optional<std::string>& tier,
                          const BackupStep& backup, std::optional<store::BackupRecord>* made) {
  auto step = [&](HookValues* values) -> Status {
    // {{Backup}} is empty after a failure, unless the backup was kept despite it.
    if (values != nullptr) (*values)["Backup"] = "";
    std::optional<store::BackupRecord> kept;
    Result<store::BackupRecord> r = backup(&kept);
    if (!r.ok()) {
      if (kept) {
        if (values != nullptr) (*values)["Backup"] = kept->name();
        *made = std::move(kept);
      }
      return r.status();
    }
    if (values != nullptr) (*values)["Backup"] = r->name();
    *made = std::move(r).value();
    return Status::OK();
  };
  if (hooks.hooks == nullptr) return step(nullptr);
  std::string tier_value = tier.value_or(store::VmRecord().tier);
  if (!tier) {
    if (auto vm = repo.catalog().GetVm(vm_name); vm.ok()) tier_value = vm->tier;
  }
  return RunBetweenHooks(*hooks.hooks, HookEvent::kPreBackup, HookEvent::kPostBackup,
                         VmHookValues(hooks.repository, vm_name, tier_value),
                         "the backup was skipped", step);
}

}  // namespace vmvault::ingest
