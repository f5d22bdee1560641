#include "fs/mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <memory>
#include <string_view>
#include <utility>

#include "base/thread_pool.h"
#include "fs/filesystem.h"
#include "fs/fuse_ops.h"
#include "store/repository.h"

namespace vmvault::fs {
namespace {

void LogToSyslog() {
  try {
    auto logger = spdlog::syslog_logger_mt("vmvault-mount", "vmvault", LOG_PID, LOG_DAEMON);
    spdlog::set_default_logger(std::move(logger));
  } catch (const std::exception& e) {
    // Keep the current logger; its output goes to /dev/null once daemonized.
    spdlog::warn("cannot log to syslog: {}", e.what());
  }
}

// The absolute form of an existing `path`: libfuse changes to "/" when it
// daemonizes, and unmounts by the path it mounted.
std::string Absolute(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) return path;
  std::string out(real);
  free(real);
  return out;
}

// A Status through a pipe, from a forked child to its parent: one byte of StatusCode,
// then the message. Closes `fd`.
void SendStatus(int fd, const Status& s) {
  std::string msg(1, static_cast<char>(s.code()));
  msg += s.message();
  for (size_t off = 0; off < msg.size();) {
    const ssize_t n = ::write(fd, msg.data() + off, msg.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::close(fd);
}

// Reads what SendStatus sent, until the child closes its end; `died` describes a child
// that closed it without a word. Closes `fd`.
Status ReceiveStatus(int fd, std::string_view died) {
  std::string msg;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      msg.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fd);
  if (msg.empty()) return Status::IOError(std::string(died));
  const auto code = static_cast<StatusCode>(static_cast<unsigned char>(msg[0]));
  return code == StatusCode::kOk ? Status::OK() : Status(code, msg.substr(1));
}

}  // namespace

Status CheckRepository(const std::string& path) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(fds[0]);
    close(fds[1]);
    return Status::FromErrno(err, "fork");
  }
  if (pid == 0) {
    close(fds[0]);
    Status s;
    {
      auto repo = store::Repository::Open(path, store::RepoMode::kReadOnly);
      s = repo.status();
    }
    SendStatus(fds[1], s);
    _exit(0);
  }
  close(fds[1]);
  Status s = ReceiveStatus(fds[0], "the process that checks the repository failed");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return s;
}

Status ValidateMountpoint(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("no mountpoint given");
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound("mountpoint " + path + " does not exist");
    return Status::FromErrno(err, "mountpoint " + path);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("mountpoint " + path + " is not a directory");
  }
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return Status::FromErrno(errno, "mountpoint " + path);
  bool empty = true;
  while (dirent* e = readdir(dir)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") {
      empty = false;
      break;
    }
  }
  closedir(dir);
  if (!empty) return Status::InvalidArgument("mountpoint " + path + " is not empty");
  return Status::OK();
}

// Puts a mount in the background the way a daemon should, but unlike fuse_daemonize
// the parent waits until the child has opened the repository and built the tree, and
// returns the child's verdict: `vmvault mount` exits non-zero when the mount does not
// come up, instead of reporting success and logging the failure to syslog.
class Detacher {
 public:
  ~Detacher() {
    if (fd_ >= 0) ::close(fd_);
  }

  // True in the parent, false in the child (now in its own session, in "/").
  Result<bool> Fork() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int err = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      return Status::FromErrno(err, "fork");
    }
    if (pid > 0) {
      ::close(fds[1]);
      fd_ = fds[0];
      return true;
    }
    ::close(fds[0]);
    fd_ = fds[1];
    ::setsid();
    if (::chdir("/") != 0) {
      // Paths are absolute already; staying where we are is harmless.
    }
    return false;
  }

  // Parent: the child's verdict, read from the pipe.
  Status ChildStatus() {
    const int fd = std::exchange(fd_, -1);
    return ReceiveStatus(fd, "the mount process ended before it was ready");
  }

  // Child: report success, then detach from the terminal.
  void Ready() {
    if (fd_ < 0) return;  // foreground
    Send(Status::OK());
    DetachStdio();
  }

  // Child: report `s` (the parent prints it, so the child stays quiet). Returns `s`
  // for the caller to return. REQUIRES: the mount is already gone, so the parent
  // never returns while it is still there.
  Status Fail(Status s) {
    if (fd_ < 0) return s;  // foreground: the caller prints it
    Send(s);
    DetachStdio();
    return s;
  }

 private:
  static void DetachStdio() {
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) return;
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    if (null > 2) ::close(null);
  }

  void Send(const Status& s) { SendStatus(std::exchange(fd_, -1), s); }

  int fd_ = -1;  // the read end in the parent, the write end in the child
};

Status RunMount(const MountOptions& given) {
  VV_RETURN_IF_ERROR(ValidateMountpoint(given.mountpoint));
  MountOptions options = given;
  options.mountpoint = Absolute(given.mountpoint);
  options.repo_path = Absolute(given.repo_path);
  // Check the repository before mounting, so errors reach the terminal. The follower
  // is opened only after the fork below.
  if (Status s = CheckRepository(options.repo_path); !s.ok()) {
    // No repository at the path is a precondition of mounting, like a readable format.
    if (s.IsNotFound()) return Status::FailedPrecondition(s.message());
    return s;
  }

  const bool foreground = options.foreground || options.debug;
  VV_ASSIGN_OR_RETURN(std::unique_ptr<FuseMount> mount, FuseMount::Create(options));
  Detacher detacher;
  if (!foreground) {
    Result<bool> parent = detacher.Fork();
    if (!parent.ok() || *parent) {
      // The parent: the child owns the mount now and has reported how it went.
      mount->Abandon();
      return parent.ok() ? detacher.ChildStatus() : parent.status();
    }
    LogToSyslog();
  }

  auto repo = store::Repository::Open(options.repo_path, store::RepoMode::kFollow);
  if (!repo.ok()) {
    spdlog::error("cannot open repository {}: {}", options.repo_path, repo.status().ToString());
    mount.reset();  // unmount before the parent hears about it
    return detacher.Fail(repo.status().WithContext("repository " + options.repo_path));
  }
  const size_t hw = ThreadPool::HardwareThreads();
  FilesystemOptions fo;
  fo.cache_bytes = options.cache_bytes;
  fo.readahead_bytes = options.readahead_bytes;
  fo.prefetch_threads =
      options.prefetch_threads != 0 ? options.prefetch_threads : DefaultPrefetchThreads();
  fo.refresh_interval_us = static_cast<int64_t>(options.refresh_interval_s * 1e6);
  fo.uid = options.uid.value_or(getuid());
  fo.gid = options.gid.value_or(getgid());
  fo.tree = options.tree;
  Result<std::unique_ptr<Filesystem>> fs = Filesystem::Create(repo->get(), fo);
  if (!fs.ok()) {
    spdlog::error("cannot read repository {}: {}", options.repo_path, fs.status().ToString());
    mount.reset();  // unmount before the parent hears about it
    return detacher.Fail(fs.status());
  }
  detacher.Ready();
  spdlog::info("serving repository {} at {} (layout {}, views {})", options.repo_path,
               options.mountpoint, LayoutName(options.tree.layout), options.tree.views.ToString());
  const size_t threads = options.threads != 0 ? options.threads : std::max<size_t>(4, hw);
  Status s = mount->Serve(fs->get(), threads);
  mount.reset();  // unmounts before the filesystem and the repository go away
  spdlog::info("unmounted {}", options.mountpoint);
  return s;
}

}  // namespace vmvault::fs
