#include "fs/region_map.h"

#include <gtest/gtest.h>

#include "fs/chunk_cache.h"
#include "fs/index_page_cache.h"
#include "fs/raw_view.h"
#include "fs/view_reader.h"
#include "tests/fs/fs_test_util.h"

namespace vmvault::fs {
namespace {

using testing::DiskSpec;
using testing::ExpectedBytes;

constexpr uint32_t kCs = 64 << 10;

class RegionMapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = store::Repository::OpenInMemory(testing::TestConfig(kCs));
    disk_.size = 8 * kCs;
    disk_.has_data = [](uint64_t slot) { return slot == 1 || slot == 2 || slot == 6; };
    auto b = testing::CommitDisks(repo_.get(), testing::MakeVm("vm"), testing::TestTime(),
                                  {disk_});
    ASSERT_TRUE(b.ok());
    pages_ = std::make_unique<IndexPageCache>(&repo_->catalog(), 1 << 20);
    cache_ = std::make_unique<ChunkCache>(&repo_->chunks(), 4 << 20, kCs);
    reader_ = std::make_unique<ViewReader>(cache_.get(), nullptr);
    raw_ = std::make_shared<RawView>(pages_.get(), b->id, 0, b->disks[0]);
  }

  std::string ReadAll(const View& v) {
    ReadResult r;
    EXPECT_TRUE(reader_->Read(v, 0, v.size(), &r).ok());
    return r.ToString();
  }

  std::unique_ptr<store::Repository> repo_;
  DiskSpec disk_;
  std::unique_ptr<IndexPageCache> pages_;
  std::unique_ptr<ChunkCache> cache_;
  std::unique_ptr<ViewReader> reader_;
  std::shared_ptr<RawView> raw_;
};

TEST_F(RegionMapTest, BytesView) {
  auto v = MakeBytesView("hello, world\n");
  EXPECT_EQ(v->size(), 13u);
  EXPECT_EQ(v->allocated_bytes(), 13u);
  EXPECT_EQ(ReadAll(*v), "hello, world\n");
  ReadResult r;
  ASSERT_TRUE(reader_->Read(*v, 7, 100, &r).ok());
  EXPECT_EQ(r.ToString(), "world\n");
  ReadResult past;
  ASSERT_TRUE(reader_->Read(*v, 13, 10, &past).ok());
  EXPECT_EQ(past.size(), 0u);
}

// A synthesized image in the style of the format views to come: a header in memory,
// padding, a slice of the raw view, and trailing zeros.
TEST_F(RegionMapTest, ComposesHeaderPaddingAndRawSlice) {
  RegionMap map;
  map.AppendBytes("HEADER");
  map.AppendPadding(4096);
  map.AppendView(raw_, kCs / 2, 3 * kCs);  // half of slot 0 (hole) .. half of slot 3
  map.AppendZero(1000);
  map.AppendBytes("END");
  ASSERT_EQ(map.size(), 4096 + 3 * kCs + 1000 + 3);

  const std::string want = "HEADER" + std::string(4090, '\0') +
                           ExpectedBytes(disk_, kCs, kCs / 2, 3 * kCs) +
                           std::string(1000, '\0') + "END";
  EXPECT_TRUE(ReadAll(map) == want);
  // Every offset/length pair over region boundaries.
  for (uint64_t off : {0ul, 5ul, 4095ul, 4096ul, 4096ul + kCs / 2, 4096ul + 3 * kCs - 1,
                       map.size() - 4, map.size() - 1}) {
    for (uint64_t len : {1ul, 7ul, 5000ul, uint64_t{kCs} + 3}) {
      ReadResult r;
      ASSERT_TRUE(reader_->Read(map, off, len, &r).ok());
      EXPECT_TRUE(r.ToString() == want.substr(off, len)) << off << "+" << len;
    }
  }
  // Regions merge zeros and say what holds each offset.
  Region r;
  ASSERT_TRUE(map.RegionAt(4096 + 10, &r).ok());
  EXPECT_EQ(r.type, RegionType::kView);
  ASSERT_TRUE(map.RegionAt(100, &r).ok());
  EXPECT_EQ(r.type, RegionType::kZero);
  EXPECT_EQ(r.offset, 6u);
  EXPECT_FALSE(map.RegionAt(map.size(), &r).ok());
}

TEST_F(RegionMapTest, SeekLooksThroughViewSlices) {
  RegionMap map;
  map.AppendBytes("H");
  map.AppendPadding(kCs);                   // [1, kCs) hole
  map.AppendView(raw_, 0, 8 * kCs);         // raw: data at slots 1, 2 and 6
  const uint64_t base = kCs;
  EXPECT_EQ(*map.SeekData(0), 0u);
  EXPECT_EQ(*map.SeekHole(0), 1u);
  EXPECT_EQ(*map.SeekData(1), base + kCs);  // slot 0 of the raw view is a hole
  EXPECT_EQ(*map.SeekHole(base + kCs), base + 3 * kCs);
  EXPECT_EQ(*map.SeekData(base + 3 * kCs), base + 6 * kCs);
  EXPECT_EQ(*map.SeekHole(base + 6 * kCs + 5), base + 7 * kCs);
  EXPECT_EQ(*map.SeekData(base + 7 * kCs), map.size());
  EXPECT_EQ(*map.SeekHole(map.size()), map.size());
}

TEST_F(RegionMapTest, ChunkRegionsReadSlicesOfChunks) {
  Region slot1;
  ASSERT_TRUE(raw_->RegionAt(kCs, &slot1).ok());
  RegionMap map;
  map.AppendChunk(slot1.chunk, 100, 50);
  map.AppendChunk(slot1.chunk, 0, 10);
  const std::string chunk = ExpectedBytes(disk_, kCs, kCs, kCs);
  EXPECT_EQ(ReadAll(map), chunk.substr(100, 50) + chunk.substr(0, 10));
  RegionMap too_far;
  too_far.AppendChunk(slot1.chunk, kCs - 5, 10);
  ReadResult r;
  EXPECT_TRUE(reader_->Read(too_far, 0, 10, &r).IsCorruption());
}

}  // namespace
}  // namespace vmvault::fs
