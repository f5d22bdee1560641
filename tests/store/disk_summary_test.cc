#include "store/disk_summary.h"

#include <gtest/gtest.h>

#include "base/file_util.h"
#include "store/catalog.h"
#include "store/chunk_codec.h"
#include "store/repository.h"
#include "test_util.h"

namespace vmvault::store {
namespace {

ChunkId IdOf(uint64_t n) {
  ChunkId id;
  for (int i = 0; i < 8; ++i) id.bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  id.bytes[15] = 1;
  return id;
}

TEST(DiskSummaryTest, CountsSlotsAndGroupsPerPage) {
  // 256 KiB chunks: groups of 4 slots (1 MiB). Two full pages and a short one.
  DiskIndex index(2 * kIndexPageSlots + 10);
  index[0] = IdOf(1);
  index[1] = IdOf(2);  // same group as slot 0
  index[7] = IdOf(3);  // group 1
  index[kIndexPageSlots + 4095] = IdOf(4);
  index[2 * kIndexPageSlots + 9] = IdOf(5);
  const DiskSummary s = SummarizeIndex(index, 256 << 10);
  EXPECT_EQ(s.slots, index.size());
  EXPECT_EQ(s.group_slots, 4u);
  EXPECT_EQ(s.page_data_slots, (std::vector<uint16_t>{3, 1, 1}));
  EXPECT_EQ(s.page_data_groups, (std::vector<uint16_t>{2, 1, 1}));
  EXPECT_EQ(GroupSlots(1 << 20), 1u);
  EXPECT_EQ(GroupSlots(4 << 20), 1u);
  EXPECT_EQ(GroupSlots(64 << 10), 16u);
}

TEST(DiskSummaryTest, EncodesAndRejectsDamage) {
  DiskIndex index(kIndexPageSlots * 3);
  for (uint64_t i = 0; i < index.size(); i += 3) index[i] = IdOf(i + 1);
  const DiskSummary s = SummarizeIndex(index, 64 << 10);
  const std::string value = EncodeDiskSummary(s);
  auto back = DecodeDiskSummary(value);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);

  EXPECT_TRUE(DecodeDiskSummary("").status().IsCorruption());
  EXPECT_TRUE(DecodeDiskSummary(value.substr(0, value.size() - 1)).status().IsCorruption());
  std::string bad_version = value;
  bad_version[0] = 9;
  EXPECT_TRUE(DecodeDiskSummary(bad_version).status().IsCorruption());
  std::string too_many = value;
  too_many[13] = static_cast<char>(0xff);  // page 0 claims 0x..ff data slots
  too_many[14] = static_cast<char>(0xff);
  EXPECT_TRUE(DecodeDiskSummary(too_many).status().IsCorruption());
}

// "ds/<backup id:u64 BE><disk 0:u32 BE>", as FORMAT.md documents it.
std::string SummaryKeyOf(uint64_t backup_id) {
  std::string key = "ds/";
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((backup_id >> (8 * i)) & 0xff));
  key.append(4, '\0');
  return key;
}

class SummaryCatalogTest : public ::testing::Test {
 protected:
  static RepoConfig Config() {
    RepoConfig config;
    config.chunk_size = 64 << 10;
    return config;
  }
  // An in-memory repository of Config() on `kv`.
  static std::unique_ptr<Repository> InMemory(
      std::shared_ptr<MemKvEngine> kv = std::make_shared<MemKvEngine>()) {
    return Repository::OpenInMemory(Config(), std::move(kv));
  }
  ChunkId Put(Repository* repo, const std::string& plain) {
    return testing::PutChunk(repo, plain);
  }

  // A 3-page disk of 64 KiB chunks with data on pages 0 and 2 only.
  std::pair<BackupRecord, DiskIndex> Commit(Repository* repo) {
    const uint32_t cs = repo->config().chunk_size;
    DiskIndex index(2 * kIndexPageSlots + 100);
    for (uint64_t slot : {0ul, 5ul, 6ul, 4095ul, 2 * 4096ul + 99}) {
      index[slot] = Put(repo, testing::RandomBytes(100, static_cast<uint32_t>(slot)));
    }
    BackupRecord b;
    b.vm = "web";
    b.time_us = 1'795'231'800'000'000;
    DiskRecord d;
    d.name = "vda";
    d.chunk_size = cs;
    d.virtual_size = index.size() * cs - 1000;
    b.disks.push_back(d);
    EXPECT_TRUE(repo->catalog().CommitBackup(testing::Vm("web"), &b, {index}).ok());
    return {b, index};
  }
};

TEST_F(SummaryCatalogTest, CommitStoresTheSummary) {
  const RepoConfig config = Config();
  auto repo = InMemory();
  auto [b, index] = Commit(repo.get());
  auto s = repo->catalog().ReadDiskSummary(b.id, 0, b.disks[0]);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*s, SummarizeIndex(index, config.chunk_size));
  EXPECT_EQ(s->page_data_slots, (std::vector<uint16_t>{4, 0, 1}));

  // A summary that does not fit its disk record is damage, not a layout to trust.
  DiskRecord other = b.disks[0];
  other.virtual_size *= 2;
  EXPECT_TRUE(repo->catalog().ReadDiskSummary(b.id, 0, other).status().IsCorruption());
  // So are records no reader could lay out: sizes that overflow, odd chunk sizes.
  other = b.disks[0];
  other.virtual_size = UINT64_MAX;
  EXPECT_TRUE(repo->catalog().ReadDiskSummary(b.id, 0, other).status().IsCorruption());
  other = b.disks[0];
  other.chunk_size = 1;
  EXPECT_TRUE(repo->catalog().ReadDiskSummary(b.id, 0, other).status().IsCorruption());
  // Without a stored summary (format 1), the same records fail before any allocation.
  EXPECT_TRUE(repo->catalog().ReadDiskSummary(b.id + 1, 0, other).status().IsCorruption());
}

// Only a stored summary tells a page of holes from a missing page: none stored is
// nullopt (not a computed one), and a removed backup's is NotFound.
TEST_F(SummaryCatalogTest, StoredSummaryIsNulloptWithoutOneAndNotFoundOnceRemoved) {
  const RepoConfig config = Config();
  auto repo = InMemory();
  auto [b, index] = Commit(repo.get());
  auto stored = repo->catalog().ReadStoredDiskSummary(b.id, 0, b.disks[0]);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ(**stored, SummarizeIndex(index, config.chunk_size));
  KvBatch batch;
  batch.Delete(KvSpace::kCatalog, SummaryKeyOf(b.id));
  ASSERT_TRUE(repo->kv().Write(batch, true).ok());
  stored = repo->catalog().ReadStoredDiskSummary(b.id, 0, b.disks[0]);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_FALSE(stored->has_value());
  ASSERT_TRUE(repo->catalog().DeleteBackups({b.id}).ok());
  EXPECT_TRUE(
      repo->catalog().ReadStoredDiskSummary(b.id, 0, b.disks[0]).status().IsNotFound());
}

TEST_F(SummaryCatalogTest, UpgradeSkipsADamagedIndexInsteadOfBlockingEveryIngest) {
  auto kv = std::make_shared<MemKvEngine>();
  auto repo = InMemory(kv);
  auto [good, good_index] = Commit(repo.get());
  auto [bad, bad_index] = Commit(repo.get());
  // Format 1: no summaries; and one index page of `bad` is garbage.
  KvBatch batch;
  for (uint64_t id : {good.id, bad.id}) batch.Delete(KvSpace::kCatalog, SummaryKeyOf(id));
  std::string page_key;
  for (int i = 7; i >= 0; --i) page_key.push_back(static_cast<char>((bad.id >> (8 * i)) & 0xff));
  page_key.append(4 + 8, '\0');  // disk 0, page 0
  batch.Put(KvSpace::kIndex, page_key, "not a page");
  ASSERT_TRUE(kv->Write(batch, true).ok());

  uint64_t skipped = 0;
  ASSERT_TRUE(repo->catalog().AddMissingSummaries(&skipped).ok());
  EXPECT_EQ(skipped, 1u);
  std::string value;
  EXPECT_TRUE(kv->Get(KvSpace::kCatalog, SummaryKeyOf(good.id), &value).ok());
  EXPECT_TRUE(kv->Get(KvSpace::kCatalog, SummaryKeyOf(bad.id), &value).IsNotFound());
  // The damaged disk still reports its damage to whoever reads it.
  EXPECT_TRUE(repo->catalog().ReadDiskSummary(bad.id, 0, bad.disks[0]).status().IsCorruption());
}

// A repository written by format version 1 has no summaries. Readers compute them from
// the index; the first writer stores them and moves the format file to version 2.
TEST_F(SummaryCatalogTest, Version1RepositoryIsReadAndUpgradedByTheFirstWriter) {
  testing::TempDir tmp;
  const std::string path = tmp.path() + "/repo";
  const RepoConfig config = Config();
  ASSERT_TRUE(Repository::Init(path, config).ok());
  BackupRecord b;
  DiskIndex index;
  {
    auto w = Repository::Open(path, RepoMode::kWrite);
    ASSERT_TRUE(w.ok());
    std::tie(b, index) = Commit(w->get());
    // Make it what version 1 wrote: no ds/ keys, version 1 in the format file.
    KvBatch batch;
    std::string value;
    ASSERT_TRUE((*w)->kv().Get(KvSpace::kCatalog, SummaryKeyOf(b.id), &value).ok())
        << "the key layout of FORMAT.md";
    batch.Delete(KvSpace::kCatalog, SummaryKeyOf(b.id));
    ASSERT_TRUE((*w)->kv().Write(batch, true).ok());
  }
  auto text = ReadFile(path + "/vmvault.json");
  ASSERT_TRUE(text.ok());
  std::string t = *text;
  t.replace(t.find("\"version\": 2"), 12, "\"version\": 1");
  ASSERT_TRUE(WriteFileAtomic(path + "/vmvault.json", t, 0600).ok());

  const DiskSummary expected = SummarizeIndex(index, config.chunk_size);
  {
    auto r = Repository::Open(path, RepoMode::kReadOnly);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ((*r)->config().format_version, 1u);
    auto s = (*r)->catalog().ReadDiskSummary(b.id, 0, b.disks[0]);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(*s, expected);
  }
  EXPECT_NE(ReadFile(path + "/vmvault.json")->find("\"version\": 1"), std::string::npos)
      << "a reader must not upgrade";
  {
    auto w = Repository::Open(path, RepoMode::kWrite);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ((*w)->config().format_version, 2u);
  }
  EXPECT_NE(ReadFile(path + "/vmvault.json")->find("\"version\": 2"), std::string::npos);
  // The summary is stored now, and the next writer has nothing to upgrade.
  auto r = Repository::Open(path, RepoMode::kReadOnly);
  ASSERT_TRUE(r.ok());
  std::string value;
  ASSERT_TRUE((*r)->kv().Get(KvSpace::kCatalog, SummaryKeyOf(b.id), &value).ok());
  auto stored = DecodeDiskSummary(value);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, expected);
}

}  // namespace
}  // namespace vmvault::store
