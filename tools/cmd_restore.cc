// vmvault restore: write the disks of a backup to files or a block device.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "base/names.h"
#include "base/progress.h"
#include "base/thread_pool.h"
#include "fs/chunk_cache.h"
#include "fs/disk_views.h"
#include "fs/index_page_cache.h"
#include "fs/view_export.h"
#include "fs/view_reader.h"
#include "fs/vmdk_descriptor.h"
#include "store/repository.h"
#include "tools/cli.h"

namespace vmvault::tools {
namespace {

namespace fsys = std::filesystem;

struct RestoreOptions {
  std::string vm;
  std::string backup = "latest";
  std::string to;
  std::string format = "raw";
  std::string disk;
  bool force = false;
};

// The backup named `which`: "latest", its directory name (2026-11-21T033000Z, with or
// without the period: 2026-11/2026-11-21T033000Z) or its id.
Result<store::BackupRecord> FindBackup(const store::Catalog& catalog, const std::string& vm,
                                       std::string which) {
  VV_ASSIGN_OR_RETURN(std::vector<store::BackupRecord> backups, catalog.ListBackups(vm));
  if (backups.empty()) {
    VV_RETURN_IF_ERROR(catalog.GetVm(vm).status());
    return Status::NotFound(fmt::format("VM '{}' has no backups", Printable(vm)));
  }
  if (which == "latest") return backups.back();
  if (const size_t slash = which.rfind('/'); slash != std::string::npos) {
    which = which.substr(slash + 1);
  }
  for (const store::BackupRecord& b : backups) {
    if (b.name() == which || std::to_string(b.id) == which) return b;
  }
  return Status::NotFound(fmt::format(
      "VM '{}' has no backup '{}' (see 'vmvault list --vm {}')", Printable(vm),
      Printable(which), Printable(vm)));
}

bool IsBlockDevice(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

// A file written under a temporary name and renamed into place when complete, so an
// interrupted restore never leaves a file that looks whole. Removed unless committed.
class PendingFile {
 public:
  static Result<PendingFile> Create(const std::string& path, bool force) {
    std::error_code ec;
    if (fsys::exists(path, ec) && !force) {
      return Status::InvalidArgument(
          fmt::format("{} exists (use --force to replace it)", Printable(path)));
    }
    PendingFile f;
    f.path_ = path;
    f.tmp_ = path + ".vmvault-partial";
    f.fd_ = ::open(f.tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f.fd_ < 0) return Status::FromErrno(errno, "create " + f.tmp_);
    return f;
  }
  PendingFile() = default;
  PendingFile(PendingFile&& o) noexcept { *this = std::move(o); }
  PendingFile& operator=(PendingFile&& o) noexcept {
    std::swap(path_, o.path_);
    std::swap(tmp_, o.tmp_);
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~PendingFile() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(tmp_.c_str());
    }
  }
  int fd() const { return fd_; }

  Status Commit() {
    if (::fchmod(fd_, 0644) != 0) return Status::FromErrno(errno, "chmod " + tmp_);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
      ::unlink(tmp_.c_str());
      return Status::FromErrno(errno, "close " + tmp_);
    }
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp_.c_str());
      return Status::FromErrno(err, "rename " + tmp_);
    }
    return Status::OK();
  }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

struct Reader {
  explicit Reader(store::Repository& repo)
      : pages(&repo.catalog(), fs::kDefaultIndexCacheBytes),
        cache(&repo.chunks(), 64 << 20, repo.config().chunk_size),
        pool(4),
        reader(&cache, &pool) {}
  fs::IndexPageCache pages;
  fs::ChunkCache cache;
  ThreadPool pool;
  fs::ViewReader reader;
};

Status Export(const std::shared_ptr<const fs::View>& view, const fs::ViewReader& reader,
              int fd, bool device, const std::string& label, bool progress) {
  VV_RETURN_IF_ERROR(view->Load());
  Progress bar(label, view->size(), progress);
  fs::ExportOptions opts;
  opts.device = device;
  opts.progress = &bar;
  auto stats = fs::ExportView(view, reader, fd, opts);
  bar.Finish();
  return stats.status();
}

Status RestoreToDevice(const fs::DiskViews& views, const fs::ViewReader& reader,
                       const RestoreOptions& o, bool progress) {
  if (o.format != "raw") {
    return Status::InvalidArgument("a block device can only receive the raw disk (--format raw)");
  }
  if (!o.force) {
    return Status::InvalidArgument(fmt::format(
        "restoring to {} overwrites the whole device: add --force if that is what you want",
        Printable(o.to)));
  }
  // O_EXCL on a block device fails while it is mounted or otherwise in use.
  const int fd = ::open(o.to.c_str(), O_WRONLY | O_EXCL | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == EBUSY) {
      return Status::Busy(fmt::format("{} is in use (mounted?)", Printable(o.to)));
    }
    return Status::FromErrno(err, "open " + o.to);
  }
  uint64_t device_size = 0;
  Status s;
  if (::ioctl(fd, BLKGETSIZE64, &device_size) != 0) {
    s = Status::FromErrno(errno, "size of " + o.to);
  } else if (device_size < views.raw->size()) {
    s = Status::InvalidArgument(fmt::format("{} holds {} bytes, the disk needs {}",
                                            Printable(o.to), device_size, views.raw->size()));
  } else {
    s = Export(views.raw, reader, fd, /*device=*/true, o.to, progress);
  }
  ::close(fd);
  return s;
}

// Writes one disk as `path` in the chosen format.
Status RestoreToFile(const fs::DiskViews& views, const fs::ViewReader& reader,
                     const RestoreOptions& o, const std::string& path, uint32_t cid,
                     bool progress) {
  const std::string label = fsys::path(path).filename().string();
  if (o.format == "vmdk") {
    // A descriptor and its flat extent, as VMware names them.
    const fsys::path p(path);
    const std::string flat_name = p.stem().string() + "-flat.vmdk";
    const std::string flat = (p.parent_path() / flat_name).string();
    auto descriptor = fs::VmdkDescriptor(flat_name, views.raw->size(), cid);
    if (!descriptor) {
      return Status::InvalidArgument(
          fmt::format("{} cannot be named in a VMDK descriptor", Printable(flat_name)));
    }
    VV_ASSIGN_OR_RETURN(PendingFile data, PendingFile::Create(flat, o.force));
    VV_ASSIGN_OR_RETURN(PendingFile desc, PendingFile::Create(path, o.force));
    VV_RETURN_IF_ERROR(Export(views.raw, reader, data.fd(), false, flat_name, progress));
    const std::string& text = *descriptor;
    if (::write(desc.fd(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::fsync(desc.fd()) != 0) {
      return Status::FromErrno(errno, "write " + path);
    }
    VV_RETURN_IF_ERROR(data.Commit());
    return desc.Commit();
  }
  const std::shared_ptr<const fs::View>& view = o.format == "qcow2" ? views.qcow2
                                                : o.format == "vhdx" ? views.vhdx
                                                                     : views.raw;
  VV_ASSIGN_OR_RETURN(PendingFile out, PendingFile::Create(path, o.force));
  VV_RETURN_IF_ERROR(Export(view, reader, out.fd(), false, label, progress));
  return out.Commit();
}

Status RunRestore(const GlobalOptions& global, const RestoreOptions& o) {
  if (o.format != "raw" && o.format != "qcow2" && o.format != "vhdx" && o.format != "vmdk") {
    return Status::InvalidArgument(
        fmt::format("format '{}' is not one of raw, qcow2, vhdx, vmdk", Printable(o.format)));
  }
  VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(global, store::RepoMode::kReadOnly));
  VV_ASSIGN_OR_RETURN(store::BackupRecord b, FindBackup(repo->catalog(), o.vm, o.backup));
  std::vector<uint32_t> disks;
  for (uint32_t i = 0; i < b.disks.size(); ++i) {
    if (o.disk.empty() || b.disks[i].name == o.disk) disks.push_back(i);
  }
  if (disks.empty()) {
    return Status::NotFound(
        o.disk.empty() ? fmt::format("backup {} of {} has no disks", b.name(), Printable(o.vm))
                       : fmt::format("backup {} of {} has no disk '{}'", b.name(),
                                     Printable(o.vm), Printable(o.disk)));
  }
  const bool progress = !global.quiet && Progress::StderrIsTerminal();
  const int64_t start_us = SystemClock::Default().NowMicros();
  Reader r(*repo);
  const uint64_t repo_seed = fs::RepoSeed(repo->config().id);
  const bool device = IsBlockDevice(o.to);
  if (device && disks.size() != 1) {
    return Status::InvalidArgument(fmt::format(
        "backup {} has {} disks: choose the one for {} with --disk", b.name(), disks.size(),
        Printable(o.to)));
  }
  std::error_code ec;
  // Several disks, or an existing directory: one file per disk inside it.
  const bool into_dir = !device && (disks.size() > 1 || fsys::is_directory(o.to, ec));
  if (into_dir && !fsys::exists(o.to, ec) && !fsys::create_directories(o.to, ec)) {
    return Status::FromErrno(ec.value(), "create " + o.to);
  }
  uint64_t bytes = 0;
  for (uint32_t i : disks) {
    const uint64_t identity = fs::DiskIdentity(repo_seed, b.id, i);
    const fs::DiskViews views = fs::MakeDiskViews(&repo->catalog(), &r.pages, b, i, identity);
    const std::string name = SanitizeName(b.disks[i].name) + "." + o.format;
    const std::string target = into_dir ? (fsys::path(o.to) / name).string() : o.to;
    Status s = device ? RestoreToDevice(views, r.reader, o, progress)
                      : RestoreToFile(views, r.reader, o, target, static_cast<uint32_t>(identity),
                                      progress);
    VV_RETURN_IF_ERROR(s.WithContext(fmt::format("restoring disk {} of {} backup {}",
                                                  Printable(b.disks[i].name), Printable(o.vm),
                                                  b.name())));
    bytes += b.disks[i].virtual_size;
    spdlog::info("restored {} to {}", b.disks[i].name, device ? o.to : target);
  }
  const double secs = std::max<double>(SystemClock::Default().NowMicros() - start_us, 1) / 1e6;
  spdlog::info("restored {} backup {} ({} disk{}, {}) in {:.1f} s", o.vm, b.name(), disks.size(),
               disks.size() == 1 ? "" : "s", HumanBytes(bytes), secs);
  return Status::OK();
}

}  // namespace

Command RestoreCommand() {
  return {"restore", "Write the disks of a backup to files (raw, qcow2, vhdx, vmdk) or a device",
          [](CLI::App& app, GlobalOptions& global) {
            auto o = std::make_shared<RestoreOptions>();
            app.add_option("vm", o->vm, "The VM")->required();
            app.add_option("backup", o->backup,
                           "The backup: latest (default), its name (2026-11-21T033000Z) or id");
            app.add_option("--to", o->to,
                           "A file, a directory (one file per disk), or a block device")
                ->required();
            app.add_option("--format", o->format, "raw (default), qcow2, vhdx or vmdk");
            app.add_option("--disk", o->disk, "Only this disk (by its name in the backup)");
            app.add_flag("--force", o->force,
                         "Replace existing files; allow writing over a block device");
            return [&global, o]() -> Status { return RunRestore(global, *o); };
          }};
}

}  // namespace vmvault::tools
