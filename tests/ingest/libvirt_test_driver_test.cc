// Inventory and state tests on libvirt's test:/// driver, which runs in-process with no
// daemon: the LibvirtConnection/LibvirtDomain adapter, and IngestDomains and
// ScrubDomain against domains whose disks are real files. The driver has no backup or
// disk-only snapshot API, which is how the cleanup of those methods' early failures is
// tested here; the real thing is tests/integration/libvirt_test.cc.
//
// Every connection to test:///default in one process shares one state (while any is
// open), so the fixture holds a connection of its own through libvirt's C API to
// define domains and to look at their state after vmvault's calls.
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/clock.h"
#include "ingest/command_runner.h"
#include "ingest/domain_ingest.h"
#include "ingest/libvirt.h"
#include "ingest/subprocess.h"
#include "tests/ingest/test_util.h"

namespace vmvault::ingest {
namespace {

using testing::LoggingHook;
using testing::MustRun;
using testing::ReadBackupDisk;
using testing::Slurp;
using testing::TempDir;

constexpr uint64_t kMiB = 1 << 20;
constexpr char kUri[] = "test:///default";

class TestDriverTest : public ::testing::Test {
 public:  // also for the helpers between the tests
  static void SetUpTestSuite() { virSetErrorFunc(nullptr, [](void*, virErrorPtr) {}); }

  void SetUp() override {
    conn_ = virConnectOpen(kUri);
    ASSERT_NE(conn_, nullptr);
    repo_ = testing::MakeRepository(dir_ / "repo", kMiB);
    ASSERT_NE(repo_, nullptr);
    // The disks: a qcow2 with data, and a raw file for the read-only disk and the cdrom.
    disk_ = dir_ / "vda.qcow2";
    MustRun({"qemu-img", "create", "-q", "-f", "qcow2", disk_, std::to_string(8 * kMiB)});
    MustRun({"qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 2M", disk_});
    ro_ = dir_ / "ro.raw";
    MustRun({"qemu-img", "create", "-q", "-f", "raw", ro_, std::to_string(2 * kMiB)});
    MustRun({"qemu-io", "-f", "raw", "-c", "write -P 0x21 0 64k", ro_});
  }

  void TearDown() override {
    for (virDomainPtr d : domains_) {
      if (virDomainIsActive(d) == 1) virDomainDestroy(d);
      virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA);
      virDomainFree(d);
    }
    if (conn_ != nullptr) virConnectClose(conn_);
  }

  // Defines (and with `start`, starts) a domain with vda (qcow2, data), vdb (raw,
  // read-only) and hdc (a cdrom).
  virDomainPtr Define(const std::string& name, bool start) {
    const std::string xml = fmt::format(R"(<domain type='test'>
  <name>{}</name><memory>131072</memory><os><type>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='{}'/><target dev='vdb' bus='virtio'/><readonly/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/>
      <source file='{}'/><target dev='hdc' bus='ide'/><readonly/></disk>
  </devices>
</domain>)",
                                        name, disk_, ro_, ro_);
    virDomainPtr d = virDomainDefineXML(conn_, xml.c_str());
    if (d == nullptr) return nullptr;
    domains_.push_back(d);
    if (start && virDomainCreate(d) != 0) return nullptr;
    return d;
  }

  static int State(virDomainPtr d) {
    int state = -1, reason = 0;
    virDomainGetState(d, &state, &reason, 0);
    return state;
  }
  static std::vector<std::string> Checkpoints(virDomainPtr d) {
    virDomainCheckpointPtr* list = nullptr;
    const int n = virDomainListAllCheckpoints(d, &list, 0);
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
      out.emplace_back(virDomainCheckpointGetName(list[i]));
      virDomainCheckpointFree(list[i]);
    }
    free(list);
    std::sort(out.begin(), out.end());
    return out;
  }
  static bool AddCheckpoint(virDomainPtr d, const std::string& name) {
    const std::string xml = fmt::format(
        "<domaincheckpoint><name>{}</name><disks><disk name='vda' checkpoint='bitmap'/>"
        "<disk name='vdb' checkpoint='no'/><disk name='hdc' checkpoint='no'/></disks>"
        "</domaincheckpoint>",
        name);
    virDomainCheckpointPtr cp = virDomainCheckpointCreateXML(d, xml.c_str(), 0);
    if (cp == nullptr) return false;
    virDomainCheckpointFree(cp);
    return true;
  }

  Result<std::vector<store::BackupRecord>> Ingest(DomainIngestOptions o) {
    o.uri = kUri;
    o.work_dir = dir_.path();
    return IngestDomains(*repo_, o, runner_, clock_);
  }

  std::string Name(const std::string& base) {
    return base + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  TempDir dir_;
  virConnectPtr conn_ = nullptr;
  std::vector<virDomainPtr> domains_;
  std::unique_ptr<store::Repository> repo_;
  RealCommandRunner runner_;
  FakeClock clock_{1'790'000'000'000'000};
  std::string disk_, ro_;
};

TEST_F(TestDriverTest, TheAdapterListsLooksUpAndReadsState) {
  ASSERT_NE(Define(Name("on"), /*start=*/true), nullptr);
  ASSERT_NE(Define(Name("off"), /*start=*/false), nullptr);
  auto conn = LibvirtConnection::Open(kUri);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  EXPECT_EQ((*conn)->uri(), kUri);
  EXPECT_TRUE((*conn)->alive());
  auto names = (*conn)->ListDomainNames();
  ASSERT_TRUE(names.ok());
  EXPECT_NE(std::find(names->begin(), names->end(), Name("on")), names->end());
  EXPECT_NE(std::find(names->begin(), names->end(), Name("off")), names->end());
  EXPECT_TRUE(std::is_sorted(names->begin(), names->end()));

  auto on = (*conn)->LookupDomain(Name("on"));
  ASSERT_TRUE(on.ok());
  EXPECT_EQ(*(*on)->State(), DomainState::kRunning);
  auto off = (*conn)->LookupDomainByUuid((*on)->uuid());
  ASSERT_TRUE(off.ok());
  EXPECT_EQ((*off)->name(), Name("on"));
  auto shut = (*conn)->LookupDomain(Name("off"));
  ASSERT_TRUE(shut.ok());
  EXPECT_EQ(*(*shut)->State(), DomainState::kShutoff);
  EXPECT_TRUE((*shut)->persistent());
  auto xml = (*shut)->Xml();
  ASSERT_TRUE(xml.ok());
  EXPECT_NE(xml->find(disk_), std::string::npos);

  auto missing = (*conn)->LookupDomain("no-such-domain");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no-such-domain"), std::string::npos);

  // Suspend and resume change the state as a real hypervisor's would.
  ASSERT_TRUE((*on)->Suspend().ok());
  EXPECT_EQ(*(*on)->State(), DomainState::kPaused);
  ASSERT_TRUE((*on)->Resume().ok());
  EXPECT_EQ(*(*on)->State(), DomainState::kRunning);
  // Resuming a running domain is libvirt's error, passed on with its words.
  Status again = (*on)->Resume();
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.message().find("not paused"), std::string::npos) << again.ToString();
}

TEST_F(TestDriverTest, AllDomainsBacksUpRunningDomainsFirstAndGoesOnAfterAFailure) {
  virDomainPtr on = Define(Name("a-on"), /*start=*/true);
  virDomainPtr off = Define(Name("b-off"), /*start=*/false);
  ASSERT_NE(on, nullptr);
  ASSERT_NE(off, nullptr);
  // The driver has no backup API: the running domain fails, the shut-off one is read
  // directly and still backed up.
  DomainIngestOptions o;
  o.domains = {Name("b-off"), Name("a-on")};
  auto r = Ingest(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported) << r.status().ToString();
  EXPECT_NE(r.status().message().find("1 of 2 domains failed (" + Name("a-on") + ")"),
            std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("virDomainBackupBegin"), std::string::npos);
  // Nothing of the failed one: no backup, no checkpoint, still running.
  EXPECT_FALSE(repo_->catalog().GetVm(Name("a-on")).ok());
  EXPECT_TRUE(Checkpoints(on).empty());
  EXPECT_EQ(State(on), VIR_DOMAIN_RUNNING);

  auto backups = repo_->catalog().ListBackups(Name("b-off"));
  ASSERT_TRUE(backups.ok());
  ASSERT_EQ(backups->size(), 1u);
  const store::BackupRecord& b = backups->front();
  EXPECT_EQ(b.method, "offline");
  EXPECT_EQ(b.config_kind, "libvirt-xml");
  EXPECT_NE(b.config.find(disk_), std::string::npos);
  // The read-only disk and the cdrom are skipped by default.
  ASSERT_EQ(b.disks.size(), 1u);
  EXPECT_EQ(b.disks[0].name, "vda");
  auto bytes = ReadBackupDisk(*repo_, b, 0);
  ASSERT_TRUE(bytes.ok());
  std::string expected(8 * kMiB, '\0');
  std::fill(expected.begin() + kMiB, expected.begin() + 3 * kMiB, '\x5a');
  EXPECT_TRUE(*bytes == expected);
}

TEST_F(TestDriverTest, ReadOnlyAndRemovableDisksAreBackedUpOnlyWhenAsked) {
  ASSERT_NE(Define(Name("off"), /*start=*/false), nullptr);
  DomainIngestOptions o;
  o.domains = {Name("off")};
  o.include_readonly = true;
  auto r = Ingest(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  ASSERT_EQ((*r)[0].disks.size(), 2u);
  EXPECT_EQ((*r)[0].disks[1].name, "vdb");
  auto ro = ReadBackupDisk(*repo_, (*r)[0], 1);
  ASSERT_TRUE(ro.ok());
  EXPECT_TRUE(*ro == Slurp(ro_));

  o.include_removable = true;
  r = Ingest(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ((*r)[0].disks.size(), 3u);
  EXPECT_EQ((*r)[0].disks[2].name, "hdc");
}

TEST_F(TestDriverTest, PauseSuspendsFreezesAndResumesRunningDomainsFirst) {
  ASSERT_NE(Define(Name("a-off"), /*start=*/false), nullptr);
  virDomainPtr on = Define(Name("b-on"), /*start=*/true);
  ASSERT_NE(on, nullptr);
  DomainIngestOptions o;
  o.domains = {Name("a-off"), Name("b-on")};
  o.method = "pause";
  auto r = Ingest(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  // The running domain goes first, whatever the order asked.
  EXPECT_EQ((*r)[0].vm, Name("b-on"));
  EXPECT_EQ((*r)[1].vm, Name("a-off"));
  EXPECT_EQ((*r)[1].method, "offline");
  const store::BackupRecord& b = (*r)[0];
  EXPECT_EQ(b.method, "paused");
  EXPECT_GT(b.pause_us, 0);
  EXPECT_TRUE(b.fs_frozen);  // the test driver's "agent" always answers
  EXPECT_EQ(State(on), VIR_DOMAIN_RUNNING);
  auto bytes = ReadBackupDisk(*repo_, b, 0);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->substr(kMiB, 4), "\x5a\x5a\x5a\x5a");
}

TEST_F(TestDriverTest, APausedDomainStaysPaused) {
  virDomainPtr on = Define(Name("on"), /*start=*/true);
  ASSERT_NE(on, nullptr);
  ASSERT_EQ(virDomainSuspend(on), 0);
  DomainIngestOptions o;
  o.domains = {Name("on")};
  o.method = "pause";
  auto r = Ingest(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(State(on), VIR_DOMAIN_PAUSED);
}

// A hook that appends its event, arguments and VMVAULT_STATUS to `log`, then exits
// with `status`.
HooksConfig SnapshotHooksFor(const std::string& pre, const std::string& post) {
  HooksConfig h;
  h.commands[static_cast<size_t>(HookEvent::kPreSnapshot)] = {
      {{pre, "{{Repository}}", "{{VM}}", "{{Tier}}", "{{Method}}"}, {}}};
  h.commands[static_cast<size_t>(HookEvent::kPostSnapshot)] = {
      {{post, "{{VM}}", "{{Method}}", "{{Status}}"}, {}}};
  return h;
}

// Backs up the running domain Name("on") with the pause method between snapshot hooks
// that exit with `pre_status` and `post_status` and log to `log`.
Result<std::vector<store::BackupRecord>> PauseBetweenHooks(TestDriverTest& t, int pre_status,
                                                           int post_status,
                                                           const std::string& log) {
  const HooksConfig hooks = SnapshotHooksFor(LoggingHook(t.dir_ / "pre.sh", log, pre_status),
                                             LoggingHook(t.dir_ / "post.sh", log, post_status));
  DomainIngestOptions o;
  o.domains = {t.Name("on")};
  o.method = "pause";
  o.hooks = {&hooks, "/the/repo"};
  return t.Ingest(o);
}

TEST_F(TestDriverTest, SnapshotHooksRunAroundThePause) {
  virDomainPtr on = Define(Name("on"), /*start=*/true);
  ASSERT_NE(on, nullptr);
  const std::string log = dir_ / "hooks.log";
  const HooksConfig hooks = SnapshotHooksFor(LoggingHook(dir_ / "pre.sh", log, 0),
                                             LoggingHook(dir_ / "post.sh", log, 0));
  DomainIngestOptions o;
  o.domains = {Name("on")};
  o.method = "pause";
  o.tier = "hot";
  o.hooks = {&hooks, "/the/repo"};
  auto r = Ingest(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->front().method, "paused");
  EXPECT_EQ(Slurp(log), fmt::format("pre-snapshot /the/repo {0} hot pause \n"
                                    "post-snapshot {0} pause ok ok\n",
                                    Name("on")));
  // Suspended and resumed in between.
  int state = -1, reason = 0;
  ASSERT_EQ(virDomainGetState(on, &state, &reason, 0), 0);
  EXPECT_EQ(state, VIR_DOMAIN_RUNNING);
  EXPECT_EQ(reason, VIR_DOMAIN_RUNNING_UNPAUSED);
}

// With each_backup (vmvault ingest --config), every domain's backup runs between its
// backup hooks, the snapshot hooks inside them, running domains still first.
TEST_F(TestDriverTest, EachBackupPutsEveryDomainBetweenItsBackupHooksRunningOnesFirst) {
  ASSERT_NE(Define(Name("off"), /*start=*/false), nullptr);
  ASSERT_NE(Define(Name("on"), /*start=*/true), nullptr);
  const std::string log = dir_ / "hooks.log";
  HooksConfig hooks = SnapshotHooksFor(LoggingHook(dir_ / "pre.sh", log, 0),
                                       LoggingHook(dir_ / "post.sh", log, 0));
  const std::string backup_hook = LoggingHook(dir_ / "backup.sh", log, 0);
  hooks.commands[static_cast<size_t>(HookEvent::kPreBackup)] = {{{backup_hook, "{{VM}}"}, {}}};
  hooks.commands[static_cast<size_t>(HookEvent::kPostBackup)] = {
      {{backup_hook, "{{VM}}", "{{Backup}}"}, {}}};
  DomainIngestOptions o;
  o.domains = {Name("off"), Name("on")};
  o.method = "pause";
  o.hooks = {&hooks, "/the/repo", /*each_backup=*/true};
  auto r = Ingest(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(Slurp(log),
            fmt::format("pre-backup {0} \n"
                        "pre-snapshot /the/repo {0} warm pause \n"
                        "post-snapshot {0} pause ok ok\n"
                        "post-backup {0} {2} ok\n"
                        "pre-backup {1} \n"
                        "post-backup {1} {3} ok\n",
                        Name("on"), Name("off"), (*r)[0].name(), (*r)[1].name()));
}

TEST_F(TestDriverTest, AFailingPreSnapshotHookLeavesTheDomainAloneAndStoresNothing) {
  virDomainPtr on = Define(Name("on"), /*start=*/true);
  ASSERT_NE(on, nullptr);
  const std::string log = dir_ / "hooks.log";
  auto r = PauseBetweenHooks(*this, 3, 0, log);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("the VM was not touched"), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("exit status 3"), std::string::npos)
      << r.status().ToString();
  // The post hook heard of the failure; the domain was never suspended; no backup was
  // stored.
  EXPECT_EQ(Slurp(log), fmt::format("pre-snapshot /the/repo {0} warm pause \n"
                                    "post-snapshot {0} pause failed failed\n",
                                    Name("on")));
  int state = -1, reason = 0;
  ASSERT_EQ(virDomainGetState(on, &state, &reason, 0), 0);
  EXPECT_EQ(state, VIR_DOMAIN_RUNNING);
  EXPECT_EQ(reason, VIR_DOMAIN_RUNNING_BOOTED);
  auto backups = repo_->catalog().ListBackups(Name("on"));
  ASSERT_TRUE(backups.ok());
  EXPECT_TRUE(backups->empty());
}

TEST_F(TestDriverTest, AFailingPostSnapshotHookKeepsTheBackupAndReportsTheHook) {
  virDomainPtr on = Define(Name("on"), /*start=*/true);
  ASSERT_NE(on, nullptr);
  const std::string log = dir_ / "hooks.log";
  auto r = PauseBetweenHooks(*this, 0, 4, log);
  ASSERT_FALSE(r.ok());
  auto backups = repo_->catalog().ListBackups(Name("on"));
  ASSERT_TRUE(backups.ok());
  ASSERT_EQ(backups->size(), 1u) << "the backup of a good capture was not kept";
  EXPECT_NE(r.status().message().find("backup " + backups->front().name() + " of " + Name("on") +
                                      " was made and kept, but"),
            std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("exit status 4"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(Slurp(log), fmt::format("pre-snapshot /the/repo {0} warm pause \n"
                                    "post-snapshot {0} pause ok ok\n",
                                    Name("on")));
  int state = -1, reason = 0;
  ASSERT_EQ(virDomainGetState(on, &state, &reason, 0), 0);
  EXPECT_EQ(state, VIR_DOMAIN_RUNNING);
}

// The backup hooks and the schedule learn of a backup kept despite a failed
// post-snapshot hook: {{Backup}} names it (with {{Status}} failed), and so does `kept`.
TEST_F(TestDriverTest, ABackupKeptDespiteAFailedPostSnapshotHookIsNamedToThePostBackupHooks) {
  ASSERT_NE(Define(Name("on"), /*start=*/true), nullptr);
  const std::string log = dir_ / "hooks.log";
  HooksConfig hooks = SnapshotHooksFor(LoggingHook(dir_ / "pre.sh", log, 0),
                                       LoggingHook(dir_ / "post.sh", log, 4));
  const std::string backup_hook = LoggingHook(dir_ / "backup.sh", log, 0);
  hooks.commands[static_cast<size_t>(HookEvent::kPostBackup)] = {
      {{backup_hook, "{{VM}}", "{{Backup}}", "{{Status}}"}, {}}};
  for (const bool each_backup : {true, false}) {
    SCOPED_TRACE(each_backup ? "hooks around each backup" : "snapshot hooks only");
    std::filesystem::remove(log);
    std::vector<store::BackupRecord> kept;
    DomainIngestOptions o;
    o.domains = {Name("on")};
    o.method = "pause";
    o.hooks = {&hooks, "/the/repo", each_backup};
    o.kept = &kept;
    auto r = Ingest(o);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("exit status 4"), std::string::npos)
        << r.status().ToString();
    ASSERT_EQ(kept.size(), 1u);
    auto backups = repo_->catalog().ListBackups(Name("on"));
    ASSERT_TRUE(backups.ok());
    EXPECT_EQ(kept[0].name(), backups->back().name());
    std::string expected = fmt::format("pre-snapshot /the/repo {0} warm pause \n"
                                       "post-snapshot {0} pause ok ok\n",
                                       Name("on"));
    if (each_backup) {
      expected += fmt::format("post-backup {0} {1} failed failed\n", Name("on"), kept[0].name());
    }
    EXPECT_EQ(Slurp(log), expected);
  }
}

TEST_F(TestDriverTest, AFailedSnapshotLeavesTheDomainAsItWas) {
  virDomainPtr on = Define(Name("on"), /*start=*/true);
  ASSERT_NE(on, nullptr);
  DomainIngestOptions o;
  o.domains = {Name("on")};
  o.method = "snapshot";
  auto r = Ingest(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(Name("on")), std::string::npos) << r.status().ToString();
  EXPECT_EQ(State(on), VIR_DOMAIN_RUNNING);
  EXPECT_EQ(virDomainSnapshotNum(on, 0), 0);
  EXPECT_FALSE(repo_->catalog().GetVm(Name("on")).ok());
  // Nothing left in the work folder.
  size_t left = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    left += e.path().filename().string().rfind("vmvault", 0) == 0;
  }
  EXPECT_EQ(left, 0u);
}

TEST_F(TestDriverTest, ScrubDeletesOnlyVmvaultCheckpoints) {
  // Checkpoints are made while the domain runs; the driver keeps them when it stops.
  virDomainPtr off = Define(Name("off"), /*start=*/true);
  ASSERT_NE(off, nullptr);
  ASSERT_TRUE(AddCheckpoint(off, "vmvault-20261120T010000Z-aa"));
  ASSERT_TRUE(AddCheckpoint(off, "vmvault-20261121T010000Z-bb"));
  ASSERT_TRUE(AddCheckpoint(off, "nightly"));
  ASSERT_EQ(virDomainDestroy(off), 0);

  ScrubOptions o;
  o.uri = kUri;
  o.domain = Name("off");
  o.dry_run = true;
  auto dry = ScrubDomain(nullptr, o, runner_);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry->size(), 2u);
  EXPECT_EQ(Checkpoints(off).size(), 3u);

  o.dry_run = false;
  auto done = ScrubDomain(nullptr, o, runner_);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_EQ(done->size(), 2u);
  EXPECT_EQ((*done)[0], "deleted checkpoint vmvault-20261120T010000Z-aa");
  EXPECT_EQ(Checkpoints(off), std::vector<std::string>{"nightly"});

  o.domain = "no-such-domain";
  auto missing = ScrubDomain(nullptr, o, runner_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace vmvault::ingest
