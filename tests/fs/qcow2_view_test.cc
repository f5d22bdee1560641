#include "fs/qcow2_view.h"

#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <map>
#include <random>
#include <set>

#include "base/bytes.h"
#include "fs/chunk_cache.h"
#include "fs/data_map.h"
#include "fs/index_page_cache.h"
#include "fs/raw_view.h"
#include "fs/view_reader.h"
#include "tests/fs/fs_test_util.h"
#include "tests/fs/view_test_util.h"

namespace vmvault::fs {
namespace {

using testing::CommittedDisk;
using testing::CommittedDiskOptions;
using testing::DiskSpec;
using testing::ExpectedBytes;
using testing::ViewShape;

constexpr uint64_t kPageSlots = store::kIndexPageSlots;
constexpr uint64_t kPiece = 4096;
constexpr uint64_t kCopied = uint64_t{1} << 63;
constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ULL;  // bits 9-55

uint64_t RoundUp(uint64_t a, uint64_t b) { return (a + b - 1) / b * b; }

// ---------------------------------------------------------------------------------------
// A qcow2 decoder written from docs/interop/qcow2.txt, independent of Qcow2View. Decode()
// parses an image held in memory and checks everything the view promises: a version 3
// header with no features, every referenced cluster (header, refcount table and blocks,
// L1, L2 tables, data) has refcount exactly 1 and every cluster with a refcount is
// referenced (so nothing overlaps and nothing leaks), OFLAG_COPIED is set, reserved bits
// are clear, metadata fills the clusters from 0 and data clusters follow it densely in
// guest order.
struct Decoded {
  uint64_t file_size = 0;
  uint64_t cluster_size = 0;
  uint64_t virtual_size = 0;
  uint64_t l1_size = 0;
  uint64_t l2_entries = 0;
  uint64_t data_offset = 0;                // the first cluster after the metadata
  uint64_t data_end = 0;                   // after the last data cluster
  std::vector<uint64_t> metadata_offsets;  // reftable, refblocks, L1, L2 tables (sorted)
  std::vector<uint64_t> l2_table_offsets;
  std::map<uint64_t, uint64_t> data;  // guest cluster -> host offset

  uint64_t HostOf(uint64_t guest_cluster) const {
    auto it = data.find(guest_cluster);
    return it == data.end() ? 0 : it->second;
  }
  // The guest bytes [off, off + len), as qemu would read them from `file`.
  std::string ReadGuest(const std::string& file, uint64_t off, uint64_t len) const {
    std::string out;
    const uint64_t end = std::min(virtual_size, off + len);
    while (off < end) {
      const uint64_t g = off / cluster_size;
      const uint64_t in = off % cluster_size;
      const uint64_t n = std::min(end, (g + 1) * cluster_size) - off;
      const uint64_t host = HostOf(g);
      if (host == 0) {
        out.append(n, '\0');
      } else {
        out.append(file, host + in, n);
      }
      off += n;
    }
    return out;
  }
};

uint64_t Be64(const std::string& f, uint64_t at) { return GetBigEndian64(f.data() + at); }
uint32_t Be32(const std::string& f, uint64_t at) { return GetBigEndian32(f.data() + at); }
uint16_t Be16(const std::string& f, uint64_t at) {
  return static_cast<uint16_t>((uint8_t(f[at]) << 8) | uint8_t(f[at + 1]));
}

::testing::AssertionResult Decode(const std::string& f, uint64_t chunk_size, Decoded* out) {
  auto fail = [](const std::string& why) { return ::testing::AssertionFailure() << why; };
  Decoded d;
  d.file_size = f.size();
  if (f.size() < 112) return fail("shorter than a header");
  if (Be32(f, 0) != 0x514649fb) return fail("bad magic");
  if (Be32(f, 4) != 3) return fail("not version 3");
  if (Be64(f, 8) != 0 || Be32(f, 16) != 0) return fail("has a backing file");
  const uint32_t cluster_bits = Be32(f, 20);
  if (cluster_bits < 9 || cluster_bits > 21) return fail("bad cluster_bits");
  const uint64_t cl = uint64_t{1} << cluster_bits;
  if (cl != std::min<uint64_t>(chunk_size, 2 << 20)) return fail("unexpected cluster size");
  d.cluster_size = cl;
  d.virtual_size = Be64(f, 24);
  if (d.virtual_size % 512 != 0) return fail("virtual size not a multiple of 512");
  if (Be32(f, 32) != 0) return fail("encrypted");
  d.l1_size = Be32(f, 36);
  const uint64_t l1_offset = Be64(f, 40);
  const uint64_t reftable_offset = Be64(f, 48);
  const uint64_t reftable_clusters = Be32(f, 56);
  if (Be32(f, 60) != 0 || Be64(f, 64) != 0) return fail("has snapshots");
  if (Be64(f, 72) != 0 || Be64(f, 80) != 0 || Be64(f, 88) != 0) return fail("feature bits");
  if (Be32(f, 96) != 4) return fail("refcount_order is not 4");
  if (Be32(f, 100) != 104) return fail("header_length is not 104");
  if (Be64(f, 104) != 0) return fail("no end of header extensions at 104");
  if (d.file_size % cl != 0) return fail("file does not end on a cluster boundary");
  const uint64_t nclusters = d.file_size / cl;
  d.l2_entries = cl / 8;
  const uint64_t guest_clusters = (d.virtual_size + cl - 1) / cl;
  if (d.l1_size != (guest_clusters + d.l2_entries - 1) / d.l2_entries) {
    return fail("l1_size does not match the virtual size");
  }

  std::map<uint64_t, int> refs;  // cluster -> references
  std::set<uint64_t> metadata;   // metadata clusters
  auto in_file = [&](uint64_t off, uint64_t len) {
    return off % cl == 0 && off <= d.file_size && len <= d.file_size - off;
  };
  auto reference = [&](uint64_t off, uint64_t len, bool meta) {
    for (uint64_t c = off / cl; c < (off + len + cl - 1) / cl; ++c) {
      ++refs[c];
      if (meta) metadata.insert(c);
    }
  };
  reference(0, cl, true);

  if (reftable_clusters == 0 || !in_file(reftable_offset, reftable_clusters * cl)) {
    return fail("refcount table out of the file");
  }
  reference(reftable_offset, reftable_clusters * cl, true);
  d.metadata_offsets.push_back(reftable_offset);
  std::vector<uint64_t> refblocks;
  for (uint64_t i = 0; i < reftable_clusters * cl / 8; ++i) {
    const uint64_t e = Be64(f, reftable_offset + 8 * i);
    if ((e & 0x1ff) != 0) return fail("reserved bits in a refcount table entry");
    if (e != 0 && !in_file(e, cl)) return fail("refcount block out of the file");
    if (e != 0) {
      reference(e, cl, true);
      d.metadata_offsets.push_back(e);
    }
    refblocks.push_back(e);
  }

  if (d.l1_size > 0) {
    if (!in_file(l1_offset, d.l1_size * 8)) return fail("L1 table out of the file");
    reference(l1_offset, d.l1_size * 8, true);
    d.metadata_offsets.push_back(l1_offset);
  }
  std::vector<std::pair<uint64_t, uint64_t>> data;  // guest cluster, host offset
  for (uint64_t j = 0; j < d.l1_size; ++j) {
    const uint64_t e = Be64(f, l1_offset + 8 * j);
    if (e == 0) continue;
    if ((e & ~(kOffsetMask | kCopied)) != 0) return fail("reserved bits in an L1 entry");
    if ((e & kCopied) == 0) return fail("L1 entry without OFLAG_COPIED");
    const uint64_t l2 = e & kOffsetMask;
    if (!in_file(l2, cl)) return fail("L2 table out of the file");
    reference(l2, cl, true);
    d.metadata_offsets.push_back(l2);
    d.l2_table_offsets.push_back(l2);
    for (uint64_t i = 0; i < d.l2_entries; ++i) {
      const uint64_t x = Be64(f, l2 + 8 * i);
      if (x == 0) continue;
      if ((x & ~(kOffsetMask | kCopied)) != 0) {
        return fail("compressed, zero or reserved bits in an L2 entry");
      }
      if ((x & kCopied) == 0) return fail("L2 entry without OFLAG_COPIED");
      const uint64_t g = j * d.l2_entries + i;
      if (g >= guest_clusters) return fail("L2 entry past the virtual size");
      const uint64_t host = x & kOffsetMask;
      if (!in_file(host, cl)) return fail("data cluster out of the file");
      reference(host, cl, false);
      data.push_back({g, host});
      d.data[g] = host;
    }
  }
  std::sort(d.metadata_offsets.begin(), d.metadata_offsets.end());

  // Refcounts: exactly the references, for every cluster the refcount blocks describe.
  const uint64_t per_block = cl / 2;
  for (const auto& [c, n] : refs) {
    if (c / per_block >= refblocks.size() || refblocks[c / per_block] == 0) {
      return fail("referenced cluster " + std::to_string(c) + " has no refcount block");
    }
  }
  for (uint64_t b = 0; b < refblocks.size(); ++b) {
    if (refblocks[b] == 0) continue;
    for (uint64_t i = 0; i < per_block; ++i) {
      const uint64_t c = b * per_block + i;
      const uint16_t rc = Be16(f, refblocks[b] + 2 * i);
      auto it = refs.find(c);
      const int want = it == refs.end() ? 0 : it->second;
      if (want > 1) return fail("cluster " + std::to_string(c) + " is referenced twice");
      if (rc != want) {
        return fail("cluster " + std::to_string(c) + " has refcount " + std::to_string(rc) +
                    " and " + std::to_string(want) + " references");
      }
    }
  }

  // Layout: metadata in clusters [0, M), data densely from M in guest order.
  const uint64_t m = metadata.size();
  if (m == 0 || *metadata.rbegin() != m - 1) return fail("metadata clusters have gaps");
  d.data_offset = m * cl;
  for (uint64_t i = 0; i < data.size(); ++i) {
    if (data[i].second != d.data_offset + i * cl) {
      return fail("data cluster of guest cluster " + std::to_string(data[i].first) +
                  " is not where dense placement puts it");
    }
  }
  d.data_end = d.data_offset + data.size() * cl;
  if (nclusters * cl - d.data_end >= std::max<uint64_t>(chunk_size, cl)) {
    return fail("unreferenced clusters at the end of the file");
  }
  *out = std::move(d);
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------

// The common shapes in slots of each chunk size, with qcow2's own multi_page, a
// quarter-chunk tail and a sparse disk of 2^20 slots.
std::vector<ViewShape> Shapes() {
  std::vector<ViewShape> all;
  for (uint32_t cs : {64u << 10, 256u << 10, 1u << 20, 4u << 20}) {
    const uint64_t c = cs;
    // Slots per L2 table: (cluster_size / 8) / (chunk_size / cluster_size).
    const uint64_t cl = std::min<uint64_t>(c, 2 << 20);
    const uint64_t range = (cl / 8) / (c / cl);
    // Fewer data slots for large chunks, to keep the test quick.
    const uint64_t period = 97 * std::max<uint64_t>(1, c / (256 << 10));
    const std::string suffix = "_" + std::to_string(cs >> 10) + "k";
    std::vector<ViewShape> s = testing::CommonShapes(
        cs, {.label_suffix = suffix, .all_holes_size = 160 * c, .sparse_period = period});
    // Five index pages: runs of data across the boundaries of pages 0/1 and 1/2, page 3
    // absent, a partial last chunk alone on page 4; shared chunks.
    DiskSpec& multi_page = testing::FindShape(s, "multi_page" + suffix)->disk;
    multi_page.size = 4 * kPageSlots * c + 777;
    multi_page.has_data = [period](uint64_t slot) {
      return (slot < kPageSlots && slot % (5 * period) == 5) || (slot >= 4094 && slot <= 4097) ||
             (slot >= 8190 && slot <= 8193) || slot == 4 * kPageSlots;
    };
    // A last chunk of a quarter chunk and 3 bytes: with 4 MiB chunks it fills one of the
    // chunk's two clusters.
    s.insert(testing::FindShape(s, "empty" + suffix),
             testing::MakeShape("quarter_tail" + suffix, cs, 3 * c + c / 4 + 3,
                                [](uint64_t slot) { return slot != 1; }));
    // 2^20 slots (64 GiB to 4 TiB), data around an L2 table boundary, holes across
    // whole L2 tables and a partial last chunk.
    const uint64_t slots = uint64_t{1} << 20;
    s.push_back(testing::MakeShape(
        "large_sparse" + suffix, cs, slots * c - 100, [range, slots](uint64_t slot) {
          return slot == 0 || slot == 1 || slot == range - 1 || slot == range ||
                 slot == 3 * range + 5 || slot == 700'000 || slot == slots - 1;
        }));
    all.insert(all.end(), s.begin(), s.end());
  }
  testing::NumberSeeds(&all, 11);
  return all;
}

class Qcow2ViewShapeTest : public ::testing::TestWithParam<ViewShape> {
 protected:
  void SetUp() override {
    cs_ = GetParam().chunk_size;
    disk_ = std::make_unique<CommittedDisk>(cs_, GetParam().disk,
                                            CommittedDiskOptions{.chunk_cache_bytes = 96 << 20});
    ASSERT_TRUE(disk_->status.ok()) << disk_->status.ToString();
    reader_ = disk_->reader.get();
    view_ = MakeView(disk_->pages.get(), &loads_);
  }

  // A qcow2 view over the raw view whose map comes from `pages`; counts map loads.
  std::shared_ptr<Qcow2View> MakeView(IndexPageCache* pages, std::atomic<int>* loads) {
    return std::make_shared<Qcow2View>(disk_->NewRawView(pages), disk_->MapLoader(pages, loads));
  }

  std::string ReadAll(const View& v) {
    ReadResult r;
    Status s = reader_->Read(v, 0, v.size(), &r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r.ToString();
  }

  uint32_t cs_ = 0;
  std::unique_ptr<CommittedDisk> disk_;
  const ViewReader* reader_ = nullptr;
  std::atomic<int> loads_{0};
  std::shared_ptr<Qcow2View> view_;
};

TEST_P(Qcow2ViewShapeTest, DecodesToTheDisk) {
  const DiskSpec& d = GetParam().disk;
  const uint64_t cl = Qcow2View::ClusterSizeFor(cs_);
  ASSERT_TRUE(view_->Load().ok());
  const std::string file = ReadAll(*view_);
  ASSERT_EQ(file.size(), view_->size());
  Decoded q;
  ASSERT_TRUE(Decode(file, cs_, &q));
  EXPECT_EQ(q.virtual_size, RoundUp(d.size, 512));

  // The guest's allocation is the disk's: a cluster is mapped iff its slot holds data.
  std::vector<uint64_t> want_clusters;
  uint64_t data_slots = 0;
  for (uint64_t slot = 0; slot * cs_ < d.size; ++slot) {
    if (!d.has_data(slot)) continue;
    ++data_slots;
    for (uint64_t g = slot * cs_ / cl; g < (slot + 1) * cs_ / cl && g * cl < d.size; ++g) {
      want_clusters.push_back(g);
    }
  }
  std::vector<uint64_t> got_clusters;
  for (const auto& [g, host] : q.data) got_clusters.push_back(g);
  ASSERT_EQ(got_clusters, want_clusters);
  // The file: metadata, then every data slot at chunk_size spacing.
  EXPECT_EQ(view_->size(), q.data_offset + data_slots * cs_);
  // Past the last mapped cluster only the unmapped rest of a partial last slot.
  if (file.size() != q.data_end) {
    const uint64_t last = (d.size - 1) / cs_;
    EXPECT_TRUE(d.has_data(last));
    EXPECT_LE(file.size() - q.data_end, cs_ - (d.size - last * cs_ + cl - 1) / cl * cl);
  }

  // Every mapped cluster holds the disk's bytes, and zeros past the disk's end.
  for (const auto& [g, host] : q.data) {
    const uint64_t n = std::min<uint64_t>(cl, d.size - g * cl);
    ASSERT_TRUE(file.compare(host, n, ExpectedBytes(d, cs_, g * cl, n)) == 0) << "cluster " << g;
    for (uint64_t i = host + n; i < host + cl; ++i) ASSERT_EQ(file[i], '\0') << "cluster " << g;
  }
  // Small disks: the whole guest, against the raw view.
  if (d.size <= (64 << 20)) {
    ReadResult raw;
    ASSERT_TRUE(reader_->Read(*disk_->raw, 0, d.size, &raw).ok());
    std::string want = raw.ToString();
    want.resize(q.virtual_size, '\0');
    EXPECT_TRUE(q.ReadGuest(file, 0, q.virtual_size) == want);
  }

  // Random reads across cluster, piece, chunk and structure boundaries match the image
  // read in one go.
  std::vector<uint64_t> marks = q.metadata_offsets;
  marks.push_back(q.data_offset);
  marks.push_back(q.data_end);
  marks.push_back(file.size());
  std::mt19937_64 rng(42);
  const uint64_t span = file.size() + kPiece;
  for (int i = 0; i < 300; ++i) {
    uint64_t off = rng() % span;
    switch (i % 4) {
      case 0:
        off = marks[rng() % marks.size()];
        break;
      case 1:
        off = off / kPiece * kPiece;
        break;
      case 2:
        off = off / cl * cl;
        break;
      default:
        off = off / cs_ * cs_;
        break;
    }
    off = off + (rng() % 128) - 64;
    if (off > span) off = rng() % span;
    const uint64_t len = 1 + rng() % (i % 8 == 0 ? 2 * cl : 3 * kPiece + 100);
    ReadResult r;
    ASSERT_TRUE(reader_->Read(*view_, off, len, &r).ok()) << off;
    const std::string want = off < file.size() ? file.substr(off, len) : std::string();
    ASSERT_EQ(r.size(), want.size()) << "off " << off << " len " << len;
    ASSERT_TRUE(r.ToString() == want) << "off " << off << " len " << len;
  }
}

TEST_P(Qcow2ViewShapeTest, SeeksAndAllocationAgreeWithTheRegions) {
  ASSERT_TRUE(view_->Load().ok());
  const uint64_t size = view_->size();
  // Walk the regions; kView regions are slices of raw data slots, all data.
  struct Ext {
    uint64_t start, end;
    bool data;
  };
  std::vector<Ext> extents;
  uint64_t data_regions = 0;
  for (uint64_t pos = 0; pos < size;) {
    Region r;
    ASSERT_TRUE(view_->RegionAt(pos, &r).ok()) << pos;
    ASSERT_LE(r.offset, pos);
    ASSERT_GT(r.end(), pos);
    ASSERT_LE(r.end(), size);
    if (r.type == RegionType::kBytes) {
      ASSERT_LE(r.source_offset + r.length, r.bytes->size());
    }
    if (r.type == RegionType::kView) {
      ASSERT_NE(r.view.get(), view_.get());
      ASSERT_EQ(r.view->size(), GetParam().disk.size);
      ASSERT_LE(r.source_offset + r.length, GetParam().disk.size);
      ++data_regions;
    }
    const uint64_t end = r.end();
    if (!extents.empty() && extents.back().data == r.is_data() && extents.back().end == pos) {
      extents.back().end = end;
    } else {
      extents.push_back({pos, end, r.is_data()});
    }
    pos = end;
  }
  uint64_t allocated = 0;
  for (const Ext& e : extents) allocated += e.data ? e.end - e.start : 0;
  EXPECT_EQ(view_->allocated_bytes(), allocated);
  // One kView region per run of data slots on an index page.
  const DiskSpec& d = GetParam().disk;
  uint64_t runs = 0;
  for (uint64_t slot = 0; slot * cs_ < d.size; ++slot) {
    if (d.has_data(slot) && (slot % kPageSlots == 0 || !d.has_data(slot - 1))) ++runs;
  }
  EXPECT_EQ(data_regions, runs);

  auto ref_seek = [&](uint64_t off, bool data) {
    for (const Ext& e : extents) {
      if (e.end > off && e.data == data) return std::max(off, e.start);
    }
    return size;
  };
  std::vector<uint64_t> offsets = {0, size, size + 1};
  for (const Ext& e : extents) {
    for (uint64_t o : {e.start, e.start + 1, e.end - 1, e.end}) offsets.push_back(o);
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) offsets.push_back(size == 0 ? 0 : rng() % size);
  for (uint64_t off : offsets) {
    auto data = view_->SeekData(off);
    auto hole = view_->SeekHole(off);
    ASSERT_TRUE(data.ok() && hole.ok());
    EXPECT_EQ(*data, off >= size ? size : ref_seek(off, true)) << "SEEK_DATA from " << off;
    EXPECT_EQ(*hole, off >= size ? size : ref_seek(off, false)) << "SEEK_HOLE from " << off;
  }
}

TEST_P(Qcow2ViewShapeTest, CostsNothingUntilRead) {
  IndexPageCache pages(&disk_->repo->catalog(), 16 << 20);
  std::atomic<int> loads{0};
  auto view = MakeView(&pages, &loads);
  EXPECT_EQ(loads.load(), 0);
  EXPECT_EQ(view->size(), 0u);  // not loaded: nothing read for stat before Load
  ASSERT_TRUE(view->Load().ok());
  ASSERT_TRUE(view->Load().ok());
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(pages.stats().misses, 0u);
  EXPECT_GT(view->size(), 0u);
  EXPECT_GT(view->allocated_bytes(), 0u);
  ASSERT_TRUE(view->SeekData(1).ok());
  ASSERT_TRUE(view->SeekHole(view->size() / 2).ok());
  EXPECT_EQ(pages.stats().misses, 0u);  // seeks are analytic

  // The header and L1 need no page; one L2 piece and one data run need one each.
  ReadResult head;
  ASSERT_TRUE(reader_->Read(*view, 0, 8192, &head).ok());
  EXPECT_EQ(pages.stats().misses, 0u);
  ASSERT_TRUE(view_->Load().ok());
  Decoded q;
  ASSERT_TRUE(Decode(ReadAll(*view_), cs_, &q));
  if (!q.l2_table_offsets.empty()) {
    const uint64_t before = pages.stats().loads;
    ReadResult l2;
    ASSERT_TRUE(reader_->Read(*view, q.l2_table_offsets.back() + 100, 2 * kPiece, &l2).ok());
    EXPECT_LE(pages.stats().loads - before, 1u);
  }
  if (q.data_end > q.data_offset) {
    const uint64_t before = pages.stats().loads;
    ReadResult data;
    const uint64_t at = q.data_offset + (q.data_end - q.data_offset) / 2;
    ASSERT_TRUE(reader_->Read(*view, at, 4096, &data).ok());
    EXPECT_LE(pages.stats().loads - before, 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(Qcow2, Qcow2ViewShapeTest, ::testing::ValuesIn(Shapes()),
                         [](const auto& info) { return info.param.label; });

// One committed disk with the raw view, caches and reader the plain tests use.
struct OneDisk : testing::CommittedDisk {
  OneDisk(uint32_t cs, DiskSpec disk)
      : CommittedDisk(cs, std::move(disk), {.chunk_cache_bytes = 32 << 20}) {
    EXPECT_TRUE(status.ok()) << status.ToString();
  }
  std::shared_ptr<Qcow2View> View() { return std::make_shared<Qcow2View>(raw, MapLoader()); }
  // A view whose map comes from `summary` instead of the stored one.
  std::shared_ptr<Qcow2View> ViewWithSummary(store::DiskSummary summary) {
    return std::make_shared<Qcow2View>(raw, [this, summary] {
      return Result<std::shared_ptr<const DataMap>>(
          std::make_shared<const DataMap>(pages.get(), backup.id, 0, backup.disks[0], summary));
    });
  }
};

DiskSpec ThreePages(uint32_t cs) {
  DiskSpec d;
  d.size = 3 * kPageSlots * cs;
  d.has_data = [](uint64_t slot) { return slot < 10 || (slot >= 8200 && slot < 8210); };
  return d;
}

TEST(Qcow2ViewTest, LoadFailureIsReturnedAndRetried) {
  OneDisk t(64 << 10, ThreePages(64 << 10));
  int calls = 0;
  Qcow2View view(t.raw, [&, load = t.MapLoader()]() -> Result<std::shared_ptr<const DataMap>> {
    if (++calls <= 2) return Status::IOError("catalog unavailable");
    return load();
  });
  EXPECT_EQ(view.Load().code(), StatusCode::kIOError);
  EXPECT_EQ(view.size(), 0u);
  EXPECT_EQ(view.allocated_bytes(), 0u);
  Region region;
  EXPECT_EQ(view.RegionAt(0, &region).code(), StatusCode::kIOError);  // tries again
  EXPECT_EQ(calls, 2);
  ASSERT_TRUE(view.Load().ok());  // a failure is not cached
  EXPECT_EQ(calls, 3);
  EXPECT_GT(view.size(), 0u);
  ReadResult r;
  EXPECT_TRUE(t.reader->Read(view, 0, 100, &r).ok());
  EXPECT_EQ(calls, 3);
}

TEST(Qcow2ViewTest, IndexThatContradictsItsSummaryIsCorruption) {
  const uint32_t cs = 64 << 10;
  OneDisk t(cs, ThreePages(cs));
  auto summary = t.repo->catalog().ReadDiskSummary(t.backup.id, 0, t.backup.disks[0]);
  ASSERT_TRUE(summary.ok());
  ASSERT_EQ(summary->page_data_slots, (std::vector<uint16_t>{10, 0, 10}));

  // The summary counts one slot fewer on page 0; then claims page 1 (absent) holds data.
  store::DiskSummary fewer = *summary;
  fewer.page_data_slots[0] = 9;
  store::DiskSummary moved = *summary;
  moved.page_data_slots = {5, 5, 10};
  moved.page_data_groups = {1, 1, 1};
  for (const store::DiskSummary& bad : {fewer, moved}) {
    auto view = t.ViewWithSummary(bad);
    ASSERT_TRUE(view->Load().ok());  // the layout needs no index page
    ReadResult all;
    const Status s = t.reader->Read(*view, 0, view->size(), &all);
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    // Every data offset and the L2 table fail alike, never crash.
    for (uint64_t off = 0; off < view->size(); off += kPiece) {
      Region r;
      const Status rs = view->RegionAt(off, &r);
      EXPECT_TRUE(rs.ok() || rs.IsCorruption()) << rs.ToString();
    }
    EXPECT_TRUE(view->SeekData(0).ok());
  }
}

TEST(Qcow2ViewTest, UnsupportedChunkSizeAndMismatchedRawViewFailToLoad) {
  const uint32_t cs = 64 << 10;
  OneDisk t(cs, ThreePages(cs));
  store::DiskRecord small = t.backup.disks[0];
  small.chunk_size = 32 << 10;
  store::DiskSummary summary =
      store::SummarizeIndex(store::DiskIndex(small.virtual_size / small.chunk_size), 32 << 10);
  Qcow2View view(t.raw, [&] {
    return Result<std::shared_ptr<const DataMap>>(
        std::make_shared<const DataMap>(t.pages.get(), t.backup.id, 0, small, summary));
  });
  EXPECT_EQ(view.Load().code(), StatusCode::kUnsupported) << view.Load().ToString();
  EXPECT_EQ(view.size(), 0u);

  store::DiskRecord other = t.backup.disks[0];
  other.virtual_size += cs;
  auto other_raw = std::make_shared<RawView>(t.pages.get(), t.backup.id, 0, other);
  Qcow2View mismatched(other_raw, t.MapLoader());
  EXPECT_TRUE(mismatched.Load().IsCorruption()) << mismatched.Load().ToString();
}

TEST(Qcow2ViewTest, ConcurrentFirstReadsLoadOnceAndAgree) {
  const uint32_t cs = 64 << 10;
  DiskSpec d = ThreePages(cs);
  d.size += 12345;
  d.has_data = [](uint64_t slot) { return slot % 7 != 3 && (slot < 300 || slot > 12000); };
  OneDisk t(cs, d);
  auto golden_view = t.View();
  ASSERT_TRUE(golden_view->Load().ok());
  ReadResult golden_read;
  ASSERT_TRUE(t.reader->Read(*golden_view, 0, golden_view->size(), &golden_read).ok());
  const std::string golden = golden_read.ToString();

  std::atomic<int> loads{0};
  Qcow2View view(t.raw, t.MapLoader(nullptr, &loads));
  EXPECT_EQ(testing::ConcurrentReadMismatches(
                *t.reader, view, golden.size(), 80, 3 * cs,
                [&](uint64_t off, uint64_t len) { return golden.substr(off, len); }),
            0);
  EXPECT_EQ(loads.load(), 1);
}

TEST(Qcow2ViewTest, TerabyteDiskWithAGigabyteOfDataLoadsAndReadsFast) {
  // 1 TiB in 1 MiB chunks with 1 GiB of data: every 1024th slot, all one stored chunk
  // (so the test stores 1 MiB, not 1 GiB), committed through the catalog directly.
  const uint32_t cs = 1 << 20;
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(cs));
  DiskSpec d;
  d.size = uint64_t{1} << 40;
  const std::string bytes = testing::SlotBytes(d, 1, cs);
  const std::span<const uint8_t> plain(reinterpret_cast<const uint8_t*>(bytes.data()), cs);
  const store::ChunkId id = repo->hasher().Hash(plain);
  std::string value;
  store::ChunkEncoder(1).Encode(plain, &value);
  ASSERT_TRUE(repo->chunks().Put(id, value).ok());
  store::DiskRecord rec;
  rec.name = "vda";
  rec.virtual_size = d.size;
  rec.chunk_size = cs;
  rec.source_format = "raw";
  store::DiskIndex index(d.size / cs);
  for (uint64_t slot = 0; slot < index.size(); slot += 1024) {
    index[slot] = id;
    ++rec.data_chunks;
    rec.allocated_bytes += cs;
  }
  store::BackupRecord b;
  b.vm = "vm1";
  b.time_us = testing::TestTime();
  b.tier = "hot";
  b.method = "offline";
  b.host = "testhost";
  b.disks.push_back(rec);
  ASSERT_TRUE(repo->catalog().CommitBackup(testing::MakeVm("vm1"), &b, {index}).ok());

  IndexPageCache pages(&repo->catalog(), 16 << 20);
  ChunkCache cache(&repo->chunks(), 8 << 20, cs);
  ViewReader reader(&cache, nullptr);
  auto raw = std::make_shared<RawView>(&pages, b.id, 0, b.disks[0]);
  Qcow2View view(raw, [&] { return DataMap::Load(repo->catalog(), &pages, b.id, 0, rec); });

  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(view.Load().ok());
  const auto load_time = std::chrono::steady_clock::now() - start;
  EXPECT_LT(load_time, std::chrono::milliseconds(500));
  EXPECT_EQ(pages.stats().misses, 0u);
  // 1024 data slots; metadata: header, refcount table and block, L1, 8 L2 tables.
  EXPECT_EQ(view.size(), (1 + 1 + 1 + 1 + 8) * uint64_t{cs} + 1024 * uint64_t{cs});
  EXPECT_EQ(view.allocated_bytes(), 1024 * uint64_t{cs} + 4 * kPiece + 8 * uint64_t{cs});

  // Header and L1: no index page. An L2 piece: one. A data slot: one.
  ReadResult head;
  ASSERT_TRUE(reader.Read(view, 0, 4 * cs, &head).ok());
  EXPECT_EQ(pages.stats().loads, 0u);
  const uint64_t l2 = 4 * uint64_t{cs};
  ReadResult l2_piece;
  ASSERT_TRUE(reader.Read(view, l2 + 3 * kPiece, kPiece, &l2_piece).ok());
  EXPECT_EQ(pages.stats().loads, 1u);
  const uint64_t data_offset = 12 * uint64_t{cs};
  ReadResult far;
  const uint64_t k = 700;  // data slot 700 is slot 700 * 1024, on page 175
  ASSERT_TRUE(reader.Read(view, data_offset + k * cs + 100, 1000, &far).ok());
  EXPECT_TRUE(far.ToString() == bytes.substr(100, 1000));
  EXPECT_EQ(pages.stats().loads, 2u);
  // The L2 entry of that slot points at it.
  const uint64_t slot = k * 1024;
  const uint64_t table = slot / (cs / 8);
  ReadResult entry;
  ASSERT_TRUE(reader.Read(view, l2 + table * cs + (slot % (cs / 8)) * 8, 8, &entry).ok());
  EXPECT_EQ(GetBigEndian64(entry.ToString().data()), (data_offset + k * cs) | kCopied);
}

}  // namespace
}  // namespace vmvault::fs
