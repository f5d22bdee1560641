// `vmvault ingest --virtualbox` and `--device` end to end: .vbox machines (written after
// VirtualBox's settings format) with VDI and VMDK disks and VMDK snapshot chains made by
// qemu-img, and a loop device; each backup is checked byte for byte through a real mount.
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/vbox_settings.h"

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

  // Runs a qemu tool (or any set-up command) and expects it to succeed.
  static void Run(const std::vector<std::string>& argv) {
    const RunResult r = RunCmd(argv);
    EXPECT_EQ(r.exit_code, 0) << argv[0] << " " << argv[1] << ": " << r.err;
  }

  // Writes `vm_dir`/`name`.vbox (`file`.vbox when `file` is given): VboxMachineXml.
  // Returns its text.
  static std::string WriteChainMachine(
      const std::string& vm_dir, const std::string& name,
      const std::vector<std::pair<std::string, std::string>>& layers,
      const std::string& controller = "SATA", const std::string& file = "") {
    const std::string vbox = VboxMachineXml(name, layers, controller);
    std::ofstream(vm_dir + "/" + (file.empty() ? name : file) + ".vbox") << vbox;
    return vbox;
  }
  static std::string LayerUuid(size_t i) { return VboxLayerUuid(i); }

  // Ingests `path` and compares the raw view of machine `vm`'s disk SATA-0-0, mounted,
  // with the file `want`.
  void IngestAndCompare(const std::string& path, const std::string& vm, const std::string& want) {
    const RunResult r = RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--virtualbox", path});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string backup = BackupDir(vm);
    ASSERT_FALSE(backup.empty());
    Mount mount(repo_, dir_.path() + "/mnt");
    ASSERT_TRUE(mount.ok());
    EXPECT_EQ(CompareFiles(mount.path() + "/" + backup + "/SATA-0-0.raw", want), "");
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

// Three VMDK layers, as VirtualBox lays out snapshots: the base beside the .vbox, the
// differencing images in Snapshots/ named by uuid. Each child writes over its parent's
// data in places and beside it in others.
TEST_F(SourcesTest, VirtualBoxVmdkSnapshotChain) {
  const std::string vm_dir = dir_.path() + "/VirtualBox VMs/build";
  const std::string snaps = vm_dir + "/Snapshots";
  std::filesystem::create_directories(snaps);
  const std::string base = vm_dir + "/build.vmdk";
  const std::string snap1 = fmt::format("{}/{{{}}}.vmdk", snaps, LayerUuid(1));
  const std::string snap2 = fmt::format("{}/{{{}}}.vmdk", snaps, LayerUuid(2));
  Run({"qemu-img", "create", "-q", "-f", "vmdk", base, "16M"});
  Run({"qemu-io", "-f", "vmdk", "-c", "write -P 0x11 0 4M", "-c", "write -P 0x12 8M 2M", "-c",
       "write -P 0x13 15M 1M", base});
  Run({"qemu-img", "create", "-q", "-f", "vmdk", "-b", "../build.vmdk", "-F", "vmdk", snap1});
  Run({"qemu-io", "-f", "vmdk", "-c", "write -P 0x21 2M 4M", "-c", "write -P 0x22 12M 1M", snap1});
  Run({"qemu-img", "create", "-q", "-f", "vmdk", "-b", std::filesystem::path(snap1).filename(),
       "-F", "vmdk", snap2});
  Run({"qemu-io", "-f", "vmdk", "-c", "write -P 0x31 3M 64k", "-c", "write -P 0x32 9M 512k", "-c",
       "write -P 0x33 15872k 64k", snap2});
  const std::string want = dir_.path() + "/want.raw";
  Run({"qemu-img", "convert", "-O", "raw", "-f", "vmdk", snap2, want});
  WriteChainMachine(vm_dir, "build",
                    {{"build.vmdk", "VMDK"},
                     {fmt::format("Snapshots/{{{}}}.vmdk", LayerUuid(1)), "VMDK"},
                     {fmt::format("Snapshots/{{{}}}.vmdk", LayerUuid(2)), "VMDK"}});
  IngestAndCompare(dir_.path() + "/VirtualBox VMs", "build", want);
}

// What the media registry says is the parent is read, whatever the descriptor's
// parentFileNameHint says: the middle layer's hint names a decoy, the top has none (as
// VirtualBox writes them).
TEST_F(SourcesTest, VirtualBoxVmdkChainFollowsTheRegistryNotTheHint) {
  const std::string vm_dir = dir_.path() + "/vms/hints";
  std::filesystem::create_directories(vm_dir);
  const std::string hinted = vm_dir + "/base.vmdk", base = vm_dir + "/real-base.vmdk";
  const std::string mid = vm_dir + "/mid.vmdk", top = vm_dir + "/top.vmdk";
  Run({"qemu-img", "create", "-q", "-f", "vmdk", hinted, "8M"});
  Run({"qemu-io", "-f", "vmdk", "-c", "write -P 0x41 0 6M", hinted});
  Run({"qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", mid});
  Run({"qemu-io", "-f", "vmdk", "-c", "write -P 0x42 1M 1M", mid});
  Run({"qemu-img", "create", "-q", "-f", "vmdk", "-b", "mid.vmdk", "-F", "vmdk", top});
  Run({"qemu-io", "-f", "vmdk", "-c", "write -P 0x43 5M 2M", top});
  const std::string want = dir_.path() + "/want.raw";
  Run({"qemu-img", "convert", "-O", "raw", "-f", "vmdk", top, want});

  // The real base moves; a decoy takes the name mid.vmdk's hint gives.
  std::filesystem::rename(hinted, base);
  Run({"qemu-img", "create", "-q", "-f", "vmdk", hinted, "8M"});
  Run({"qemu-io", "-f", "vmdk", "-c", "write -P 0x77 0 8M", hinted});
  // The top's hint is blanked out in place (the descriptor is text inside the file).
  {
    std::fstream f(top, std::ios::in | std::ios::out | std::ios::binary);
    std::string head(64 << 10, '\0');
    f.read(head.data(), static_cast<std::streamsize>(head.size()));
    const std::string hint = R"(parentFileNameHint="mid.vmdk")";
    const size_t at = head.find(hint);
    ASSERT_NE(at, std::string::npos);
    f.clear();
    f.seekp(static_cast<std::streamoff>(at));
    f << "#" << std::string(hint.size() - 1, ' ');
  }
  const RunResult info = RunCmd({"qemu-img", "info", "-f", "vmdk", "--output=json", top});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(info.out.find("backing-filename"), std::string::npos) << info.out;

  WriteChainMachine(vm_dir, "hints",
                    {{"real-base.vmdk", "VMDK"}, {"mid.vmdk", "VMDK"}, {"top.vmdk", "VMDK"}});
  IngestAndCompare(vm_dir + "/hints.vbox", "hints", want);
}

// A parent written to after its child was made (its CID changed) would read as a mix of
// old and new data: refused before anything is read, naming both files.
TEST_F(SourcesTest, VirtualBoxVmdkChainWithAChangedParentIsRefused) {
  const std::string vm_dir = dir_.path() + "/vms/stale";
  std::filesystem::create_directories(vm_dir);
  const std::string base = vm_dir + "/base.vmdk", snap = vm_dir + "/snap.vmdk";
  Run({"qemu-img", "create", "-q", "-f", "vmdk", base, "8M"});
  Run({"qemu-io", "-f", "vmdk", "-c", "write -P 0x51 0 1M", base});
  Run({"qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", snap});
  Run({"qemu-io", "-f", "vmdk", "-c", "write -P 0x52 2M 1M", snap});
  Run({"qemu-io", "-f", "vmdk", "-c", "write -P 0x53 4M 1M", base});
  WriteChainMachine(vm_dir, "stale", {{"base.vmdk", "VMDK"}, {"snap.vmdk", "VMDK"}});

  const RunResult r =
      RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--virtualbox", vm_dir + "/stale.vbox"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find(fmt::format("VMDK image '{}' was not made on '{}'", snap, base)),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(ListJson(repo_).empty());
}

TEST_F(SourcesTest, VirtualBoxMixedChainIsRefused) {
  const std::string vm_dir = dir_.path() + "/vms/mixed";
  std::filesystem::create_directories(vm_dir);
  Run({"qemu-img", "create", "-q", "-f", "vmdk", vm_dir + "/base.vmdk", "8M"});
  Run({"qemu-img", "create", "-q", "-f", "vdi", vm_dir + "/snap.vdi", "8M"});
  WriteChainMachine(vm_dir, "mixed", {{"base.vmdk", "VMDK"}, {"snap.vdi", "VDI"}});
  const RunResult r =
      RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--virtualbox", vm_dir + "/mixed.vbox"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("more than one format"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("all VDI or all VMDK"), std::string::npos) << r.err;
  EXPECT_TRUE(ListJson(repo_).empty());
}

// A machine and a controller named to climb out of the tree (a newline, "..", "/"):
// the VM and its disk get safe names, the mount shows them as single entries, and the
// disk reads back whole.
TEST_F(SourcesTest, VirtualBoxHostileNamesBecomeSafeNames) {
  const std::string vm_dir = dir_.path() + "/vms";
  std::filesystem::create_directories(vm_dir);
  const std::string raw = MakeRaw("h.raw", 8, 0x51);
  Run({"qemu-img", "convert", "-O", "vdi", raw, vm_dir + "/h.vdi"});
  // &#10; is a newline that survives XML's attribute normalization.
  WriteChainMachine(vm_dir, "../../etc&#10;evil", {{"h.vdi", "VDI"}}, "SATA/../../x&#10;y",
                    "hostile");
  const RunResult r =
      RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--virtualbox", vm_dir + "/hostile.vbox"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json list = ListJson(repo_);
  ASSERT_EQ(list.size(), 1u);
  const std::string vm = list[0]["name"];
  EXPECT_EQ(vm.find_first_of("/\n"), std::string::npos) << vm;
  EXPECT_NE(vm.front(), '.') << vm;
  ASSERT_EQ(list[0]["backups"].size(), 1u);
  const std::string path = list[0]["backups"][0]["path"];
  const std::string disk = list[0]["backups"][0]["disks"][0]["name"];
  EXPECT_EQ(disk.find_first_of("/\n"), std::string::npos) << disk;

  Mount mount(repo_, dir_.path() + "/mnt");
  ASSERT_TRUE(mount.ok());
  std::vector<std::string> top;
  for (const auto& e : std::filesystem::directory_iterator(mount.path())) {
    top.push_back(e.path().filename());
  }
  EXPECT_EQ(top, std::vector<std::string>{vm});
  EXPECT_EQ(CompareFiles(mount.path() + "/" + path + "/" + disk + ".raw", raw), "");
  // Nothing was written outside the repository and the test's folder.
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/../etc"));
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
