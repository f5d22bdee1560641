#include "fs/view_image.h"

#include <gtest/gtest.h>

#include "fs/raw_view.h"
#include "tests/fs/fs_test_util.h"

namespace vmvault::fs {
namespace {

constexpr uint32_t kCs = 64 << 10;

TEST(ViewImageTest, ReadsAndExtentsFollowTheView) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(kCs));
  testing::DiskSpec d;
  d.size = 10 * kCs + 5;
  d.has_data = [](uint64_t slot) { return slot == 1 || slot == 2 || slot == 5 || slot == 10; };
  auto b = testing::CommitDisks(repo.get(), testing::MakeVm("vm"), testing::TestTime(), {d});
  ASSERT_TRUE(b.ok());
  IndexPageCache pages(&repo->catalog(), 1 << 20);
  ChunkCache cache(&repo->chunks(), 4 << 20, kCs);
  ViewReader reader(&cache, nullptr);
  ViewImage image(std::make_shared<RawView>(&pages, b->id, 0, b->disks[0]), &reader);

  EXPECT_EQ(image.size(), d.size);
  std::vector<uint8_t> buf(3 * kCs);
  ASSERT_TRUE(image.ReadAt(kCs / 2, buf).ok());
  EXPECT_TRUE(std::string(buf.begin(), buf.end()) ==
              testing::ExpectedBytes(d, kCs, kCs / 2, buf.size()));
  std::vector<uint8_t> past(10);
  EXPECT_FALSE(image.ReadAt(d.size - 5, past).ok());

  auto extents = image.Extents();
  ASSERT_TRUE(extents.ok());
  const std::vector<Extent> want = {{0, kCs, false},
                                    {kCs, 2 * kCs, true},
                                    {3 * kCs, 2 * kCs, false},
                                    {5 * kCs, kCs, true},
                                    {6 * kCs, 4 * kCs, false},
                                    {10 * kCs, 5, true}};
  EXPECT_EQ(*extents, want);
}

}  // namespace
}  // namespace vmvault::fs
