// `vmvault ingest --virtualbox` and `--device` end to end: a .vbox machine (written after
// VirtualBox's settings format) with a VDI and a VMDK disk made by qemu-img, and a loop
// device; each backup is checked byte for byte through a real mount.
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace vmvault::testing {
namespace {

class SourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root (FUSE, loop devices)";
    repo_ = dir_.path() + "/repo";
    ASSERT_EQ(RunCmd({VmvaultPath(), "init", "-q", "--repo", repo_}).exit_code, 0);
  }

  // A raw image of `mib` MiB with patterned data here and there.
  std::string MakeRaw(const std::string& name, int mib, int pattern) {
    const std::string path = dir_.path() + "/" + name;
    EXPECT_EQ(RunCmd({"truncate", "-s", fmt::format("{}M", mib), path}).exit_code, 0);
    EXPECT_EQ(RunCmd({"qemu-io", "-f", "raw", "-c", fmt::format("write -P {} 1M 2M", pattern),
                      "-c", fmt::format("write -P {} {}M 64k", pattern + 1, mib - 1), path})
                  .exit_code,
              0);
    return path;
  }

  std::string BackupDir(const std::string& vm) {
    for (auto& v : ListJson(repo_)) {
      if (v["name"] == vm && !v["backups"].empty()) return v["backups"].back()["path"];
    }
    return "";
  }

  TempDir dir_;
  std::string repo_;
};

TEST_F(SourcesTest, VirtualBoxMachineWithVdiAndVmdkDisks) {
  const std::string raw0 = MakeRaw("a.raw", 16, 0x21), raw1 = MakeRaw("b.raw", 8, 0x41);
  const std::string vm_dir = dir_.path() + "/VirtualBox VMs/office";
  std::filesystem::create_directories(vm_dir);
  ASSERT_EQ(RunCmd({"qemu-img", "convert", "-O", "vdi", raw0, vm_dir + "/office.vdi"}).exit_code, 0);
  ASSERT_EQ(RunCmd({"qemu-img", "convert", "-O", "vmdk", raw1, vm_dir + "/data.vmdk"}).exit_code, 0);
  const std::string vbox = fmt::format(R"(<?xml version="1.0"?>
<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">
  <Machine uuid="{{6d1c8f2e-0b7a-4c39-9f1e-3a5b7c9d1e2f}}" name="office" OSType="Debian_64">
    <MediaRegistry><HardDisks>
      <HardDisk uuid="{{11111111-2222-4333-8444-555555555555}}" location="office.vdi" format="VDI" type="Normal"/>
      <HardDisk uuid="{{66666666-7777-4888-9999-aaaaaaaaaaaa}}" location="data.vmdk" format="VMDK" type="Normal"/>
    </HardDisks></MediaRegistry>
    <Hardware>
      <StorageControllers>
        <StorageController name="SATA" type="AHCI" PortCount="2">
          <AttachedDevice type="HardDisk" port="0" device="0"><Image uuid="{{11111111-2222-4333-8444-555555555555}}"/></AttachedDevice>
          <AttachedDevice type="HardDisk" port="1" device="0"><Image uuid="{{66666666-7777-4888-9999-aaaaaaaaaaaa}}"/></AttachedDevice>
        </StorageController>
      </StorageControllers>
    </Hardware>
  </Machine>
</VirtualBox>
)");
  std::ofstream(vm_dir + "/office.vbox") << vbox;

  RunResult r = RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--virtualbox",
                        dir_.path() + "/VirtualBox VMs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string path = BackupDir("office");
  ASSERT_FALSE(path.empty());
  Mount mount(repo_, dir_.path() + "/mnt");
  ASSERT_TRUE(mount.ok());
  const std::string base = mount.path() + "/" + path;
  EXPECT_EQ(Slurp(base + "/machine.vbox"), vbox);
  EXPECT_EQ(CompareFiles(base + "/SATA-0-0.raw", raw0), "");
  EXPECT_EQ(CompareFiles(base + "/SATA-1-0.raw", raw1), "");
}

TEST_F(SourcesTest, AMissingVirtualBoxPathIsAClearError) {
  RunResult r = RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--virtualbox",
                        dir_.path() + "/nothing"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("nothing"), std::string::npos) << r.err;
  EXPECT_TRUE(ListJson(repo_).empty());
}

TEST_F(SourcesTest, BlockDeviceIsReadWhole) {
  const std::string raw = MakeRaw("dev.raw", 12, 0x51);
  RunResult l = RunCmd({"losetup", "-f", "--show", "-r", raw});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  std::string dev = l.out;
  while (!dev.empty() && dev.back() == '\n') dev.pop_back();
  struct Detach {
    std::string dev;
    ~Detach() { RunCmd({"losetup", "-d", dev}); }
  } detach{dev};
  RunResult r = RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--device", dev, "--vm", "disk1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string path = BackupDir("disk1");
  ASSERT_FALSE(path.empty());
  Mount mount(repo_, dir_.path() + "/mnt");
  ASSERT_TRUE(mount.ok());
  const std::string name = std::filesystem::path(dev).filename();
  EXPECT_EQ(CompareFiles(mount.path() + "/" + path + "/" + name + ".raw", raw), "");
}

}  // namespace
}  // namespace vmvault::testing
