// Test harness for end-to-end tests: runs the vmvault binary and other programs,
// and owns the resources a test creates (temp dirs, FUSE mounts, loop devices) so they
// are released even when an assertion fails.
#pragma once

#include <sys/types.h>

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
// destroyed.
class Mount {
 public:
  Mount(const std::string& repo, const std::string& mountpoint);
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
  LoopMount(const std::string& file, uint64_t offset, const std::string& mountpoint);
  ~LoopMount();
  bool ok() const { return mounted_; }

 private:
  std::string device_;
  std::string mountpoint_;
  bool mounted_ = false;
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
