#include "fs/data_map.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/fs/fs_test_util.h"

namespace vmvault::fs {
namespace {

constexpr uint64_t kPage = store::kIndexPageSlots;

struct MapCase {
  uint32_t chunk_size;
  uint64_t slots;
  std::function<bool(uint64_t)> has_data;
};

// Commits an index of made-up chunk ids: DataMap never reads a chunk.
Result<store::BackupRecord> CommitIndex(store::Repository* repo, const MapCase& c) {
  store::DiskIndex index(c.slots);
  for (uint64_t s = 0; s < c.slots; ++s) {
    if (!c.has_data(s)) continue;
    for (int i = 0; i < 8; ++i) index[s].bytes[i] = static_cast<uint8_t>((s + 1) >> (8 * i));
    index[s].bytes[15] = 1;
  }
  store::BackupRecord b;
  b.vm = "vm";
  b.time_us = testing::TestTime();
  store::DiskRecord d;
  d.name = "vda";
  d.chunk_size = c.chunk_size;
  d.virtual_size = c.slots * c.chunk_size - 123;
  b.disks.push_back(d);
  VV_RETURN_IF_ERROR(repo->catalog().CommitBackup(testing::MakeVm("vm"), &b, {index}));
  return b;
}

// DataMap's answers against a brute-force count over the same disk.
void CheckMap(const MapCase& c) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(c.chunk_size));
  auto b = CommitIndex(repo.get(), c);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  IndexPageCache pages(&repo->catalog(), 64 << 20);
  auto map = DataMap::Load(repo->catalog(), &pages, b->id, 0, b->disks[0]);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(pages.stats().misses, 0u) << "Load reads no index page";

  std::vector<uint64_t> data;
  for (uint64_t s = 0; s < c.slots; ++s) {
    if (c.has_data(s)) data.push_back(s);
  }
  const DataMap& m = **map;
  ASSERT_EQ(m.slots(), c.slots);
  ASSERT_EQ(m.data_slots(), data.size());
  std::mt19937_64 rng(c.slots);
  for (int i = 0; i < 300; ++i) {
    const uint64_t slot = i < 3 ? (i == 0 ? 0 : i == 1 ? c.slots : c.slots - 1) : rng() % c.slots;
    const uint64_t before = std::lower_bound(data.begin(), data.end(), slot) - data.begin();
    EXPECT_EQ(*m.DataSlotsBefore(slot), before) << slot;
    if (slot < c.slots) {
      EXPECT_EQ(*m.IsData(slot), c.has_data(slot)) << slot;
    }
  }
  for (uint64_t k = 0; k < data.size(); k += 1 + data.size() / 200) {
    EXPECT_EQ(*m.NthDataSlot(k), data[k]) << k;
  }
  if (!data.empty()) {
    EXPECT_EQ(*m.NthDataSlot(data.size() - 1), data.back());
  }
  EXPECT_FALSE(m.NthDataSlot(data.size()).ok());

  const uint32_t g = m.group_slots();
  EXPECT_EQ(g, store::GroupSlots(c.chunk_size));
  std::vector<uint64_t> groups;
  for (uint64_t s : data) {
    if (groups.empty() || groups.back() != s / g) groups.push_back(s / g);
  }
  ASSERT_EQ(m.data_groups(), groups.size());
  for (int i = 0; i < 200; ++i) {
    const uint64_t group = i == 0 ? m.groups() : rng() % m.groups();
    const uint64_t before = std::lower_bound(groups.begin(), groups.end(), group) - groups.begin();
    EXPECT_EQ(*m.DataGroupsBefore(group), before) << group;
    if (group < m.groups()) {
      EXPECT_EQ(*m.GroupHasData(group), std::binary_search(groups.begin(), groups.end(), group));
    }
  }
  for (uint64_t k = 0; k < groups.size(); k += 1 + groups.size() / 100) {
    EXPECT_EQ(*m.NthDataGroup(k), groups[k]) << k;
  }
}

TEST(DataMapTest, SparseMultiPage) {
  CheckMap({64 << 10, 3 * kPage + 17, [](uint64_t s) {
              return s % 37 == 0 || (s >= kPage - 3 && s < kPage + 5) || s == 3 * kPage + 16;
            }});
}

TEST(DataMapTest, AbsentMiddlePagesAndLargeChunks) {
  CheckMap({4 << 20, 5 * kPage, [](uint64_t s) { return s < 10 || s >= 4 * kPage + 4000; }});
}

TEST(DataMapTest, FullAndEmpty) {
  CheckMap({256 << 10, kPage + 1, [](uint64_t) { return true; }});
  CheckMap({256 << 10, 2 * kPage, [](uint64_t) { return false; }});
}

TEST(DataMapTest, SummaryThatContradictsTheIndexIsCorruption) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(64 << 10));
  auto b = CommitIndex(repo.get(), {64 << 10, 100, [](uint64_t s) { return s == 3; }});
  ASSERT_TRUE(b.ok());
  IndexPageCache pages(&repo->catalog(), 1 << 20);
  store::DiskSummary lying = store::SummarizeIndex(store::DiskIndex(100), 64 << 10);
  lying.page_data_slots[0] = 2;  // the page holds one
  lying.page_data_groups[0] = 1;
  DataMap m(&pages, b->id, 0, b->disks[0], lying);
  EXPECT_TRUE(m.NthDataSlot(0).status().IsCorruption());
  EXPECT_TRUE(m.NthDataSlot(1).status().IsCorruption());
  EXPECT_TRUE(m.DataSlotsBefore(50).status().IsCorruption());
  EXPECT_TRUE(m.IsData(3).status().IsCorruption());

  // Right slot count, wrong group count: 64 KiB chunks make groups of 16 slots.
  store::DiskSummary groups = store::SummarizeIndex(store::DiskIndex(100), 64 << 10);
  groups.page_data_slots[0] = 1;
  groups.page_data_groups[0] = 1;
  EXPECT_TRUE(DataMap(&pages, b->id, 0, b->disks[0], groups).NthDataGroup(0).ok());
  auto other = CommitIndex(repo.get(), {64 << 10, 100, [](uint64_t s) { return s == 3 || s == 40; }});
  ASSERT_TRUE(other.ok());
  store::DiskSummary two_slots_one_group = store::SummarizeIndex(store::DiskIndex(100), 64 << 10);
  two_slots_one_group.page_data_slots[0] = 2;
  two_slots_one_group.page_data_groups[0] = 1;  // they are in groups 0 and 2
  DataMap g(&pages, other->id, 0, other->disks[0], two_slots_one_group);
  EXPECT_TRUE(g.NthDataGroup(0).status().IsCorruption());
}

TEST(DataMapTest, QuestionsBeyondTheDiskAreErrorsNotCrashes) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(64 << 10));
  auto b = CommitIndex(repo.get(), {64 << 10, 100, [](uint64_t s) { return s == 3; }});
  ASSERT_TRUE(b.ok());
  IndexPageCache pages(&repo->catalog(), 1 << 20);
  auto map = DataMap::Load(repo->catalog(), &pages, b->id, 0, b->disks[0]);
  ASSERT_TRUE(map.ok());
  const DataMap& m = **map;
  EXPECT_EQ(*m.DataSlotsBefore(100), 1u);
  EXPECT_FALSE(m.DataSlotsBefore(101).ok());
  EXPECT_FALSE(m.IsData(100).ok());
  EXPECT_FALSE(m.GroupHasData(m.groups()).ok());
  EXPECT_FALSE(m.DataGroupsBefore(m.groups() + 1).ok());
  EXPECT_FALSE(m.Page(1).ok());
}

}  // namespace
}  // namespace vmvault::fs
