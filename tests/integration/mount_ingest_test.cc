// A mount and an ingest together, end to end: the mount follows the repository while
// `vmvault ingest` writes to it, shows the new backup without a remount, and serves an
// open file of an older backup throughout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "harness.h"

namespace vmvault::testing {
namespace {

namespace fsys = std::filesystem;

TEST(MountIngestTest, ANewBackupAppearsInARunningMountWhileOldFilesKeepReading) {
  if (!IsRoot()) GTEST_SKIP() << "needs root for FUSE";
  TempDir tmp;
  const std::string repo = tmp / "repo";
  ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo, "--chunk-size", "64K"}).exit_code, 0);
  const std::string image = tmp / "web.raw";
  ASSERT_EQ(Sh("truncate -s 40M " + image + " && head -c 24M /dev/urandom | dd of=" + image +
               " conv=notrunc status=none"),
            0);
  const std::string first = tmp / "first.raw";
  ASSERT_EQ(Sh("cp " + image + " " + first), 0);
  RunResult r = RunCmd({VmvaultPath(), "ingest", "--repo", repo, "--file", image, "--vm", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  Mount mount(repo, tmp / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string vm_dir = mount.path() + "/web";
  const std::string old_path = fsys::canonical(vm_dir + "/latest").string() + "/web.raw";
  const int fd = ::open(old_path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const std::string old_bytes = Slurp(first);

  // New data, then an ingest while a reader streams the old backup's file over and over.
  ASSERT_EQ(
      Sh("head -c 8M /dev/urandom | dd of=" + image + " bs=1M seek=30 conv=notrunc status=none"),
      0);
  std::atomic<bool> done{false};
  std::atomic<int> passes{0}, bad{0};
  std::thread reader([&] {
    std::string buf(1 << 20, '\0');
    while (!done.load() || passes.load() == 0) {
      for (size_t off = 0; off < old_bytes.size(); off += buf.size()) {
        const ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
        if (n != static_cast<ssize_t>(buf.size()) ||
            std::memcmp(buf.data(), old_bytes.data() + off, buf.size()) != 0) {
          ++bad;
        }
      }
      ++passes;
      // Each pass must go to the mount, not the page cache.
      (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    }
  });
  r = RunCmd({VmvaultPath(), "ingest", "--repo", repo, "--file", image, "--vm", "web"});
  done = true;
  reader.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(bad.load(), 0) << "of " << passes.load() << " passes over the old backup";

  const nlohmann::json list = ListJson(repo);
  ASSERT_EQ(list[0]["backups"].size(), 2u);
  const std::string new_path =
      mount.path() + "/" + list[0]["backups"][1]["path"].get<std::string>() + "/web.raw";
  // The new backup appears without a remount (a bound against hanging, not a timing
  // assertion: the mount looks at most once a second).
  bool appeared = false;
  for (int i = 0; i < 100 && !appeared; ++i) {
    appeared = fsys::exists(new_path);
    if (!appeared) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(appeared) << new_path << " did not appear within 10 s";
  EXPECT_EQ(CompareFiles(new_path, image), "");
  // `latest` moved to it; the open file of the old one still reads its own bytes.
  EXPECT_EQ(CompareFiles(vm_dir + "/latest/web.raw", image), "");
  std::string buf(old_bytes.size(), '\0');
  EXPECT_EQ(::pread(fd, buf.data(), buf.size(), 0), static_cast<ssize_t>(buf.size()));
  EXPECT_TRUE(buf == old_bytes);
  ::close(fd);
}

// The staging layout, vmprestage's staging area for tape tools: each VM's latest backup
// under /<tier>/<original path>/, only the views asked for. A new backup replaces the
// files under the same names (other inodes, new mtimes) without a remount, while an
// open file of the older one keeps reading its own bytes.
TEST(MountIngestTest, TheStagingLayoutShowsEachVmsLatestBackupByTierAndPath) {
  if (!IsRoot()) GTEST_SKIP() << "needs root for FUSE";
  TempDir tmp;
  const std::string repo = tmp / "repo";
  ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo, "--chunk-size", "64K"}).exit_code, 0);
  fsys::create_directories(tmp / "vms");
  fsys::create_directories(tmp / "other");
  const std::string web = tmp / "vms/web.raw";
  const std::string db = tmp / "other/db.img";
  ASSERT_EQ(Sh("truncate -s 24M " + web + " " + db + " && head -c 12M /dev/urandom | dd of=" + web +
               " conv=notrunc status=none && head -c 1M /dev/urandom | dd of=" + db +
               " conv=notrunc status=none"),
            0);
  RunResult r = RunCmd(
      {VmvaultPath(), "ingest", "--repo", repo, "--file", web, "--vm", "web", "--tier", "hot"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCmd(
      {VmvaultPath(), "ingest", "--repo", repo, "--file", db, "--vm", "db", "--tier", "cold"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string first = tmp / "first.raw";
  ASSERT_EQ(Sh("cp " + web + " " + first), 0);

  Mount mount(repo, tmp / "mnt", {"--layout", "staging", "--views", "raw,qcow2"});
  ASSERT_TRUE(mount.ok());
  auto names = [](const std::string& dir) {
    std::set<std::string> out;
    for (const auto& e : fsys::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
  };
  EXPECT_EQ(names(mount.path()), (std::set<std::string>{"cold", "hot"}));
  const std::string web_dir = mount.path() + "/hot" + tmp.path() + "/vms/web";
  const std::string db_dir = mount.path() + "/cold" + tmp.path() + "/other/db";
  ASSERT_EQ(names(web_dir), (std::set<std::string>{"manifest.json", "web.qcow2", "web.raw"}));
  ASSERT_EQ(names(db_dir), (std::set<std::string>{"db.qcow2", "db.raw", "manifest.json"}));
  EXPECT_EQ(CompareFiles(web_dir + "/web.raw", web), "");
  EXPECT_EQ(CompareFiles(db_dir + "/db.raw", db), "");
  EXPECT_EQ(Sh("qemu-img compare -q -f qcow2 -F raw " + web_dir + "/web.qcow2 " + web), 0);
  // A tape tool walks it like any directory tree.
  const std::string listing = tmp / "tar.txt";
  ASSERT_EQ(Sh("tar -C " + mount.path() + " -cf - . | tar -tvf - > " + listing), 0);
  EXPECT_NE(Slurp(listing).find("hot" + tmp.path() + "/vms/web/web.qcow2"), std::string::npos)
      << Slurp(listing);

  struct stat before {};
  ASSERT_EQ(::stat((web_dir + "/web.raw").c_str(), &before), 0);
  const int fd = ::open((web_dir + "/web.raw").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(
      Sh("head -c 4M /dev/urandom | dd of=" + web + " bs=1M seek=20 conv=notrunc status=none"), 0);
  r = RunCmd({VmvaultPath(), "ingest", "--repo", repo, "--file", web, "--vm", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The same name shows the new backup (a bound against hanging: the mount looks again
  // at most once a second).
  bool replaced = false;
  for (int i = 0; i < 100 && !replaced; ++i) {
    replaced = CompareFiles(web_dir + "/web.raw", web).empty();
    if (!replaced) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(replaced) << "the staging file did not show the new backup within 10 s";
  struct stat after {};
  ASSERT_EQ(::stat((web_dir + "/web.raw").c_str(), &after), 0);
  EXPECT_NE(after.st_ino, before.st_ino);
  auto ns = [](const struct stat& st) {
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  };
  EXPECT_GT(ns(after), ns(before));  // the new backup's time
  EXPECT_EQ(Sh("qemu-img compare -q -f qcow2 -F raw " + web_dir + "/web.qcow2 " + web), 0);
  const std::string old_bytes = Slurp(first);
  std::string buf(old_bytes.size(), '\0');
  EXPECT_EQ(::pread(fd, buf.data(), buf.size(), 0), static_cast<ssize_t>(buf.size()));
  EXPECT_TRUE(buf == old_bytes);
  ::close(fd);
}

}  // namespace
}  // namespace vmvault::testing
