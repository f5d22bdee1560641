// VM state records (store/vm_state.h): encoding, optional records, and crash recovery
// of a BACKUP_IN_PROGRESS left by a dead process.
#include "store/vm_state.h"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "store/repository.h"
#include "test_util.h"

namespace vmvault::store {
namespace {

using testing::CommitBackup;

std::unique_ptr<Repository> Repo() { return Repository::OpenInMemory(RepoConfig{}); }

TEST(VmStateTest, RecordsRoundTripAndNamesParse) {
  for (VmState s : {VmState::kNew, VmState::kBackupNecessary, VmState::kBackupInProgress,
                    VmState::kClean, VmState::kRunning, VmState::kArchived}) {
    EXPECT_EQ(ParseVmState(VmStateName(s)), s);
  }
  EXPECT_EQ(VmStateName(VmState::kBackupInProgress), "BACKUP_IN_PROGRESS");
  VmStateRecord r{VmState::kBackupInProgress, 123, 4567, 89, "host", "note"};
  auto back = DecodeVmStateRecord(EncodeVmStateRecord(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->state, r.state);
  EXPECT_EQ(back->pid, 4567);
  EXPECT_EQ(back->pid_start, 89u);
  EXPECT_EQ(back->note, "note");
  EXPECT_TRUE(DecodeVmStateRecord(R"({"v":2,"state":"NEW","since_us":0})").status().IsCorruption());
  EXPECT_TRUE(DecodeVmStateRecord(R"({"v":1,"state":"ODD","since_us":0})").status().IsCorruption());
}

TEST(VmStateTest, RepositoriesWithoutStatesReadFine) {
  auto repo = Repo();
  CommitBackup(repo.get(), "web", 1'000'000, 65536, {});
  auto all = ListVmStates(repo->kv());
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  auto one = GetVmState(repo->kv(), "web");
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(one->has_value());
  // State keys do not disturb the catalog's own listings.
  ASSERT_TRUE(PutVmStates(repo->kv(), {{"web", {VmState::kArchived, 5, 0, 0, "", ""}}}).ok());
  EXPECT_EQ(repo->catalog().ListVms()->size(), 1u);
  EXPECT_EQ(repo->catalog().ListBackups("web")->size(), 1u);
  EXPECT_EQ((*GetVmState(repo->kv(), "web"))->state, VmState::kArchived);
}

TEST(VmStateTest, ProcessLivenessUsesPidAndStartTime) {
  const int64_t self = ::getpid();
  const auto start = ProcessStartTime(self);
  ASSERT_TRUE(start.has_value());
  EXPECT_TRUE(ProcessAlive(self, *start));
  EXPECT_TRUE(ProcessAlive(self, 0));
  EXPECT_FALSE(ProcessAlive(self, *start + 1));  // a reused pid
  // A child that exited and was reaped is gone.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(ProcessAlive(child, 0));
  EXPECT_FALSE(ProcessStartTime(child).has_value());
  EXPECT_FALSE(ProcessAlive(0, 0));
}

TEST(VmStateTest, StaleInProgressRecordsAreRecovered) {
  auto repo = Repo();
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const int64_t self = ::getpid();
  ASSERT_TRUE(PutVmStates(repo->kv(),
                          {{"dead", {VmState::kBackupInProgress, 10, child, 0, "h", ""}},
                           {"live", {VmState::kBackupInProgress, 10, self,
                                     ProcessStartTime(self).value_or(0), "h", ""}},
                           {"clean", {VmState::kClean, 10, 0, 0, "", ""}}})
                  .ok());
  // Without the lock only the record whose process is gone is recovered.
  auto r = RecoverInterrupted(repo->kv(), /*lock_held=*/false, 99);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, std::vector<std::string>{"dead"});
  auto dead = *GetVmState(repo->kv(), "dead");
  EXPECT_EQ(dead->state, VmState::kBackupNecessary);
  EXPECT_EQ(dead->since_us, 99);
  EXPECT_EQ(dead->note, "interrupted backup (pid " + std::to_string(child) + " on h gone)");
  EXPECT_EQ((*GetVmState(repo->kv(), "live"))->state, VmState::kBackupInProgress);
  // Holding the writer lock proves no other scheduler runs: every one is stale.
  r = RecoverInterrupted(repo->kv(), /*lock_held=*/true, 100);
  EXPECT_EQ(*r, std::vector<std::string>{"live"});
  EXPECT_EQ((*GetVmState(repo->kv(), "live"))->state, VmState::kBackupNecessary);
  EXPECT_EQ((*GetVmState(repo->kv(), "clean"))->state, VmState::kClean);
  EXPECT_TRUE(RecoverInterrupted(repo->kv(), true, 101)->empty());
}

TEST(VmStateTest, AlertRecordsRoundTripAndRefuseOtherVersions) {
  auto repo = Repo();
  EXPECT_TRUE(ListAlertsSent(repo->kv())->empty());
  ASSERT_TRUE(PutAlertSent(repo->kv(), "behind:web01", {1000, "web01 is behind schedule"}).ok());
  ASSERT_TRUE(PutAlertSent(repo->kv(), "stuck:backup of VM db", {2000, "x"}).ok());
  ASSERT_TRUE(PutAlertSent(repo->kv(), "behind:web01", {3000, "web01 is behind schedule"}).ok());
  EXPECT_FALSE(PutAlertSent(repo->kv(), "", {1, ""}).ok());
  auto sent = ListAlertsSent(repo->kv());
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(*sent, (std::map<std::string, int64_t>{{"behind:web01", 3000},
                                                   {"stuck:backup of VM db", 2000}}));
  // Alert records are not VM states, and VM states are not alerts.
  VmStateRecord clean;
  clean.state = VmState::kClean;
  ASSERT_TRUE(PutVmStates(repo->kv(), {{"web01", clean}}).ok());
  EXPECT_EQ(ListVmStates(repo->kv())->size(), 1u);
  EXPECT_EQ(ListAlertsSent(repo->kv())->size(), 2u);

  const std::string text = EncodeAlertRecord({42, "subject"});
  EXPECT_EQ(text, R"({"last_sent_us":42,"subject":"subject","v":1})");
  EXPECT_EQ(DecodeAlertRecord(text)->last_sent_us, 42);
  EXPECT_TRUE(DecodeAlertRecord(R"({"v":2,"last_sent_us":1})").status().IsCorruption());
  EXPECT_TRUE(DecodeAlertRecord(R"({"v":1})").status().IsCorruption());
  EXPECT_TRUE(DecodeAlertRecord("not json").status().IsCorruption());
  KvBatch bad;
  bad.Put(KvSpace::kCatalog, "al/broken", "{");
  ASSERT_TRUE(repo->kv().Write(bad, true).ok());
  auto broken = ListAlertsSent(repo->kv());
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("alert broken"), std::string::npos);
}

TEST(VmStateTest, TheFirstSeenTimeIsKeptAndOptional) {
  VmStateRecord r{VmState::kNew, 10, 0, 0, "h", "n", 7};
  auto back = DecodeVmStateRecord(EncodeVmStateRecord(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->seen_us, 7);
  // Records written before the field existed read as unknown (0).
  back = DecodeVmStateRecord(R"({"v":1,"state":"NEW","since_us":10})");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->seen_us, 0);
}

}  // namespace
}  // namespace vmvault::store
