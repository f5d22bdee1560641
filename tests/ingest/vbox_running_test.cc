// A running VirtualBox machine backed up between the snapshot and backup hooks:
// IngestVirtualBox pauses it through VBoxManage, reads its VDI disk with the real
// qemu-img and qemu-nbd, and resumes it. VirtualBox is not installed where these tests
// run, so VBoxManage is a FakeCommandRunner answering as VBoxManage 7 does; every
// other command (qemu-img) runs for real, and the hooks are real scripts.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/clock.h"
#include "ingest/fake_command_runner.h"
#include "ingest/hooks.h"
#include "ingest/vbox_ingest.h"
#include "tests/ingest/test_util.h"
#include "tests/vbox_settings.h"

namespace vmvault::ingest {
namespace {

using testing::LoggingHook;
using testing::MustRun;
using testing::Slurp;

constexpr uint64_t kMiB = 1 << 20;
constexpr const char* kUuid = vmvault::testing::kVboxMachineUuid;

// VBoxManage from the fake, everything else for real.
class VboxManageFake final : public CommandRunner {
 public:
  Result<CommandOutput> Run(const std::vector<std::string>& argv) override {
    return argv.front() == "VBoxManage" ? fake.Run(argv) : real.Run(argv);
  }
  std::vector<std::vector<std::string>> VboxCalls() const { return fake.calls(); }

  FakeCommandRunner fake;
  RealCommandRunner real;
};

class VboxRunningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = testing::MakeRepository(dir_ / "repo", kMiB);
    ASSERT_NE(repo_, nullptr);
    const std::string raw = dir_ / "seed.raw";
    MustRun({"qemu-img", "create", "-q", "-f", "raw", raw, std::to_string(8 * kMiB)});
    MustRun({"qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 2M", raw});
    MustRun({"qemu-img", "convert", "-q", "-f", "raw", "-O", "vdi", raw, dir_ / "web.vdi"});
    std::ofstream(dir_ / "web.vbox")
        << vmvault::testing::VboxMachineXml("web", {{"web.vdi", "VDI"}});
    runner_.fake.Expect({"VBoxManage", "showvminfo", kUuid, "--machinereadable"}, 0,
                        fmt::format("name=\"web\"\nUUID=\"{}\"\nVMState=\"running\"\n", kUuid));
    runner_.fake.Expect({"VBoxManage", "controlvm", kUuid, "pause"}, 0, "");
    runner_.fake.Expect({"VBoxManage", "controlvm", kUuid, "resume"}, 0, "");
  }

  // Hooks that log to log_: the snapshot hooks (the post one exiting `post_status`)
  // and a post-backup hook.
  HooksConfig Hooks(int post_status) {
    HooksConfig h;
    h.commands[static_cast<size_t>(HookEvent::kPreSnapshot)] = {
        {{LoggingHook(dir_ / "pre.sh", log_, 0), "{{VM}}", "{{Method}}"}, {}}};
    h.commands[static_cast<size_t>(HookEvent::kPostSnapshot)] = {
        {{LoggingHook(dir_ / "post.sh", log_, post_status), "{{VM}}"}, {}}};
    h.commands[static_cast<size_t>(HookEvent::kPostBackup)] = {
        {{LoggingHook(dir_ / "backup.sh", log_, 0), "{{VM}}", "{{Backup}}"}, {}}};
    return h;
  }

  Result<std::vector<store::BackupRecord>> Ingest(const HooksConfig& hooks,
                                                  std::vector<store::BackupRecord>* kept) {
    VboxIngestOptions o;
    o.path = dir_ / "web.vbox";
    o.hooks = {&hooks, "/the/repo", /*each_backup=*/true};
    o.kept = kept;
    return IngestVirtualBox(*repo_, o, runner_, SystemClock::Default());
  }

  // The VBoxManage commands run, without the state queries.
  std::vector<std::string> Controls() const {
    std::vector<std::string> verbs;
    for (const auto& argv : runner_.VboxCalls()) {
      if (argv.at(1) == "controlvm") verbs.push_back(argv.at(3));
    }
    return verbs;
  }

  testing::TempDir dir_;
  std::string log_ = dir_ / "hooks.log";
  std::unique_ptr<store::Repository> repo_;
  VboxManageFake runner_;
};

TEST_F(VboxRunningTest, ARunningMachineIsPausedBetweenTheSnapshotHooksAndResumed) {
  const HooksConfig hooks = Hooks(0);
  auto r = Ingest(hooks, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  const store::BackupRecord& b = r->front();
  EXPECT_EQ(b.method, "paused");
  EXPECT_GT(b.pause_us, 0);
  EXPECT_EQ(Controls(), (std::vector<std::string>{"pause", "resume"}));
  EXPECT_EQ(Slurp(log_), fmt::format("pre-snapshot web pause \n"
                                     "post-snapshot web ok\n"
                                     "post-backup web {} ok\n",
                                     b.name()));
  auto disk = testing::ReadBackupDisk(*repo_, b, 0);
  ASSERT_TRUE(disk.ok()) << disk.status().ToString();
  EXPECT_EQ(*disk, std::string(kMiB, '\0') + std::string(2 * kMiB, '\x5a') +
                       std::string(5 * kMiB, '\0'));
}

TEST_F(VboxRunningTest, AFailedPostSnapshotHookKeepsTheBackupAndNamesIt) {
  const HooksConfig hooks = Hooks(4);
  std::vector<store::BackupRecord> kept;
  auto r = Ingest(hooks, &kept);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("was made and kept, but"), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("exit status 4"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(Controls(), (std::vector<std::string>{"pause", "resume"}));
  auto backups = repo_->catalog().ListBackups("web");
  ASSERT_TRUE(backups.ok());
  ASSERT_EQ(backups->size(), 1u);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].name(), backups->front().name());
  EXPECT_EQ(Slurp(log_), fmt::format("pre-snapshot web pause \n"
                                     "post-snapshot web ok\n"
                                     "post-backup web {} failed\n",
                                     kept[0].name()));
}

}  // namespace
}  // namespace vmvault::ingest
