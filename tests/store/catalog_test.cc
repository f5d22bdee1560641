#include "store/catalog.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "store/chunk_codec.h"
#include "store/repository.h"
#include "test_util.h"

namespace vmvault::store {
namespace {

constexpr int64_t kSec = 1'000'000;
constexpr int64_t kT0 = 1795231800LL * kSec;  // 2026-11-21T03:30:00Z
constexpr uint64_t kCs = kDefaultChunkSize;

class CatalogTest : public ::testing::Test {
 protected:
  CatalogTest() : kv_(std::make_shared<MemKvEngine>()), repo_(Repository::OpenInMemory({}, kv_)) {}

  ChunkId Put(const std::string& plain) { return testing::PutChunk(repo_.get(), plain); }

  BackupRecord MakeBackup(const std::string& vm, int64_t t, uint64_t size) {
    BackupRecord b;
    b.vm = vm;
    b.time_us = t;
    DiskRecord d;
    d.name = "vda";
    d.virtual_size = size;
    d.chunk_size = repo_->config().chunk_size;
    b.disks.push_back(d);
    return b;
  }

  std::shared_ptr<MemKvEngine> kv_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(CatalogTest, CommitListAndReadBack) {
  DiskIndex index(3);
  index[0] = Put("first");
  index[2] = Put("third");
  BackupRecord b = MakeBackup("web", kT0, 3 * kCs - 100);
  b.config_kind = "libvirt-xml";
  b.config = "<domain/>";
  ASSERT_TRUE(repo_->catalog().CommitBackup(testing::Vm("web"), &b, {index}).ok());
  EXPECT_EQ(b.id, 1u);

  auto vms = repo_->catalog().ListVms();
  ASSERT_TRUE(vms.ok());
  ASSERT_EQ(vms->size(), 1u);
  EXPECT_EQ((*vms)[0].name, "web");

  auto backups = repo_->catalog().ListBackups("web");
  ASSERT_TRUE(backups.ok());
  ASSERT_EQ(backups->size(), 1u);
  EXPECT_EQ((*backups)[0].name(), "2026-11-21T033000Z");
  EXPECT_EQ((*backups)[0].config, "<domain/>");
  EXPECT_EQ((*backups)[0].disks[0].virtual_size, 3 * kCs - 100);

  std::vector<ChunkId> page;
  ASSERT_TRUE(repo_->catalog().ReadIndexPage(1, 0, 0, &page).ok());
  ASSERT_EQ(page.size(), kIndexPageSlots);
  EXPECT_EQ(page[0], index[0]);
  EXPECT_TRUE(page[1].is_zero());
  EXPECT_EQ(page[2], index[2]);
  EXPECT_TRUE(page[3].is_zero());
}

TEST_F(CatalogTest, BackupsInTheSameSecondGetDistinctNames) {
  BackupRecord a = MakeBackup("vm", kT0 + 100, 0), b = MakeBackup("vm", kT0 + 200, 0);
  ASSERT_TRUE(repo_->catalog().CommitBackup(testing::Vm("vm"), &a, {{}}).ok());
  ASSERT_TRUE(repo_->catalog().CommitBackup(testing::Vm("vm"), &b, {{}}).ok());
  EXPECT_NE(a.name(), b.name());
  EXPECT_GT(b.id, a.id);
  auto list = repo_->catalog().ListBackups("vm");
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, a.id);
}

TEST_F(CatalogTest, HolePagesAreNotStored) {
  DiskIndex index(kIndexPageSlots * 5);  // five pages, only the fourth holds data
  index[kIndexPageSlots * 3 + 7] = Put("data");
  BackupRecord b = MakeBackup("sparse", kT0, index.size() * kCs);
  ASSERT_TRUE(repo_->catalog().CommitBackup(testing::Vm("sparse"), &b, {index}).ok());
  EXPECT_EQ(kv_->Count(KvSpace::kIndex), 1u);
  std::vector<ChunkId> page;
  ASSERT_TRUE(repo_->catalog().ReadIndexPage(b.id, 0, 1, &page).ok());
  for (const auto& id : page) EXPECT_TRUE(id.is_zero());
  ASSERT_TRUE(repo_->catalog().ReadIndexPage(b.id, 0, 3, &page).ok());
  EXPECT_EQ(page[7], index[kIndexPageSlots * 3 + 7]);
}

TEST_F(CatalogTest, CrashBeforeCommitLeavesNoBackupAndCrashAfterKeepsAll) {
  // Chunks written, then a crash before the commit: nothing is visible.
  const ChunkId lost = Put(testing::TextBytes(10000, 1));
  kv_->DropUnsyncedWrites();
  EXPECT_FALSE(repo_->chunks().Lookup(lost)->has_value());
  EXPECT_TRUE(repo_->catalog().ListVms()->empty());

  // Chunks written, committed, then a crash: the backup and every chunk it names survive.
  DiskIndex index{Put(testing::TextBytes(10000, 2)), Put(testing::TextBytes(10000, 3))};
  BackupRecord b = MakeBackup("vm", kT0, 2 * kCs);
  ASSERT_TRUE(repo_->catalog().CommitBackup(testing::Vm("vm"), &b, {index}).ok());
  kv_->DropUnsyncedWrites();
  ASSERT_EQ(repo_->catalog().ListBackups("vm")->size(), 1u);
  std::string out;
  for (const auto& id : index) EXPECT_TRUE(repo_->chunks().Read(id, &out).ok());
}

TEST_F(CatalogTest, IndexThatDoesNotFitItsDiskIsRefused) {
  BackupRecord b = MakeBackup("vm", kT0, 3 * kCs);
  EXPECT_EQ(repo_->catalog().CommitBackup(testing::Vm("vm"), &b, {DiskIndex(2)}).code(),
            StatusCode::kInvalidArgument);
  b.disks[0].chunk_size = 3000;
  EXPECT_EQ(repo_->catalog().CommitBackup(testing::Vm("vm"), &b, {DiskIndex(1024)}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(repo_->catalog().ListVms()->empty());
}

TEST_F(CatalogTest, FailedCommitWritesNothing) {
  BackupRecord b = MakeBackup("vm", kT0, 0);
  kv_->FailNextFlush();  // the flush of the chunks fails
  EXPECT_FALSE(repo_->catalog().CommitBackup(testing::Vm("vm"), &b, {{}}).ok());
  EXPECT_TRUE(repo_->catalog().ListVms()->empty());
  kv_->FailNextWrites(1);  // the catalog write itself fails
  EXPECT_FALSE(repo_->catalog().CommitBackup(testing::Vm("vm"), &b, {{}}).ok());
  EXPECT_TRUE(repo_->catalog().ListVms()->empty());
  EXPECT_TRUE(repo_->catalog().ListBackups("vm")->empty());
}

TEST_F(CatalogTest, OnlyAFlushMakesChunksDurable) {
  // A synced catalog write does not make earlier chunk puts durable: the commit must
  // flush. (Take the Flush out of CommitBackup and the crash test above fails.)
  const ChunkId id = Put(testing::TextBytes(10000, 4));
  KvBatch other;
  other.Put(KvSpace::kCatalog, "x", "y");
  ASSERT_TRUE(kv_->Write(other, /*sync=*/true).ok());
  kv_->DropUnsyncedWrites();
  EXPECT_FALSE(repo_->chunks().Lookup(id)->has_value());
  std::string v;
  EXPECT_TRUE(kv_->Get(KvSpace::kCatalog, "x", &v).ok());
}

TEST_F(CatalogTest, CorruptRecordsAreCorruptionNotCrashes) {
  EXPECT_TRUE(DecodeBackupRecord("{").status().IsCorruption());
  EXPECT_TRUE(DecodeBackupRecord("{\"v\":1}").status().IsCorruption());
  EXPECT_TRUE(DecodeVmRecord("[]").status().IsCorruption());
  BackupRecord b = MakeBackup("x", kT0, 1);
  b.parent_id = 7;
  auto rt = DecodeBackupRecord(EncodeBackupRecord(b));
  ASSERT_TRUE(rt.ok());
  EXPECT_EQ(rt->parent_id, 7u);
}

TEST_F(CatalogTest, TrackingFieldsRoundTripAndDefaultWhenAbsent) {
  BackupRecord b = MakeBackup("x", kT0, 1);
  b.checkpoint = "vmvault-1";
  b.fs_frozen = true;
  b.pause_us = 1234;
  b.disks[0].read_mode = "incremental";
  b.disks[0].read_note = "why not";
  b.disks[0].reused_chunks = 9;
  b.disks[0].source_stamp = {1, 2, 3, 4};
  auto rt = DecodeBackupRecord(EncodeBackupRecord(b));
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  EXPECT_EQ(rt->checkpoint, "vmvault-1");
  EXPECT_TRUE(rt->fs_frozen);
  EXPECT_EQ(rt->pause_us, 1234);
  EXPECT_EQ(rt->disks[0].read_mode, "incremental");
  EXPECT_EQ(rt->disks[0].read_note, "why not");
  EXPECT_EQ(rt->disks[0].reused_chunks, 9u);
  EXPECT_EQ(rt->disks[0].source_stamp, (DiskRecord::SourceStamp{1, 2, 3, 4}));

  // A record written before these fields existed reads with their defaults.
  nlohmann::json old = nlohmann::json::parse(EncodeBackupRecord(MakeBackup("x", kT0, 1)));
  for (const char* k : {"checkpoint", "fs_frozen", "pause_us"}) old.erase(k);
  for (const char* k : {"read_mode", "read_note", "reused_chunks", "source_stamp"}) {
    old["disks"][0].erase(k);
  }
  auto legacy = DecodeBackupRecord(old.dump());
  ASSERT_TRUE(legacy.ok()) << legacy.status().ToString();
  EXPECT_EQ(legacy->disks[0].read_mode, "full");
  EXPECT_FALSE(legacy->disks[0].source_stamp.known());
  EXPECT_TRUE(legacy->checkpoint.empty());
}

TEST_F(CatalogTest, VmNamesThatArePrefixesOfOthersStayApart) {
  BackupRecord a = MakeBackup("web", kT0, 0), b = MakeBackup("web2", kT0, 0);
  ASSERT_TRUE(repo_->catalog().CommitBackup(testing::Vm("web"), &a, {{}}).ok());
  ASSERT_TRUE(repo_->catalog().CommitBackup(testing::Vm("web2"), &b, {{}}).ok());
  EXPECT_EQ(repo_->catalog().ListBackups("web")->size(), 1u);
  EXPECT_EQ(repo_->catalog().ListBackups("web2")->size(), 1u);
}

}  // namespace
}  // namespace vmvault::store

namespace vmvault::store {
namespace {

TEST(CatalogGenerationTest, EveryCommitMovesIt) {
  auto repo = Repository::OpenInMemory({});
  EXPECT_EQ(*repo->catalog().Generation(), 0u);
  BackupRecord b;
  b.vm = "vm";
  b.time_us = 1;
  ASSERT_TRUE(repo->catalog().CommitBackup(testing::Vm("vm"), &b, {}).ok());
  const uint64_t g1 = *repo->catalog().Generation();
  ASSERT_TRUE(repo->catalog().CommitBackup(testing::Vm("vm"), &b, {}).ok());
  EXPECT_GT(*repo->catalog().Generation(), g1);
}

}  // namespace
}  // namespace vmvault::store
