// Shared by the end-to-end tests of the mount's disk views (views_test.cc,
// boot_test.cc, partition_files_test.cc): qemu-img and file helpers, and a fixture
// that gives each test its own repository with 64 KiB chunks.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace vmvault::testing {

inline constexpr uint64_t kChunkSize = 64 << 10;  // the repositories' chunk size
inline constexpr uint64_t kMiB = 1 << 20;

// Runs qemu-img; "" on success, else the command line, exit code and output.
inline std::string QemuImg(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"qemu-img"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = RunCmd(argv);
  if (r.exit_code == 0) return "";
  std::string line;
  for (const auto& a : argv) line += a + " ";
  return line + "-> exit " + std::to_string(r.exit_code) + ": " + r.out + r.err;
}

inline nlohmann::json QemuImgJson(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"qemu-img"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--output=json");
  RunResult r = RunCmd(argv);
  nlohmann::json out = nlohmann::json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || out.is_discarded()) {
    return {{"qemu-img", args}, {"exit", r.exit_code}, {"err", r.err}};
  }
  return out;
}

inline uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

struct FileSpace {
  uint64_t size = 0;
  uint64_t allocated = 0;  // st_blocks * 512
};

inline FileSpace SpaceOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<uint64_t>(st.st_size), static_cast<uint64_t>(st.st_blocks) * 512};
}

inline std::string Sha256(const std::string& path) {
  RunResult r = RunCmd({"sha256sum", path});
  return r.exit_code == 0 ? r.out.substr(0, 64) : "sha256sum failed: " + r.err;
}

inline void WriteAt(const std::string& path, uint64_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

// The little-endian integer of `bytes` bytes at `at` of `buf`.
inline uint64_t LoadLe(const std::string& buf, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(buf[at + i]);
  return v;
}

inline std::string RandomBytes(size_t n) {
  std::random_device seed;
  std::mt19937_64 rng(seed());
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

// Every test gets its own repository with 64 KiB chunks.
class ViewsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root for FUSE and loop devices";
    repo_ = tmp_ / "repo";
    ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo_, "--chunk-size", "64K"}).exit_code, 0);
  }

  void Ingest(const std::vector<std::string>& files, const std::string& vm) {
    std::vector<std::string> argv{VmvaultPath(), "ingest", "--repo", repo_, "--vm", vm};
    for (const auto& f : files) argv.insert(argv.end(), {"--file", f});
    RunResult r = RunCmd(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // The backup directory of the VM's only backup in the mount ("" if there is none).
  std::string BackupDir(const Mount& mount, const std::string& vm) {
    for (const auto& entry : ListJson(repo_)) {
      if (entry.value("name", "") == vm && entry["backups"].size() == 1) {
        return mount.path() + "/" + entry["backups"][0]["path"].get<std::string>();
      }
    }
    return "";
  }

  // A view of a disk in a backup directory: View(dir, "vda", "qcow2") is dir/vda.qcow2.
  static std::string View(const std::string& dir, const std::string& disk,
                          const std::string& extension) {
    return dir + "/" + disk + "." + extension;
  }

  // The partition files of a disk in a backup directory, by name.
  static std::set<std::string> PartFiles(const std::string& dir, const std::string& disk) {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename();
      if (name.rfind(disk + ".part", 0) == 0) names.insert(name);
    }
    return names;
  }

  TempDir tmp_;
  std::string repo_;
};

}  // namespace vmvault::testing
