#include "fs/slice_view.h"

#include <gtest/gtest.h>

#include <random>

#include "fs/raw_view.h"
#include "fs/view_reader.h"
#include "tests/fs/fs_test_util.h"

namespace vmvault::fs {
namespace {

constexpr uint32_t kCs = 64 << 10;

// Windows of a sparse disk: bytes, seeks and st_blocks against the raw view.
TEST(SliceViewTest, WindowsMatchTheRawViewAndCountTheirDataExactly) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(kCs));
  testing::DiskSpec d;
  d.size = 2 * store::kIndexPageSlots * kCs + 5000;  // a short last chunk on page 2
  d.has_data = [](uint64_t s) { return s % 7 == 0 || (s > 4090 && s < 4100) || s == 8192; };
  auto b = testing::CommitDisks(repo.get(), testing::MakeVm("vm"), testing::TestTime(), {d});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  IndexPageCache pages(&repo->catalog(), 64 << 20);
  ChunkCache cache(&repo->chunks(), 16 << 20, kCs);
  ViewReader reader(&cache, nullptr);
  auto raw = std::make_shared<RawView>(&pages, b->id, 0, b->disks[0]);
  auto loader = [&]() { return DataMap::Load(repo->catalog(), &pages, b->id, 0, b->disks[0]); };

  auto data_bytes = [&](uint64_t off, uint64_t len) {  // brute force
    uint64_t n = 0;
    for (uint64_t slot = off / kCs; slot * kCs < off + len; ++slot) {
      if (!d.has_data(slot)) continue;
      const uint64_t a = std::max(off, slot * kCs);
      const uint64_t e = std::min({off + len, (slot + 1) * kCs, d.size});
      n += e > a ? e - a : 0;
    }
    return n;
  };
  std::mt19937_64 rng(7);
  std::vector<std::pair<uint64_t, uint64_t>> windows = {
      {0, d.size}, {1 << 20, 10 * kCs}, {4090 * uint64_t{kCs} + 100, 10 * kCs}, {d.size - 1, 1},
      {8192 * uint64_t{kCs} + 512, 512}, {3 * kCs, 0}};
  for (int i = 0; i < 40; ++i) {
    const uint64_t off = rng() % d.size;
    windows.push_back({off, rng() % (d.size - off) + 1});
  }
  for (const auto& [off, len] : windows) {
    SCOPED_TRACE(::testing::Message() << "window " << off << "+" << len);
    SliceView slice(raw, off, len, loader);
    ASSERT_TRUE(slice.Load().ok());
    EXPECT_EQ(slice.size(), len);
    EXPECT_EQ(slice.allocated_bytes(), data_bytes(off, len));
    if (len == 0) continue;
    const uint64_t at = rng() % len;
    const uint64_t n = std::min<uint64_t>(len - at, 3 * kCs);
    ReadResult r;
    ASSERT_TRUE(reader.Read(slice, at, n, &r).ok());
    EXPECT_EQ(r.ToString(), testing::ExpectedBytes(d, kCs, off + at, n));
    const uint64_t want_data = std::min(*raw->SeekData(off + at), off + len) - off;
    EXPECT_EQ(*slice.SeekData(at), want_data);
    EXPECT_EQ(*slice.SeekHole(at), std::min(*raw->SeekHole(off + at), off + len) - off);
  }
}

}  // namespace
}  // namespace vmvault::fs
