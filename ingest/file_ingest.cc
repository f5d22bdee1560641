#include "ingest/file_ingest.h"

#include <unistd.h>

#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/names.h"
#include "base/partition_table.h"
#include "base/progress.h"
#include "base/thread_pool.h"
#include "ingest/pipeline.h"
#include "ingest/qemu_img.h"

namespace vmvault::ingest {
namespace {

// One source file after probing, before reading.
struct ProbedFile {
  ImageInfo info;
  std::vector<Extent> extents;
  uint64_t allocated = 0;  // bytes in data extents
};

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

std::string FileStem(const std::string& path) {
  return std::filesystem::path(path).stem().string();
}

Result<ProbedFile> ProbeFile(CommandRunner& runner, const std::string& path,
                             const std::string& format) {
  ProbedFile f;
  VV_ASSIGN_OR_RETURN(f.info, ProbeImage(runner, path, format));
  VV_RETURN_IF_ERROR(CheckImage(runner, f.info));
  VV_ASSIGN_OR_RETURN(f.extents, MapImage(runner, f.info));
  for (const Extent& e : f.extents) {
    if (e.data) f.allocated += e.length;
  }
  spdlog::debug("{}: {} image, {} bytes, {} allocated{}", f.info.path, f.info.format,
                f.info.virtual_size, f.allocated,
                f.info.backing_file.empty() ? "" : ", backing file " + f.info.backing_file);
  return f;
}

// Reads one probed file into the repository.
Result<store::DiskIndex> IngestOneDisk(store::Repository& repo, const ProbedFile& file,
                                       const std::string& name, size_t threads, bool progress,
                                       ImageSourceOpener& opener, store::DiskRecord* rec) {
  VV_ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> source,
                      opener.Open(file.info, static_cast<int>(threads)));
  Progress bar(name, file.allocated, progress && Progress::StderrIsTerminal());
  PipelineOptions popts;
  popts.chunk_size = repo.config().chunk_size;
  popts.zstd_level = repo.config().zstd_level;
  popts.threads = threads;
  popts.progress = &bar;
  auto ingested = IngestDisk([&source] { return source->OpenReader(); }, file.info.virtual_size,
                             file.extents, repo.hasher(), repo.chunks(), popts);
  bar.Finish();
  if (!ingested.ok()) {
    return ingested.status().WithContext(fmt::format("ingesting '{}'", Printable(file.info.path)));
  }
  rec->name = name;
  rec->virtual_size = file.info.virtual_size;
  rec->chunk_size = repo.config().chunk_size;
  rec->source_format = file.info.format;
  rec->source_path = file.info.path;
  rec->allocated_bytes = file.allocated;
  const DiskStats& st = ingested->stats;
  rec->bytes_read = st.bytes_read;
  rec->data_chunks = st.data_chunks;
  rec->new_chunks = st.new_chunks;
  rec->new_stored_bytes = st.new_stored_bytes;
  rec->stored_bytes = st.stored_bytes;
  // The partition table, so the mount can show each partition as its own file. The
  // disk is stored by now: failing to read the table costs the partition files only.
  auto reader = source->OpenReader();
  auto partitions = reader.ok() ? ReadPartitions(**reader)
                                : Result<std::vector<Partition>>(reader.status());
  if (partitions.ok()) {
    rec->partitions = std::move(partitions).value();
  } else {
    spdlog::warn("cannot read the partition table of '{}' (the backup will have no partition "
                 "files): {}",
                 Printable(file.info.path), partitions.status().ToString());
  }
  return std::move(ingested->index);
}

}  // namespace

Status ValidateTier(std::string_view tier) {
  if (tier == "hot" || tier == "warm" || tier == "cold") return Status::OK();
  return Status::InvalidArgument(
      fmt::format("tier '{}' is not one of hot, warm, cold", Printable(tier)));
}

std::vector<std::string> DiskNamesForFiles(const std::vector<std::string>& files) {
  std::vector<std::string> names;
  std::set<std::string> used;
  for (const std::string& file : files) {
    const std::string stem = FileStem(file);
    std::string name = SanitizeName(stem, kMaxDiskNameLength);
    for (int n = 2; used.count(name) != 0; ++n) {
      const std::string suffix = fmt::format("-{}", n);
      name = SanitizeName(stem, kMaxDiskNameLength - suffix.size()) + suffix;
    }
    used.insert(name);
    names.push_back(name);
  }
  return names;
}

Result<store::BackupRecord> IngestImageFiles(store::Repository& repo, const FileIngestOptions& opts,
                                             CommandRunner& runner, const Clock& clock,
                                             ImageSourceOpener& opener) {
  const int64_t start_us = clock.NowMicros();
  if (opts.files.empty()) return Status::InvalidArgument("no image file given (--file PATH)");
  if (!opts.formats.empty() && opts.formats.size() != opts.files.size()) {
    return Status::InvalidArgument(
        fmt::format("{} formats given for {} files", opts.formats.size(), opts.files.size()));
  }
  if (opts.tier) VV_RETURN_IF_ERROR(ValidateTier(*opts.tier));
  std::string vm_name;
  if (opts.vm) {
    VV_RETURN_IF_ERROR(ValidateName(*opts.vm, "VM name"));
    vm_name = *opts.vm;
  } else {
    vm_name = SanitizeName(FileStem(opts.files.front()));
  }

  // Probe everything before reading anything.
  std::vector<ProbedFile> files;
  for (size_t i = 0; i < opts.files.size(); ++i) {
    VV_ASSIGN_OR_RETURN(ProbedFile f, ProbeFile(runner, opts.files[i],
                                                opts.formats.empty() ? "" : opts.formats[i]));
    files.push_back(std::move(f));
  }

  store::VmRecord vm;
  auto existing = repo.catalog().GetVm(vm_name);
  if (existing.ok()) {
    vm = std::move(existing).value();
  } else if (existing.status().IsNotFound()) {
    vm.name = vm_name;
    vm.created_us = start_us;
    vm.origin = files.front().info.path;
  } else {
    return existing.status();
  }
  if (opts.tier) vm.tier = *opts.tier;
  VV_RETURN_IF_ERROR(ValidateTier(vm.tier));

  store::BackupRecord backup;
  backup.vm = vm_name;
  backup.time_us = start_us;
  backup.tier = vm.tier;
  backup.method = "offline";
  backup.host = HostName();
  auto previous = repo.catalog().ListBackups(vm_name);
  if (previous.ok()) {
    if (!previous->empty()) backup.parent_id = previous->back().id;
  } else if (!previous.status().IsNotFound()) {
    return previous.status();
  }

  const size_t threads = opts.threads != 0 ? opts.threads : ThreadPool::HardwareThreads();
  const std::vector<std::string> names = DiskNamesForFiles(opts.files);
  std::vector<store::DiskIndex> indexes;
  for (size_t i = 0; i < files.size(); ++i) {
    store::DiskRecord rec;
    VV_ASSIGN_OR_RETURN(store::DiskIndex index, IngestOneDisk(repo, files[i], names[i], threads,
                                                              opts.progress, opener, &rec));
    backup.disks.push_back(std::move(rec));
    indexes.push_back(std::move(index));
  }
  backup.duration_us = clock.NowMicros() - start_us;
  VV_RETURN_IF_ERROR(repo.catalog().CommitBackup(vm, &backup, indexes));

  uint64_t logical = 0, allocated = 0, read = 0, new_stored = 0;
  for (const store::DiskRecord& d : backup.disks) {
    logical += d.virtual_size;
    allocated += d.allocated_bytes;
    read += d.bytes_read;
    new_stored += d.new_stored_bytes;
  }
  const double secs = std::max<double>(backup.duration_us, 1) / 1e6;
  spdlog::info(
      "backed up {} as {} ({} disk{}): {} logical, {} allocated, {} read, {} newly stored, "
      "in {:.1f} s ({:.0f} MB/s)",
      vm_name, backup.name(), backup.disks.size(), backup.disks.size() == 1 ? "" : "s",
      HumanBytes(logical), HumanBytes(allocated), HumanBytes(read), HumanBytes(new_stored), secs,
      read / secs / 1e6);
  return backup;
}

Result<store::BackupRecord> IngestImageFiles(store::Repository& repo, const FileIngestOptions& opts,
                                             CommandRunner& runner, const Clock& clock) {
  NbdSourceOpener opener;
  return IngestImageFiles(repo, opts, runner, clock, opener);
}

}  // namespace vmvault::ingest
