// Several BackupBuilders on one repository at once, as `vmvault schedule` runs them with
// [schedule] concurrency above 1: threads back up VMs of their own and VMs another
// thread backs up too, with chunks some of them share. Every backup gets its own id,
// every commit moves the generation, no backup directory name repeats within a VM, and
// every disk reads back byte for byte. On both engines (RocksDB on disk and in memory).
#include <latch>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "ingest/backup_builder.h"
#include "store/kv_engine.h"
#include "tests/ingest/test_util.h"

namespace vmvault::ingest {
namespace {

using testing::MemDisk;
using testing::MemImage;
using testing::RandomBytes;

constexpr uint32_t kChunk = 64 << 10;
constexpr int kThreads = 6;
constexpr int kBackupsPerThread = 3;
constexpr int kVms = 3;  // two threads back up each VM

class MemSource final : public ImageSource {
 public:
  explicit MemSource(MemDisk* disk) : disk_(disk) {}
  Result<std::unique_ptr<Image>> OpenReader() override {
    return std::unique_ptr<Image>(new MemImage(disk_));
  }

 private:
  MemDisk* disk_;
};

class ConcurrentBuildersTest : public ::testing::TestWithParam<bool /*rocksdb*/> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      repo_ = testing::MakeRepository(dir_ / "repo", kChunk);
    } else {
      store::RepoConfig config;
      config.chunk_size = kChunk;
      repo_ = store::Repository::OpenInMemory(config, std::make_shared<store::MemKvEngine>());
    }
    ASSERT_NE(repo_, nullptr);
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Repository> repo_;
};

TEST_P(ConcurrentBuildersTest, BackupsOnThreadsAreAllCommittedWhole) {
  // Disk (t, k): 4 chunks every disk shares, then 4 of its own.
  const std::string shared = RandomBytes(4 * kChunk, 99);
  std::vector<std::vector<MemDisk>> disks(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    disks[t] = std::vector<MemDisk>(kBackupsPerThread);
    for (int k = 0; k < kBackupsPerThread; ++k) {
      disks[t][k].bytes = shared + RandomBytes(4 * kChunk, 1000 + t * 10 + k);
      disks[t][k].extents = {{0, disks[t][k].bytes.size(), true}};
    }
  }
  FakeClock clock(1'700'000'000'000'000);  // one second for all: names must be made unique
  std::vector<std::vector<Result<store::BackupRecord>>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kBackupsPerThread; ++k) {
        MemDisk& d = disks[t][k];
        MemSource source(&d);
        auto b = BackupBuilder::Start(*repo_, fmt::format("vm{}", t % kVms), std::nullopt,
                                      "test", clock, {2, false});
        if (!b.ok()) {
          results[t].push_back(b.status());
          continue;
        }
        DiskSource disk;
        disk.name = "disk";
        disk.path = fmt::format("/t{}/k{}", t, k);
        disk.format = "raw";
        disk.size = d.bytes.size();
        disk.extents = d.extents;
        disk.source = &source;
        Status s = (*b)->AddDisk(disk);
        results[t].push_back(s.ok() ? (*b)->Commit() : Result<store::BackupRecord>(s));
      }
    });
  }
  for (std::thread& th : threads) th.join();

  std::set<uint64_t> ids;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(results[t].size(), size_t{kBackupsPerThread});
    for (int k = 0; k < kBackupsPerThread; ++k) {
      const Result<store::BackupRecord>& r = results[t][k];
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_TRUE(ids.insert(r->id).second) << "backup id " << r->id << " given twice";
      // What the catalog holds, not what the builder returned.
      auto stored = repo_->catalog().GetBackup(r->id);
      ASSERT_TRUE(stored.ok()) << stored.status().ToString();
      EXPECT_EQ(stored->vm, fmt::format("vm{}", t % kVms));
      auto bytes = testing::ReadBackupDisk(*repo_, *stored, 0);
      ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
      EXPECT_TRUE(*bytes == disks[t][k].bytes) << "backup " << r->id << " reads back wrong";
    }
  }
  constexpr uint64_t kTotal = kThreads * kBackupsPerThread;
  EXPECT_EQ(ids.size(), kTotal);
  EXPECT_EQ(*ids.begin(), 1u);
  EXPECT_EQ(*ids.rbegin(), kTotal);  // no id skipped or reused
  auto generation = repo_->catalog().Generation();
  ASSERT_TRUE(generation.ok());
  EXPECT_EQ(*generation, kTotal);  // every commit moved it
  auto vms = repo_->catalog().ListVms();
  ASSERT_TRUE(vms.ok());
  EXPECT_EQ(vms->size(), size_t{kVms});
  for (int v = 0; v < kVms; ++v) {
    auto list = repo_->catalog().ListBackups(fmt::format("vm{}", v));
    ASSERT_TRUE(list.ok());
    EXPECT_EQ(list->size(), size_t{kThreads / kVms * kBackupsPerThread});
    std::set<std::string> names;
    for (const store::BackupRecord& b : *list) {
      EXPECT_TRUE(names.insert(b.name()).second) << "two backups named " << b.name();
    }
  }
  // The shared chunks are stored once: 4 shared + 4 of each backup's own.
  EXPECT_EQ(testing::CountChunks(*repo_), 4 + 4 * kTotal);
}

// Backups of the same new disk, started together: each chunk is stored once and counted
// as new by exactly one of them.
TEST_P(ConcurrentBuildersTest, AChunkTwoBackupsMeetAtOnceIsNewToOneOfThem) {
  constexpr int kChunks = 32;
  MemDisk disk;
  disk.bytes = RandomBytes(kChunks * kChunk, 7);
  disk.extents = {{0, disk.bytes.size(), true}};
  FakeClock clock(1'700'000'000'000'000);
  std::latch start(kThreads);
  std::vector<Result<store::BackupRecord>> results(kThreads, Status::Busy("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MemSource source(&disk);
      auto b = BackupBuilder::Start(*repo_, fmt::format("vm{}", t), std::nullopt, "test", clock,
                                    {2, false});
      if (!b.ok()) {
        results[t] = b.status();
        start.count_down();
        return;
      }
      DiskSource d;
      d.name = "disk";
      d.path = "/same";
      d.format = "raw";
      d.size = disk.bytes.size();
      d.extents = disk.extents;
      d.source = &source;
      start.arrive_and_wait();
      Status s = (*b)->AddDisk(d);
      results[t] = s.ok() ? (*b)->Commit() : Result<store::BackupRecord>(s);
    });
  }
  for (std::thread& th : threads) th.join();
  uint64_t new_chunks = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->disks.size(), 1u);
    new_chunks += r->disks[0].new_chunks;
    EXPECT_EQ(r->disks[0].data_chunks, uint64_t{kChunks});
  }
  EXPECT_EQ(new_chunks, uint64_t{kChunks}) << "a chunk was counted as new more than once";
  EXPECT_EQ(testing::CountChunks(*repo_), uint64_t{kChunks});
}

INSTANTIATE_TEST_SUITE_P(Engines, ConcurrentBuildersTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "RocksDb" : "InMemory"; });

}  // namespace
}  // namespace vmvault::ingest
