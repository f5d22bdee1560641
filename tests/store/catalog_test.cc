#include "store/catalog.h"

#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/bytes.h"
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
  // Numbers that are not integers of the field's range (found by fuzz_records: a float
  // too large for uint64_t was undefined behaviour), with the rest of the record valid.
  for (const char* bad : {"4.29497e+25", "1.5", "-1", "18446744073709551616"}) {
    std::string text = EncodeBackupRecord(b);
    const std::string field = "\"id\":" + std::to_string(b.id);
    ASSERT_NE(text.find(field), std::string::npos);
    text.replace(text.find(field), field.size(), std::string("\"id\":") + bad);
    EXPECT_TRUE(DecodeBackupRecord(text).status().IsCorruption()) << bad;
  }
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

// Deleting backups (prune), against both engines.
namespace vmvault::store {
namespace {

constexpr int64_t kMinute = 60'000'000;

struct MemEngineFactory {
  std::shared_ptr<KvEngine> Make() { return std::make_shared<MemKvEngine>(); }
};

struct RocksEngineFactory {
  testing::TempDir dir;
  std::shared_ptr<KvEngine> Make() {
    RocksKvOptions o;
    o.create = true;
    auto e = OpenRocksKvEngine(dir.path() + "/db", KvOpenMode::kReadWrite, o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::shared_ptr<KvEngine>(std::move(e).value());
  }
};

template <typename F>
class CatalogDeleteTest : public ::testing::Test {
 protected:
  CatalogDeleteTest() : kv_(factory_.Make()), repo_(Repository::OpenInMemory({}, kv_)) {}

  Catalog& catalog() { return repo_->catalog(); }

  // A backup of one disk of two index pages, slot 0 and one slot of page 1 holding
  // data, and page 2 all holes.
  BackupRecord Commit(const std::string& vm, int64_t t, uint32_t seed) {
    DiskIndex index(2 * kIndexPageSlots + 10);
    index[0] = testing::PutChunk(repo_.get(), testing::TextBytes(1000, seed));
    index[kIndexPageSlots + 1] = testing::PutChunk(repo_.get(), testing::TextBytes(1000, seed + 1));
    BackupRecord b;
    b.vm = vm;
    b.time_us = t;
    DiskRecord d;
    d.name = "vda";
    d.virtual_size = index.size() * kCs;
    d.chunk_size = kCs;
    d.data_chunks = 2;
    b.disks.push_back(d);
    EXPECT_TRUE(catalog().CommitBackup(testing::Vm(vm), &b, {index}).ok());
    chunks_[b.id] = {index[0], index[kIndexPageSlots + 1]};
    return b;
  }

  size_t Keys(KvSpace space, const std::string& prefix) {
    size_t n = 0;
    EXPECT_TRUE(kv_->Scan(space, prefix, [&](std::string_view, std::string_view) {
                     ++n;
                     return true;
                   }).ok());
    return n;
  }

  static std::string Id(uint64_t id) {
    std::string k;
    PutBigEndian64(&k, id);
    return k;
  }

  F factory_;
  std::shared_ptr<KvEngine> kv_;
  std::unique_ptr<Repository> repo_;
  std::map<uint64_t, std::vector<ChunkId>> chunks_;
};

using Engines = ::testing::Types<MemEngineFactory, RocksEngineFactory>;
TYPED_TEST_SUITE(CatalogDeleteTest, Engines);

TYPED_TEST(CatalogDeleteTest, RemovesRecordsPagesSummariesAndVerificationsButNoChunk) {
  const BackupRecord b1 = this->Commit("web", kT0, 1);
  const BackupRecord b2 = this->Commit("web", kT0 + kMinute, 3);
  const BackupRecord b3 = this->Commit("web", kT0 + 2 * kMinute, 5);
  const BackupRecord d1 = this->Commit("db", kT0, 7);
  ASSERT_TRUE(this->catalog().RecordVerifications({{b1.id, {}}, {b3.id, {}}}).ok());
  ASSERT_EQ(this->Keys(KvSpace::kIndex, this->Id(b1.id)), 2u);
  ASSERT_EQ(this->Keys(KvSpace::kCatalog, "ds/" + this->Id(b1.id)), 1u);
  const uint64_t generation = *this->catalog().Generation();

  ASSERT_TRUE(this->catalog().DeleteBackups({b1.id, b2.id, b1.id}).ok());

  auto web = this->catalog().ListBackups("web");
  ASSERT_TRUE(web.ok());
  ASSERT_EQ(web->size(), 1u);
  EXPECT_EQ((*web)[0].id, b3.id);
  EXPECT_EQ(this->catalog().ListBackups("db")->size(), 1u);
  EXPECT_EQ(this->catalog().ListVms()->size(), 2u);
  EXPECT_GT(*this->catalog().Generation(), generation);
  for (const BackupRecord* gone : {&b1, &b2}) {
    EXPECT_TRUE(this->catalog().GetBackup(gone->id).status().IsNotFound());
    EXPECT_EQ(this->Keys(KvSpace::kIndex, this->Id(gone->id)), 0u);
    EXPECT_EQ(this->Keys(KvSpace::kCatalog, "ds/" + this->Id(gone->id)), 0u);
    EXPECT_EQ(this->Keys(KvSpace::kCatalog, "vf/" + this->Id(gone->id)), 0u);
    EXPECT_EQ(this->Keys(KvSpace::kCatalog, "bk/" + this->Id(gone->id)), 0u);
  }
  // What stays is whole: pages, summary, verification, and every chunk.
  EXPECT_EQ(this->Keys(KvSpace::kIndex, this->Id(b3.id)), 2u);
  EXPECT_TRUE(this->catalog().ReadDiskSummary(b3.id, 0, b3.disks[0]).ok());
  EXPECT_TRUE(this->catalog().GetVerification(b3.id)->has_value());
  EXPECT_EQ(this->Keys(KvSpace::kIndex, this->Id(d1.id)), 2u);
  for (const auto& [id, ids] : this->chunks_) {
    for (const ChunkId& c : ids) EXPECT_TRUE(this->repo_->chunks().Lookup(c)->has_value());
  }
}

TYPED_TEST(CatalogDeleteTest, ARemovedBackupReadsAsNotFoundNeverAsHoles) {
  const BackupRecord b1 = this->Commit("web", kT0, 1);
  const BackupRecord b2 = this->Commit("web", kT0 + kMinute, 3);
  std::vector<ChunkId> page;
  ASSERT_TRUE(this->catalog().ReadIndexPage(b1.id, 0, 2, &page).ok());  // a page of holes
  ASSERT_TRUE(this->catalog().DeleteBackups({b1.id}).ok());

  for (uint64_t p : {0, 1, 2}) {
    const Status s = this->catalog().ReadIndexPage(b1.id, 0, p, &page);
    EXPECT_TRUE(s.IsNotFound()) << p << ": " << s.ToString();
    EXPECT_NE(s.message().find("removed"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(this->catalog().ReadDiskSummary(b1.id, 0, b1.disks[0]).status().IsNotFound());
  bool called = false;
  EXPECT_TRUE(this->catalog()
                  .ForEachIndexPage(b1.id, 0, b1.disks[0],
                                    [&](uint64_t, const ChunkId*, size_t) { return called = true; })
                  .IsNotFound());
  EXPECT_FALSE(called);
  // The other backup's page of holes still reads as holes.
  ASSERT_TRUE(this->catalog().ReadIndexPage(b2.id, 0, 2, &page).ok());
  for (const ChunkId& id : page) EXPECT_TRUE(id.is_zero());
}

TYPED_TEST(CatalogDeleteTest, AVmLeftWithoutBackupsGoesAndCanComeBack) {
  const BackupRecord d1 = this->Commit("db", kT0, 1);
  const BackupRecord d2 = this->Commit("db", kT0 + kMinute, 3);
  this->Commit("web", kT0, 5);
  ASSERT_TRUE(this->catalog().DeleteBackups({d1.id}).ok());
  EXPECT_TRUE(this->catalog().GetVm("db").ok());
  ASSERT_TRUE(this->catalog().DeleteBackups({d2.id}).ok());
  EXPECT_TRUE(this->catalog().GetVm("db").status().IsNotFound());
  EXPECT_TRUE(this->catalog().ListBackups("db")->empty());
  ASSERT_EQ(this->catalog().ListVms()->size(), 1u);
  // Ids are never reused: a new backup of the VM gets a fresh one.
  const BackupRecord again = this->Commit("db", kT0, 7);
  EXPECT_GT(again.id, d2.id);
  EXPECT_EQ(this->catalog().ListBackups("db")->size(), 1u);
}

TYPED_TEST(CatalogDeleteTest, AVerificationOfARemovedBackupIsNotRecorded) {
  // verify reads a snapshot, then records under the writer lock: prune may run between.
  const BackupRecord b1 = this->Commit("web", kT0, 1);
  const BackupRecord b2 = this->Commit("web", kT0 + kMinute, 3);
  ASSERT_TRUE(this->catalog().DeleteBackups({b1.id}).ok());
  ASSERT_TRUE(this->catalog().RecordVerifications({{b1.id, {}}, {b2.id, {}}}).ok());
  EXPECT_EQ(this->Keys(KvSpace::kCatalog, "vf/" + this->Id(b1.id)), 0u);
  EXPECT_TRUE(this->catalog().GetVerification(b2.id)->has_value());
}

TYPED_TEST(CatalogDeleteTest, AnUnknownIdRemovesNothing) {
  const BackupRecord b1 = this->Commit("web", kT0, 1);
  const uint64_t generation = *this->catalog().Generation();
  EXPECT_TRUE(this->catalog().DeleteBackups({b1.id, b1.id + 100}).IsNotFound());
  EXPECT_TRUE(this->catalog().GetBackup(b1.id).ok());
  EXPECT_EQ(*this->catalog().Generation(), generation);
  // Nothing to remove is no write at all.
  EXPECT_TRUE(this->catalog().DeleteBackups({}).ok());
  EXPECT_EQ(*this->catalog().Generation(), generation);
}

TEST_F(CatalogTest, DeletingIsOneSyncedWriteOrNothing) {
  DiskIndex index{Put("a"), Put("b")};
  BackupRecord b1 = MakeBackup("vm", kT0, 2 * kCs), b2 = MakeBackup("vm", kT0 + kSec, 2 * kCs);
  ASSERT_TRUE(repo_->catalog().CommitBackup(testing::Vm("vm"), &b1, {index}).ok());
  ASSERT_TRUE(repo_->catalog().CommitBackup(testing::Vm("vm"), &b2, {index}).ok());
  const size_t index_keys = kv_->Count(KvSpace::kIndex);

  kv_->FailNextWrites(1);
  EXPECT_FALSE(repo_->catalog().DeleteBackups({b1.id}).ok());
  EXPECT_EQ(repo_->catalog().ListBackups("vm")->size(), 2u);
  EXPECT_EQ(kv_->Count(KvSpace::kIndex), index_keys);

  // Synced: a crash right after it keeps the deletion.
  ASSERT_TRUE(repo_->catalog().DeleteBackups({b1.id}).ok());
  kv_->DropUnsyncedWrites();
  ASSERT_EQ(repo_->catalog().ListBackups("vm")->size(), 1u);
  EXPECT_EQ(kv_->Count(KvSpace::kIndex), index_keys / 2);
}

// A mount follows the writer through a read-only RocksDB instance that Refresh()
// replaces: after a deletion it must see NotFound, not a disk of holes.
TEST(CatalogFollowerTest, AFollowerSeesARemovedBackupAsNotFound) {
  testing::TempDir dir;
  RocksKvOptions o;
  o.create = true;
  auto writer_kv = OpenRocksKvEngine(dir.path() + "/db", KvOpenMode::kReadWrite, o);
  ASSERT_TRUE(writer_kv.ok());
  auto writer = Repository::OpenInMemory({}, std::shared_ptr<KvEngine>(std::move(writer_kv).value()));
  DiskIndex index{testing::PutChunk(writer.get(), "some data")};
  BackupRecord b;
  b.vm = "vm";
  b.time_us = kT0;
  DiskRecord d;
  d.name = "vda";
  d.virtual_size = kCs;
  d.chunk_size = kCs;
  b.disks.push_back(d);
  ASSERT_TRUE(writer->catalog().CommitBackup(testing::Vm("vm"), &b, {index}).ok());

  auto follower_kv = OpenRocksKvEngine(dir.path() + "/db", KvOpenMode::kFollower, RocksKvOptions());
  ASSERT_TRUE(follower_kv.ok()) << follower_kv.status().ToString();
  std::shared_ptr<KvEngine> follower(std::move(follower_kv).value());
  Catalog reader(follower.get());
  std::vector<ChunkId> page;
  ASSERT_TRUE(reader.ReadIndexPage(b.id, 0, 0, &page).ok());
  EXPECT_EQ(page[0], index[0]);

  ASSERT_TRUE(writer->catalog().DeleteBackups({b.id}).ok());
  ASSERT_TRUE(reader.ReadIndexPage(b.id, 0, 0, &page).ok()) << "the old instance stays as it was";
  ASSERT_TRUE(follower->Refresh().ok());
  EXPECT_TRUE(reader.ReadIndexPage(b.id, 0, 0, &page).IsNotFound());
  EXPECT_TRUE(reader.ListVms()->empty());
}

}  // namespace
}  // namespace vmvault::store
