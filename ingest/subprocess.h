// Subprocess: the one place vmvault starts other programs (subprocess.cc is the only
// file that includes Boost.Process; every Boost exception is caught there).
//
// RunProcess runs a program to completion and captures its output; ChildProcess keeps a
// long-running daemon (qemu-nbd) alive for as long as the object lives and stops it by
// its PID when destroyed. Programs are run directly, never through a shell.
//
// Thread-safety: RunProcess is thread-safe. A ChildProcess is not; one owner uses it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace vmvault::ingest {

struct CommandOutput {
  int exit_code = 0;  // the exit status; 128 + N when killed by signal N
  std::string stdout_text;
  std::string stderr_text;
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
