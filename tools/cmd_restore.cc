// vmvault restore: write the disks of a backup to files or a block device, or define a
// new libvirt domain on restored copies of them.
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <stdlib.h>  // mkostemp
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <set>

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
#include "ingest/config.h"
#include "ingest/domain_xml.h"
#include "ingest/hooks.h"
#include "ingest/libvirt.h"
#include "store/repository.h"
#include "tools/cli.h"
#include "tools/restore_menu.h"

namespace vmvault::tools {
namespace {

namespace fsys = std::filesystem;

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

// The files a restore of one disk to `path` writes: `path`, and for a VMDK also its flat
// extent beside it, named as VMware names it.
std::vector<std::string> FilesWritten(const std::string& path, const std::string& format) {
  if (format != "vmdk") return {path};
  const fsys::path p(path);
  return {path, (p.parent_path() / (p.stem().string() + "-flat.vmdk")).string()};
}

bool IsBlockDevice(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

// Whether a new file at `path` would land on the filesystem of /dev itself (not on one
// mounted below it, such as /dev/shm).
bool OnDevFilesystem(const std::string& path) {
  struct stat dev, parent;
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return ::stat("/dev", &dev) == 0 && ::stat(dir.empty() ? "." : dir.c_str(), &parent) == 0 &&
         dev.st_dev == parent.st_dev;
}

// A file written under a unique temporary name (mode 0600: disk images hold secrets)
// and renamed into place when complete, so an interrupted restore never leaves a file
// that looks whole. Removed unless committed. Without `force` the rename refuses to
// replace anything, even a file that appeared meanwhile; with it, only regular files
// are replaced.
class PendingFile {
 public:
  static Result<PendingFile> Create(const std::string& path, bool force) {
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if (!force) {
        return Status::InvalidArgument(
            fmt::format("{} exists (use --force to replace it)", Printable(path)));
      }
      if (!S_ISREG(st.st_mode)) {
        return Status::InvalidArgument(
            fmt::format("{} exists and is not a regular file: not replacing it", Printable(path)));
      }
    } else if (OnDevFilesystem(path)) {
      // A mistyped device name would otherwise become a file on /dev's tmpfs.
      return Status::InvalidArgument(fmt::format("there is no device {}", Printable(path)));
    }
    PendingFile f;
    f.path_ = path;
    f.force_ = force;
    std::string tmpl = path + ".vmvault-partial-XXXXXX";
    f.fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (f.fd_ < 0) return Status::FromErrno(errno, "create a file beside " + path);
    f.tmp_ = tmpl;
    return f;
  }
  PendingFile() = default;
  PendingFile(PendingFile&& o) noexcept { *this = std::move(o); }
  PendingFile& operator=(PendingFile&& o) noexcept {
    std::swap(path_, o.path_);
    std::swap(tmp_, o.tmp_);
    std::swap(fd_, o.fd_);
    std::swap(force_, o.force_);
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
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
      ::unlink(tmp_.c_str());
      return Status::FromErrno(errno, "close " + tmp_);
    }
    const int r = force_ ? ::rename(tmp_.c_str(), path_.c_str())
                         : ::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, path_.c_str(),
                                       RENAME_NOREPLACE);
    if (r != 0) {
      const int err = errno;
      ::unlink(tmp_.c_str());
      if (err == EEXIST) {
        return Status::InvalidArgument(
            fmt::format("{} appeared during the restore; not replacing it", Printable(path_)));
      }
      return Status::FromErrno(err, "rename " + tmp_);
    }
    return Status::OK();
  }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool force_ = false;
};

// NotFound unless every chunk disk `disk` of `b` names is stored: checked before a
// device is touched, so a damaged backup does not half-overwrite it.
Status CheckChunksPresent(const store::Repository& repo, const store::BackupRecord& b,
                          uint32_t disk) {
  Status missing;
  VV_RETURN_IF_ERROR(repo.catalog().ForEachIndexPage(
      b.id, disk, b.disks[disk], [&](uint64_t, const store::ChunkId* ids, size_t n) {
        for (size_t i = 0; i < n && missing.ok(); ++i) {
          if (ids[i].is_zero()) continue;
          auto meta = repo.chunks().Lookup(ids[i]);
          if (!meta.ok()) missing = meta.status();
          else if (!meta->has_value()) {
            missing = Status::Corruption(fmt::format(
                "chunk {} is missing: the backup cannot be restored (see vmvault verify)",
                ids[i].hex()));
          }
        }
        return missing.ok();
      }));
  return missing;
}

struct Reader {
  explicit Reader(store::Repository& repo)
      : pages(&repo.catalog(), fs::kDefaultIndexCacheBytes),
        cache(&repo.chunks(), 64 << 20, repo.config().chunk_size),
        pool(fs::DefaultPrefetchThreads()),
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

Status RestoreToDevice(const store::Repository& repo, const store::BackupRecord& b,
                       uint32_t disk, const fs::DiskViews& views, const fs::ViewReader& reader,
                       const RestoreOptions& o, bool progress) {
  if (o.format != "raw") {
    return Status::InvalidArgument("a block device can only receive the raw disk (--format raw)");
  }
  if (!o.force) {
    return Status::InvalidArgument(fmt::format(
        "restoring to {} overwrites the whole device: add --force if that is what you want",
        Printable(o.to)));
  }
  VV_RETURN_IF_ERROR(CheckChunksPresent(repo, b, disk));
  // O_EXCL on a block device fails while it is mounted or held by LVM, md or swap (not
  // while a program merely has it open).
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
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISBLK(st.st_mode)) {
    s = Status::InvalidArgument(fmt::format("{} is no longer a block device", Printable(o.to)));
  } else if (::ioctl(fd, BLKGETSIZE64, &device_size) != 0) {
    s = Status::FromErrno(errno, "size of " + o.to);
  } else if (device_size < views.raw->size()) {
    s = Status::InvalidArgument(fmt::format("{} holds {} bytes, the disk needs {}",
                                            Printable(o.to), device_size, views.raw->size()));
  } else {
    s = Export(views.raw, reader, fd, /*device=*/true, o.to, progress);
    if (!s.ok()) s = s.WithContext(fmt::format("{} is now partly overwritten", Printable(o.to)));
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
    // A descriptor and its flat extent.
    const std::string flat = FilesWritten(path, o.format)[1];
    const std::string flat_name = fsys::path(flat).filename().string();
    auto descriptor = fs::VmdkDescriptor(flat_name, views.raw->size(), cid);
    if (!descriptor) {
      return Status::InvalidArgument(
          fmt::format("{} cannot be named in a VMDK descriptor", Printable(flat_name)));
    }
    VV_ASSIGN_OR_RETURN(PendingFile data, PendingFile::Create(flat, o.force));
    VV_ASSIGN_OR_RETURN(PendingFile desc, PendingFile::Create(path, o.force));
    VV_RETURN_IF_ERROR(Export(views.raw, reader, data.fd(), false, flat_name, progress));
    const std::string& text = *descriptor;
    const ssize_t w = ::write(desc.fd(), text.data(), text.size());
    if (w != static_cast<ssize_t>(text.size())) {
      return w < 0 ? Status::FromErrno(errno, "write " + path)
                   : Status::IOError("short write to " + path);
    }
    if (::fsync(desc.fd()) != 0) return Status::FromErrno(errno, "flush " + path);
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

// The XML of the domain --define makes: the backed-up domain's, renamed, with a new
// UUID and MAC addresses, on the restored images (by target dev). Disks the backup does
// not hold (network disks it skipped) are left out.
Result<std::string> NewDomainXml(const store::BackupRecord& b, const RestoreOptions& o,
                                 const std::map<std::string, std::string>& images) {
  if (b.config_kind != "libvirt-xml") {
    return Status::InvalidArgument(fmt::format(
        "backup {} of {} holds no libvirt domain XML (it was not made from a libvirt "
        "domain): restore its disks with --to instead of --define",
        b.name(), Printable(b.vm)));
  }
  ingest::RestoreRewrite rw;
  rw.name = o.define;
  VV_ASSIGN_OR_RETURN(rw.uuid, ingest::NewUuid());
  // The driver type of each format as libvirt names it; a VMDK is read via its descriptor.
  for (const auto& [target, path] : images) rw.disks[target] = {path, o.format};
  rw.drop_unmapped_disks = true;
  return ingest::RewriteDomainForRestore(b.config, rw);
}

// The restore; with `hooks` (may be null), nothing is written before the pre-restore
// hooks succeed, and the post-restore hooks run whatever happened after.
Status RunRestore(const GlobalOptions& global, const RestoreOptions& o,
                  const ingest::HooksConfig* hooks) {
  if (o.format != "raw" && o.format != "qcow2" && o.format != "vhdx" && o.format != "vmdk") {
    return Status::InvalidArgument(
        fmt::format("format '{}' is not one of raw, qcow2, vhdx, vmdk", Printable(o.format)));
  }
  if (!o.define.empty() && !o.disk.empty()) {
    return Status::InvalidArgument("--define restores every disk of the backup: leave out --disk");
  }
  if (o.define.empty() && o.to.empty()) {
    return Status::InvalidArgument("say where to restore to: --to PATH, or --define NAME");
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
  const bool device = o.define.empty() && IsBlockDevice(o.to);
  if (device && disks.size() != 1) {
    return Status::InvalidArgument(fmt::format(
        "backup {} has {} disks: choose the one for {} with --disk", b.name(), disks.size(),
        Printable(o.to)));
  }
  std::error_code ec;
  // Several disks, or an existing directory, or a new domain: one file per disk inside it.
  const bool into_dir =
      !device && (!o.define.empty() || disks.size() > 1 || fsys::is_directory(o.to, ec));
  // Every target first, named as the mount names the disks (unique, `~2` suffixes), so
  // no disk's file can replace another's.
  std::vector<std::string> targets;
  std::set<std::string> names, paths;
  for (uint32_t i : disks) {
    const std::string& raw_name = b.disks[i].name;
    const std::string base =
        ValidateName(raw_name, "disk").ok() ? raw_name : SanitizeName(raw_name);
    std::string name = base;
    for (int n = 2; !names.insert(name).second; ++n) name = base + "~" + std::to_string(n);
    // A new domain's images are named after it, so they cannot meet the old domain's.
    if (!o.define.empty()) name = o.define + "-" + name;
    targets.push_back(into_dir ? (fsys::path(o.to) / (name + "." + o.format)).string() : o.to);
    for (const std::string& w : FilesWritten(targets.back(), o.format)) {
      if (!paths.insert(w).second) {
        return Status::InvalidArgument(fmt::format(
            "two disks of backup {} would both be written to {}: restore them one at a time "
            "with --disk",
            b.name(), Printable(w)));
      }
    }
  }
  // A new domain: its XML is made, and its name checked, before anything is written.
  std::string domain_xml;
  std::unique_ptr<ingest::LibvirtConnection> conn;
  if (!o.define.empty()) {
    std::map<std::string, std::string> images;
    for (size_t k = 0; k < disks.size(); ++k) images[b.disks[disks[k]].name] = targets[k];
    VV_ASSIGN_OR_RETURN(domain_xml, NewDomainXml(b, o, images));
    VV_ASSIGN_OR_RETURN(conn, ingest::LibvirtConnection::Open(o.connect));
    auto existing = conn->LookupDomain(o.define);
    if (existing.ok()) {
      return Status::AlreadyExists(
          fmt::format("there is a domain '{}' at {} already", Printable(o.define), conn->uri()));
    }
    if (!existing.status().IsNotFound()) return existing.status();
  }
  auto write = [&]() -> Status {
    if (into_dir && !fsys::exists(o.to, ec) && !fsys::create_directories(o.to, ec)) {
      return Status::FromErrno(ec.value(), "create " + o.to);
    }
    // The files this restore made, removed again if the domain cannot be defined.
    std::vector<std::string> written;
    auto remove_written = [&written] {
      for (const std::string& w : written) ::unlink(w.c_str());
    };
    uint64_t bytes = 0;
    for (size_t k = 0; k < disks.size(); ++k) {
      const uint32_t i = disks[k];
      const uint64_t identity = fs::DiskIdentity(repo_seed, b.id, i);
      const fs::DiskViews views = fs::MakeDiskViews(&repo->catalog(), &r.pages, b, i, identity);
      const std::string& target = targets[k];
      Status s = device ? RestoreToDevice(*repo, b, i, views, r.reader, o, progress)
                        : RestoreToFile(views, r.reader, o, target, static_cast<uint32_t>(identity),
                                        progress);
      if (!s.ok()) remove_written();
      VV_RETURN_IF_ERROR(s.WithContext(fmt::format("restoring disk {} of {} backup {}",
                                                    Printable(b.disks[i].name), Printable(o.vm),
                                                    b.name())));
      if (!o.define.empty()) {
        for (const std::string& w : FilesWritten(target, o.format)) written.push_back(w);
      }
      bytes += b.disks[i].virtual_size;
      spdlog::info("restored {} to {}", b.disks[i].name, device ? o.to : target);
    }
    if (conn) {
      auto defined = conn->DefineDomain(domain_xml);
      if (!defined.ok()) {
        remove_written();
        return defined.status().WithContext("the restored images were removed again");
      }
      spdlog::info("defined domain {} ({}) at {} on the restored disks; start it with: virsh -c "
                   "{} start {}",
                   (*defined)->name(), (*defined)->uuid(), conn->uri(), conn->uri(),
                   (*defined)->name());
    }
    const double secs = std::max<double>(SystemClock::Default().NowMicros() - start_us, 1) / 1e6;
    spdlog::info("restored {} backup {} ({} disk{}, {}) in {:.1f} s", o.vm, b.name(), disks.size(),
                 disks.size() == 1 ? "" : "s", HumanBytes(bytes), secs);
    return Status::OK();
  };
  if (hooks == nullptr) return write();
  ingest::HookValues values = ingest::VmHookValues(global.repo, o.vm, b.tier);
  values["Backup"] = b.name();
  values["Target"] = o.to;
  return ingest::RunBetweenHooks(*hooks, ingest::HookEvent::kPreRestore,
                                 ingest::HookEvent::kPostRestore, std::move(values),
                                 "nothing was restored",
                                 [&write](ingest::HookValues*) { return write(); });
}

// --interactive: the menu fills in the options, then the restore runs as if they had
// been given on the command line.
Status RunInteractive(const GlobalOptions& global, const RestoreOptions& given,
                      const ingest::HooksConfig* hooks) {
  const RestoreOptions plain;
  if (!given.vm.empty() || given.backup != plain.backup || !given.to.empty() ||
      given.format != plain.format || !given.disk.empty() || given.force ||
      !given.define.empty()) {
    return Status::InvalidArgument(
        "--interactive asks for the VM, the backup and where to restore it: leave out the "
        "VM, the backup, --to, --format, --disk, --define and --force");
  }
  if (::isatty(STDIN_FILENO) == 0) {
    return Status::InvalidArgument(
        "--interactive asks its questions on a terminal, and standard input is not one; "
        "name what to restore instead: vmvault restore VM [BACKUP] --to PATH");
  }
  std::optional<RestoreOptions> chosen;
  {
    VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(global, store::RepoMode::kReadOnly));
    VV_ASSIGN_OR_RETURN(chosen, AskRestore(repo->catalog(), given, std::cin, std::cout));
  }
  if (!chosen) {
    fmt::print("Nothing restored.\n");
    return Status::OK();
  }
  std::fflush(stdout);
  return RunRestore(global, *chosen, hooks);
}

}  // namespace

Command RestoreCommand() {
  return {"restore",
          "Write the disks of a backup to files (raw, qcow2, vhdx, vmdk) or a device, or "
          "define them as a new libvirt domain",
          [](CLI::App& app, GlobalOptions& global) {
            auto o = std::make_shared<RestoreOptions>();
            auto interactive = std::make_shared<bool>(false);
            app.add_option("vm", o->vm, "The VM (required unless --interactive)");
            app.add_option("backup", o->backup,
                           "The backup: latest (default), its name (2026-11-21T033000Z) or id");
            app.add_option("--to", o->to,
                           "A file, a directory (one file per disk), or a block device; with "
                           "--define, the directory for the images (default " +
                               std::string(kDefaultImageDir) + ")");
            app.add_option("--define", o->define,
                           "Define a new libvirt domain of this name on restored copies of "
                           "the disks (new UUID and MAC addresses)");
            app.add_option("--connect", o->connect,
                           "With --define: the libvirt URI (default: libvirt's default)");
            app.add_option("--format", o->format, "raw (default), qcow2, vhdx or vmdk");
            app.add_option("--disk", o->disk, "Only this disk (by its name in the backup)");
            app.add_flag("--force", o->force,
                         "Replace existing files; allow writing over a block device");
            app.add_flag("-i,--interactive", *interactive,
                         "Choose the VM, the backup and what to do with it from menus on "
                         "the terminal");
            AddConfigOption(app, &o->config, "Run the restore hooks of, and log as in,");
            CLI::Option* repo_opt = app.get_option_no_throw("--repo");
            return [&global, o, interactive, repo_opt]() -> Status {
              VV_ASSIGN_OR_RETURN(const NamedConfig named,
                                  LoadNamedConfig(global, repo_opt, o->config));
              const std::optional<ingest::Config>& config = named.config;
              const GlobalOptions& g = named.global;
              const ingest::HooksConfig* hooks = config ? &config->hooks : nullptr;
              if (*interactive) return RunInteractive(g, *o, hooks);
              if (o->vm.empty()) {
                return Status::InvalidArgument(
                    "say which VM to restore (see vmvault list), or use --interactive");
              }
              if (!o->define.empty() && o->to.empty()) o->to = kDefaultImageDir;
              return RunRestore(g, *o, hooks);
            };
          }};
}

}  // namespace vmvault::tools
