// The only file that includes Boost.Process. Every Boost call is wrapped so that no
// exception leaves it.
#include "ingest/subprocess.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <linux/close_range.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <cerrno>
#include <iterator>
#include <thread>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <fmt/format.h>

namespace vmvault::ingest {
namespace bp = boost::process;

namespace {

// In the child, between fork and exec: die with the parent thread.
struct DieWithParent : bp::extend::handler {
  template <typename Executor>
  void on_exec_setup(Executor& /*exec*/) const {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  }
};

// The child's environment: ours with `overrides` replacing or adding variables. Built in
// the parent, so nothing allocates between fork and exec. (Boost 1.74's
// bp::environment reads past the end of its keys; ASan catches it.)
class ChildEnvironment : public bp::extend::handler {
 public:
  explicit ChildEnvironment(const std::vector<std::pair<std::string, std::string>>& overrides) {
    for (char** e = ::environ; e != nullptr && *e != nullptr; ++e) {
      const std::string_view entry(*e);
      const std::string_view name = entry.substr(0, entry.find('='));
      const bool replaced = std::any_of(overrides.begin(), overrides.end(),
                                        [&](const auto& kv) { return kv.first == name; });
      if (!replaced) entries_.emplace_back(entry);
    }
    for (const auto& [name, value] : overrides) entries_.push_back(name + "=" + value);
    for (std::string& s : entries_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }

  template <typename Executor>
  void on_setup(Executor& exec) const {
    exec.env = const_cast<char**>(pointers_.data());
  }

 private:
  std::vector<std::string> entries_;
  std::vector<char*> pointers_;
};

// In the child, between fork and exec: lead a new process group, when asked to.
struct NewProcessGroup : bp::extend::handler {
  explicit NewProcessGroup(bool on) : enabled(on) {}
  bool enabled;
  template <typename Executor>
  void on_exec_setup(Executor& /*exec*/) const {
    if (enabled) ::setpgid(0, 0);
  }
};

// Marks every descriptor above the standard streams close-on-exec in the child, so the
// program inherits none of ours (a hook that daemonizes would keep the repository's
// lock or a FUSE device open). Marking rather than closing leaves Boost's own exec
// error pipe working; bp::limit_handles closed the output pipes in Boost 1.74.
struct NoInheritedDescriptors : bp::extend::handler {
  template <typename Executor>
  void on_exec_setup(Executor& /*exec*/) const {
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  }
};

// Writes `text` to the pipe's write end and closes it. A program that exits without
// reading everything makes write() fail with EPIPE; the SIGPIPE that comes with it is
// blocked in this thread and then taken, so it cannot kill a process that does not
// ignore SIGPIPE.
void WriteAndClose(bp::pipe& pipe, const std::string& text) {
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
  const char* p = text.data();
  size_t left = text.size();
  bool broken = false;
  while (left > 0) {
    const ssize_t n = ::write(pipe.native_sink(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      broken = errno == EPIPE;
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  pipe.close();
  if (broken) {
    const timespec no_wait{};
    ::sigtimedwait(&pipe_signal, nullptr, &no_wait);
  }
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::vector<std::string> Tail(const std::vector<std::string>& argv) {
  return std::vector<std::string>(argv.begin() + 1, argv.end());
}

}  // namespace

Result<std::string> FindProgram(const std::string& program) {
  if (program.empty()) return Status::InvalidArgument("empty program name");
  if (program.find('/') != std::string::npos) {
    if (::access(program.c_str(), X_OK) == 0) return program;
    return Status::NotFound(
        fmt::format("program '{}' does not exist or is not executable", program));
  }
  try {
    const boost::filesystem::path found = bp::search_path(program);
    if (!found.empty()) return found.string();
  } catch (const std::exception& e) {
    return Status::IOError(fmt::format("looking up '{}' on PATH: {}", program, e.what()));
  }
  std::string hint;
  if (program.rfind("qemu-", 0) == 0) hint = " (install the qemu-utils package)";
  return Status::NotFound(fmt::format("program '{}' was not found on PATH{}", program, hint));
}

Result<CommandOutput> RunProcess(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout) {
  ProcessOptions options;
  options.timeout = timeout;
  VV_ASSIGN_OR_RETURN(CommandOutput out, RunProcess(argv, options));
  if (out.timed_out) {
    return Status::External(fmt::format("{} did not finish within {} s and was stopped",
                                        argv[0], timeout.count() / 1000.0));
  }
  return out;
}

Result<CommandOutput> RunProcess(const std::vector<std::string>& argv,
                                 const ProcessOptions& options) {
  if (argv.empty()) return Status::InvalidArgument("RunProcess: empty command");
  VV_ASSIGN_OR_RETURN(const std::string exe, FindProgram(argv[0]));
  CommandOutput out;
  try {
    // Plain blocking pipes, drained by two threads, and a blocking waitpid: no
    // io_context, so no SIGCHLD handler races with wait() over the exit status.
    bp::ipstream out_stream, err_stream;
    bp::pipe in_pipe;
    const ChildEnvironment child_env(options.env);
    const NewProcessGroup group(options.own_process_group);
    auto spawn = [&](auto&& std_in) {
      return bp::child(bp::exe = exe, bp::args = Tail(argv), std_in, bp::std_out > out_stream,
                       bp::std_err > err_stream, child_env, group, NoInheritedDescriptors{});
    };
    bp::child child = options.stdin_text ? spawn(bp::std_in < in_pipe) : spawn(bp::std_in.close());
    const pid_t pid = child.id();
    // Also here, so the group exists before the watchdog can signal it.
    if (options.own_process_group) ::setpgid(pid, pid);
    std::thread writer;
    if (options.stdin_text) {
      writer = std::thread([&in_pipe, &text = *options.stdin_text] { WriteAndClose(in_pipe, text); });
    }
    // The watchdog kills the child (or its group) at the deadline; its pipes then close
    // and the readers below return.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread watchdog([&] {
      std::unique_lock<std::mutex> lock(mu);
      if (!cv.wait_for(lock, options.timeout, [&] { return done; })) {
        out.timed_out = true;
        ::kill(options.own_process_group ? -pid : pid, SIGKILL);
      }
    });
    std::mutex line_mu;
    auto drain = [&](bp::ipstream& in, std::string& text, OutputStream which) {
      if (!options.on_line) {
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        return;
      }
      std::string line;
      while (std::getline(in, line)) {
        std::lock_guard<std::mutex> lock(line_mu);
        options.on_line(which, line);
      }
    };
    std::thread err_reader([&] { drain(err_stream, out.stderr_text, OutputStream::kStderr); });
    drain(out_stream, out.stdout_text, OutputStream::kStdout);
    err_reader.join();
    if (writer.joinable()) writer.join();
    // Stop the watchdog before reaping: until wait() the PID stays ours (a zombie at
    // worst), so a late kill can never hit a process that reused it.
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
    watchdog.join();
    child.wait();
    const int status = child.native_exit_code();
    out.exit_code = DecodeWaitStatus(status);
    out.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  } catch (const std::exception& e) {
    return Status::External(fmt::format("could not run {}: {}", argv[0], e.what()));
  }
  return out;
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv, const std::string& stderr_path,
    const std::vector<std::pair<std::string, std::string>>& env) {
  if (argv.empty()) return Status::InvalidArgument("ChildProcess: empty command");
  VV_ASSIGN_OR_RETURN(const std::string exe, FindProgram(argv[0]));
  pid_t pid = -1;
  try {
    std::error_code ec;
    const ChildEnvironment child_env(env);
    bp::child child(bp::exe = exe, bp::args = Tail(argv), bp::std_in.close(),
                    bp::std_out > bp::null, bp::std_err > stderr_path, child_env, DieWithParent{},
                    bp::limit_handles, ec);
    if (ec) {
      return Status::External(fmt::format("could not start {}: {}", argv[0], ec.message()));
    }
    pid = child.id();
    // From here on the PID is ours to wait for and kill; Boost must not touch it.
    child.detach();
  } catch (const std::exception& e) {
    return Status::External(fmt::format("could not start {}: {}", argv[0], e.what()));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() { Stop(); }

bool ChildProcess::Running() {
  if (exited_) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  exited_ = true;
  exit_code_ = r == pid_ ? DecodeWaitStatus(status) : -1;
  return false;
}

void ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (!Running()) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!Running()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  exited_ = true;
  exit_code_ = r == pid_ ? DecodeWaitStatus(status) : -1;
}

}  // namespace vmvault::ingest
