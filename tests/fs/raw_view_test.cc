#include "fs/raw_view.h"

#include <gtest/gtest.h>

#include <random>

#include "fs/chunk_cache.h"
#include "fs/index_page_cache.h"
#include "fs/qcow2_view.h"
#include "fs/vhdx_view.h"
#include "fs/view_reader.h"
#include "tests/fs/fs_test_util.h"
#include "tests/fs/view_test_util.h"

namespace vmvault::fs {
namespace {

using testing::CommitDisks;
using testing::CommittedDisk;
using testing::CommittedDiskOptions;
using testing::DiskSpec;
using testing::ExpectedBytes;
using testing::ViewShape;

constexpr uint32_t kCs = 64 << 10;
constexpr uint64_t kPageBytes = uint64_t{store::kIndexPageSlots} * kCs;

// The shapes every view suite reads, in 64 KiB slots.
std::vector<ViewShape> Shapes() {
  std::vector<ViewShape> s = testing::CommonShapes(kCs);
  testing::NumberSeeds(&s, 11);
  return s;
}

class RawViewShapeTest : public ::testing::TestWithParam<ViewShape> {
 protected:
  void SetUp() override {
    disk_ = std::make_unique<CommittedDisk>(
        kCs, GetParam().disk,
        CommittedDiskOptions{
            .page_cache_bytes = 4 << 20, .chunk_cache_bytes = 8 << 20, .reader_threads = 2});
    ASSERT_TRUE(disk_->status.ok()) << disk_->status.ToString();
    reader_ = disk_->reader.get();
    view_ = disk_->raw;
  }

  // The reference: SEEK_DATA / SEEK_HOLE by scanning slots.
  uint64_t RefSeek(uint64_t off, bool data) const {
    const DiskSpec& d = GetParam().disk;
    for (uint64_t slot = off / kCs; slot * kCs < d.size; ++slot) {
      if (d.has_data(slot) == data) return std::max(off, slot * kCs);
    }
    return d.size;
  }

  std::unique_ptr<CommittedDisk> disk_;
  const ViewReader* reader_ = nullptr;
  std::shared_ptr<RawView> view_;
};

TEST_P(RawViewShapeTest, RandomReadsMatchSource) {
  const DiskSpec& d = GetParam().disk;
  ASSERT_EQ(view_->size(), d.size);
  std::mt19937_64 rng(42);
  const uint64_t span = d.size + kCs;
  for (int i = 0; i < 400; ++i) {
    uint64_t off = rng() % span;
    if (i % 3 == 0) {  // near a chunk or page boundary
      const uint64_t unit = i % 2 == 0 ? kCs : kPageBytes;
      off = (off / unit) * unit + (rng() % 64) - 32;
      if (off > span) off = rng() % span;
    }
    const uint64_t len = 1 + rng() % (3 * kCs);
    ReadResult r;
    ASSERT_TRUE(reader_->Read(*view_, off, len, &r).ok());
    const std::string want = off < d.size ? ExpectedBytes(d, kCs, off, len) : std::string();
    ASSERT_EQ(r.size(), want.size()) << "off " << off << " len " << len;
    ASSERT_TRUE(r.ToString() == want) << "off " << off << " len " << len;
  }
}

TEST_P(RawViewShapeTest, LargeBlockReadsMatch) {
  const DiskSpec& d = GetParam().disk;
  // The whole disk when small; else 4 MiB blocks around each page boundary and the end.
  std::vector<uint64_t> starts;
  if (d.size <= (64 << 20)) {
    for (uint64_t off = 0; off < d.size; off += 4 << 20) starts.push_back(off);
  } else {
    for (uint64_t p = 0; p < d.size; p += kPageBytes) starts.push_back(p < (2 << 20) ? 0 : p - (2 << 20));
    starts.push_back(d.size - std::min<uint64_t>(d.size, 4 << 20));
  }
  for (uint64_t off : starts) {
    ReadResult r;
    ASSERT_TRUE(reader_->Read(*view_, off, 4 << 20, &r).ok());
    EXPECT_TRUE(r.ToString() == ExpectedBytes(d, kCs, off, 4 << 20)) << off;
  }
}

TEST_P(RawViewShapeTest, SeekDataAndHoleMatchTheIndex) {
  const DiskSpec& d = GetParam().disk;
  std::vector<uint64_t> offsets = {0, 1, kCs - 1, kCs, kCs + 1, kPageBytes - 1, kPageBytes,
                                   d.size == 0 ? 0 : d.size - 1, d.size, d.size + 5};
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) offsets.push_back(d.size == 0 ? 0 : rng() % d.size);
  for (uint64_t slot = 0; slot * kCs < std::min<uint64_t>(d.size, 3 * kPageBytes); slot += 1) {
    if (slot % 512 == 0 || (slot > 4085 && slot < 4100) || (slot > 8185 && slot < 8200)) {
      offsets.push_back(slot * kCs);
      offsets.push_back(slot * kCs + 17);
    }
  }
  for (uint64_t off : offsets) {
    auto data = view_->SeekData(off);
    auto hole = view_->SeekHole(off);
    ASSERT_TRUE(data.ok() && hole.ok());
    if (off >= d.size) {
      EXPECT_EQ(*data, d.size);
      EXPECT_EQ(*hole, d.size);
      continue;
    }
    EXPECT_EQ(*data, RefSeek(off, true)) << "SEEK_DATA from " << off;
    EXPECT_EQ(*hole, RefSeek(off, false)) << "SEEK_HOLE from " << off;
  }
}

TEST_P(RawViewShapeTest, AllocatedBytesComeFromTheRecord) {
  const DiskSpec& d = GetParam().disk;
  uint64_t want = 0;
  for (uint64_t slot = 0; slot * kCs < d.size; ++slot) {
    if (d.has_data(slot)) want += std::min<uint64_t>(kCs, d.size - slot * kCs);
  }
  // Rounded up to whole chunks, as data_chunks * chunk_size, capped at the size.
  EXPECT_GE(view_->allocated_bytes(), want);
  EXPECT_LE(view_->allocated_bytes(), std::min<uint64_t>(d.size, want + kCs));
  EXPECT_EQ(view_->allocated_bytes(),
            std::min<uint64_t>(disk_->backup.disks[0].data_chunks * kCs, d.size));
}

TEST_P(RawViewShapeTest, ConcurrentReadersSeeTheSameBytes) {
  const DiskSpec& d = GetParam().disk;
  if (d.size == 0) return;
  EXPECT_EQ(testing::ConcurrentReadMismatches(
                *reader_, *view_, d.size, 60, 2 * kCs,
                [&](uint64_t off, uint64_t len) { return ExpectedBytes(d, kCs, off, len); }),
            0);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RawViewShapeTest, ::testing::ValuesIn(Shapes()),
                         [](const auto& info) { return info.param.label; });

TEST(RawViewTest, RegionAtIsOneChunkOrARunOfHoles) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(kCs));
  DiskSpec d;
  d.size = 10 * kCs;
  d.has_data = [](uint64_t slot) { return slot == 0 || slot == 6; };
  auto b = CommitDisks(repo.get(), testing::MakeVm("vm1"), testing::TestTime(), {d});
  ASSERT_TRUE(b.ok());
  IndexPageCache pages(&repo->catalog(), 1 << 20);
  RawView view(&pages, b->id, 0, b->disks[0]);
  Region r;
  ASSERT_TRUE(view.RegionAt(kCs / 2, &r).ok());
  EXPECT_EQ(r.type, RegionType::kChunk);
  EXPECT_EQ(r.offset, 0u);
  EXPECT_EQ(r.length, kCs);
  ASSERT_TRUE(view.RegionAt(3 * kCs + 5, &r).ok());
  EXPECT_EQ(r.type, RegionType::kZero);
  EXPECT_EQ(r.offset, 3 * kCs);  // a region starts at its slot
  EXPECT_EQ(r.end(), 6 * kCs);   // and runs to the next data slot
  ASSERT_TRUE(view.RegionAt(7 * kCs, &r).ok());
  EXPECT_EQ(r.end(), 10 * kCs);
  EXPECT_FALSE(view.RegionAt(10 * kCs, &r).ok());
}

// One committed disk of `slots` data chunks in an in-memory repository, with the
// raw view and the reader the error tests use.
CommittedDisk OneDisk(uint64_t slots) {
  DiskSpec d;
  d.size = slots * kCs;
  return CommittedDisk(kCs, d, {.page_cache_bytes = 1 << 20, .chunk_cache_bytes = 8 << 20});
}

TEST(RawViewTest, CorruptChunkFailsOnlyItsRange) {
  CommittedDisk t = OneDisk(4);
  ASSERT_TRUE(t.status.ok()) << t.status.ToString();
  store::Repository* repo = t.repo.get();
  const DiskSpec& d = t.disk;
  ViewReader& reader = *t.reader;
  const RawView& view = *t.raw;

  // Replace slot 1's stored value with a valid encoding of other bytes.
  Region r;
  ASSERT_TRUE(view.RegionAt(kCs, &r).ok());
  std::string other(kCs, 'z');
  std::string value;
  store::ChunkEncoder(1).Encode(
      {reinterpret_cast<const uint8_t*>(other.data()), other.size()}, &value);
  store::KvBatch batch;
  batch.Put(store::KvSpace::kChunks, r.chunk.key(), value);
  ASSERT_TRUE(repo->kv().Write(batch, true).ok());
  // And slot 3's with bytes that do not decode at all.
  Region r3;
  ASSERT_TRUE(view.RegionAt(3 * kCs, &r3).ok());
  store::KvBatch batch3;
  batch3.Put(store::KvSpace::kChunks, r3.chunk.key(), "\x07garbage");
  ASSERT_TRUE(repo->kv().Write(batch3, true).ok());

  for (int attempt = 0; attempt < 2; ++attempt) {  // never cached
    ReadResult bad;
    Status s = reader.Read(view, kCs + 10, 100, &bad);
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.message().find(r.chunk.hex()), std::string::npos) << s.ToString();
    EXPECT_EQ(s.ToErrno(), EIO);
  }
  ReadResult bad3;
  EXPECT_TRUE(reader.Read(view, 3 * kCs, 10, &bad3).IsCorruption());
  ReadResult spanning;
  EXPECT_FALSE(reader.Read(view, 0, 2 * kCs, &spanning).ok());
  for (uint64_t slot : {0, 2}) {
    ReadResult good;
    ASSERT_TRUE(reader.Read(view, slot * kCs, kCs, &good).ok());
    EXPECT_TRUE(good.ToString() == ExpectedBytes(d, kCs, slot * kCs, kCs));
  }
}

TEST(RawViewTest, MissingChunkIsCorruption) {
  CommittedDisk t = OneDisk(2);
  ASSERT_TRUE(t.status.ok()) << t.status.ToString();
  ViewReader& reader = *t.reader;
  const RawView& view = *t.raw;
  Region r;
  ASSERT_TRUE(view.RegionAt(0, &r).ok());
  ASSERT_TRUE(t.repo->chunks().Delete(r.chunk).ok());
  ReadResult out;
  Status s = reader.Read(view, 0, 10, &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_EQ(s.ToErrno(), EIO);
}

// The key of index page `page` of disk 0 of backup `id`, and of that disk's summary,
// as store/FORMAT.md lays them out.
std::string IndexPageKeyOf(uint64_t id, uint64_t page) {
  std::string key;
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
  key.append(4, '\0');  // disk 0
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((page >> (8 * i)) & 0xff));
  return key;
}
std::string SummaryKeyOf(uint64_t id) { return "ds/" + IndexPageKeyOf(id, 0).substr(0, 12); }

// Reads `view` whole in 1 MiB steps: the first error, or OK.
Status ReadWhole(const ViewReader& reader, const View& view) {
  VV_RETURN_IF_ERROR(view.Load());
  for (uint64_t off = 0; off < view.size(); off += 1 << 20) {
    ReadResult r;
    VV_RETURN_IF_ERROR(reader.Read(view, off, 1 << 20, &r));
  }
  return Status::OK();
}

// Three pages with data on each; page 1 is then deleted from the store, as damage (or a
// lost write) would, while the backup's record stays.
DiskSpec ThreePagesOfData() {
  DiskSpec d;
  d.size = 2 * kPageBytes + 300 * kCs;
  d.seed = 9;
  d.has_data = [](uint64_t slot) { return slot % 700 == 3; };
  return d;
}

// The same, but page 1 only ever held holes (so the writer stores no page for it).
DiskSpec PageOneOfHoles() {
  DiskSpec d = ThreePagesOfData();
  d.has_data = [](uint64_t slot) { return slot / store::kIndexPageSlots != 1 && slot % 700 == 3; };
  return d;
}

TEST(RawViewTest, ADeletedIndexPageIsCorruptionForItsRangeNotHoles) {
  CommittedDisk t(kCs, ThreePagesOfData(), {.page_cache_bytes = 4 << 20});
  ASSERT_TRUE(t.status.ok()) << t.status.ToString();
  std::string value;
  ASSERT_TRUE(t.repo->kv().Get(store::KvSpace::kIndex, IndexPageKeyOf(t.backup.id, 1), &value).ok())
      << "the key layout of FORMAT.md";
  store::KvBatch batch;
  batch.Delete(store::KvSpace::kIndex, IndexPageKeyOf(t.backup.id, 1));
  ASSERT_TRUE(t.repo->kv().Write(batch, true).ok());
  const ViewReader& reader = *t.reader;
  const RawView& view = *t.raw;

  // Every read inside the page's range fails, data slots and holes alike, every time.
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (uint64_t off : {kPageBytes, kPageBytes + 3 * kCs, kPageBytes + 5 * kCs + 100,
                         kPageBytes + 107 * kCs, 2 * kPageBytes - 1}) {
      ReadResult r;
      const Status s = reader.Read(view, off, 1, &r);
      EXPECT_TRUE(s.IsCorruption()) << off << ": " << s.ToString();
      EXPECT_EQ(s.ToErrno(), EIO);
      EXPECT_NE(s.message().find("index page 1"), std::string::npos) << s.ToString();
    }
  }
  // Seeking into it fails too: it cannot say where the page's data was. (Page 0's last
  // data slot is 3503, page 1's first 4203.)
  EXPECT_TRUE(view.SeekData(3504 * kCs).status().IsCorruption());
  EXPECT_TRUE(view.SeekHole(kPageBytes).status().IsCorruption());
  // The pages before and after read as they were, data and holes.
  for (uint64_t off : {uint64_t{0}, 3 * uint64_t{kCs}, kPageBytes - kCs, 2 * kPageBytes,
                       2 * kPageBytes + 3 * kCs, t.disk.size - kCs}) {
    ReadResult r;
    ASSERT_TRUE(reader.Read(view, off, kCs, &r).ok()) << off;
    EXPECT_TRUE(r.ToString() == ExpectedBytes(t.disk, kCs, off, kCs)) << off;
  }
  EXPECT_EQ(*view.SeekData(2 * kPageBytes), 2 * kPageBytes + 211 * kCs);  // slot 8403

  // The compacted views catch it as well (their map checks each page against the
  // summary), so no view of the disk reads the page as zeros.
  Qcow2View qcow2(t.raw, t.MapLoader());
  EXPECT_TRUE(ReadWhole(reader, qcow2).IsCorruption());
  VhdxView vhdx(t.raw, t.MapLoader(), 7);
  EXPECT_TRUE(ReadWhole(reader, vhdx).IsCorruption());
}

TEST(RawViewTest, APageOfHolesIsNotStoredAndReadsAsZeros) {
  CommittedDisk t(kCs, PageOneOfHoles(), {.page_cache_bytes = 4 << 20});
  ASSERT_TRUE(t.status.ok()) << t.status.ToString();
  std::string value;
  ASSERT_TRUE(t.repo->kv().Get(store::KvSpace::kIndex, IndexPageKeyOf(t.backup.id, 0), &value).ok());
  EXPECT_TRUE(
      t.repo->kv().Get(store::KvSpace::kIndex, IndexPageKeyOf(t.backup.id, 1), &value).IsNotFound())
      << "the writer stores no page of holes";
  for (uint64_t off : {kPageBytes, kPageBytes + 107 * kCs, 2 * kPageBytes - (1 << 20)}) {
    ReadResult r;
    ASSERT_TRUE(t.reader->Read(*t.raw, off, 1 << 20, &r).ok()) << off;
    EXPECT_TRUE(r.ToString() == std::string(1 << 20, '\0')) << off;
  }
  EXPECT_EQ(*t.raw->SeekData(kPageBytes - kCs), 2 * kPageBytes + 211 * kCs);
  Qcow2View qcow2(t.raw, t.MapLoader());
  EXPECT_TRUE(ReadWhole(*t.reader, qcow2).ok());
}

// A disk without a stored summary (a format 1 repository opened only for reading)
// cannot tell which page is missing, but its record counts the data chunks: with page 1
// gone the stored pages hold fewer, so every absent page is Corruption, never zeros.
// The pages that are there still read.
TEST(RawViewTest, WithoutAStoredSummaryADeletedPageIsCaughtByTheRecordsCount) {
  CommittedDisk t(kCs, ThreePagesOfData(), {.page_cache_bytes = 4 << 20});
  ASSERT_TRUE(t.status.ok()) << t.status.ToString();
  store::KvBatch batch;
  batch.Delete(store::KvSpace::kCatalog, SummaryKeyOf(t.backup.id));
  batch.Delete(store::KvSpace::kIndex, IndexPageKeyOf(t.backup.id, 1));
  ASSERT_TRUE(t.repo->kv().Write(batch, true).ok());
  auto stored = t.repo->catalog().ReadStoredDiskSummary(t.backup.id, 0, t.backup.disks[0]);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  ASSERT_FALSE(stored->has_value()) << "the summary key of FORMAT.md";
  ReadResult r;
  const Status s = t.reader->Read(*t.raw, kPageBytes + 107 * kCs, kCs, &r);  // was data
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("not the 13 of its record"), std::string::npos) << s.ToString();
  EXPECT_TRUE(t.raw->SeekData(kPageBytes).status().IsCorruption());
  for (uint64_t off : {uint64_t{0}, 3 * uint64_t{kCs}, 2 * kPageBytes + 211 * kCs}) {
    r.Clear();
    ASSERT_TRUE(t.reader->Read(*t.raw, off, kCs, &r).ok()) << off;
    EXPECT_TRUE(r.ToString() == ExpectedBytes(t.disk, kCs, off, kCs)) << off;
  }
}

// ...while a format 1 disk whose absent page only ever held holes reads it as zeros.
TEST(RawViewTest, WithoutAStoredSummaryAPageOfHolesReadsAsZeros) {
  CommittedDisk t(kCs, PageOneOfHoles(), {.page_cache_bytes = 4 << 20});
  ASSERT_TRUE(t.status.ok()) << t.status.ToString();
  store::KvBatch batch;
  batch.Delete(store::KvSpace::kCatalog, SummaryKeyOf(t.backup.id));
  ASSERT_TRUE(t.repo->kv().Write(batch, true).ok());
  ReadResult r;
  ASSERT_TRUE(t.reader->Read(*t.raw, kPageBytes + 107 * kCs, kCs, &r).ok());
  EXPECT_TRUE(r.ToString() == std::string(kCs, '\0'));
  EXPECT_EQ(*t.raw->SeekData(kPageBytes - kCs), 2 * kPageBytes + 211 * kCs);
}

// A stored page that holds one data slot fewer than its summary says (damage that
// turned a chunk id into a hole): reads and seeks in its range are Corruption, not the
// zeros the page now claims; the other pages read as they were.
TEST(RawViewTest, APresentPageThatContradictsItsSummaryIsCorruption) {
  CommittedDisk t(kCs, ThreePagesOfData(), {.page_cache_bytes = 4 << 20});
  ASSERT_TRUE(t.status.ok()) << t.status.ToString();
  const std::string key = IndexPageKeyOf(t.backup.id, 1);
  std::string page;
  ASSERT_TRUE(t.repo->kv().Get(store::KvSpace::kIndex, key, &page).ok());
  const size_t first_data = (4203 - store::kIndexPageSlots) * 16;  // slot 4203
  ASSERT_NE(page.substr(first_data, 16), std::string(16, '\0')) << "the page layout of FORMAT.md";
  page.replace(first_data, 16, std::string(16, '\0'));
  store::KvBatch batch;
  batch.Put(store::KvSpace::kIndex, key, page);
  ASSERT_TRUE(t.repo->kv().Write(batch, true).ok());

  ReadResult r;
  Status s = t.reader->Read(*t.raw, 4203 * uint64_t{kCs}, kCs, &r);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("index page 1 of backup"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("contradicts the disk summary"), std::string::npos) << s.ToString();
  r.Clear();
  EXPECT_TRUE(t.reader->Read(*t.raw, kPageBytes + 5 * kCs, 10, &r).IsCorruption());
  EXPECT_TRUE(t.raw->SeekData(kPageBytes).status().IsCorruption());
  for (uint64_t off : {uint64_t{3 * kCs}, 2 * kPageBytes + 211 * kCs}) {
    r.Clear();
    ASSERT_TRUE(t.reader->Read(*t.raw, off, kCs, &r).ok()) << off;
    EXPECT_TRUE(r.ToString() == ExpectedBytes(t.disk, kCs, off, kCs)) << off;
  }
}

TEST(RawViewTest, InvalidChunkSizeIsCorruptionNotACrash) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(kCs));
  IndexPageCache pages(&repo->catalog(), 1 << 20);
  store::DiskRecord rec;
  rec.virtual_size = 1000;
  rec.chunk_size = 0;
  RawView view(&pages, 1, 0, rec);
  Region r;
  EXPECT_TRUE(view.RegionAt(0, &r).IsCorruption());
  EXPECT_FALSE(view.SeekData(0).ok());
}

TEST(RawViewTest, TerabyteSparseDiskOpensAndReadsWithoutScanning) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(1 << 20));
  const uint64_t cs = 1 << 20;
  DiskSpec d;
  d.size = 1ull << 40;
  const uint64_t far_slot = 700'000;
  const uint64_t last_slot = d.size / cs - 1;
  d.has_data = [&](uint64_t slot) { return slot == 0 || slot == far_slot || slot == last_slot; };
  auto b = CommitDisks(repo.get(), testing::MakeVm("big"), testing::TestTime(), {d});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  IndexPageCache pages(&repo->catalog(), 16 << 20);
  ChunkCache cache(&repo->chunks(), 8 << 20, cs);
  ViewReader reader(&cache, nullptr);
  RawView view(&pages, b->id, 0, b->disks[0]);

  EXPECT_EQ(view.size(), d.size);
  EXPECT_EQ(view.allocated_bytes(), 3 * cs);
  EXPECT_EQ(pages.stats().loads, 0u);  // size and allocation need no index page
  ReadResult first;
  ASSERT_TRUE(reader.Read(view, 0, 4096, &first).ok());
  EXPECT_TRUE(first.ToString() == ExpectedBytes(d, cs, 0, 4096));
  EXPECT_EQ(pages.stats().loads, 1u);
  ReadResult far;
  ASSERT_TRUE(reader.Read(view, far_slot * cs - 100, 200, &far).ok());
  EXPECT_TRUE(far.ToString() == ExpectedBytes(d, cs, far_slot * cs - 100, 200));
  EXPECT_LE(pages.stats().loads, 3u);

  auto data = view.SeekData(cs);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, far_slot * cs);
  EXPECT_EQ(*view.SeekData(far_slot * cs + 1), far_slot * cs + 1);  // inside data
  EXPECT_EQ(*view.SeekHole(far_slot * cs + 1), (far_slot + 1) * cs);
  auto last = view.SeekData((far_slot + 1) * cs);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, last_slot * cs);
  auto hole = view.SeekHole(last_slot * cs);
  ASSERT_TRUE(hole.ok());
  EXPECT_EQ(*hole, d.size);
  // Absent pages are cached cheaply.
  EXPECT_LT(pages.stats().bytes, 1u << 20);
}

}  // namespace
}  // namespace vmvault::fs
