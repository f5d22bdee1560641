#include "ingest/vbox_ingest.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/names.h"
#include "base/thread_pool.h"
#include "ingest/backup_builder.h"
#include "ingest/file_ingest.h"
#include "ingest/image_source.h"
#include "ingest/vbox_manage.h"
#include "ingest/vdi_image.h"
#include "ingest/virtualbox.h"

namespace vmvault::ingest {
namespace {

// Readers of a VDI differencing chain: each opens the chain itself (a few preads).
class VdiChainSource final : public ImageSource {
 public:
  VdiChainSource(std::vector<std::string> paths, std::vector<std::string> uuids)
      : paths_(std::move(paths)), uuids_(std::move(uuids)) {}
  Result<std::unique_ptr<Image>> OpenReader() override {
    VV_ASSIGN_OR_RETURN(auto image, VdiChainImage::Open(paths_, uuids_));
    return std::unique_ptr<Image>(std::move(image));
  }

 private:
  const std::vector<std::string> paths_, uuids_;
};

// qemu's name for a VirtualBox medium format.
std::string QemuFormat(std::string format) {
  std::transform(format.begin(), format.end(), format.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (format == "vhd") return "vpc";
  return format;
}

std::vector<std::string> LayerPaths(const VboxDisk& disk) {
  std::vector<std::string> paths;
  for (const VboxDiskLayer& l : disk.chain) paths.push_back(l.path);
  return paths;
}

// Reads a chain of VDI images into the backup, in-process.
Status AddVdiChain(const VboxDisk& disk, DiskSource src, BackupBuilder& b) {
  std::vector<std::string> paths = LayerPaths(disk), uuids;
  for (const VboxDiskLayer& l : disk.chain) uuids.push_back(l.uuid);
  VV_ASSIGN_OR_RETURN(auto image, VdiChainImage::Open(paths, uuids));
  src.path = paths.back();
  src.format = "vdi";
  src.size = image->size();
  VV_ASSIGN_OR_RETURN(src.extents, image->Extents());
  VdiChainSource source(std::move(paths), std::move(uuids));
  src.source = &source;
  return b.AddDisk(src);
}

// Reads one attached disk into the backup.
Status AddVboxDisk(CommandRunner& runner, const VboxDisk& disk, int readers, BackupBuilder& b) {
  VV_ASSIGN_OR_RETURN(const std::string format, VboxChainFormat(disk));
  DiskSource src;
  src.name = disk.name;
  if (disk.chain.size() > 1 && format == "vdi") return AddVdiChain(disk, std::move(src), b);
  VV_ASSIGN_OR_RETURN(ProbedFile f, disk.chain.size() == 1
                                        ? ProbeFile(runner, disk.chain.back().path, format)
                                        : ProbeChain(runner, LayerPaths(disk), format));
  SourceOpener opener;
  return AddProbedFile(b, f, std::move(src), opener, readers);
}

Result<store::BackupRecord> BackupMachine(store::Repository& repo, const VboxMachine& m,
                                          const VboxIngestOptions& options, bool running,
                                          CommandRunner& runner, const Clock& clock,
                                          size_t threads,
                                          std::optional<store::BackupRecord>* kept) {
  if (m.disks.empty()) {
    return Status::InvalidArgument(
        fmt::format("VirtualBox machine '{}' has no hard disk attached", Printable(m.name)));
  }
  VV_ASSIGN_OR_RETURN(auto b, BackupBuilder::Start(repo, SanitizeName(m.name), options.tier,
                                                   m.vbox_path, clock, {threads, options.progress}));
  VV_RETURN_IF_ERROR(ValidateTier(b->record().tier));
  b->record().config_kind = "vbox";
  b->record().config = m.config_text;
  b->record().method = running ? "paused" : "offline";

  auto copy = [&]() -> Status {
    const auto paused_at = std::chrono::steady_clock::now();
    if (running) VV_RETURN_IF_ERROR(PauseVbox(runner, m.uuid));
    struct Resumer {
      CommandRunner& runner;
      const std::string& uuid;
      bool active;
      ~Resumer() {
        if (!active) return;
        Status s = ResumeVbox(runner, uuid);
        if (!s.ok()) spdlog::error("{}", s.ToString());
      }
    } resumer{runner, m.uuid, running};

    for (const VboxDisk& disk : m.disks) {
      VV_RETURN_IF_ERROR(AddVboxDisk(runner, disk, static_cast<int>(threads), *b));
    }
    if (running) {
      resumer.active = false;
      VV_RETURN_IF_ERROR(ResumeVbox(runner, m.uuid));
      b->record().pause_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::steady_clock::now() - paused_at)
                                 .count();
      spdlog::info("{}: paused for {:.3f} s", m.name, b->record().pause_us / 1e6);
    }
    return Status::OK();
  };
  // A machine that is not running is copied as it is, without the snapshot hooks.
  Status post_snapshot;
  VV_RETURN_IF_ERROR(running ? CaptureBetweenHooks(options.hooks, b->record().vm,
                                                   b->record().tier, "pause", copy,
                                                   &post_snapshot)
                             : copy());
  return b->CommitThenReport(post_snapshot, kept);
}

}  // namespace

Result<std::string> VboxChainFormat(const VboxDisk& disk) {
  if (disk.chain.empty()) {
    return Status::InvalidArgument(fmt::format("disk {} has no image", disk.name));
  }
  const std::string format = QemuFormat(disk.chain.front().format);
  if (disk.chain.size() == 1) return format;
  const auto other =
      std::find_if(disk.chain.begin(), disk.chain.end(),
                   [&](const VboxDiskLayer& l) { return QemuFormat(l.format) != format; });
  if (other != disk.chain.end()) {
    return Status::Unsupported(fmt::format(
        "disk {} is a snapshot chain of {} images in more than one format ('{}' is {}, '{}' "
        "is {}); vmvault reads a chain only when its images are all VDI or all VMDK",
        disk.name, disk.chain.size(), Printable(disk.chain.front().path),
        Printable(disk.chain.front().format), Printable(other->path), Printable(other->format)));
  }
  if (format != "vdi" && format != "vmdk") {
    return Status::Unsupported(fmt::format(
        "disk {} is a snapshot chain of {} {} images ('{}' on top); vmvault reads snapshot "
        "chains of VDI or VMDK images only",
        disk.name, disk.chain.size(), Printable(disk.chain.front().format),
        Printable(disk.chain.back().path)));
  }
  return format;
}

Result<std::vector<store::BackupRecord>> IngestVirtualBox(store::Repository& repo,
                                                          const VboxIngestOptions& options,
                                                          CommandRunner& runner,
                                                          const Clock& clock) {
  if (options.tier) VV_RETURN_IF_ERROR(ValidateTier(*options.tier));
  VV_ASSIGN_OR_RETURN(std::vector<VboxMachine> machines, FindVirtualBoxMachines(options.path));
  if (!options.machines.empty()) {
    std::erase_if(machines, [&](const VboxMachine& m) {
      return std::find(options.machines.begin(), options.machines.end(), m.name) ==
             options.machines.end();
    });
    if (machines.empty()) {
      return Status::NotFound(fmt::format("no VirtualBox machine named {} under '{}'",
                                          Printable(options.machines.front()),
                                          Printable(options.path)));
    }
  }
  if (machines.empty()) {
    return Status::NotFound(
        fmt::format("no VirtualBox machine (.vbox file) under '{}'", Printable(options.path)));
  }
  // Which are running, per VBoxManage when it is installed; running ones go first.
  std::vector<std::pair<bool, size_t>> order;
  bool have_vboxmanage = true;
  for (size_t i = 0; i < machines.size(); ++i) {
    bool running = false;
    if (have_vboxmanage) {
      auto state = GetVboxState(runner, machines[i].uuid);
      if (state.ok()) {
        running = state->online && !state->paused();
      } else if (state.status().IsNotFound()) {
        have_vboxmanage = false;
        spdlog::info("VBoxManage is not installed: reading the images as they are");
      } else {
        spdlog::warn("{}", state.status().ToString());
      }
    }
    order.emplace_back(!running, i);
  }
  std::stable_sort(order.begin(), order.end());
  const size_t threads = options.threads != 0 ? options.threads : ThreadPool::HardwareThreads();
  std::vector<store::BackupRecord> done;
  Status first_error;
  size_t failed = 0;
  for (const auto& [not_running, i] : order) {
    std::optional<store::BackupRecord> made;
    const Status r = BackupBetweenHooks(
        repo, options.hooks.each_backup ? options.hooks : IngestHooks(),
        SanitizeName(machines[i].name), options.tier,
        [&](auto* kept) {
          return BackupMachine(repo, machines[i], options, !not_running, runner, clock, threads,
                               kept);
        },
        &made);
    if (r.ok()) {
      done.push_back(std::move(*made));
      continue;
    }
    if (made && options.kept != nullptr) options.kept->push_back(std::move(*made));
    spdlog::error("VirtualBox machine '{}': {}", Printable(machines[i].name), r.ToString());
    if (first_error.ok()) first_error = r;
    ++failed;
  }
  if (failed == 0) return done;
  if (order.size() == 1) return first_error;
  return Status(first_error.code(), fmt::format("{} of {} machines failed; the first: {}", failed,
                                                order.size(), first_error.message()));
}

}  // namespace vmvault::ingest
