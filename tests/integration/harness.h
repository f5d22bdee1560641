// Test harness for end-to-end tests: runs the vmvault binary and other programs,
// and owns the resources a test creates (temp dirs, FUSE mounts, loop devices) so they
// are released even when an assertion fails.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/temp_dir.h"

namespace vmvault::testing {

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv (no shell) and waits. Never throws.
RunResult RunCmd(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
// Runs a shell command line; for test set-up only. Returns the exit code.
int Sh(const std::string& command);

// The vmvault binary of this build.
std::string VmvaultPath();


// `vmvault mount -f` in a child process; unmounts and stops the child by PID when
// destroyed. A mount that, once unmounted, exits other than with 0 fails the test.
class Mount {
 public:
  // `extra`: more options for `vmvault mount` (e.g. --allow-other).
  Mount(const std::string& repo, const std::string& mountpoint,
        const std::vector<std::string>& extra = {});
  ~Mount();
  bool ok() const { return pid_ > 0 && mounted_; }
  const std::string& path() const { return mountpoint_; }
  void Unmount();

 private:
  std::string mountpoint_;
  pid_t pid_ = -1;
  bool mounted_ = false;
};

// A read-only loop device over [offset, end) of a file, mounted read-only; both are
// released when destroyed.
class LoopMount {
 public:
  // Read-only unless `writable`.
  LoopMount(const std::string& file, uint64_t offset, const std::string& mountpoint,
            bool writable = false);
  ~LoopMount();
  bool ok() const { return mounted_; }

 private:
  std::string device_;
  std::string mountpoint_;
  bool mounted_ = false;
};

// A program running in the background (QEMU) with stdin /dev/null and stdout and stderr
// appended to a log file. Destroying it stops it by PID: it gets `grace` to exit by
// itself (after whatever the owner asked it to do), then SIGKILL. The kernel kills it
// too when the thread that started it ends (PR_SET_PDEATHSIG), so a test process that
// ctest kills at its timeout leaves no daemon behind: start it on the test's thread.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0 || exited_; }
  // False once the process has exited (it is reaped then).
  bool Running();
  // Sends `sig` while it runs.
  void Signal(int sig);
  // Waits up to `grace` for the process to exit, then kills it with SIGKILL; reaps it.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(3));
  // How it ended: "exit N" or "signal N"; "" while it runs.
  const std::string& how_it_ended() const { return ended_; }
  const std::string& log_path() const { return log_path_; }

 private:
  void Reaped(int status);

  std::string log_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string ended_;
};

// A program on a pseudo-terminal (forkpty), driven like a user at a terminal: wait for
// text to appear, type a line. Destroying it kills the program by PID if it still runs.
class PtyProcess {
 public:
  explicit PtyProcess(const std::vector<std::string>& argv);
  ~PtyProcess();
  PtyProcess(const PtyProcess&) = delete;
  PtyProcess& operator=(const PtyProcess&) = delete;

  bool started() const { return pid_ > 0; }
  // Reads the terminal until `text` appears after the previous match; false when the
  // program closes the terminal first or `bound` passes (a bound against hangs, not a
  // timing assertion). The next WaitFor searches after this match.
  bool WaitFor(const std::string& text,
               std::chrono::milliseconds bound = std::chrono::seconds(60));
  // Types `line` and Enter.
  void SendLine(const std::string& line);
  // Reads until the program exits (up to `bound`, then SIGKILL) and returns its exit
  // code (128 + signal when killed).
  int Wait(std::chrono::milliseconds bound = std::chrono::seconds(120));
  // Everything the program wrote to the terminal so far.
  const std::string& output() const { return out_; }

 private:
  // Reads what is there within `wait`; false once the terminal is closed.
  bool ReadSome(std::chrono::milliseconds wait);

  int fd_ = -1;
  pid_t pid_ = -1;
  std::string out_;
  size_t seen_ = 0;
};

// A QMP client (QEMU's JSON monitor) on a unix socket. Not thread-safe.
class QmpClient {
 public:
  QmpClient() = default;
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Connects to the socket, retrying until `timeout` while `process` runs (QEMU creates
  // the socket as it starts), and leaves capability negotiation mode. "" or the error.
  std::string Connect(const std::string& socket_path, Process& process,
                      std::chrono::milliseconds timeout);
  // Runs a command and returns QEMU's reply: {"return": ...} or {"error": ...}; on a
  // dead connection or after `timeout`, {"error": {"desc": "..."}}. Events are skipped.
  nlohmann::json Execute(const std::string& command,
                         const nlohmann::json& arguments = nlohmann::json::object(),
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void Close();

 private:
  // The next JSON line that is not an event, or an {"error"} object.
  nlohmann::json ReadReply(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffer_;
};

bool IsMountPoint(const std::string& path);
bool IsRoot();
// Byte-for-byte comparison of two files; returns "" when equal, else a description.
std::string CompareFiles(const std::string& a, const std::string& b);
// The contents of a file ("" if unreadable).
std::string Slurp(const std::string& path);
// `vmvault list --json` of a repository, parsed.
nlohmann::json ListJson(const std::string& repo);
// Bytes the directory tree occupies on disk (st_blocks * 512).
uint64_t DiskUsage(const std::string& dir);

}  // namespace vmvault::testing
