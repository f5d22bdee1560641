// vmvault restore, end to end: a backup written back as raw, qcow2, VHDX and VMDK files
// (checked with qemu-img against the source), into a directory for a VM with several
// disks, and onto a real loop device; and the inputs that must be refused without
// touching anything.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>

#include <gtest/gtest.h>

#include "harness.h"

namespace vmvault::testing {
namespace {

constexpr int kExitBadInput = 5;

// A loop device over a file, detached when destroyed.
class LoopDevice {
 public:
  explicit LoopDevice(const std::string& file) {
    RunResult r = RunCmd({"losetup", "-f", "--show", file});
    if (r.exit_code == 0) device_ = r.out.substr(0, r.out.find('\n'));
  }
  ~LoopDevice() {
    if (!device_.empty()) RunCmd({"losetup", "-d", device_});
  }
  const std::string& path() const { return device_; }

 private:
  std::string device_;
};

class RestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root for loop devices";
    repo_ = tmp_ / "repo";
    ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo_, "--chunk-size", "64K"}).exit_code,
              0);
    source_ = MakeDisk("web.raw", "24M");
    Ingest({"--file", source_, "--vm", "web"});
  }

  // A sparse disk: random data at 0, 5 and 17 MiB (so at least 18 MiB), and holes.
  std::string MakeDisk(const std::string& name, const std::string& size) {
    const std::string path = tmp_ / name;
    EXPECT_EQ(Sh("truncate -s " + size + " " + path), 0);
    for (const char* seek : {"0", "5", "17"}) {
      EXPECT_EQ(Sh(std::string("head -c 700000 /dev/urandom | dd of=") + path +
                   " bs=1M seek=" + seek + " conv=notrunc status=none"), 0);
    }
    return path;
  }

  void Ingest(const std::vector<std::string>& extra) {
    std::vector<std::string> argv{VmvaultPath(), "ingest", "--repo", repo_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    RunResult r = RunCmd(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  RunResult Restore(const std::vector<std::string>& extra) {
    std::vector<std::string> argv{VmvaultPath(), "restore", "--repo", repo_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCmd(argv);
  }

  static uint64_t Blocks(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
  }

  TempDir tmp_;
  std::string repo_;
  std::string source_;
};

// A configuration file whose hooks append their arguments to tmp_/hooks.log.
class HookedRestoreTest : public RestoreTest {
 protected:
  std::string Config(const std::string& hooks) {
    const std::string script = tmp_ / "hook.sh";
    std::ofstream(script) << "#!/bin/sh\necho \"$*\" >> " << (tmp_ / "hooks.log")
                          << "\n";
    ::chmod(script.c_str(), 0755);
    const std::string path = tmp_ / "config.toml";
    std::string text = hooks;
    for (size_t at; (at = text.find("HOOK")) != std::string::npos;) {
      text.replace(at, 4, script);
    }
    std::ofstream(path) << "[hooks]\n" << text;
    return path;
  }
  std::string Log() { return Slurp(tmp_ / "hooks.log"); }
  size_t Backups() {
    RunResult r = RunCmd({VmvaultPath(), "list", "--repo", repo_, "--json"});
    size_t n = 0;
    for (size_t at = 0; (at = r.out.find("\"checkpoint\"", at)) != std::string::npos; ++at) ++n;
    return n;
  }
};

TEST_F(HookedRestoreTest, RestoreRunsItsHooksAndAFailingPreHookWritesNothing) {
  const std::string out = tmp_ / "out.raw";
  const std::string config = Config(
      "pre-restore = [\"HOOK\", \"pre\", \"{{VM}}\", \"{{Tier}}\", \"{{Target}}\"]\n"
      "post-restore = [\"HOOK\", \"post\", \"{{VM}}\", \"{{Backup}}\", \"{{Status}}\"]\n");
  RunResult r = Restore({"web", "--to", out, "--config", config});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(CompareFiles(source_, out), "");
  const std::string log = Log();
  EXPECT_NE(log.find("pre web warm " + out + "\n"), std::string::npos) << log;
  EXPECT_NE(log.find("post web "), std::string::npos) << log;
  EXPECT_NE(log.find(" ok\n"), std::string::npos) << log;
  EXPECT_LT(log.find("pre web"), log.find("post web")) << log;

  const std::string out2 = tmp_ / "out2.raw";
  const std::string failing = Config(
      "pre-restore = [\"/bin/false\"]\n"
      "post-restore = [\"HOOK\", \"post\", \"{{VM}}\", \"{{Status}}\"]\n");
  r = Restore({"web", "--to", out2, "--config", failing});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("pre-restore"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out2));
  EXPECT_NE(Log().find("post web failed\n"), std::string::npos) << Log();
  // No partial file beside it either.
  for (const auto& e : std::filesystem::directory_iterator(tmp_.path())) {
    EXPECT_EQ(e.path().filename().string().find("vmvault-partial"), std::string::npos);
  }
}

TEST_F(HookedRestoreTest, IngestWithAConfigRunsTheBackupHooksAndAFailingPreHookStoresNothing) {
  const std::string config = Config(
      "pre-backup = [\"HOOK\", \"pre\", \"{{VM}}\", \"{{Tier}}\"]\n"
      "post-backup = [\"HOOK\", \"post\", \"{{VM}}\", \"{{Backup}}\", \"{{Status}}\"]\n");
  const size_t before = Backups();
  ASSERT_EQ(before, 1u);
  Ingest({"--file", source_, "--vm", "web", "--config", config});
  EXPECT_EQ(Backups(), 2u);
  const std::string log = Log();
  EXPECT_NE(log.find("pre web warm\n"), std::string::npos) << log;
  EXPECT_NE(log.find("post web "), std::string::npos) << log;
  EXPECT_NE(log.find(" ok\n"), std::string::npos) << log;

  const std::string failing = Config("pre-backup = [\"/bin/false\"]\n");
  RunResult r = RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--file", source_, "--vm",
                        "web", "--config", failing});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("pre-backup"), std::string::npos) << r.err;
  EXPECT_EQ(Backups(), 2u);
  // Without --config (and $VMVAULT_CONFIG) no hook runs.
  std::filesystem::remove(tmp_ / "hooks.log");
  Ingest({"--file", source_, "--vm", "web"});
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "hooks.log"));
}

TEST_F(RestoreTest, AMissingDeviceIsRefusedButAFilesystemUnderDevIsNot) {
  RunResult r = Restore({"web", "--to", "/dev/vmvault-no-such-disk"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_NE(r.err.find("there is no device"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists("/dev/vmvault-no-such-disk"));
  if (!IsMountPoint("/dev/shm")) GTEST_SKIP() << "/dev/shm is not a filesystem of its own here";
  const std::string out = "/dev/shm/vmvault-restore-test-" + std::to_string(::getpid()) + ".raw";
  r = Restore({"web", "--to", out});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(CompareFiles(source_, out), "");
  std::filesystem::remove(out);
}

TEST_F(RestoreTest, EveryFormatHoldsTheBackedUpDisk) {
  for (const std::string format : {"raw", "qcow2", "vhdx", "vmdk"}) {
    SCOPED_TRACE(format);
    const std::string out = tmp_ / ("out." + format);
    RunResult r = Restore({"web", "--to", out, "--format", format});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "") << "quiet when not on a terminal";
    RunResult cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", format, source_, out});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
    if (format != "vmdk") {
      RunResult check = RunCmd({"qemu-img", "check", "-f", format, out});
      EXPECT_TRUE(format == "raw" || check.exit_code == 0) << check.out << check.err;
    }
  }
  EXPECT_EQ(Sh("ls " + tmp_.path() + " | grep -q vmvault-partial"), 1) << "no temporary left";
  // Private (disk images hold secrets), and written sparse: the 24 MiB raw file takes
  // about its 2 MiB of data.
  struct stat st {};
  ASSERT_EQ(::stat((tmp_ / "out.qcow2").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_LT(Blocks(tmp_ / "out.raw"), 4u << 20);
  EXPECT_TRUE(std::filesystem::exists(tmp_ / "out-flat.vmdk"));
  EXPECT_NE(Slurp(tmp_ / "out.vmdk").find("\"out-flat.vmdk\""), std::string::npos);
}

TEST_F(RestoreTest, ChoosesBackupsByNameIdAndLatest) {
  ASSERT_EQ(Sh("head -c 4096 /dev/urandom | dd of=" + source_ +
               " bs=4096 seek=100 conv=notrunc status=none"), 0);
  Ingest({"--file", source_, "--vm", "web"});
  const nlohmann::json list = ListJson(repo_);
  ASSERT_EQ(list[0]["backups"].size(), 2u);
  const std::string first = list[0]["backups"][0]["name"];
  const std::string first_path = list[0]["backups"][0]["path"];

  ASSERT_EQ(Restore({"web", "--to", tmp_ / "latest.raw"}).exit_code, 0);
  EXPECT_EQ(CompareFiles(tmp_ / "latest.raw", source_), "");
  ASSERT_EQ(Restore({"web", first, "--to", tmp_ / "first.raw"}).exit_code, 0);
  EXPECT_NE(CompareFiles(tmp_ / "first.raw", source_), "") << "the first backup predates the write";
  ASSERT_EQ(Restore({"web", first_path, "--to", tmp_ / "by-path.raw"}).exit_code, 0);
  EXPECT_EQ(CompareFiles(tmp_ / "by-path.raw", tmp_ / "first.raw"), "");
  const std::string id = std::to_string(list[0]["backups"][0]["id"].get<uint64_t>());
  ASSERT_EQ(Restore({"web", id, "--to", tmp_ / "by-id.raw"}).exit_code, 0);
  EXPECT_EQ(CompareFiles(tmp_ / "by-id.raw", tmp_ / "first.raw"), "");
}

TEST_F(RestoreTest, SeveralDisksGoIntoADirectoryOrOneByName) {
  const std::string data = MakeDisk("data.raw", "20M");
  Ingest({"--file", source_, "--file", data, "--vm", "db"});
  const std::string dir = tmp_ / "db-restore";
  RunResult r = Restore({"db", "--to", dir, "--format", "qcow2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(RunCmd({"qemu-img", "compare", "-F", "qcow2", source_, dir + "/web.qcow2"}).exit_code,
            0);
  EXPECT_EQ(RunCmd({"qemu-img", "compare", "-F", "qcow2", data, dir + "/data.qcow2"}).exit_code,
            0);
  ASSERT_EQ(Restore({"db", "--disk", "data", "--to", tmp_ / "only.raw"}).exit_code, 0);
  EXPECT_EQ(CompareFiles(tmp_ / "only.raw", data), "");
  // Disks whose names clash get the mount's `~2`, never each other's file.
  Ingest({"--file", source_, "--file", source_, "--vm", "twins"});
  const std::string twins = tmp_ / "twins";
  ASSERT_EQ(Restore({"twins", "--to", twins}).exit_code, 0);
  EXPECT_EQ(CompareFiles(twins + "/web.raw", source_), "");
  EXPECT_EQ(CompareFiles(twins + "/web-2.raw", source_), "");
  RunResult none = Restore({"db", "--disk", "nope", "--to", tmp_ / "x.raw"});
  EXPECT_EQ(none.exit_code, kExitBadInput);
  EXPECT_NE(none.err.find("no disk 'nope'"), std::string::npos) << none.err;
}

TEST_F(RestoreTest, RefusesWhatWouldLoseDataOrCannotWork) {
  const std::string out = tmp_ / "existing.raw";
  ASSERT_EQ(Sh("echo precious > " + out), 0);
  RunResult r = Restore({"web", "--to", out});
  EXPECT_EQ(r.exit_code, kExitBadInput);
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_EQ(Slurp(out), "precious\n");
  ASSERT_EQ(Restore({"web", "--to", out, "--force"}).exit_code, 0);
  EXPECT_EQ(CompareFiles(out, source_), "");

  EXPECT_EQ(Restore({"nope", "--to", tmp_ / "a"}).exit_code, kExitBadInput);
  EXPECT_EQ(Restore({"web", "2001-01-01T000000Z", "--to", tmp_ / "a"}).exit_code, kExitBadInput);
  EXPECT_EQ(Restore({"web", "--to", tmp_ / "a", "--format", "vdi"}).exit_code, kExitBadInput);
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "a"));
  // --force replaces regular files only, and nothing is created under /dev.
  RunResult devnull = Restore({"web", "--to", "/dev/null", "--force"});
  EXPECT_EQ(devnull.exit_code, kExitBadInput) << devnull.err;
  EXPECT_NE(devnull.err.find("not a regular file"), std::string::npos) << devnull.err;
  EXPECT_EQ(Restore({"web", "--to", "/dev/vmvault-no-such-disk", "--force"}).exit_code,
            kExitBadInput);
  EXPECT_FALSE(std::filesystem::exists("/dev/vmvault-no-such-disk"));
  // A destination that cannot be written fails cleanly and leaves nothing behind.
  RunResult bad = Restore({"web", "--to", "/proc/vmvault-restore.raw"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err, "");
  // Nowhere to go; --define of a backup that holds no domain XML, or of one disk.
  RunResult nowhere = Restore({"web"});
  EXPECT_EQ(nowhere.exit_code, kExitBadInput);
  EXPECT_NE(nowhere.err.find("--to PATH, or --define NAME"), std::string::npos) << nowhere.err;
  RunResult define = Restore({"web", "--define", "web2", "--to", tmp_ / "images",
                              "--connect", "test:///default"});
  EXPECT_EQ(define.exit_code, kExitBadInput);
  EXPECT_NE(define.err.find("holds no libvirt domain XML"), std::string::npos) << define.err;
  EXPECT_EQ(Restore({"web", "--define", "web2", "--disk", "web", "--to", tmp_ / "images"})
                .exit_code,
            kExitBadInput);
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "images"));
}

TEST_F(RestoreTest, BlockDeviceGetsEveryByteHolesIncluded) {
  // A device full of 0xff: the disk's holes must come out as zeros.
  const std::string backing = tmp_ / "device.img";
  ASSERT_EQ(Sh("head -c 25165824 /dev/zero | tr '\\0' '\\377' > " + backing), 0);
  LoopDevice dev(backing);
  ASSERT_FALSE(dev.path().empty());
  RunResult no_force = Restore({"web", "--to", dev.path()});
  EXPECT_EQ(no_force.exit_code, kExitBadInput);
  EXPECT_NE(no_force.err.find("--force"), std::string::npos) << no_force.err;
  EXPECT_EQ(Restore({"web", "--to", dev.path(), "--format", "qcow2", "--force"}).exit_code,
            kExitBadInput);

  RunResult r = Restore({"web", "--to", dev.path(), "--force"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(RunCmd({"cmp", "-n", "25165824", dev.path(), source_}).exit_code, 0);

  // A device smaller than the disk is refused before anything is written.
  const std::string small = tmp_ / "small.img";
  ASSERT_EQ(Sh("truncate -s 8M " + small), 0);
  LoopDevice small_dev(small);
  ASSERT_FALSE(small_dev.path().empty());
  RunResult too_small = Restore({"web", "--to", small_dev.path(), "--force"});
  EXPECT_EQ(too_small.exit_code, kExitBadInput);
  EXPECT_NE(too_small.err.find("holds"), std::string::npos) << too_small.err;
}

// restore --interactive on a pseudo-terminal: the menus as a user sees them.
class InteractiveRestoreTest : public RestoreTest {
 protected:
  void SetUp() override {
    RestoreTest::SetUp();
    if (IsSkipped()) return;
    // A second VM listed before web, and a second backup of web.
    Ingest({"--file", MakeDisk("app.raw", "24M"), "--vm", "app"});
    first_ = tmp_ / "first.raw";
    ASSERT_EQ(Sh("cp --sparse=always " + source_ + " " + first_), 0);
    ASSERT_EQ(Sh("head -c 65536 /dev/urandom | dd of=" + source_ +
                 " bs=65536 seek=40 conv=notrunc status=none"), 0);
    Ingest({"--file", source_, "--vm", "web"});
    const nlohmann::json list = ListJson(repo_);
    ASSERT_EQ(list.size(), 2u);
    ASSERT_EQ(list[1]["name"], "web");
    ASSERT_EQ(list[1]["backups"].size(), 2u);
    older_ = list[1]["backups"][0]["name"];
    newer_ = list[1]["backups"][1]["name"];
  }

  std::unique_ptr<PtyProcess> Start() {
    auto p = std::make_unique<PtyProcess>(
        std::vector<std::string>{VmvaultPath(), "restore", "--interactive", "--repo", repo_});
    EXPECT_TRUE(p->started());
    return p;
  }

  // Answers the VM, backup and action menus: web, the given backup (1 = newest), file.
  void PickWebBackup(PtyProcess& p, const std::string& backup) {
    ASSERT_TRUE(p.WaitFor("Choose 1-2")) << p.output();
    p.SendLine("2");
    ASSERT_TRUE(p.WaitFor("Backups of web, newest first:")) << p.output();
    ASSERT_TRUE(p.WaitFor("Choose 1-2")) << p.output();
    p.SendLine(backup);
    ASSERT_TRUE(p.WaitFor("Action:")) << p.output();
  }

  std::string first_;  // the disk as the older backup of web holds it
  std::string older_, newer_;
};

TEST_F(InteractiveRestoreTest, PicksABackupAndRestoresItToAFile) {
  // Newest first, with time, size and verification state.
  ASSERT_EQ(RunCmd({VmvaultPath(), "verify", "--repo", repo_, "--vm", "web"}).exit_code, 0);
  auto p = Start();
  ASSERT_TRUE(p->WaitFor("VMs:")) << p->output();
  ASSERT_TRUE(p->WaitFor("1) app")) << p->output();
  ASSERT_TRUE(p->WaitFor("2) web  (2 backups")) << p->output();
  PickWebBackup(*p, "2");
  const std::string menu = p->output();
  const size_t n = menu.find(" 1) " + newer_), o = menu.find(" 2) " + older_);
  ASSERT_NE(n, std::string::npos) << menu;
  ASSERT_NE(o, std::string::npos) << menu;
  EXPECT_NE(menu.find("24.0 MiB", n), std::string::npos) << menu;
  EXPECT_NE(menu.find("verified", n), std::string::npos) << menu;
  ASSERT_TRUE(p->WaitFor("Choose 1-2")) << p->output();  // file or device; no domain XML
  p->SendLine("1");
  ASSERT_TRUE(p->WaitFor("Format:")) << p->output();
  ASSERT_TRUE(p->WaitFor("Choose 1-4")) << p->output();
  p->SendLine("1");
  ASSERT_TRUE(p->WaitFor("Write to")) << p->output();
  const std::string out = tmp_ / "picked.raw";
  p->SendLine(out);
  ASSERT_TRUE(p->WaitFor("Go on? [y/N]")) << p->output();
  EXPECT_FALSE(std::filesystem::exists(out)) << "nothing written before the confirmation";
  p->SendLine("y");
  EXPECT_EQ(p->Wait(), 0) << p->output();
  EXPECT_EQ(CompareFiles(out, first_), "") << p->output();
  EXPECT_NE(CompareFiles(out, source_), "");

  // The newest, as qcow2, replacing an existing file after asking.
  const std::string q = tmp_ / "picked.qcow2";
  ASSERT_EQ(Sh("echo old > " + q), 0);
  p = Start();
  PickWebBackup(*p, "1");
  p->SendLine("1");
  ASSERT_TRUE(p->WaitFor("Choose 1-4")) << p->output();
  p->SendLine("2");
  ASSERT_TRUE(p->WaitFor("Write to")) << p->output();
  p->SendLine(q);
  ASSERT_TRUE(p->WaitFor("exists. Replace it? [y/N]")) << p->output();
  p->SendLine("y");
  ASSERT_TRUE(p->WaitFor("Go on? [y/N]")) << p->output();
  p->SendLine("yes");
  EXPECT_EQ(p->Wait(), 0) << p->output();
  RunResult cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", source_, q});
  EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
}

TEST_F(InteractiveRestoreTest, BadInputAsksAgainAndQuittingWritesNothing) {
  const auto before = [&] {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(tmp_.path())) {
      names.push_back(e.path().filename());
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  const std::vector<std::string> files = before();
  // Bad answers re-ask; 'q' at the first menu quits.
  auto p = Start();
  ASSERT_TRUE(p->WaitFor("Choose 1-2")) << p->output();
  for (const std::string bad : {"x", "0", "3", "-1", "", "1 2"}) {
    p->SendLine(bad);
    ASSERT_TRUE(p->WaitFor("is not one of the numbers 1-2")) << bad << ": " << p->output();
    ASSERT_TRUE(p->WaitFor("Choose 1-2")) << p->output();
  }
  p->SendLine("q");
  EXPECT_EQ(p->Wait(), 0) << p->output();
  EXPECT_NE(p->output().find("Nothing restored."), std::string::npos) << p->output();

  // Everything answered, then no at the confirmation.
  const std::string out = tmp_ / "declined.raw";
  p = Start();
  PickWebBackup(*p, "1");
  p->SendLine("1");
  ASSERT_TRUE(p->WaitFor("Choose 1-4")) << p->output();
  p->SendLine("4");
  ASSERT_TRUE(p->WaitFor("Write to")) << p->output();
  p->SendLine("");
  ASSERT_TRUE(p->WaitFor("Please type an answer")) << p->output();
  p->SendLine(out);
  ASSERT_TRUE(p->WaitFor("Go on? [y/N]")) << p->output();
  p->SendLine("");
  EXPECT_EQ(p->Wait(), 0) << p->output();
  EXPECT_NE(p->output().find("Nothing restored."), std::string::npos) << p->output();

  // 'q' in the middle, and the end of input (Ctrl-D).
  p = Start();
  PickWebBackup(*p, "2");
  p->SendLine("q");
  EXPECT_EQ(p->Wait(), 0) << p->output();
  p = Start();
  ASSERT_TRUE(p->WaitFor("Choose 1-2")) << p->output();
  p->SendLine("\x04");
  EXPECT_EQ(p->Wait(), 0) << p->output();
  EXPECT_EQ(before(), files) << "no file written or left behind";
}

TEST_F(InteractiveRestoreTest, RestoresToABlockDeviceOnlyAfterYes) {
  const std::string backing = tmp_ / "device.img";
  ASSERT_EQ(Sh("head -c 25165824 /dev/zero | tr '\\0' '\\377' > " + backing), 0);
  LoopDevice dev(backing);
  ASSERT_FALSE(dev.path().empty());
  auto restore_to_device = [&](const std::string& answer) {
    auto p = Start();
    PickWebBackup(*p, "1");
    p->SendLine("2");
    ASSERT_TRUE(p->WaitFor("block device")) << p->output();
    p->SendLine(dev.path());
    ASSERT_TRUE(p->WaitFor("Type yes to go on:")) << p->output();
    p->SendLine(answer);
    EXPECT_EQ(p->Wait(), 0) << p->output();
  };
  // "y" is not enough for a device: its first bytes are still 0xff.
  restore_to_device("y");
  EXPECT_EQ(Sh("test $(head -c 65536 " + dev.path() + " | tr -d '\\377' | wc -c) -eq 0"), 0)
      << "the device was written";
  restore_to_device("yes");
  EXPECT_EQ(RunCmd({"cmp", "-n", "25165824", dev.path(), source_}).exit_code, 0);
}

TEST_F(InteractiveRestoreTest, RefusesWithoutATerminal) {
  // RunCmd gives the program /dev/null as standard input.
  RunResult r = RunCmd({VmvaultPath(), "restore", "--interactive", "--repo", repo_});
  EXPECT_EQ(r.exit_code, kExitBadInput);
  EXPECT_NE(r.err.find("standard input is not one"), std::string::npos) << r.err;
  RunResult piped = RunCmd({"sh", "-c", "echo 1 | " + VmvaultPath() +
                                            " restore --interactive --repo " + repo_});
  EXPECT_EQ(piped.exit_code, kExitBadInput) << piped.err;
  RunResult mixed = RunCmd({VmvaultPath(), "restore", "--interactive", "--repo", repo_, "web"});
  EXPECT_EQ(mixed.exit_code, kExitBadInput);
  EXPECT_NE(mixed.err.find("leave out"), std::string::npos) << mixed.err;
  RunResult no_vm = RunCmd({VmvaultPath(), "restore", "--repo", repo_, "--to", tmp_ / "x"});
  EXPECT_EQ(no_vm.exit_code, kExitBadInput);
  EXPECT_NE(no_vm.err.find("--interactive"), std::string::npos) << no_vm.err;
}

}  // namespace
}  // namespace vmvault::testing
