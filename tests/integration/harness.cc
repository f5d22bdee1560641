#include "harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace vmvault::testing {
namespace {

std::string ReadFd(int fd) {
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace

RunResult RunCmd(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  RunResult r;
  std::string out_path = std::filesystem::temp_directory_path() / "vv-run-XXXXXX";
  std::string err_path = out_path;
  const int out_fd = ::mkstemp(out_path.data());
  const int err_fd = ::mkstemp(err_path.data());
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) env_store.emplace_back(*e);
  for (const auto& e : env) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), envp.data()) == 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  posix_spawn_file_actions_destroy(&fa);
  ::lseek(out_fd, 0, SEEK_SET);
  ::lseek(err_fd, 0, SEEK_SET);
  r.out = ReadFd(out_fd);
  r.err = ReadFd(err_fd);
  ::close(out_fd);
  ::close(err_fd);
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return r;
}

PtyProcess::PtyProcess(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  struct winsize ws = {};
  ws.ws_row = 50;
  ws.ws_col = 200;
  const pid_t pid = ::forkpty(&fd_, nullptr, nullptr, &ws);
  if (pid == 0) {
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  pid_ = pid;
}

PtyProcess::~PtyProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (fd_ >= 0) ::close(fd_);
}

bool PtyProcess::ReadSome(std::chrono::milliseconds wait) {
  if (fd_ < 0) return false;
  pollfd p = {fd_, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(wait.count()));
  if (r <= 0) return r == 0 || errno == EINTR;
  char buf[4096];
  const ssize_t n = ::read(fd_, buf, sizeof buf);
  if (n > 0) {
    out_.append(buf, static_cast<size_t>(n));
    return true;
  }
  if (n < 0 && errno == EINTR) return true;
  return false;  // EIO: the program closed the terminal
}

bool PtyProcess::WaitFor(const std::string& text, std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  for (;;) {
    if (const size_t at = out_.find(text, seen_); at != std::string::npos) {
      seen_ = at + text.size();
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (!ReadSome(std::chrono::milliseconds(200))) {
      if (const size_t at = out_.find(text, seen_); at != std::string::npos) {
        seen_ = at + text.size();
        return true;
      }
      return false;
    }
  }
}

void PtyProcess::SendLine(const std::string& line) {
  const std::string data = line + "\n";
  for (size_t off = 0; off < data.size();) {
    const ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

int PtyProcess::Wait(std::chrono::milliseconds bound) {
  if (pid_ <= 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (ReadSome(std::chrono::milliseconds(200)) &&
         std::chrono::steady_clock::now() < deadline) {
  }
  int status = 0;
  pid_t r;
  while ((r = ::waitpid(pid_, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (r == 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int Sh(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string VmvaultPath() { return std::string(VV_BINARY_DIR) + "/tools/vmvault"; }

bool IsMountPoint(const std::string& path) {
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  const std::string canonical = std::filesystem::weakly_canonical(path).string();
  while (std::getline(mounts, line)) {
    std::istringstream is(line);
    std::string dev, mp;
    is >> dev >> mp;
    if (mp == canonical) return true;
  }
  return false;
}

bool IsRoot() { return ::geteuid() == 0; }

Mount::Mount(const std::string& repo, const std::string& mountpoint,
             const std::vector<std::string>& extra)
    : mountpoint_(mountpoint) {
  std::filesystem::create_directories(mountpoint_);
  std::vector<std::string> argv = {"vmvault", "mount", "-f", "-q", "--repo", repo};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(mountpoint_);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const std::string binary = VmvaultPath();
  pid_ = ::fork();
  if (pid_ == 0) {
    const int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::execv(binary.c_str(), args.data());
    ::_exit(127);
  }
  for (int i = 0; i < 200 && pid_ > 0; ++i) {
    if (IsMountPoint(mountpoint_)) {
      mounted_ = true;
      break;
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void Mount::Unmount() {
  const bool was_mounted = mounted_;
  if (mounted_) {
    if (Sh("fusermount3 -u '" + mountpoint_ + "' 2>/dev/null") != 0) {
      Sh("umount -l '" + mountpoint_ + "' 2>/dev/null");
    }
    mounted_ = false;
  }
  if (pid_ > 0) {
    for (int i = 0; i < 100; ++i) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        // Unmounted, the mount exits 0; anything else is a failure it had (under the
        // tsan preset, exit 66 is a race ThreadSanitizer reported on its stderr).
        EXPECT_TRUE(!was_mounted || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
            << "vmvault mount on " << mountpoint_ << " ended with "
            << (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                  : "signal " + std::to_string(WTERMSIG(status)));
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

Mount::~Mount() { Unmount(); }

Process::Process(const std::vector<std::string>& argv, const std::string& log_path)
    : log_path_(log_path) {
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Killed with the test process, even when ctest kills that one at its timeout and
    // no destructor runs: a daemon must never outlive its test.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) {
      ::_exit(127);
    }
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  if (pid > 0) pid_ = pid;
  ::close(log_fd);
}

Process::~Process() { Stop(std::chrono::milliseconds(0)); }

void Process::Reaped(int status) {
  pid_ = -1;
  exited_ = true;
  ended_ = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                             : "signal " + std::to_string(WTERMSIG(status));
}

bool Process::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    Reaped(status);
    return false;
  }
  return true;
}

void Process::Signal(int sig) {
  if (Running()) ::kill(pid_, sig);
}

void Process::Stop(std::chrono::milliseconds grace) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (Running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  if (::waitpid(pid_, &status, 0) == pid_) Reaped(status);
}

QmpClient::~QmpClient() { Close(); }

void QmpClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffer_.clear();
}

std::string QmpClient::Connect(const std::string& socket_path, Process& process,
                               std::chrono::milliseconds timeout) {
  Close();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return "socket path too long: " + socket_path;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!process.Running()) return "the process ended (" + process.how_it_ended() + ")";
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return std::string("socket: ") + std::strerror(errno);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    Close();
    if (std::chrono::steady_clock::now() >= deadline) return "no QMP socket at " + socket_path;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  nlohmann::json greeting = ReadReply(deadline + std::chrono::seconds(10));
  if (!greeting.contains("QMP")) return "no QMP greeting: " + greeting.dump();
  nlohmann::json reply = Execute("qmp_capabilities");
  if (!reply.contains("return")) return "qmp_capabilities: " + reply.dump();
  return "";
}

nlohmann::json QmpClient::Execute(const std::string& command, const nlohmann::json& arguments,
                                  std::chrono::milliseconds timeout) {
  if (fd_ < 0) return {{"error", {{"desc", "not connected"}}}};
  nlohmann::json request = {{"execute", command}};
  if (!arguments.empty()) request["arguments"] = arguments;
  const std::string line = request.dump() + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return {{"error", {{"desc", std::string("send: ") + std::strerror(errno)}}}};
    sent += static_cast<size_t>(n);
  }
  return ReadReply(std::chrono::steady_clock::now() + timeout);
}

nlohmann::json QmpClient::ReadReply(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const size_t eol = buffer_.find('\n');
    if (eol != std::string::npos) {
      const std::string line = buffer_.substr(0, eol);
      buffer_.erase(0, eol + 1);
      nlohmann::json reply = nlohmann::json::parse(line, nullptr, false);
      if (reply.is_discarded()) return {{"error", {{"desc", "not JSON: " + line}}}};
      if (!reply.contains("event")) return reply;
      continue;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {{"error", {{"desc", "no reply in time"}}}};
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) return {{"error", {{"desc", "connection closed"}}}};
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

LoopMount::LoopMount(const std::string& file, uint64_t offset, const std::string& mountpoint,
                     bool writable)
    : mountpoint_(mountpoint) {
  std::filesystem::create_directories(mountpoint_);
  std::vector<std::string> losetup = {"losetup", "-f", "--show", "-o", std::to_string(offset)};
  if (!writable) losetup.push_back("-r");
  losetup.push_back(file);
  RunResult r = RunCmd(losetup);
  if (r.exit_code != 0) return;
  device_ = r.out.substr(0, r.out.find('\n'));
  mounted_ = RunCmd({"mount", "-o", writable ? "rw" : "ro", device_, mountpoint_}).exit_code == 0;
}

LoopMount::~LoopMount() {
  if (mounted_) RunCmd({"umount", mountpoint_});
  if (!device_.empty()) RunCmd({"losetup", "-d", device_});
}

std::string CompareFiles(const std::string& a, const std::string& b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  if (!fa) return "cannot open " + a;
  if (!fb) return "cannot open " + b;
  std::vector<char> ba(1 << 20), bb(1 << 20);
  uint64_t off = 0;
  for (;;) {
    fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
    fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
    const auto na = fa.gcount(), nb = fb.gcount();
    const auto n = std::min(na, nb);
    for (std::streamsize i = 0; i < n; ++i) {
      if (ba[i] != bb[i]) return "first difference at byte " + std::to_string(off + i);
    }
    if (na != nb) return "sizes differ after byte " + std::to_string(off + n);
    if (na == 0) return "";
    off += static_cast<uint64_t>(na);
  }
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::json ListJson(const std::string& repo) {
  RunResult r = RunCmd({VmvaultPath(), "list", "--json", "--repo", repo});
  if (r.exit_code != 0) return nlohmann::json::array();
  return nlohmann::json::parse(r.out, nullptr, false);
}

uint64_t DiskUsage(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

}  // namespace vmvault::testing
