// The only file that includes Boost.Process. Every Boost call is wrapped so that no
// exception leaves it.
#include "ingest/subprocess.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
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
  if (argv.empty()) return Status::InvalidArgument("RunProcess: empty command");
  VV_ASSIGN_OR_RETURN(const std::string exe, FindProgram(argv[0]));
  CommandOutput out;
  bool timed_out = false;
  try {
    // Plain blocking pipes, drained by two threads, and a blocking waitpid: no
    // io_context, so no SIGCHLD handler races with wait() over the exit status.
    bp::ipstream out_stream, err_stream;
    bp::child child(bp::exe = exe, bp::args = Tail(argv), bp::std_in.close(),
                    bp::std_out > out_stream, bp::std_err > err_stream);
    // The watchdog kills the child at the deadline; its pipes then close and the
    // readers below return.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    const pid_t pid = child.id();
    std::thread watchdog([&] {
      std::unique_lock<std::mutex> lock(mu);
      if (!cv.wait_for(lock, timeout, [&] { return done; })) {
        timed_out = true;
        ::kill(pid, SIGKILL);
      }
    });
    std::thread err_reader([&err_stream, &out] {
      out.stderr_text.assign(std::istreambuf_iterator<char>(err_stream),
                             std::istreambuf_iterator<char>());
    });
    out.stdout_text.assign(std::istreambuf_iterator<char>(out_stream),
                           std::istreambuf_iterator<char>());
    err_reader.join();
    // Stop the watchdog before reaping: until wait() the PID stays ours (a zombie at
    // worst), so a late kill can never hit a process that reused it.
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
    watchdog.join();
    child.wait();
    out.exit_code = DecodeWaitStatus(child.native_exit_code());
  } catch (const std::exception& e) {
    return Status::External(fmt::format("could not run {}: {}", argv[0], e.what()));
  }
  if (timed_out) {
    return Status::External(fmt::format("{} did not finish within {} s and was stopped",
                                        argv[0], timeout.count() / 1000.0));
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
