#include "fs/chunk_cache.h"

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "store/chunk_codec.h"
#include "store/repository.h"
#include "tests/fs/fs_test_util.h"

namespace vmvault::fs {
namespace {

constexpr uint32_t kCs = 64 << 10;

class ChunkCacheTest : public ::testing::Test {
 protected:
  // Stores `plain` as a zstd chunk and remembers it.
  store::ChunkId Put(std::string plain) {
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(plain.data()),
                                         plain.size());
    const store::ChunkId id = repo_->hasher().Hash(bytes);
    std::string value;
    store::ChunkEncoder(1).Encode(bytes, &value);
    EXPECT_TRUE(repo_->chunks().Put(id, value).ok());
    plain_.push_back(std::move(plain));
    ids_.push_back(id);
    return id;
  }

  // Chunks of many sizes: full, short (a disk's last chunk), tiny.
  void PutMixedSizes() {
    testing::DiskSpec d;
    const size_t sizes[] = {kCs, 1000, kCs, kCs / 2 + 7, 1, kCs, 12345, kCs};
    for (size_t i = 0; i < std::size(sizes); ++i) Put(testing::SlotBytes(d, i, sizes[i]));
  }

  std::unique_ptr<store::Repository> repo_ =
      store::Repository::OpenInMemory(testing::TestConfig(kCs));
  std::vector<std::string> plain_;
  std::vector<store::ChunkId> ids_;
};

TEST_F(ChunkCacheTest, ReusedBuffersHoldExactlyTheChunkLoadedIntoThem) {
  PutMixedSizes();
  // Room for two chunks: almost every Get loads, into the buffer of one evicted.
  ChunkCache cache(&repo_->chunks(), 2 * kCs + 300, kCs, 1);
  for (int round = 0; round < 5; ++round) {
    for (size_t i = 0; i < ids_.size(); ++i) {
      const size_t k = (i * 3 + round) % ids_.size();  // sizes in a changing order
      auto c = cache.Get(ids_[k]);
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      ASSERT_EQ((*c)->size(), plain_[k].size()) << "chunk " << k << " round " << round;
      ASSERT_TRUE(**c == plain_[k]) << "chunk " << k << " round " << round;
    }
  }
  EXPECT_GT(cache.stats().loads, 30u);
}

TEST_F(ChunkCacheTest, AnEvictedChunksBufferIsReusedOnceNoReaderHoldsIt) {
  const testing::DiskSpec d;
  Put(testing::SlotBytes(d, 0, kCs));
  Put(testing::SlotBytes(d, 1, kCs));
  Put(testing::SlotBytes(d, 2, 1000));
  Put(testing::SlotBytes(d, 3, 1000));
  ChunkCache cache(&repo_->chunks(), kCs + 200, kCs, 1);  // room for one full chunk

  auto held = cache.Get(ids_[0]);
  ASSERT_TRUE(held.ok());
  // Evicts chunk 0, which a reader still holds: its buffer is not the pool's yet.
  auto small = cache.Get(ids_[2]);
  ASSERT_TRUE(small.ok());
  EXPECT_LT((*small)->capacity(), size_t{kCs});
  small->reset();
  ASSERT_TRUE(cache.Get(ids_[1]).ok());  // evicts chunk 2, which nobody holds
  held->reset();                          // chunk 0's buffer goes back too
  // A load now decodes into a buffer of a full chunk, so it allocates nothing.
  auto reused = cache.Get(ids_[3]);
  ASSERT_TRUE(reused.ok());
  EXPECT_GE((*reused)->capacity(), size_t{kCs});
  EXPECT_TRUE(**reused == plain_[3]);
}

TEST_F(ChunkCacheTest, AChunkOutlivesItsCache) {
  Put(testing::SlotBytes(testing::DiskSpec(), 0, kCs));
  ChunkCache::Chunk c;
  {
    ChunkCache cache(&repo_->chunks(), 4 * kCs, kCs, 1);
    c = *cache.Get(ids_[0]);
  }
  EXPECT_TRUE(*c == plain_[0]);
  c.reset();  // gives its buffer to a pool its cache no longer holds
}

TEST_F(ChunkCacheTest, AFailedLoadIsNotCachedAndLeavesTheBuffersSound) {
  Put(testing::SlotBytes(testing::DiskSpec(), 0, kCs));
  const store::ChunkId good = ids_[0];
  Put(testing::SlotBytes(testing::DiskSpec(), 1, kCs));
  std::string value;
  ASSERT_TRUE(repo_->chunks().ReadRaw(ids_[1], &value).ok());
  value[value.size() / 2] ^= 0x40;  // damaged on disk
  ASSERT_TRUE(repo_->chunks().Put(ids_[1], value).ok());

  ChunkCache cache(&repo_->chunks(), kCs + 200, kCs, 1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(cache.Get(ids_[1]).status().IsCorruption());
    auto c = cache.Get(good);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(**c == plain_[0]);
  }
}

}  // namespace
}  // namespace vmvault::fs
