// Garbage collection: exactly the chunks no backup references go, on the in-memory
// engine and on RocksDB, where the repository must shrink on disk.
#include "store/gc.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace vmvault::store {
namespace {

constexpr uint32_t kCs = 64 << 10;
constexpr int64_t kT0 = 1'795'231'800'000'000;

bool Stored(const Repository& repo, const ChunkId& id) {
  auto meta = repo.chunks().Lookup(id);
  return meta.ok() && meta->has_value();
}

TEST(GcTest, DeletesExactlyTheUnreferencedChunks) {
  auto kv = std::make_shared<MemKvEngine>();
  RepoConfig config;
  config.chunk_size = kCs;
  auto repo = Repository::OpenInMemory(config, kv);
  const ChunkId a = testing::PutChunk(repo.get(), testing::RandomBytes(kCs, 1));
  const ChunkId b = testing::PutChunk(repo.get(), testing::RandomBytes(kCs, 2));
  const ChunkId c = testing::PutChunk(repo.get(), testing::TextBytes(kCs, 3));
  // Stored by an ingest that never committed.
  const ChunkId orphan1 = testing::PutChunk(repo.get(), testing::RandomBytes(kCs, 4));
  const ChunkId orphan2 = testing::PutChunk(repo.get(), testing::TextBytes(kCs, 5));
  testing::CommitBackup(repo.get(), "web", kT0, kCs, {a, ChunkId(), b, a});
  testing::CommitBackup(repo.get(), "db", kT0, kCs, {c});
  const uint64_t generation = *repo->catalog().Generation();

  auto dry = CollectGarbage(*repo, {.dry_run = true});
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry->backups, 2u);
  EXPECT_EQ(dry->referenced_chunks, 3u);
  EXPECT_EQ(dry->stored_chunks, 5u);
  EXPECT_EQ(dry->deleted_chunks, 2u);
  EXPECT_GT(dry->deleted_bytes, 0u);
  EXPECT_TRUE(Stored(*repo, orphan1));
  EXPECT_EQ(*repo->catalog().Generation(), generation);

  auto done = CollectGarbage(*repo, {});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->deleted_chunks, 2u);
  EXPECT_EQ(done->deleted_bytes, dry->deleted_bytes);
  EXPECT_EQ(done->missing_chunks, 0u);
  EXPECT_FALSE(Stored(*repo, orphan1));
  EXPECT_FALSE(Stored(*repo, orphan2));
  EXPECT_EQ(kv->Count(KvSpace::kChunks), 3u);
  std::string plain;
  for (const ChunkId& id : {a, b, c}) EXPECT_TRUE(repo->chunks().Read(id, &plain).ok());
  // Mounts must notice.
  EXPECT_GT(*repo->catalog().Generation(), generation);

  // Nothing left to do: a second run deletes nothing and leaves the generation alone.
  auto again = CollectGarbage(*repo, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->deleted_chunks, 0u);
}

TEST(GcTest, CountsReferencedChunksThatAreMissing) {
  RepoConfig config;
  config.chunk_size = kCs;
  auto repo = Repository::OpenInMemory(config);
  const ChunkId a = testing::PutChunk(repo.get(), testing::RandomBytes(kCs, 1));
  ChunkId ghost;
  ghost.bytes[0] = 7;  // never stored
  testing::CommitBackup(repo.get(), "web", kT0, kCs, {a, ghost});
  auto s = CollectGarbage(*repo, {});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->missing_chunks, 1u);
  EXPECT_EQ(s->deleted_chunks, 0u);
  EXPECT_TRUE(Stored(*repo, a));
}

TEST(GcTest, NeedsTheRepositoryOpenForWriting) {
  testing::TempDir dir;
  RepoConfig config;
  ASSERT_TRUE(Repository::Init(dir.path() + "/repo", config).ok());
  auto repo = Repository::Open(dir.path() + "/repo", RepoMode::kReadOnly);
  ASSERT_TRUE(repo.ok());
  EXPECT_EQ(CollectGarbage(**repo, {}).status().code(), StatusCode::kReadOnly);
}

// 48 MiB of incompressible chunks, two thirds of them unreferenced: after gc the
// repository's blocks on disk must have gone down by most of those.
TEST(GcTest, TheRepositoryShrinksOnDisk) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/repo";
  RepoConfig config;
  config.chunk_size = 1 << 20;
  ASSERT_TRUE(Repository::Init(path, config).ok());
  auto opened = Repository::Open(path, RepoMode::kWrite);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Repository& repo = **opened;
  std::vector<ChunkId> kept;
  std::vector<ChunkId> dropped;
  for (uint32_t i = 0; i < 48; ++i) {
    const ChunkId id = testing::PutChunk(&repo, testing::RandomBytes(1 << 20, 100 + i));
    (i % 3 == 0 ? kept : dropped).push_back(id);
  }
  testing::CommitBackup(&repo, "web", kT0, 1 << 20, kept);  // flushes every chunk
  const uint64_t before = DiskUsage(path);
  ASSERT_GT(before, 48u << 20);

  auto s = CollectGarbage(repo, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->deleted_chunks, 32u);
  EXPECT_EQ(s->disk_bytes_before, before);
  const uint64_t after = DiskUsage(path);
  EXPECT_EQ(s->disk_bytes_after, after);
  // 32 MiB of chunk values went; allow RocksDB's own files some slack.
  EXPECT_LT(after, before - (28u << 20)) << "before " << before << ", after " << after;
  std::string plain;
  for (const ChunkId& id : kept) EXPECT_TRUE(repo.chunks().Read(id, &plain).ok());
  for (const ChunkId& id : dropped) EXPECT_FALSE(Stored(repo, id));

  // And the repository opens again as it was left.
  opened->reset();
  auto reopened = Repository::Open(path, RepoMode::kReadOnly);
  ASSERT_TRUE(reopened.ok());
  for (const ChunkId& id : kept) EXPECT_TRUE((*reopened)->chunks().Read(id, &plain).ok());
}

}  // namespace
}  // namespace vmvault::store
