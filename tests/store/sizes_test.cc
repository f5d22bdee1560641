#include "store/sizes.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace vmvault::store {
namespace {

constexpr uint32_t kCs = 64 << 10;
constexpr int64_t kT0 = 1'795'231'800'000'000;
constexpr int64_t kDay = 86'400'000'000;

class SizesTest : public ::testing::Test {
 protected:
  SizesTest() {
    RepoConfig config;
    config.chunk_size = kCs;
    repo_ = Repository::OpenInMemory(config);
  }

  ChunkId Put(const std::string& plain) { return testing::PutChunk(repo_.get(), plain); }
  uint64_t Len(const ChunkId& id) { return (*repo_->chunks().Lookup(id))->stored_len; }
  BackupRecord Commit(const std::string& vm, int64_t t, const std::vector<ChunkId>& ids) {
    return testing::CommitBackup(repo_.get(), vm, t, kCs, ids);
  }

  std::unique_ptr<Repository> repo_;
};

TEST_F(SizesTest, StoredCountsDistinctChunksAndUniqueWhatNothingElseReferences) {
  // Random chunks barely compress, text ones do: the sizes differ per chunk.
  const ChunkId a = Put(testing::RandomBytes(kCs, 1)), b = Put(testing::TextBytes(kCs, 2)),
                c = Put(testing::RandomBytes(kCs, 3)), d = Put(testing::TextBytes(kCs, 4)),
                orphan = Put(testing::RandomBytes(kCs, 5));
  const BackupRecord web1 = Commit("web", kT0, {a, b, ChunkId(), a});
  const BackupRecord web2 = Commit("web", kT0 + kDay, {a, c});
  const BackupRecord db1 = Commit("db", kT0, {c, d});

  auto r = ComputeSizes(repo_->catalog(), repo_->chunks());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const UsageSizes& s1 = r->backups.at(web1.id);
  EXPECT_EQ(s1.logical, 4 * kCs);
  EXPECT_EQ(s1.stored, Len(a) + Len(b)) << "a counts once";
  EXPECT_EQ(s1.chunks, 2u);
  EXPECT_EQ(s1.unique, Len(b));
  const UsageSizes& s2 = r->backups.at(web2.id);
  EXPECT_EQ(s2.stored, Len(a) + Len(c));
  EXPECT_EQ(s2.unique, 0u) << "a is in web1, c in db's backup";
  const UsageSizes& s3 = r->backups.at(db1.id);
  EXPECT_EQ(s3.stored, Len(c) + Len(d));
  EXPECT_EQ(s3.unique, Len(d));

  const UsageSizes& web = r->vms.at("web");
  EXPECT_EQ(web.logical, 2 * kCs) << "the newest backup's";
  EXPECT_EQ(web.stored, Len(a) + Len(b) + Len(c));
  EXPECT_EQ(web.unique, Len(a) + Len(b));
  EXPECT_EQ(web.chunks, 3u);
  EXPECT_EQ(r->vms.at("db").unique, Len(d));

  EXPECT_EQ(r->repo.chunks, 5u);
  EXPECT_EQ(r->repo.stored, Len(a) + Len(b) + Len(c) + Len(d) + Len(orphan));
  EXPECT_EQ(r->repo.referenced_chunks, 4u);
  EXPECT_EQ(r->repo.referenced, Len(a) + Len(b) + Len(c) + Len(d));
  EXPECT_EQ(r->repo.unreferenced, Len(orphan));
  EXPECT_EQ(r->repo.missing_chunks, 0u);

  // Pruning web1 frees exactly its unique bytes (as gc would).
  ASSERT_TRUE(repo_->catalog().DeleteBackups({web1.id}).ok());
  auto after = ComputeSizes(repo_->catalog(), repo_->chunks());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->repo.unreferenced, Len(orphan) + s1.unique);
  EXPECT_EQ(after->backups.at(web2.id).unique, Len(a));
}

TEST_F(SizesTest, MissingChunksAreCountedOnceAndSizedZero) {
  const ChunkId a = Put(testing::RandomBytes(kCs, 1));
  const std::string gone = testing::RandomBytes(kCs, 9);
  const ChunkId missing =
      repo_->hasher().Hash({reinterpret_cast<const uint8_t*>(gone.data()), gone.size()});
  const BackupRecord b1 = Commit("web", kT0, {a, missing});
  Commit("web", kT0 + kDay, {missing});
  auto r = ComputeSizes(repo_->catalog(), repo_->chunks());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->repo.missing_chunks, 1u);
  EXPECT_EQ(r->repo.referenced_chunks, 2u);
  EXPECT_EQ(r->backups.at(b1.id).stored, Len(a));
  EXPECT_EQ(r->backups.at(b1.id).chunks, 2u);
}

TEST_F(SizesTest, AnEmptyRepositoryHasNoSizes) {
  auto r = ComputeSizes(repo_->catalog(), repo_->chunks());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->backups.empty());
  EXPECT_TRUE(r->vms.empty());
  EXPECT_EQ(r->repo.stored, 0u);
}

}  // namespace
}  // namespace vmvault::store
