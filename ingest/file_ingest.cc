#include "ingest/file_ingest.h"

#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/names.h"
#include "base/partition_table.h"
#include "base/progress.h"
#include "base/thread_pool.h"
#include "ingest/backup_builder.h"
#include "ingest/qemu_img.h"

namespace vmvault::ingest {
namespace {

std::string FileStem(const std::string& path) {
  return std::filesystem::path(path).stem().string();
}

// Checks and maps the image `info` describes.
Result<ProbedFile> CheckAndMap(CommandRunner& runner, ImageInfo info) {
  ProbedFile f;
  f.info = std::move(info);
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

}  // namespace

Result<ProbedFile> ProbeFile(CommandRunner& runner, const std::string& path,
                             const std::string& format, bool force_share) {
  VV_ASSIGN_OR_RETURN(ImageInfo info, ProbeImage(runner, path, format, force_share));
  return CheckAndMap(runner, std::move(info));
}

Result<ProbedFile> ProbeChain(CommandRunner& runner, const std::vector<std::string>& chain,
                              const std::string& format) {
  if (chain.empty()) return Status::InvalidArgument("ProbeChain: no image");
  std::vector<ImageInfo> layers;
  std::vector<BackingLayer> below;  // the parent first
  for (const std::string& path : chain) {
    VV_ASSIGN_OR_RETURN(ImageInfo info, ProbeImage(runner, path, format));
    if (!below.empty()) {
      info.backing_chain = below;
      info.backing_file = below.front().path;
      info.backing_format = below.front().format;
    }
    below.insert(below.begin(), {info.path, info.format});
    layers.push_back(std::move(info));
  }
  if (format == "vmdk") VV_RETURN_IF_ERROR(CheckVmdkChain(layers));
  for (size_t i = 0; i + 1 < layers.size(); ++i) VV_RETURN_IF_ERROR(CheckImage(runner, layers[i]));
  return CheckAndMap(runner, std::move(layers.back()));
}

Status AddProbedFile(BackupBuilder& builder, const ProbedFile& file, DiskSource disk,
                     ImageSourceOpener& opener, int readers) {
  VV_ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> source, opener.Open(file.info, readers));
  disk.path = file.info.path;
  disk.format = file.info.format;
  disk.size = file.info.virtual_size;
  disk.extents = file.extents;
  disk.source = source.get();
  return builder.AddDisk(disk);
}

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

Result<std::string> VmNameForFiles(const std::optional<std::string>& vm,
                                   const std::vector<std::string>& files) {
  if (files.empty()) return Status::InvalidArgument("no image file given");
  return ChooseVmName(vm, FileStem(files.front()));
}

Result<store::BackupRecord> IngestImageFiles(store::Repository& repo, const FileIngestOptions& opts,
                                             CommandRunner& runner, const Clock& clock,
                                             ImageSourceOpener& opener) {
  if (opts.files.empty()) return Status::InvalidArgument("no image file given (--file PATH)");
  if (!opts.formats.empty() && opts.formats.size() != opts.files.size()) {
    return Status::InvalidArgument(
        fmt::format("{} formats given for {} files", opts.formats.size(), opts.files.size()));
  }
  if (opts.tier) VV_RETURN_IF_ERROR(ValidateTier(*opts.tier));
  VV_ASSIGN_OR_RETURN(const std::string vm_name, VmNameForFiles(opts.vm, opts.files));

  // Each file's identity before it is probed (a write meanwhile makes the next
  // schedule see it as changed), then probe everything before reading anything.
  std::vector<store::DiskRecord::SourceStamp> stamps;
  for (const std::string& file : opts.files) stamps.push_back(StampOf(file));
  std::vector<ProbedFile> files;
  for (size_t i = 0; i < opts.files.size(); ++i) {
    VV_ASSIGN_OR_RETURN(ProbedFile f, ProbeFile(runner, opts.files[i],
                                                opts.formats.empty() ? "" : opts.formats[i]));
    files.push_back(std::move(f));
  }

  const size_t threads = opts.threads != 0 ? opts.threads : ThreadPool::HardwareThreads();
  VV_ASSIGN_OR_RETURN(auto builder,
                      BackupBuilder::Start(repo, vm_name, opts.tier, files.front().info.path,
                                           clock, {threads, opts.progress}));
  VV_RETURN_IF_ERROR(ValidateTier(builder->record().tier));
  const std::vector<std::string> names = DiskNamesForFiles(opts.files);
  for (size_t i = 0; i < files.size(); ++i) {
    DiskSource disk;
    disk.name = names[i];
    disk.stamp = stamps[i];
    VV_RETURN_IF_ERROR(
        AddProbedFile(*builder, files[i], std::move(disk), opener, static_cast<int>(threads)));
  }
  return builder->Commit();
}

Result<store::BackupRecord> IngestImageFiles(store::Repository& repo, const FileIngestOptions& opts,
                                             CommandRunner& runner, const Clock& clock) {
  SourceOpener opener;
  return IngestImageFiles(repo, opts, runner, clock, opener);
}

}  // namespace vmvault::ingest
