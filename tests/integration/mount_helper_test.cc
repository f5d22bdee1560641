// mount.vmvault as mount(8) runs it: called directly with mount(8)'s arguments, and
// through mount(8) itself (`mount -t vmvault` and `-t fuse.vmvault`, and fstab lines
// with `mount -T`) with the helper linked into /sbin for the test and removed afterwards.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace vmvault::testing {
namespace {

using ::testing::HasSubstr;

std::string HelperPath() { return std::string(VV_BINARY_DIR) + "/tools/mount.vmvault"; }

// The mount options of a mountpoint in /proc/self/mounts ("" when not mounted).
std::string MountOptionsOf(const std::string& path) {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, mp, type, opts, rest;
  while (mounts >> dev >> mp >> type >> opts && std::getline(mounts, rest)) {
    if (mp == path) return type + " " + opts;
  }
  return "";
}

// Unmounts in the destructor, whatever the test did.
struct Unmounter {
  std::string path;
  ~Unmounter() {
    if (IsMountPoint(path)) Sh("fusermount3 -u '" + path + "' || umount -l '" + path + "'");
  }
};

// /sbin/NAME -> this build's NAME, removed when destroyed (also when a test fails).
// Refuses to replace a helper that is already installed.
class SbinLink {
 public:
  explicit SbinLink(const std::string& name) : path_("/sbin/" + name) {
    if (std::filesystem::exists(path_) || std::filesystem::is_symlink(path_)) return;
    linked_ =
        ::symlink((std::string(VV_BINARY_DIR) + "/tools/" + name).c_str(), path_.c_str()) == 0;
  }
  ~SbinLink() {
    if (linked_) ::unlink(path_.c_str());
  }
  SbinLink(const SbinLink&) = delete;
  SbinLink& operator=(const SbinLink&) = delete;
  bool ok() const { return linked_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool linked_ = false;
};

class MountHelperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root for FUSE";
    repo_ = tmp_ / "repo";
    mnt_ = tmp_ / "mnt";
    std::filesystem::create_directories(mnt_);
    ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo_}).exit_code, 0);
    disk_ = tmp_ / "web01.raw";
    ASSERT_EQ(Sh("truncate -s 8M " + disk_ + " && head -c 1048576 /dev/urandom | dd of=" + disk_ +
                 " bs=65536 seek=16 conv=notrunc status=none"), 0);
    RunResult r = RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--file", disk_, "--vm", "web01"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // The backup is served, read-only, at the mountpoint.
  void ExpectServed() {
    ASSERT_TRUE(IsMountPoint(mnt_));
    EXPECT_EQ(CompareFiles(mnt_ + "/web01/latest/web01.raw", disk_), "");
    const std::string opts = MountOptionsOf(mnt_);
    EXPECT_THAT(opts, HasSubstr("fuse.vmvault ro,"));
  }

  // `mount ARGS` (mount(8) itself), the backup served with `shown_option` among the
  // mount's options, then `umount`. Returns what mount wrote on stderr.
  std::string MountThenUnmount(const std::vector<std::string>& args,
                               const std::string& shown_option = "") {
    Unmounter unmount{mnt_};
    std::vector<std::string> cmd = {"mount"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    const RunResult r = RunCmd(cmd);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return r.err;
    ExpectServed();
    EXPECT_THAT(MountOptionsOf(mnt_), HasSubstr(shown_option));
    EXPECT_EQ(RunCmd({"umount", mnt_}).exit_code, 0);
    EXPECT_FALSE(IsMountPoint(mnt_));
    return r.err;
  }

  // A file of its own (for mount -T) with one fstab line: repository, mountpoint, then
  // `type_and_options`.
  std::string Fstab(const std::string& type_and_options) {
    const std::string path = tmp_ / "fstab";
    std::ofstream(path) << repo_ << " " << mnt_ << " " << type_and_options << " 0 0\n";
    return path;
  }

  TempDir tmp_;
  std::string repo_, mnt_, disk_;
};

TEST_F(MountHelperTest, MountsWithWhatMountPasses) {
  Unmounter unmount{mnt_};
  // What mount(8) passes for `REPO MNT vmvault defaults,allow_other,_netdev,nofail 0 0`.
  RunResult r = RunCmd({HelperPath(), repo_, mnt_, "-o",
                        "rw,allow_other,_netdev,nofail,x-systemd.automount,cache_size=16M,noatime"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("always read-only"));
  ExpectServed();
  const std::string opts = MountOptionsOf(mnt_);
  EXPECT_THAT(opts, HasSubstr("allow_other"));
  EXPECT_THAT(opts, HasSubstr("noatime"));
  EXPECT_EQ(Sh("fusermount3 -u " + mnt_), 0);
  EXPECT_FALSE(IsMountPoint(mnt_));
}

TEST_F(MountHelperTest, OwnerFromUidAndGid) {
  Unmounter unmount{mnt_};
  RunResult r = RunCmd({HelperPath(), repo_, mnt_, "-o", "ro,uid=1234,gid=4321"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  ASSERT_TRUE(IsMountPoint(mnt_));
  struct stat st;
  ASSERT_EQ(::stat((mnt_ + "/web01/latest/web01.raw").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 4321u);
}

TEST_F(MountHelperTest, FailuresAreClearAndMountNothing) {
  Unmounter unmount{mnt_};
  RunResult r = RunCmd({HelperPath(), repo_, mnt_, "-o", "ro,compress=zstd"});
  EXPECT_EQ(r.exit_code, 1);  // mount(8): incorrect invocation
  EXPECT_THAT(r.err, HasSubstr("mount.vmvault: unknown option 'compress=zstd'"));
  r = RunCmd({HelperPath(), tmp_ / "no-repo", mnt_, "-o", "ro"});
  EXPECT_EQ(r.exit_code, 32);  // mount(8): mount failure
  EXPECT_THAT(r.err, HasSubstr("no-repo"));
  r = RunCmd({HelperPath(), repo_, mnt_, "-f", "-o", "ro"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("would run " + VmvaultPath() + " mount --repo " + repo_));
  EXPECT_FALSE(IsMountPoint(mnt_));
}

TEST_F(MountHelperTest, ThroughMountAndFstab) {
  SbinLink link("mount.vmvault");
  if (!link.ok()) GTEST_SKIP() << link.path() << " exists already or cannot be created";
  MountThenUnmount({"-t", "vmvault", "-o", "ro,allow_other", repo_, mnt_}, "allow_other");
  // The fstab line of mount.vmvault(8).
  MountThenUnmount({"-T", Fstab("vmvault defaults,allow_other,_netdev"), mnt_}, "allow_other");
}

// The type fuse.vmvault, as fstab lines of FUSE filesystems usually have it: mount(8)
// runs mount.fuse.vmvault (the build's link to the helper) with `-t fuse.vmvault`.
TEST_F(MountHelperTest, TypeFuseVmvault) {
  SbinLink link("mount.fuse.vmvault");
  if (!link.ok()) GTEST_SKIP() << link.path() << " exists already or cannot be created";
  EXPECT_EQ(MountThenUnmount({"-t", "fuse.vmvault", "-o", "ro", repo_, mnt_}), "");
  MountThenUnmount({"-T", Fstab("fuse.vmvault ro,allow_other,nofail"), mnt_}, "allow_other");
}

}  // namespace
}  // namespace vmvault::testing
