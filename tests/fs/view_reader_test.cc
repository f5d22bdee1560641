#include "fs/view_reader.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "fs/raw_view.h"
#include "fs/region_map.h"
#include "tests/fs/fs_test_util.h"

namespace vmvault::fs {
namespace {

constexpr uint32_t kCs = 64 << 10;

TEST(ReadResultTest, ZerosShareOnePage) {
  ReadResult r;
  r.AddZeros(10);
  r.AddZeros(100);
  EXPECT_EQ(r.pieces().size(), 1u);
  r.AddZeros(3 << 20);
  EXPECT_EQ(r.size(), 110u + (3 << 20));
  EXPECT_LE(r.pieces().size(), 1 + (3 << 20) / (16 << 10));  // a 16 KiB page repeated
  const std::string s = r.ToString();
  EXPECT_EQ(s, std::string(s.size(), '\0'));
}

// Only the zeros of holes at the end go; data, even data that is all zero bytes, stays.
TEST(ReadResultTest, DropTrailingZerosKeepsDataAndTheZerosBetween) {
  const std::string data(100, 'x');
  const std::string zero_data(50, '\0');  // a chunk's bytes, not a hole
  ReadResult r;
  r.AddZeros(1000);
  r.Add(reinterpret_cast<const uint8_t*>(data.data()), data.size(), nullptr);
  r.AddZeros(2000);
  r.Add(reinterpret_cast<const uint8_t*>(zero_data.data()), zero_data.size(), nullptr);
  r.AddZeros(40 << 10);  // several pieces of the shared page
  r.DropTrailingZeros();
  EXPECT_EQ(r.size(), 1000u + 100 + 2000 + 50);
  EXPECT_EQ(r.ToString(), std::string(1000, '\0') + data + std::string(2000, '\0') + zero_data);

  ReadResult holes;
  holes.AddZeros(1 << 20);
  holes.DropTrailingZeros();
  EXPECT_EQ(holes.size(), 0u);
  EXPECT_TRUE(holes.pieces().empty());
}

TEST(ReadAheadTrackerTest, SequentialReadsAskForTheWindowAhead) {
  ReadAheadTracker t(1 << 20);
  const uint64_t size = 100 << 20;
  EXPECT_FALSE(t.OnRead(0, 128 << 10, size));  // one read is not a pattern
  auto a = t.OnRead(128 << 10, 128 << 10, size);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, 256u << 10);
  EXPECT_EQ(a->first + a->second, (256u << 10) + (1 << 20));
  // Within the warmed window: nothing new until half of it is consumed.
  EXPECT_FALSE(t.OnRead(256 << 10, 128 << 10, size));
  int asked = 0;
  for (uint64_t off = 384 << 10; off < (8 << 20); off += 128 << 10) {
    if (auto r = t.OnRead(off, 128 << 10, size)) {
      ++asked;
      EXPECT_GE(r->first, off);
    }
  }
  EXPECT_GT(asked, 3);
  EXPECT_LT(asked, 60);
}

TEST(ReadAheadTrackerTest, RandomReadsAskForNothingAndEndIsRespected) {
  ReadAheadTracker t(1 << 20);
  const uint64_t size = 1ull << 30;
  for (uint64_t off : {500ull << 20, 3ull << 20, 900ull << 20, 20ull << 20}) {
    EXPECT_FALSE(t.OnRead(off, 4096, size));
  }
  ReadAheadTracker near_end(8 << 20);
  near_end.OnRead(0, 4096, 10000);
  auto r = near_end.OnRead(4096, 4096, 10000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first + r->second, 10000u);
}

TEST(ViewReaderTest, PrefetchWarmsTheCacheAndLargeReadsLoadInParallel) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(kCs));
  testing::DiskSpec d;
  d.size = 32 * kCs;
  auto b = testing::CommitDisks(repo.get(), testing::MakeVm("vm"), testing::TestTime(), {d});
  ASSERT_TRUE(b.ok());
  IndexPageCache pages(&repo->catalog(), 1 << 20);
  ChunkCache cache(&repo->chunks(), 16 << 20, kCs);
  ThreadPool pool(3);
  ViewReader reader(&cache, &pool);
  auto view = std::make_shared<RawView>(&pages, b->id, 0, b->disks[0]);

  reader.Prefetch(view, 4 * kCs, 4 * kCs);
  for (int i = 0; i < 200 && cache.stats().entries < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(cache.stats().entries, 4u);
  ReadResult r;
  ASSERT_TRUE(reader.Read(*view, 4 * kCs, 4 * kCs, &r).ok());
  EXPECT_EQ(cache.stats().loads, 4u);  // all served from the warmed cache
  EXPECT_TRUE(r.ToString() == testing::ExpectedBytes(d, kCs, 4 * kCs, 4 * kCs));

  ReadResult big;
  ASSERT_TRUE(reader.Read(*view, 10 * kCs, 16 * kCs, &big).ok());
  EXPECT_TRUE(big.ToString() == testing::ExpectedBytes(d, kCs, 10 * kCs, 16 * kCs));
  EXPECT_EQ(cache.stats().loads, 20u);  // every chunk loaded exactly once
}

TEST(ViewReaderTest, ReadAtZeroFillsPastTheEnd) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(kCs));
  ChunkCache cache(&repo->chunks(), 1 << 20, kCs);
  ViewReader reader(&cache, nullptr);
  auto v = MakeBytesView("abc");
  std::vector<uint8_t> buf(6, 0xff);
  ASSERT_TRUE(reader.ReadAt(*v, 1, buf).ok());
  EXPECT_EQ(std::string(buf.begin(), buf.end()), std::string("bc\0\0\0\0", 6));
}

}  // namespace
}  // namespace vmvault::fs
