// Bad input through the command line: each case gets a clear message, its documented
// exit code, and stores nothing.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <tuple>

#include "harness.h"

namespace vmvault::testing {
namespace {

constexpr int kExitUsage = 2, kExitRepo = 3, kExitBusy = 4, kExitBadInput = 5, kExitReadOnly = 6;

class CliErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = tmp_ / "repo";
    ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo_}).exit_code, 0);
    image_ = tmp_ / "good.qcow2";
    ASSERT_EQ(RunCmd({"qemu-img", "create", "-q", "-f", "qcow2", image_, "16M"}).exit_code, 0);
    ASSERT_EQ(RunCmd({"qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 4M", image_}).exit_code, 0);
  }

  RunResult Ingest(const std::vector<std::string>& extra) {
    std::vector<std::string> argv{VmvaultPath(), "ingest", "--repo", repo_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCmd(argv);
  }

  size_t BackupCount() {
    size_t n = 0;
    for (const auto& vm : ListJson(repo_)) n += vm["backups"].size();
    return n;
  }

  TempDir tmp_;
  std::string repo_, image_;
};

TEST_F(CliErrorsTest, QuietWhenNotOnATerminal) {
  // As under cron: stdout and stderr are files, so a good ingest prints nothing at all.
  RunResult r = Ingest({"--file", image_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(BackupCount(), 1u);
}

TEST_F(CliErrorsTest, MissingRepository) {
  Sh("mkdir -p " + (tmp_ / "mnt"));
  for (const char* cmd : {"list", "ingest", "mount"}) {
    std::vector<std::string> argv{VmvaultPath(), cmd, "--repo", tmp_ / "nowhere"};
    if (std::string(cmd) == "ingest") argv.insert(argv.end(), {"--file", image_});
    if (std::string(cmd) == "mount") argv.push_back(tmp_ / "mnt");
    RunResult r = RunCmd(argv);
    EXPECT_EQ(r.exit_code, kExitRepo) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("no repository at"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("vmvault init"), std::string::npos) << r.err;
  }
  // VMVAULT_REPO is honoured.
  RunResult r = RunCmd({VmvaultPath(), "list"}, {"VMVAULT_REPO=" + (tmp_ / "elsewhere")});
  EXPECT_EQ(r.exit_code, kExitRepo);
  EXPECT_NE(r.err.find(tmp_ / "elsewhere"), std::string::npos) << r.err;
  EXPECT_EQ(RunCmd({VmvaultPath(), "list"}, {"VMVAULT_REPO=" + repo_}).exit_code, 0);
}

TEST_F(CliErrorsTest, WrongFormatVersion) {
  ASSERT_EQ(Sh("sed -i 's/\"version\": 2/\"version\": 7/' " + repo_ + "/vmvault.json"), 0);
  RunResult r = Ingest({"--file", image_});
  EXPECT_EQ(r.exit_code, kExitRepo) << r.err;
  EXPECT_NE(r.err.find("format version 7"), std::string::npos) << r.err;
  EXPECT_EQ(RunCmd({VmvaultPath(), "list", "--repo", repo_}).exit_code, kExitRepo);
}

TEST_F(CliErrorsTest, DamagedRepositoryIsAnErrorNotACrash) {
  // A format file that does not parse.
  const std::string good = Slurp(repo_ + "/vmvault.json");
  ASSERT_EQ(Sh("echo '{' > " + repo_ + "/vmvault.json"), 0);
  RunResult r = RunCmd({VmvaultPath(), "list", "--repo", repo_});
  EXPECT_EQ(r.exit_code, kExitRepo) << r.err;
  EXPECT_NE(r.err.find("vmvault.json"), std::string::npos) << r.err;
  ASSERT_EQ(Sh("cp /dev/null " + repo_ + "/vmvault.json && printf '%s' '" + good + "' > " + repo_ +
               "/vmvault.json"), 0);
  ASSERT_EQ(RunCmd({VmvaultPath(), "list", "--repo", repo_}).exit_code, 0);
  // A database that is gone.
  ASSERT_EQ(Sh("mv " + repo_ + "/db " + repo_ + "/db.moved"), 0);
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{VmvaultPath(), "list", "--repo", repo_},
        std::vector<std::string>{VmvaultPath(), "ingest", "--repo", repo_, "--file", image_},
        std::vector<std::string>{VmvaultPath(), "mount", "--repo", repo_, tmp_ / "mnt"}}) {
    Sh("mkdir -p " + (tmp_ / "mnt"));
    r = RunCmd(argv);
    EXPECT_EQ(r.exit_code, kExitRepo) << argv[1] << ": " << r.err;
    EXPECT_NE(r.err.find("database"), std::string::npos) << argv[1] << ": " << r.err;
    EXPECT_FALSE(IsMountPoint(tmp_ / "mnt"));
  }
  ASSERT_EQ(Sh("mv " + repo_ + "/db.moved " + repo_ + "/db"), 0);
  EXPECT_EQ(RunCmd({VmvaultPath(), "list", "--repo", repo_}).exit_code, 0);
}

TEST_F(CliErrorsTest, MissingDirectoryAndUnreadableFiles) {
  RunResult r = Ingest({"--file", tmp_ / "absent.qcow2"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_NE(r.err.find("absent.qcow2"), std::string::npos) << r.err;
  r = Ingest({"--file", tmp_.path()});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_NE(r.err.find("directory"), std::string::npos) << r.err;
  // A good file beside a bad one stores nothing either.
  r = Ingest({"--file", image_, "--file", tmp_ / "absent.raw"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_EQ(BackupCount(), 0u);
}

TEST_F(CliErrorsTest, TruncatedImage) {
  const std::string cut = tmp_ / "cut.qcow2";
  ASSERT_EQ(Sh("head -c 300000 " + image_ + " > " + cut), 0);
  RunResult r = Ingest({"--file", cut});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, kExitUsage);
  EXPECT_NE(r.err.find("cut.qcow2"), std::string::npos) << r.err;
  EXPECT_EQ(BackupCount(), 0u);
}

TEST_F(CliErrorsTest, CorruptImage) {
  // Overwrite the qcow2 L1 table offset (header bytes 40..47) with garbage.
  const std::string bad = tmp_ / "bad.qcow2";
  ASSERT_EQ(Sh("cp " + image_ + " " + bad +
               " && printf '\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\x00' | dd of=" + bad +
               " bs=1 seek=40 conv=notrunc status=none"), 0);
  RunResult r = Ingest({"--file", bad});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_NE(r.err.find("bad.qcow2"), std::string::npos) << r.err;
  EXPECT_EQ(BackupCount(), 0u);
}

TEST_F(CliErrorsTest, UnknownFormat) {
  RunResult r = Ingest({"--file", image_, "--format", "floppy9"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_NE(r.err.find("floppy9"), std::string::npos) << r.err;
  // A format that does not match the file.
  r = Ingest({"--file", image_, "--format", "vdi"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_EQ(BackupCount(), 0u);
}

// Without device-mapper (this kernel has none) an LVM backup stops before it touches
// anything, saying why; the orchestration is unit-tested with a fake runner.
TEST_F(CliErrorsTest, LvmWithoutDeviceMapperSaysSoAndStoresNothing) {
  RunResult r = Ingest({"--lvm", "vg0/root"});
  EXPECT_NE(r.exit_code, 0) << r.err;
  // Where device-mapper exists, lvcreate itself refuses the missing volume group.
  EXPECT_TRUE(r.err.find("device-mapper") != std::string::npos ||
              r.err.find("vg0") != std::string::npos)
      << r.err;
  r = Ingest({"--lvm", "vg0/root", "--format", "raw"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_NE(r.err.find("--format is for --file"), std::string::npos) << r.err;
  EXPECT_EQ(BackupCount(), 0u);
}

TEST_F(CliErrorsTest, HostileVmNames) {
  const std::vector<std::string> names = {"", "a/b",      "..",        ".",       "../../etc",
                                         "two\nlines", "ctl\x01x", "bad\xff", std::string(300, 'n')};
  for (const std::string& name : names) {
    RunResult r = Ingest({"--file", image_, "--vm", name});
    EXPECT_EQ(r.exit_code, kExitBadInput) << name << ": " << r.err;
    EXPECT_NE(r.err.find("VM name"), std::string::npos) << r.err;
    // The message shows control characters escaped, never raw.
    EXPECT_EQ(r.err.find('\x01'), std::string::npos);
  }
  EXPECT_EQ(BackupCount(), 0u);
  // A hostile file name is sanitized into a safe VM and disk name instead.
  const std::string odd = tmp_ / "..odd\nname.qcow2";
  ASSERT_EQ(RunCmd({"cp", image_, odd}).exit_code, 0);
  RunResult r = Ingest({"--file", odd});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto list = ListJson(repo_);
  ASSERT_EQ(list.size(), 1u);
  const std::string vm = list[0]["name"];
  EXPECT_EQ(vm.find('\n'), std::string::npos);
  EXPECT_EQ(vm.find('/'), std::string::npos);
  EXPECT_NE(vm[0], '.');
}

TEST_F(CliErrorsTest, BadOptions) {
  EXPECT_EQ(Ingest({"--file", image_, "--tier", "lukewarm"}).exit_code, kExitBadInput);
  EXPECT_EQ(Ingest({}).exit_code, kExitUsage);
  EXPECT_EQ(RunCmd({VmvaultPath(), "frobnicate"}).exit_code, kExitUsage);
  RunResult r = RunCmd({VmvaultPath(), "init", "--repo", tmp_ / "r2", "--chunk-size", "3M"});
  EXPECT_EQ(r.exit_code, kExitBadInput);
  EXPECT_NE(r.err.find("power of two"), std::string::npos) << r.err;
  EXPECT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo_}).exit_code, 1);  // already exists
  // Bad mount values are refused before anything is mounted.
  const std::string mnt = tmp_ / "mnt-bad";
  std::filesystem::create_directories(mnt);
  for (const auto& [option, value, message] :
       {std::tuple{"--layout", "tier", "unknown layout 'tier'"},
        {"--views", "raw,vdi", "unknown view 'vdi'"},
        {"--views", "vmdk", "the vmdk view needs the raw view too"}}) {
    r = RunCmd({VmvaultPath(), "mount", "--repo", repo_, option, value, mnt});
    EXPECT_EQ(r.exit_code, kExitBadInput) << option << " " << value;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(Slurp("/proc/mounts").find(mnt), std::string::npos);
  }
  for (const char* cmd : {"init", "ingest", "list", "mount"}) {
    RunResult h = RunCmd({VmvaultPath(), cmd, "--help"});
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_NE(h.out.find("--repo"), std::string::npos) << cmd;
  }
}

TEST_F(CliErrorsTest, BadDomainOptions) {
  // libvirt's in-process test driver: no daemon needed.
  RunResult r = Ingest({"--connect", "test:///default", "--domain", "test", "--method", "nap"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_NE(r.err.find("method 'nap'"), std::string::npos) << r.err;
  r = Ingest({"--connect", "test:///default", "--domain", "no-such-domain"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_NE(r.err.find("no domain 'no-such-domain'"), std::string::npos) << r.err;
  r = Ingest({"--connect", "nosuch:///x", "--domain", "a"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cannot connect to libvirt"), std::string::npos) << r.err;
  EXPECT_EQ(Ingest({"--domain", "a", "--vm", "b"}).exit_code, kExitUsage);
  EXPECT_EQ(Ingest({"--domain", "a", "--file", image_}).exit_code, kExitUsage);
  EXPECT_EQ(BackupCount(), 0u);
}

TEST_F(CliErrorsTest, ReadOnlyRepository) {
  ASSERT_EQ(::chmod(repo_.c_str(), 0500), 0);
  RunResult r = Ingest({"--file", image_});
  EXPECT_EQ(r.exit_code, kExitReadOnly) << r.err;
  EXPECT_NE(r.err.find("read-only"), std::string::npos) << r.err;
  EXPECT_EQ(RunCmd({VmvaultPath(), "list", "--repo", repo_}).exit_code, 0);
  ASSERT_EQ(::chmod(repo_.c_str(), 0700), 0);

  if (!IsRoot()) return;
  // On a read-only filesystem too: a read-only bind mount of the repository.
  const std::string ro = tmp_ / "ro";
  ASSERT_EQ(Sh("mkdir -p " + ro + " && mount --bind " + repo_ + " " + ro +
               " && mount -o remount,bind,ro " + ro), 0);
  r = RunCmd({VmvaultPath(), "ingest", "--repo", ro, "--file", image_});
  Sh("umount " + ro);
  EXPECT_EQ(r.exit_code, kExitReadOnly) << r.err;
  EXPECT_EQ(BackupCount(), 0u);
}

TEST_F(CliErrorsTest, SecondWriterIsBusy) {
  // flock(1) holds the writer lock while the ingest runs.
  RunResult r = RunCmd({"flock", repo_ + "/lock", VmvaultPath(), "ingest", "--repo", repo_,
                     "--file", image_});
  EXPECT_EQ(r.exit_code, kExitBusy) << r.err;
  EXPECT_NE(r.err.find("busy"), std::string::npos) << r.err;
  EXPECT_EQ(BackupCount(), 0u);
}

}  // namespace
}  // namespace vmvault::testing
