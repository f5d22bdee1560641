// The fixture of the FUSE integration tests: a real repository with one backup, and
// fs_mount_helper (RunMount) started in a child process on a temporary mountpoint.
// TearDown always unmounts (fusermount3 -u, then umount -l) and reaps or kills the
// mount process, even when an assertion failed; a foreground helper that, once
// unmounted, exits other than with 0 fails the test.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/time_format.h"
#include "tests/fs/fs_test_util.h"

namespace vmvault::fs::testing {

inline constexpr uint32_t kCs = 64 << 10;

inline bool IsMounted(const std::string& mnt) {
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream in(line);
    std::string dev, dir, type;
    in >> dev >> dir >> type;
    if (dir == mnt && type.rfind("fuse", 0) == 0) return true;
  }
  return false;
}

inline std::set<std::string> List(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) out.insert(e->d_name);
  closedir(d);
  return out;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// PIDs of processes whose command line mentions `needle` (our daemonized mounts).
inline std::vector<pid_t> PidsMentioning(const std::string& needle) {
  std::vector<pid_t> pids;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* e = readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0 || pid == getpid()) continue;
    std::string cmd = ReadAll("/proc/" + std::string(e->d_name) + "/cmdline");
    if (cmd.find("fs_mount_helper") != std::string::npos &&
        cmd.find(needle) != std::string::npos) {
      pids.push_back(pid);
    }
  }
  closedir(proc);
  return pids;
}

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Daemonized mounts are orphaned by design; adopt them so they can be reaped.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    repo_path_ = tmp_.path() + "/repo";
    mnt_ = tmp_.path() + "/mnt";
    ASSERT_EQ(mkdir(mnt_.c_str(), 0755), 0);
    ASSERT_TRUE(store::Repository::Init(repo_path_, TestConfig(kCs)).ok());
    auto w = store::Repository::Open(repo_path_, store::RepoMode::kWrite);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    writer_ = std::move(w).value();
    disk_.size = 40 * kCs + 1000;
    disk_.has_data = [](uint64_t slot) { return slot < 8 || (slot >= 20 && slot < 24) || slot == 40; };
    auto b = CommitDisks(writer_.get(), MakeVm("web"), TestTime(), {disk_});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    first_ = *b;
  }

  void TearDown() override { Unmount(); }

  // Starts the mount; foreground keeps it in the child we fork, else it daemonizes.
  // `relative`: run the helper from the temporary directory with relative paths.
  void Mount(bool foreground = true, bool relative = false) {
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      std::string repo = repo_path_, mnt = mnt_;
      if (relative && chdir(tmp_.path().c_str()) == 0) {
        repo = "repo";
        mnt = "mnt";
      }
      if (foreground) {
        execl(VV_MOUNT_HELPER, "fs_mount_helper", repo.c_str(), mnt.c_str(), "-f",
              static_cast<char*>(nullptr));
      } else {
        execl(VV_MOUNT_HELPER, "fs_mount_helper", repo.c_str(), mnt.c_str(),
              static_cast<char*>(nullptr));
      }
      _exit(127);
    }
    if (!foreground) {
      // The helper's parent exits 0 once the mount is up.
      int status = 0;
      ASSERT_EQ(waitpid(child_, &status, 0), child_);
      child_ = -1;
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
    for (int i = 0; i < 1000 && !IsMounted(mnt_); ++i) {
      if (child_ > 0) {
        int status = 0;
        ASSERT_EQ(waitpid(child_, &status, WNOHANG), 0) << "mount helper exited early";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(IsMounted(mnt_)) << "no mount at " << mnt_;
  }

  // Commits a three-page disk, damages its second index page with `damage` (which
  // gets the page's key and value and fills the batch), and checks that verify names
  // it and that the mount gives EIO for exactly its range (fs_integration_test.cc).
  void CheckIndexPageDamage(
      const std::function<void(const std::string& key, const std::string& value,
                               store::KvBatch* batch)>& damage);

  void Unmount() {
    if (IsMounted(mnt_)) {
      const std::string cmd = "fusermount3 -u '" + mnt_ + "' 2>/dev/null || umount -l '" + mnt_ + "'";
      if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "cannot unmount " << mnt_;
    }
    if (child_ > 0) {
      int status = 0;
      pid_t reaped = 0;
      for (int i = 0; i < 500 && (reaped = waitpid(child_, &status, WNOHANG)) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (reaped == 0) {
        kill(child_, SIGKILL);
        waitpid(child_, &status, 0);
      } else if (reaped == child_) {
        // Unmounted, a foreground mount exits 0; under the tsan preset, exit 66 is a
        // race ThreadSanitizer reported on its stderr.
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "the mount helper ended with "
            << (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                  : "signal " + std::to_string(WTERMSIG(status)));
      }
      child_ = -1;
    }
    // A daemonized mount exits when unmounted; make sure of it, and reap it.
    for (int i = 0; i < 300; ++i) {
      auto pids = PidsMentioning(mnt_);
      if (pids.empty()) break;
      if (i == 299) {
        for (pid_t p : pids) kill(p, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }

  std::string BackupDir(const store::BackupRecord& b, const std::string& vm = "web") {
    return mnt_ + "/" + vm + "/" + PeriodOf(b.time_us, Period::kMonth) + "/" + b.name();
  }

  TempDir tmp_;
  std::string repo_path_, mnt_;
  std::unique_ptr<store::Repository> writer_;
  DiskSpec disk_;
  store::BackupRecord first_;
  pid_t child_ = -1;
};

// Peak resident memory of a process, from /proc/PID/status, in bytes.
inline uint64_t PeakRss(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace vmvault::fs::testing
