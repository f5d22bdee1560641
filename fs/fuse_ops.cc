// The FUSE adapter: the only file that includes <fuse_lowlevel.h>.
#define FUSE_USE_VERSION 312
#include "fs/fuse_ops.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace vmvault::fs {

struct FuseMount::Impl {
  fuse_session* se = nullptr;
  std::string mountpoint;
  bool signals = false;
  bool mounted = false;
  std::atomic<Filesystem*> fs{nullptr};
  // Whether the kernel zero-fills what a reply to a page-cache read leaves out (OpInit).
  std::atomic<bool> holes_left_out{false};
};

namespace {

constexpr unsigned kMaxIo = 1 << 20;

Filesystem& Fs(fuse_req_t req) {
  return *static_cast<FuseMount::Impl*>(fuse_req_userdata(req))->fs.load();
}

void ReplyError(fuse_req_t req, const Status& s) {
  // Corruption was logged with the chunk id where it was found (ChunkCache).
  if (!s.IsNotFound() && !s.IsCorruption() && s.code() != StatusCode::kReadOnly) {
    spdlog::warn("{}", s.ToString());
  }
  fuse_reply_err(req, s.ok() ? EIO : s.ToErrno());
}

// Runs a handler; no exception may unwind through libfuse's C frames.
template <typename F>
void Guard(fuse_req_t req, const char* op, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    spdlog::error("FUSE {}: {}", op, e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    spdlog::error("FUSE {}: unknown exception", op);
    fuse_reply_err(req, EIO);
  }
}

void ReplyEntry(fuse_req_t req, const EntryInfo& info) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = info.attr.st_ino;
  e.attr = info.attr;
  e.attr_timeout = info.attr_timeout;
  e.entry_timeout = info.entry_timeout;
  fuse_reply_entry(req, &e);
}

// Undoes the octal escapes ("\040" for a space) of a /proc/self/mountinfo path.
std::string UnescapeMountinfo(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct(s.substr(i + 1, 3));
      out.push_back(static_cast<char>(std::strtol(oct.c_str(), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Raises the kernel's read-ahead for this mount (its backing device info in sysfs,
// 128 KiB by default) to kMaxIo, so sequential readers send fewer, larger reads.
// Best effort: it needs root, and the kernel keeps the smaller of this and the
// max_readahead replied to INIT.
void RaiseKernelReadahead(const std::string& mountpoint) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream in(line);
    std::string id, parent, dev, root, dir;
    in >> id >> parent >> dev >> root >> dir;
    if (UnescapeMountinfo(dir) != mountpoint) continue;
    std::ofstream ra("/sys/class/bdi/" + dev + "/read_ahead_kb");
    ra << (kMaxIo >> 10) << "\n";
    return;
  }
}

void OpInit(void* userdata, fuse_conn_info* conn) {
  try {  // no exception may unwind into libfuse
    RaiseKernelReadahead(static_cast<FuseMount::Impl*>(userdata)->mountpoint);
  } catch (const std::exception& e) {
    spdlog::warn("could not raise the kernel's read-ahead: {}", e.what());
  } catch (...) {
  }
  conn->max_write = kMaxIo;  // libfuse derives max_pages, and so the largest read, from it
  conn->max_read = kMaxIo;
  conn->max_readahead = kMaxIo;  // the kernel keeps the smaller of this and its own
  conn->want |= FUSE_CAP_ASYNC_READ;
  // The mount never writes; it asks for the writeback cache for what the kernel then
  // makes of a short reply to a read for the page cache: a hole, whose pages it fills
  // with zeros, where it would otherwise take the reply's end for the end of the file
  // and shrink it. So the holes at the end of a read (most of a sparse disk's raw
  // view) are not sent: no copy of zeros through /dev/fuse, a page the kernel clears
  // instead. In exchange the kernel trusts the size and mtime it has for a file over
  // later replies: a file's bytes must never change under its inode number (the Tree
  // gives changed bytes another number; see Node::identity).
  if ((conn->capable & FUSE_CAP_WRITEBACK_CACHE) != 0) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    static_cast<FuseMount::Impl*>(userdata)->holes_left_out = true;
  }
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, "lookup", [&] {
    Result<EntryInfo> r = Fs(req).Lookup(parent, name);
    r.ok() ? ReplyEntry(req, *r) : ReplyError(req, r.status());
  });
}

void OpForget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }
void OpForgetMulti(fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); }

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Guard(req, "getattr", [&] {
    Result<EntryInfo> r = Fs(req).GetAttr(ino);
    r.ok() ? (void)fuse_reply_attr(req, &r->attr, r->attr_timeout) : ReplyError(req, r.status());
  });
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  Guard(req, "readlink", [&] {
    Result<std::string> r = Fs(req).ReadLink(ino);
    r.ok() ? (void)fuse_reply_readlink(req, r->c_str()) : ReplyError(req, r.status());
  });
}

void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, "opendir", [&] {
    Result<std::vector<DirEntry>> r = Fs(req).ReadDir(ino);
    if (!r.ok()) return ReplyError(req, r.status());
    auto* entries = new std::vector<DirEntry>(std::move(r).value());
    fi->fh = reinterpret_cast<uint64_t>(entries);
    if (fuse_reply_open(req, fi) != 0) delete entries;  // interrupted: no releasedir
  });
}

void OpReaddir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  Guard(req, "readdir", [&] {
    const auto& entries = *reinterpret_cast<const std::vector<DirEntry>*>(fi->fh);
    std::vector<char> buf(size);
    size_t used = 0;
    for (size_t i = static_cast<size_t>(std::max<off_t>(off, 0)); i < entries.size(); ++i) {
      struct stat st;
      std::memset(&st, 0, sizeof st);
      st.st_ino = entries[i].ino;
      st.st_mode = entries[i].mode;
      const size_t n = fuse_add_direntry(req, buf.data() + used, size - used,
                                         entries[i].name.c_str(), &st, static_cast<off_t>(i + 1));
      if (n > size - used) break;
      used += n;
    }
    fuse_reply_buf(req, buf.data(), used);
  });
}

void OpReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<std::vector<DirEntry>*>(fi->fh);
  fuse_reply_err(req, 0);
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, "open", [&] {
    Result<std::unique_ptr<OpenFile>> r = Fs(req).Open(ino, fi->flags);
    if (!r.ok()) return ReplyError(req, r.status());
    OpenFile* file = r->release();
    fi->fh = reinterpret_cast<uint64_t>(file);
    fi->keep_cache = 1;  // backups never change
    fi->noflush = 1;     // the kernel sends FLUSH anyway under the writeback cache (OpFlush)
    if (fuse_reply_open(req, fi) != 0) delete file;
  });
}

// Whether the kernel reads for its page cache (read-ahead, a page fault, a buffered
// read), not for an O_DIRECT reader, which takes a short read as the file's end: the
// kernel sends a lock owner with every direct read, and none with a page-cache read.
bool IsPageCacheRead(const fuse_file_info* fi) {
  return fi->lock_owner == 0 && (fi->flags & O_DIRECT) == 0;
}

void OpRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  Guard(req, "read", [&] {
    auto* file = reinterpret_cast<OpenFile*>(fi->fh);
    ReadResult result;
    Status s = Fs(req).Read(file, static_cast<uint64_t>(std::max<off_t>(off, 0)), size, &result);
    if (!s.ok()) return ReplyError(req, s);
    const auto* impl = static_cast<FuseMount::Impl*>(fuse_req_userdata(req));
    if (impl->holes_left_out && IsPageCacheRead(fi)) result.DropTrailingZeros();  // OpInit
    std::vector<iovec> iov;
    iov.reserve(result.pieces().size());
    for (const ReadResult::Piece& p : result.pieces()) {
      iov.push_back({const_cast<uint8_t*>(p.data), p.size});
    }
    // One writev to /dev/fuse straight from the cached chunks.
    fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
  });
}

void OpRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<OpenFile*>(fi->fh);
  fuse_reply_err(req, 0);
}

void OpFlush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OpLseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  Guard(req, "lseek", [&] {
    auto* file = reinterpret_cast<OpenFile*>(fi->fh);
    if (off < 0) return (void)fuse_reply_err(req, EINVAL);
    Result<std::optional<uint64_t>> r = Fs(req).Lseek(file, static_cast<uint64_t>(off), whence);
    if (!r.ok()) return ReplyError(req, r.status());
    if (!r->has_value()) return (void)fuse_reply_err(req, ENXIO);
    fuse_reply_lseek(req, static_cast<off_t>(**r));
  });
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  Guard(req, "statfs", [&] {
    const struct statvfs s = Fs(req).StatFs();
    fuse_reply_statfs(req, &s);
  });
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Guard(req, "getxattr", [&] {
    Result<std::optional<std::string>> r = Fs(req).GetXattr(ino, name);
    if (!r.ok()) return ReplyError(req, r.status());
    if (!r->has_value()) return (void)fuse_reply_err(req, ENODATA);
    const std::string& v = **r;
    if (size == 0) return (void)fuse_reply_xattr(req, v.size());
    if (size < v.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, v.data(), v.size());
  });
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Guard(req, "listxattr", [&] {
    Result<std::vector<std::string>> r = Fs(req).ListXattr(ino);
    if (!r.ok()) return ReplyError(req, r.status());
    std::string names;
    for (const std::string& n : *r) names.append(n).push_back('\0');
    if (size == 0) return (void)fuse_reply_xattr(req, names.size());
    if (size < names.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, names.data(), names.size());
  });
}

// Everything that would change the filesystem.
template <typename... Args>
void ReadOnly(fuse_req_t req, Args...) {
  fuse_reply_err(req, EROFS);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.readlink = OpReadlink;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.releasedir = OpReleasedir;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.release = OpRelease;
  ops.flush = OpFlush;
  ops.lseek = OpLseek;
  ops.statfs = OpStatfs;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.setattr = ReadOnly<fuse_ino_t, struct stat*, int, fuse_file_info*>;
  ops.mknod = ReadOnly<fuse_ino_t, const char*, mode_t, dev_t>;
  ops.mkdir = ReadOnly<fuse_ino_t, const char*, mode_t>;
  ops.unlink = ReadOnly<fuse_ino_t, const char*>;
  ops.rmdir = ReadOnly<fuse_ino_t, const char*>;
  ops.symlink = ReadOnly<const char*, fuse_ino_t, const char*>;
  ops.rename = ReadOnly<fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned int>;
  ops.link = ReadOnly<fuse_ino_t, fuse_ino_t, const char*>;
  ops.write = ReadOnly<fuse_ino_t, const char*, size_t, off_t, fuse_file_info*>;
  ops.create = ReadOnly<fuse_ino_t, const char*, mode_t, fuse_file_info*>;
  ops.setxattr = ReadOnly<fuse_ino_t, const char*, const char*, size_t, int>;
  ops.removexattr = ReadOnly<fuse_ino_t, const char*>;
  ops.fallocate = ReadOnly<fuse_ino_t, int, off_t, off_t, fuse_file_info*>;
  ops.copy_file_range = ReadOnly<fuse_ino_t, off_t, fuse_file_info*, fuse_ino_t, off_t,
                                 fuse_file_info*, size_t, int>;
  return ops;
}

}  // namespace

FuseMount::FuseMount(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FuseMount::~FuseMount() {
  if (impl_->se == nullptr) return;
  if (impl_->signals) fuse_remove_signal_handlers(impl_->se);
  if (impl_->mounted) fuse_session_unmount(impl_->se);
  fuse_session_destroy(impl_->se);
}

Result<std::unique_ptr<FuseMount>> FuseMount::Create(const MountOptions& options) {
  std::string opts = "ro,default_permissions,fsname=vmvault,subtype=vmvault,max_read=" +
                     std::to_string(kMaxIo);
  if (options.allow_other) opts += ",allow_other";
  for (const std::string& o : options.fuse_options) opts += "," + o;
  std::vector<std::string> args = {"vmvault"};
  if (options.debug) args.push_back("-d");
  args.push_back("-o");
  args.push_back(opts);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());

  static const fuse_lowlevel_ops ops = MakeOps();
  auto impl = std::make_unique<Impl>();
  std::unique_ptr<FuseMount> mount(new FuseMount(std::move(impl)));
  Impl& m = *mount->impl_;
  char* real = realpath(options.mountpoint.c_str(), nullptr);
  m.mountpoint = real != nullptr ? real : options.mountpoint;
  free(real);
  m.se = fuse_session_new(&fargs, &ops, sizeof ops, &m);
  fuse_opt_free_args(&fargs);
  if (m.se == nullptr) return Status::InvalidArgument("cannot start FUSE with options " + opts);
  if (fuse_set_signal_handlers(m.se) != 0) return Status::IOError("cannot set signal handlers");
  m.signals = true;
  if (fuse_session_mount(m.se, options.mountpoint.c_str()) != 0) {
    return Status::IOError("cannot mount at " + options.mountpoint +
                           " (is /dev/fuse there and fusermount3 installed?)");
  }
  m.mounted = true;
  return mount;
}

void FuseMount::Abandon() { impl_->se = nullptr; }

Status FuseMount::Serve(Filesystem* fs, size_t threads) {
  impl_->fs.store(fs);
  fuse_loop_config* config = fuse_loop_cfg_create();
  if (config == nullptr) return Status::IOError("cannot allocate the FUSE loop config");
  const unsigned n = static_cast<unsigned>(std::max<size_t>(threads, 1));
  fuse_loop_cfg_set_clone_fd(config, 0);
  fuse_loop_cfg_set_max_threads(config, n);
  fuse_loop_cfg_set_idle_threads(config, n);
  const int rc = fuse_session_loop_mt(impl_->se, config);
  fuse_loop_cfg_destroy(config);
  if (rc < 0) return Status::IOError(std::string("FUSE loop failed: ") + std::strerror(-rc));
  return Status::OK();
}

}  // namespace vmvault::fs
