// Subprocess: the one place vmvault starts other programs (subprocess.cc is the only
// file that includes Boost.Process; every Boost exception is caught there).
//
// RunProcess runs a program to completion and captures its output; ChildProcess keeps a
// long-running daemon (qemu-nbd) alive for as long as the object lives and stops it by
// its PID when destroyed. Programs are run directly, never through a shell, and
// inherit no descriptor but their standard streams (a hook that daemonizes must not
// keep the repository's lock or a FUSE device open).
//
// The options form of RunProcess adds what hooks and the sendmail alert transport need:
// extra environment variables, bytes for stdin, a process group of its own that the
// deadline kills as a whole, and output delivered line by line as it arrives.
//
// Thread-safety: RunProcess is thread-safe. A ChildProcess is not; one owner uses it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace vmvault::ingest {

struct CommandOutput {
  int exit_code = 0;  // the exit status; 128 + N when killed by signal N
  std::string stdout_text;
  std::string stderr_text;
  int signal = 0;          // N when killed by signal N; 0 when it exited
  bool timed_out = false;  // killed at the deadline (only the ProcessOptions form says so)
};

// The absolute path of `program` found on PATH (or `program` itself when it holds a
// '/' and exists). NotFound naming the program when it is not there.
Result<std::string> FindProgram(const std::string& program);

// How long RunProcess lets a program run by default: qemu-img check of a large image
// reads all its metadata, but nothing it runs should take longer, and a program stuck
// on a dead NFS mount must not hang a cron job forever.
inline constexpr std::chrono::seconds kDefaultProcessTimeout{600};

// Runs argv[0] (looked up on PATH) with argv[1..], stdin closed, and waits for it.
// A non-zero exit is not an error here: callers judge exit_code themselves. A program
// still running after `timeout` is killed (SIGKILL) and the result is an External
// error that says so.
// REQUIRES: !argv.empty().
Result<CommandOutput> RunProcess(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout = kDefaultProcessTimeout);

enum class OutputStream { kStdout, kStderr };

struct ProcessOptions {
  std::chrono::milliseconds timeout = kDefaultProcessTimeout;
  // (NAME, value) pairs added to our environment, replacing variables of that name.
  std::vector<std::pair<std::string, std::string>> env;
  // Written to the program's stdin, which is then closed (a program that does not read
  // it all is not an error). Unset: stdin is closed from the start.
  std::optional<std::string> stdin_text;
  // The program leads a new process group, and the deadline kills the whole group
  // (SIGKILL), so a shell script's children die with it.
  bool own_process_group = false;
  // When set, each line of output (without its '\n'; a last line without one too) is
  // passed here as it arrives instead of being kept in CommandOutput. Called from two
  // reader threads, one call at a time.
  std::function<void(OutputStream, std::string_view line)> on_line;
};

// RunProcess with options. Unlike the form above, a program stopped at the deadline is
// an OK Result with timed_out set (and signal SIGKILL), so callers can say how it
// ended; only a program that could not be started is an error (NotFound when argv[0]
// is not there). REQUIRES: !argv.empty().
Result<CommandOutput> RunProcess(const std::vector<std::string>& argv,
                                 const ProcessOptions& options);

class ChildProcess {
 public:
  // Starts argv[0] (looked up on PATH) in the background with stdin closed, stdout
  // discarded and stderr appended to `stderr_path`, with our environment plus `env`
  // (NAME, value) pairs. The child gets SIGTERM if the thread that started it dies
  // (PR_SET_PDEATHSIG), so a crash leaves no daemon behind.
  static Result<std::unique_ptr<ChildProcess>> Start(
      const std::vector<std::string>& argv, const std::string& stderr_path,
      const std::vector<std::pair<std::string, std::string>>& env = {});
  // Stops the child if it still runs (see Stop).
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // True while the child has not exited. Reaps it once it has.
  bool Running();
  // The exit status once !Running(), as CommandOutput::exit_code.
  int exit_code() const { return exit_code_; }
  // Sends SIGTERM, waits up to `grace` for the child to exit, then sends SIGKILL and
  // reaps it. Idempotent.
  void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}

  pid_t pid_;
  bool exited_ = false;
  int exit_code_ = -1;
};

}  // namespace vmvault::ingest
