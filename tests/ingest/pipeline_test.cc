#include "ingest/pipeline.h"

#include <gtest/gtest.h>

#include "store/repository.h"
#include "tests/ingest/test_util.h"

namespace vmvault::ingest {
namespace {

using testing::MemDisk;
using testing::MemImage;
using testing::RandomBytes;

constexpr uint32_t kChunk = 64 << 10;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::RepoConfig config;
    config.chunk_size = kChunk;
    repo_ = store::Repository::OpenInMemory(config);
  }

  Result<IngestedDisk> Run(MemDisk& disk, size_t threads = 2) {
    std::vector<Extent> extents = disk.extents;
    if (extents.empty()) extents = {{0, disk.bytes.size(), true}};
    PipelineOptions options;
    options.chunk_size = kChunk;
    options.threads = threads;
    return IngestDisk(
        [&disk]() -> Result<std::unique_ptr<Image>> {
          disk.readers_opened.fetch_add(1);
          return std::unique_ptr<Image>(new MemImage(&disk));
        },
        disk.bytes.size(), extents, repo_->hasher(), repo_->chunks(), options);
  }

  // The disk rebuilt from an index, straight from the chunk store.
  std::string Rebuild(const store::DiskIndex& index, uint64_t size) {
    std::string out(size, '\0');
    std::string plain;
    for (size_t slot = 0; slot < index.size(); ++slot) {
      if (index[slot].is_zero()) continue;
      Status s = repo_->chunks().Read(index[slot], &plain);
      EXPECT_TRUE(s.ok()) << s.ToString();
      std::memcpy(out.data() + slot * kChunk, plain.data(),
                  std::min<uint64_t>(plain.size(), size - slot * kChunk));
    }
    return out;
  }

  std::unique_ptr<store::Repository> repo_;
};

TEST_F(PipelineTest, RandomDataRoundTrips) {
  MemDisk disk;
  disk.bytes = RandomBytes(40 * kChunk, 1);
  auto r = Run(disk, 4);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->index.size(), 40u);
  EXPECT_EQ(r->stats.bytes_read, disk.bytes.size());
  EXPECT_EQ(r->stats.data_chunks, 40u);
  EXPECT_EQ(r->stats.new_chunks, 40u);
  EXPECT_EQ(r->stats.stored_bytes, r->stats.new_stored_bytes);
  EXPECT_GT(r->stats.new_stored_bytes, disk.bytes.size());  // random data does not compress
  EXPECT_EQ(testing::CountChunks(*repo_), 40u);
  EXPECT_EQ(Rebuild(r->index, disk.bytes.size()), disk.bytes);
}

TEST_F(PipelineTest, ZeroChunksAreNeverStored) {
  MemDisk disk;
  disk.bytes = std::string(8 * kChunk, '\0');
  disk.bytes.replace(3 * kChunk + 17, 5, "hello");
  auto r = Run(disk);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->index.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(r->index[i].is_zero(), i != 3) << i;
  EXPECT_EQ(r->stats.data_chunks, 1u);
  EXPECT_EQ(r->stats.new_chunks, 1u);
  EXPECT_EQ(r->stats.bytes_read, disk.bytes.size());  // all of it was data per the map
  EXPECT_EQ(testing::CountChunks(*repo_), 1u);
  EXPECT_EQ(Rebuild(r->index, disk.bytes.size()), disk.bytes);
}

TEST_F(PipelineTest, HolesAreNeverRead) {
  MemDisk disk;
  disk.bytes = std::string(16 * kChunk, '\0');
  // Data: part of slot 2, slots 5..6 (one extent), and two pieces of slot 10.
  const std::string a = RandomBytes(1000, 2), b = RandomBytes(2 * kChunk, 3),
                    c = RandomBytes(4096, 4), d = RandomBytes(4096, 5);
  disk.bytes.replace(2 * kChunk + 100, a.size(), a);
  disk.bytes.replace(5 * kChunk, b.size(), b);
  disk.bytes.replace(10 * kChunk, c.size(), c);
  disk.bytes.replace(10 * kChunk + 32768, d.size(), d);
  disk.extents = NormalizeExtents({{0, 2 * kChunk + 100, false},
                                   {2 * kChunk + 100, 1000, true},
                                   {2 * kChunk + 1100, 3 * kChunk - 1100, false},
                                   {5 * kChunk, 2 * kChunk, true},
                                   {7 * kChunk, 3 * kChunk, false},
                                   {10 * kChunk, 4096, true},
                                   {10 * kChunk + 4096, 32768 - 4096, false},
                                   {10 * kChunk + 32768, 4096, true},
                                   {10 * kChunk + 32768 + 4096, 6 * kChunk - 32768 - 4096, false}});
  auto r = Run(disk, 3);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stats.bytes_read, 1000u + 2 * kChunk + 4096 + 4096);
  EXPECT_EQ(r->stats.data_chunks, 4u);
  std::vector<Extent> reads = disk.Reads();
  std::sort(reads.begin(), reads.end(),
            [](const Extent& x, const Extent& y) { return x.offset < y.offset; });
  const std::vector<Extent> expected = {{2 * kChunk + 100, 1000, true},
                                        {5 * kChunk, kChunk, true},
                                        {6 * kChunk, kChunk, true},
                                        {10 * kChunk, 4096, true},
                                        {10 * kChunk + 32768, 4096, true}};
  EXPECT_EQ(reads, expected);
  EXPECT_EQ(Rebuild(r->index, disk.bytes.size()), disk.bytes);
}

TEST_F(PipelineTest, AllHoleDiskOpensNoReader) {
  MemDisk disk;
  disk.bytes = std::string(4 * kChunk, '\0');
  disk.extents = {{0, 4 * kChunk, false}};
  auto r = Run(disk);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->index.size(), 4u);
  EXPECT_EQ(disk.readers_opened.load(), 0);
  EXPECT_EQ(r->stats.bytes_read, 0u);
  EXPECT_EQ(testing::CountChunks(*repo_), 0u);
}

TEST_F(PipelineTest, ShortLastSlotStoresOnlyRealBytes) {
  MemDisk disk;
  disk.bytes = RandomBytes(3 * kChunk + 1234, 6);
  auto r = Run(disk);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->index.size(), 4u);
  auto meta = repo_->chunks().Lookup(r->index[3]);
  ASSERT_TRUE(meta.ok() && meta->has_value());
  EXPECT_EQ((*meta)->plain_len, 1234u);
  std::string plain;
  ASSERT_TRUE(repo_->chunks().Read(r->index[3], &plain).ok());
  EXPECT_EQ(plain, disk.bytes.substr(3 * kChunk));
  for (const Extent& read : disk.Reads()) EXPECT_LE(read.end(), disk.bytes.size());
  EXPECT_EQ(Rebuild(r->index, disk.bytes.size()), disk.bytes);
}

TEST_F(PipelineTest, SecondIngestOfChangedDiskStoresOnlyTheChangedChunk) {
  MemDisk disk;
  disk.bytes = RandomBytes(20 * kChunk, 7);
  auto first = Run(disk);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->stats.new_chunks, 20u);
  disk.bytes[7 * kChunk + 5] ^= 0x5a;
  auto second = Run(disk);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->stats.new_chunks, 1u);
  EXPECT_EQ(second->stats.data_chunks, 20u);
  EXPECT_EQ(second->stats.stored_bytes, first->stats.stored_bytes);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(first->index[i] == second->index[i], i != 7) << i;
  EXPECT_EQ(testing::CountChunks(*repo_), 21u);
  EXPECT_EQ(Rebuild(second->index, disk.bytes.size()), disk.bytes);
}

TEST_F(PipelineTest, IdenticalChunksWithinOneDiskAreStoredOnce) {
  MemDisk disk;
  const std::string block = RandomBytes(kChunk, 8);
  for (int i = 0; i < 32; ++i) disk.bytes += block;
  auto r = Run(disk, 4);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stats.data_chunks, 32u);
  EXPECT_EQ(r->stats.new_chunks, 1u);
  EXPECT_EQ(r->stats.stored_bytes, 32 * r->stats.new_stored_bytes);
  EXPECT_EQ(testing::CountChunks(*repo_), 1u);
  for (const auto& id : r->index) EXPECT_EQ(id, r->index[0]);
}

TEST_F(PipelineTest, ReadErrorStopsAllWorkersAndIsReturned) {
  MemDisk disk;
  disk.bytes = RandomBytes(64 * kChunk, 9);
  disk.fail_at = 30 * kChunk + 10;
  auto r = Run(disk, 4);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_NE(r.status().message().find("injected read failure"), std::string::npos);
  EXPECT_NE(r.status().message().find(std::to_string(30 * kChunk)), std::string::npos)
      << r.status().message();
}

TEST_F(PipelineTest, ReaderFactoryErrorIsReturned) {
  MemDisk disk;
  disk.bytes = RandomBytes(4 * kChunk, 10);
  PipelineOptions options;
  options.chunk_size = kChunk;
  auto r = IngestDisk([]() -> Result<std::unique_ptr<Image>> { return Status::External("no nbd"); },
                      disk.bytes.size(), {{0, disk.bytes.size(), true}}, repo_->hasher(),
                      repo_->chunks(), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "no nbd");
}

TEST_F(PipelineTest, ReaderOfWrongSizeIsAnError) {
  MemDisk disk;
  disk.bytes = RandomBytes(4 * kChunk, 11);
  PipelineOptions options;
  options.chunk_size = kChunk;
  auto r = IngestDisk(
      [&disk]() -> Result<std::unique_ptr<Image>> {
        return std::unique_ptr<Image>(new MemImage(&disk));
      },
      disk.bytes.size() + kChunk, {{0, disk.bytes.size() + kChunk, true}}, repo_->hasher(),
      repo_->chunks(), options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("qemu-img said"), std::string::npos);
}

TEST_F(PipelineTest, StoreWriteErrorIsReturned) {
  auto engine = std::make_shared<store::MemKvEngine>();
  store::RepoConfig config;
  config.chunk_size = kChunk;
  repo_ = store::Repository::OpenInMemory(config, engine);
  MemDisk disk;
  disk.bytes = RandomBytes(8 * kChunk, 12);
  engine->FailNextWrites(1);
  auto r = Run(disk);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("injected write failure"), std::string::npos);
}

TEST_F(PipelineTest, ThreadsAreCappedByDataSlots) {
  MemDisk disk;
  disk.bytes = RandomBytes(2 * kChunk, 13);
  auto r = Run(disk, 16);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(disk.readers_opened.load(), 2);
}

// A huge disk whose bytes are computed from their offset, so nothing is held in memory.
class SyntheticImage final : public Image {
 public:
  SyntheticImage(uint64_t size, std::atomic<uint64_t>* bytes_read)
      : size_(size), bytes_read_(bytes_read) {}
  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    bytes_read_->fetch_add(out.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>((offset + i) * 131 >> 7);
    return Status::OK();
  }

 private:
  uint64_t size_;
  std::atomic<uint64_t>* bytes_read_;
};

TEST(PipelineScaleTest, OneTebibyteSparseDiskReadsOnlyItsData) {
  constexpr uint64_t kTiB = uint64_t{1} << 40;
  constexpr uint32_t kBigChunk = 1 << 20;
  store::RepoConfig config;
  config.chunk_size = kBigChunk;
  auto repo = store::Repository::OpenInMemory(config);
  const std::vector<Extent> extents = NormalizeExtents(
      {{0, 3 * kBigChunk, true},
       {3 * kBigChunk, kTiB / 2, false},
       {3 * kBigChunk + kTiB / 2, 4096, true},
       {3 * kBigChunk + kTiB / 2 + 4096, kTiB / 2 - 3 * kBigChunk - 4096 - 8192, false},
       {kTiB - 8192, 8192, true}});
  std::atomic<uint64_t> bytes_read{0};
  PipelineOptions options;
  options.chunk_size = kBigChunk;
  options.threads = 4;
  auto r = IngestDisk(
      [&]() -> Result<std::unique_ptr<Image>> {
        return std::unique_ptr<Image>(new SyntheticImage(kTiB, &bytes_read));
      },
      kTiB, extents, repo->hasher(), repo->chunks(), options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->index.size(), kTiB / kBigChunk);
  EXPECT_EQ(r->stats.data_chunks, 5u);
  EXPECT_EQ(r->stats.bytes_read, 3 * kBigChunk + 4096 + 8192);
  EXPECT_EQ(bytes_read.load(), r->stats.bytes_read);
  EXPECT_FALSE(r->index.back().is_zero());
}

// Changed-block tracking: a second version of a disk, ingested with the first
// version's index as base and the written ranges as `changed`.
class PipelineBaseTest : public PipelineTest {
 protected:
  Result<IngestedDisk> RunWithBase(MemDisk& disk, const store::DiskIndex& base,
                                   std::vector<Extent> changed) {
    PipelineOptions options;
    options.chunk_size = kChunk;
    options.threads = 2;
    options.base = &base;
    options.changed = std::move(changed);
    std::vector<Extent> extents = disk.extents;
    if (extents.empty()) extents = {{0, disk.bytes.size(), true}};
    return IngestDisk(
        [&disk]() -> Result<std::unique_ptr<Image>> {
          disk.readers_opened.fetch_add(1);
          return std::unique_ptr<Image>(new MemImage(&disk));
        },
        disk.bytes.size(), extents, repo_->hasher(), repo_->chunks(), options);
  }
};

TEST_F(PipelineBaseTest, ReadsOnlyChangedSlotsAndRebuildsTheNewVersion) {
  MemDisk v1;
  v1.bytes = RandomBytes(20 * kChunk + 100, 7);
  auto r1 = Run(v1);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();

  MemDisk v2;
  v2.bytes = v1.bytes;
  // One write inside slot 3, one across slots 9..10, one zeroing all of slot 15, and one
  // in the short last slot.
  std::memset(v2.bytes.data() + 3 * kChunk + 10, 0xab, 100);
  std::memset(v2.bytes.data() + 10 * kChunk - 50, 0xcd, 100);
  std::memset(v2.bytes.data() + 15 * kChunk, 0, kChunk);
  std::memset(v2.bytes.data() + 20 * kChunk + 1, 0xef, 10);
  const std::vector<Extent> changed = {{3 * kChunk + 10, 100, true},
                                       {10 * kChunk - 50, 100, true},
                                       {15 * kChunk, kChunk, true},
                                       {20 * kChunk + 1, 10, true}};
  auto r2 = RunWithBase(v2, r1->index, changed);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(Rebuild(r2->index, v2.bytes.size()), v2.bytes);
  // Slots 3, 9, 10, 15 and 20 were read whole (the last one is 100 bytes).
  EXPECT_EQ(r2->stats.bytes_read, 4 * kChunk + 100);
  EXPECT_TRUE(r2->index[15].is_zero());
  EXPECT_EQ(r2->stats.reused_chunks, 16u);
  EXPECT_EQ(r2->stats.data_chunks, 20u);  // 21 slots, slot 15 now zero
  EXPECT_EQ(r2->stats.new_chunks, 4u);
  EXPECT_GT(r2->stats.stored_bytes, r2->stats.new_stored_bytes);
}

TEST_F(PipelineBaseTest, NothingChangedReadsNothing) {
  MemDisk v1;
  v1.bytes = RandomBytes(8 * kChunk, 8);
  auto r1 = Run(v1);
  ASSERT_TRUE(r1.ok());
  auto r2 = RunWithBase(v1, r1->index, {});
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->index, r1->index);
  EXPECT_EQ(r2->stats.bytes_read, 0u);
  EXPECT_EQ(v1.readers_opened.load(), 2);  // the first run's two workers, no more
  EXPECT_EQ(r2->stats.stored_bytes, r1->stats.stored_bytes);
}

TEST_F(PipelineBaseTest, AMissingParentChunkIsCorruptionNotAReference) {
  MemDisk v1;
  v1.bytes = RandomBytes(4 * kChunk, 9);
  auto r1 = Run(v1);
  ASSERT_TRUE(r1.ok());
  store::DiskIndex base = r1->index;
  const std::string other = "never stored";
  base[2] = repo_->hasher().Hash(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(other.data()), other.size()));
  auto r2 = RunWithBase(v1, base, {});
  ASSERT_FALSE(r2.ok());
  EXPECT_TRUE(r2.status().IsCorruption()) << r2.status().ToString();
  EXPECT_NE(r2.status().message().find("slot 2"), std::string::npos);
}

TEST_F(PipelineBaseTest, ABaseOfAnotherShapeIsRefused) {
  MemDisk v1;
  v1.bytes = RandomBytes(4 * kChunk, 10);
  store::DiskIndex base(3);
  auto r = RunWithBase(v1, base, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(CountDataSlotsTest, CountsEachTouchedSlotOnce) {
  const uint32_t c = 100;
  EXPECT_EQ(CountDataSlots({}, 1000, c), 0u);
  EXPECT_EQ(CountDataSlots({{0, 1000, true}}, 1000, c), 10u);
  EXPECT_EQ(CountDataSlots({{0, 1000, false}}, 1000, c), 0u);
  // Two extents in slot 1, one spanning slots 3..5, one past the end.
  EXPECT_EQ(CountDataSlots({{110, 10, true}, {150, 10, true}, {390, 120, true}, {2000, 5, true}},
                           1000, c),
            4u);
  EXPECT_EQ(CountDataSlots({{950, 100, true}}, 1000, c), 1u);
}

}  // namespace
}  // namespace vmvault::ingest
