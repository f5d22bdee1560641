#include "ingest/nbd_server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/file_util.h"
#include "base/names.h"
#include "ingest/qemu_img.h"

namespace vmvault::ingest {
namespace {

// Room for "/nbd.sock" inside sockaddr_un::sun_path.
constexpr size_t kMaxDirLength = sizeof(sockaddr_un::sun_path) - 16;

Result<std::string> MakePrivateDir() {
  std::string base = "/tmp";
  if (const char* t = std::getenv("TMPDIR");
      t != nullptr && t[0] == '/' && std::strlen(t) + 20 < kMaxDirLength) {
    base = t;
  }
  std::string templ = base + "/vmvault-nbd-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {  // mkdtemp makes it mode 0700
    return Status::FromErrno(errno, fmt::format("cannot create a directory in {}", base));
  }
  return templ;
}

// True when a unix socket at `path` accepts a connection.
bool SocketAccepts(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// True when `path` holds `pid`.
bool PidFileNames(const std::string& path, pid_t pid) {
  const Result<std::string> text = ReadFile(path);
  if (!text.ok()) return false;
  return std::atoll(text->c_str()) == static_cast<long long>(pid);
}

void RemoveDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) spdlog::warn("could not remove {}: {}", dir, ec.message());
}

}  // namespace

Result<std::unique_ptr<NbdServer>> NbdServer::Start(const ImageInfo& image,
                                                    const Options& options) {
  if (options.connections < 1) return Status::InvalidArgument("NbdServer: connections < 1");
  const std::string& path = image.path;
  VV_ASSIGN_OR_RETURN(const std::string dir, MakePrivateDir());
  const std::string socket_path = dir + "/nbd.sock";
  const std::string log_path = dir + "/qemu-nbd.log";
  const std::string pid_path = dir + "/qemu-nbd.pid";
  std::vector<std::string> argv = {
      options.program, "--read-only", "--persistent",
      // One more than asked for: the readiness probe below is a client too.
      fmt::format("--shared={}", options.connections + 1), "--socket=" + socket_path,
      "--pid-file=" + pid_path};
  std::ranges::copy(QemuImageArgs(image, QemuTool::kQemuNbd), std::back_inserter(argv));
  // qemu-nbd allocates a fresh buffer for every request. Above glibc's mmap threshold
  // each one is a new mapping whose pages the kernel must fault in and zero: reading
  // 1 MiB requests took 4x longer than with the buffers recycled from the heap.
  const std::vector<std::pair<std::string, std::string>> env = {
      {"MALLOC_MMAP_THRESHOLD_", std::to_string(64 << 20)},
      {"MALLOC_TRIM_THRESHOLD_", std::to_string(256 << 20)}};
  auto child = ChildProcess::Start(argv, log_path, env);
  if (!child.ok()) {
    RemoveDir(dir);
    return child.status();
  }
  // From here on the server object owns the child and the directory.
  std::unique_ptr<NbdServer> server(new NbdServer(dir, socket_path, std::move(child).value()));
  spdlog::debug("started qemu-nbd (pid {}) for {} on {}", server->pid(), path, socket_path);

  const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
  for (auto delay = std::chrono::milliseconds(1);;
       delay = std::min(delay * 2, std::chrono::milliseconds(20))) {
    if (!server->child_->Running()) {
      const int code = server->child_->exit_code();
      const Result<std::string> log = ReadFile(log_path);
      std::string why = log.ok() ? CleanQemuError(*log) : std::string();
      if (why.empty()) why = fmt::format("it exited with status {}", code);
      server->Stop();
      return Status::External(
          fmt::format("qemu-nbd could not serve '{}': {}", Printable(path), why));
    }
    // qemu-nbd listens before it opens the image, so an accepting socket alone proves
    // nothing; it writes the PID file once the export is ready.
    if (PidFileNames(pid_path, server->pid()) && SocketAccepts(socket_path)) break;
    if (std::chrono::steady_clock::now() > deadline) {
      server->Stop();
      return Status::External(fmt::format("qemu-nbd did not open its socket for '{}' within {} ms",
                                          Printable(path), options.start_timeout.count()));
    }
    std::this_thread::sleep_for(delay);
  }
  return server;
}

NbdServer::~NbdServer() { Stop(); }

void NbdServer::Stop() {
  if (child_) {
    child_->Stop();
    spdlog::debug("stopped qemu-nbd (pid {}), exit status {}", child_->pid(), child_->exit_code());
    child_.reset();
  }
  if (!dir_.empty()) {
    RemoveDir(dir_);
    dir_.clear();
  }
}

}  // namespace vmvault::ingest
