#include "fs/vhdx_view.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "base/image.h"
#include "fs/data_map.h"
#include "fs/index_page_cache.h"
#include "fs/raw_view.h"
#include "fs/view_reader.h"
#include "tests/fs/fs_test_util.h"
#include "tests/fs/vhdx_decoder.h"
#include "tests/fs/view_test_util.h"

namespace vmvault::fs {
namespace {

using testing::DiskSpec;
using testing::FileReader;
using testing::VhdxFile;
using testing::ViewShape;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kPageSlots = store::kIndexPageSlots;

std::string SizeLabel(uint32_t cs) {
  return cs >= kMiB ? std::to_string(cs / kMiB) + "m" : std::to_string(cs >> 10) + "k";
}

// The common shapes in slots of each chunk size, plus a 1 TiB sparse disk.
std::vector<ViewShape> Shapes() {
  std::vector<ViewShape> all;
  for (uint32_t cs : {64u << 10, 256u << 10, 1u << 20, 4u << 20}) {
    const std::string suffix = "_" + SizeLabel(cs);
    // sparse: groups with one data slot of many, and a run of data over two group
    // boundaries.
    std::vector<ViewShape> s = testing::CommonShapes(cs, {.label_suffix = suffix,
                                                          .sparse_period = 397,
                                                          .sparse_run = 2 * kMiB / cs + 3,
                                                          .multi_page_period = 1501});
    const uint64_t tb_slots = (1ull << 40) / cs;
    s.push_back(
        testing::MakeShape("terabyte_sparse" + suffix, cs, 1ull << 40, [tb_slots](uint64_t slot) {
          return slot == 0 || slot == tb_slots / 3 + 5 ||
                 (slot >= 2 * kPageSlots - 1 && slot <= 2 * kPageSlots + 1) || slot == tb_slots - 1;
        }));
    all.insert(all.end(), s.begin(), s.end());
  }
  testing::NumberSeeds(&all, 11);
  return all;
}

// One committed disk and its raw view, with a VhdxView over it.
struct VhdxFixture : testing::CommittedDisk {
  explicit VhdxFixture(const ViewShape& shape) : CommittedDisk(shape.chunk_size, shape.disk) {
    EXPECT_TRUE(status.ok()) << status.ToString();
    if (status.ok()) {
      vhdx = MakeView(pages.get(), 42);
      EXPECT_TRUE(vhdx->Load().ok());
    }
  }

  std::shared_ptr<VhdxView> MakeView(IndexPageCache* page_cache, uint64_t identity,
                                     std::shared_ptr<const View> raw_view = nullptr) const {
    if (!raw_view) raw_view = NewRawView(page_cache);
    return std::make_shared<VhdxView>(raw_view, MapLoader(page_cache), identity);
  }

  std::string Read(const View& view, uint64_t off, uint64_t len) const {
    ReadResult r;
    const Status s = reader->Read(view, off, len, &r);
    EXPECT_TRUE(s.ok()) << s.ToString() << " at " << off << " + " << len;
    return r.ToString();
  }
  FileReader VhdxReader() const {
    return [this](uint64_t off, uint64_t len) { return Read(*vhdx, off, len); };
  }
  // The raw view's bytes, then zeros up to `len` (the VHDX rounds the size up).
  std::string RawPadded(uint64_t off, uint64_t len, uint64_t virtual_size) const {
    std::string s = off < raw->size() ? Read(*raw, off, len) : std::string();
    const uint64_t want = off >= virtual_size ? 0 : std::min(len, virtual_size - off);
    s.resize(want, '\0');
    return s;
  }

  std::shared_ptr<VhdxView> vhdx;
};

class VhdxViewShapeTest : public ::testing::TestWithParam<ViewShape> {
 protected:
  void SetUp() override {
    f_ = std::make_unique<VhdxFixture>(GetParam());
    ASSERT_TRUE(f_->status.ok());
    ASSERT_TRUE(f_->vhdx->Load().ok()) << f_->vhdx->Load().ToString();
    const DiskSpec& d = GetParam().disk;
    const uint64_t slots = testing::SlotCount(d.size, GetParam().chunk_size);
    for (uint64_t slot = 0; slot < slots; ++slot) {
      if (d.has_data(slot)) data_slots_.push_back(slot);
    }
  }

  // Offsets worth reading around: the guest's data slots and the boundaries of chunks,
  // blocks and index pages near them.
  std::vector<uint64_t> GuestPoints() const {
    const DiskSpec& d = GetParam().disk;
    const uint64_t cs = GetParam().chunk_size;
    std::vector<uint64_t> points = {0, d.size / 2, d.size};
    for (uint64_t slot : data_slots_) {
      points.push_back(slot * cs);
      points.push_back((slot + 1) * cs);
      points.push_back(slot * cs / kMiB * kMiB);  // the 1 MiB block boundary below
      if (points.size() > 2000) break;
    }
    for (uint64_t p = kPageSlots * cs; p < d.size && points.size() < 3000; p += kPageSlots * cs) {
      points.push_back(p);
    }
    return points;
  }

  std::unique_ptr<VhdxFixture> f_;
  std::vector<uint64_t> data_slots_;
};

TEST_P(VhdxViewShapeTest, DecodesAndReadsLikeTheRawView) {
  const DiskSpec& d = GetParam().disk;
  const uint32_t cs = GetParam().chunk_size;
  const VhdxView& view = *f_->vhdx;
  VhdxFile v;
  ASSERT_TRUE(testing::DecodeVhdx(f_->VhdxReader(), view.size(), &v));
  EXPECT_EQ(v.virtual_size, (d.size + 511) / 512 * 512);
  EXPECT_EQ(v.block_size, std::max<uint64_t>(kMiB, cs));
  EXPECT_EQ(view.block_size(), v.block_size);
  EXPECT_EQ(v.logical_sector_size, 512u);
  EXPECT_EQ(v.physical_sector_size, 4096u);
  // Exactly the blocks with data are present.
  std::set<uint64_t> want_blocks;
  for (uint64_t slot : data_slots_) want_blocks.insert(slot * cs / v.block_size);
  ASSERT_EQ(v.block_file_offset.size(), (v.virtual_size + v.block_size - 1) / v.block_size);
  for (uint64_t b = 0; b < v.block_file_offset.size(); ++b) {
    ASSERT_EQ(v.block_file_offset[b] != 0, want_blocks.count(b) == 1) << "block " << b;
  }
  EXPECT_EQ(v.present_blocks, want_blocks.size());

  // Guest reads through the decoded BAT match the raw view.
  const FileReader read = f_->VhdxReader();
  std::mt19937_64 rng(42);
  std::vector<uint64_t> points = GuestPoints();
  const uint64_t span = v.virtual_size + 1;
  for (int i = 0; i < 300; ++i) {
    uint64_t off = rng() % span;
    if (i % 2 == 0) off = points[rng() % points.size()] + (rng() % 64) - 32;
    if (off > v.virtual_size) off = rng() % span;
    const uint64_t len =
        1 + rng() % (i % 10 == 0 ? 3 * v.block_size : 3 * std::min(cs, 256u << 10));
    ASSERT_TRUE(testing::ReadGuest(v, read, off, len) == f_->RawPadded(off, len, v.virtual_size))
        << "guest off " << off << " len " << len;
  }
  // Whole guest when small.
  if (v.virtual_size <= 64 * kMiB) {
    ASSERT_TRUE(testing::ReadGuest(v, read, 0, v.virtual_size) ==
                f_->RawPadded(0, v.virtual_size, v.virtual_size));
  }

  // File reads across metadata, BAT pieces, payload blocks and chunks agree with a model
  // of the file made of its decoded metadata and the guest's bytes.
  const std::string head = read(0, v.data_start);
  ASSERT_EQ(head.size(), v.data_start);
  auto model = [&](uint64_t off, uint64_t len) {
    std::string out;
    const uint64_t end = std::min(view.size(), off + len);
    while (off < end) {
      if (off < v.data_start) {
        const uint64_t n = std::min(end, v.data_start) - off;
        out += head.substr(off, n);
        off += n;
        continue;
      }
      const uint64_t in_block = (off - v.data_start) % v.block_size;
      const uint64_t n = std::min(end - off, v.block_size - in_block);
      const int64_t guest_block = v.GuestBlockAt(off);
      EXPECT_GE(guest_block, 0);
      std::string part = f_->RawPadded(guest_block * v.block_size + in_block, n, v.virtual_size);
      part.resize(n, '\0');  // the block's tail past the virtual size
      out += part;
      off += n;
    }
    return out;
  };
  std::vector<uint64_t> file_points = {
      0, 64 << 10, 192 << 10, v.metadata_offset, v.bat_offset, v.data_start, view.size()};
  for (uint64_t p = v.bat_offset;
       p < v.bat_offset + v.bat.size() * 8 && p < v.bat_offset + 64 * 4096; p += 4096) {
    file_points.push_back(p);
  }
  for (uint64_t k = 0; k < v.present_blocks && k < 64; ++k) {
    const uint64_t start = v.data_start + k * v.block_size;
    for (uint64_t c = 0; c <= v.block_size; c += std::max<uint64_t>(cs, v.block_size / 8)) {
      file_points.push_back(start + c);
    }
  }
  for (int i = 0; i < 300; ++i) {
    uint64_t off = file_points[rng() % file_points.size()] + (rng() % 128) - 64;
    if (off > view.size()) off = rng() % (view.size() + 1);
    const uint64_t len = 1 + rng() % (i % 10 == 0 ? 2 * v.block_size : 64 << 10);
    const std::string got = read(off, len);
    ASSERT_TRUE(got == model(off, len)) << "file off " << off << " len " << len;
  }
}

TEST_P(VhdxViewShapeTest, SeeksAgreeWithAllocationAndContent) {
  const VhdxView& view = *f_->vhdx;
  VhdxFile v;
  ASSERT_TRUE(testing::DecodeVhdx(f_->VhdxReader(), view.size(), &v));
  // Walk the data/hole map.
  std::vector<Extent> extents;
  uint64_t pos = 0;
  uint64_t data_bytes = 0;
  while (pos < view.size()) {
    auto data = view.SeekData(pos);
    ASSERT_TRUE(data.ok());
    ASSERT_GE(*data, pos);
    if (*data > pos) extents.push_back({pos, *data - pos, false});
    if (*data >= view.size()) break;
    auto hole = view.SeekHole(*data);
    ASSERT_TRUE(hole.ok());
    ASSERT_GT(*hole, *data);
    extents.push_back({*data, *hole - *data, true});
    data_bytes += *hole - *data;
    pos = *hole;
  }
  EXPECT_EQ(data_bytes, view.allocated_bytes());
  // Holes read as zeros; the metadata's regions agree with the map; payload blocks are
  // data as a whole.
  for (const Extent& e : extents) {
    if (!e.data) {
      ASSERT_LE(e.length, 64 * kMiB);
      const std::string bytes = f_->Read(view, e.offset, e.length);
      EXPECT_TRUE(testing::vhdx_internal::AllZero(bytes)) << "hole at " << e.offset;
    }
  }
  auto extent_at = [&](uint64_t off) {
    return *std::find_if(extents.begin(), extents.end(),
                         [&](const Extent& e) { return off >= e.offset && off < e.end(); });
  };
  for (uint64_t off = 0; off < v.data_start;) {
    Region r;
    ASSERT_TRUE(view.RegionAt(off, &r).ok());
    ASSERT_LE(r.offset, off);
    ASSERT_GT(r.end(), off);
    const Extent e = extent_at(off);
    EXPECT_EQ(e.data, r.is_data()) << off;
    EXPECT_LE(r.end(), e.end()) << off;
    off = r.end();
  }
  if (v.present_blocks > 0) {
    EXPECT_EQ(*view.SeekHole(v.data_start), view.size());
  }
  EXPECT_EQ(view.allocated_bytes(),
            7 * 4096 + (v.bat.size() * 8 + 4095) / 4096 * 4096 + v.present_blocks * v.block_size);
  // Random offsets answer as the walk did.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 300; ++i) {
    const uint64_t off = rng() % (view.size() + 10);
    auto data = view.SeekData(off);
    auto hole = view.SeekHole(off);
    ASSERT_TRUE(data.ok() && hole.ok());
    if (off >= view.size()) {
      EXPECT_EQ(*data, view.size());
      EXPECT_EQ(*hole, view.size());
      continue;
    }
    const Extent e = extent_at(off);
    EXPECT_EQ(*data, e.data ? off : std::min(view.size(), e.end())) << off;
    EXPECT_EQ(*hole, e.data ? e.end() : off) << off;
  }
}

TEST_P(VhdxViewShapeTest, CostsNothingUntilReadAndLittleWhenRead) {
  IndexPageCache pages(&f_->repo->catalog(), 16 << 20);
  auto view = f_->MakeView(&pages, 42);
  ASSERT_TRUE(view->Load().ok());
  EXPECT_GT(view->size(), 0u);
  EXPECT_GT(view->allocated_bytes(), 0u);
  ASSERT_TRUE(view->SeekData(0).ok());
  ASSERT_TRUE(view->SeekHole(view->size() / 2).ok());
  EXPECT_EQ(pages.stats().misses, 0u);  // construct, Load, stat and seek: no index page
  EXPECT_EQ(pages.stats().loads, 0u);

  VhdxFile v;
  ASSERT_TRUE(testing::DecodeVhdx(f_->VhdxReader(), f_->vhdx->size(), &v));
  // One read of the BAT: the pages its 512 entries cover, at most three.
  ReadResult bat;
  const uint64_t piece = v.bat.size() > 1024 ? 1 : 0;
  ASSERT_TRUE(f_->reader->Read(*view, v.bat_offset + piece * 4096 + 100, 300, &bat).ok());
  EXPECT_LE(pages.stats().loads, 3u);
  // One read in a payload block: its page (the raw view reads the same one).
  if (v.present_blocks > 0) {
    IndexPageCache fresh(&f_->repo->catalog(), 16 << 20);
    auto view2 = f_->MakeView(&fresh, 42);
    const uint64_t k = v.present_blocks / 2;
    ReadResult block;
    ASSERT_TRUE(
        f_->reader->Read(*view2, v.data_start + k * v.block_size + 5000, 8192, &block).ok());
    EXPECT_LE(fresh.stats().loads, 2u);
    EXPECT_TRUE(block.ToString() ==
                f_->Read(*f_->vhdx, v.data_start + k * v.block_size + 5000, 8192));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, VhdxViewShapeTest, ::testing::ValuesIn(Shapes()),
                         [](const auto& info) { return info.param.label; });

ViewShape SmallShape() {
  return testing::MakeShape("small", 64 << 10, 40 * (64 << 10) + 300,
                            [](uint64_t slot) { return slot % 3 == 0; });
}

TEST(VhdxViewTest, SameIdentitySameBytesOtherIdentityOtherGuids) {
  const ViewShape shape = SmallShape();
  VhdxFixture f(shape);
  auto again = f.MakeView(f.pages.get(), 42);
  auto other = f.MakeView(f.pages.get(), 43);
  ASSERT_TRUE(again->Load().ok());
  ASSERT_TRUE(other->Load().ok());
  ASSERT_EQ(again->size(), f.vhdx->size());
  EXPECT_TRUE(f.Read(*again, 0, again->size()) == f.Read(*f.vhdx, 0, f.vhdx->size()));
  VhdxFile a, b;
  ASSERT_TRUE(testing::DecodeVhdx(f.VhdxReader(), f.vhdx->size(), &a));
  ASSERT_TRUE(testing::DecodeVhdx(
      [&](uint64_t off, uint64_t len) { return f.Read(*other, off, len); }, other->size(), &b));
  EXPECT_NE(a.disk_id, b.disk_id);
  EXPECT_NE(a.file_write_guid, b.file_write_guid);
  EXPECT_NE(a.data_write_guid, b.data_write_guid);
  EXPECT_NE(a.disk_id, a.file_write_guid);
  // Version 4, variant 10, as Data3 and Data4 hold them.
  EXPECT_EQ(static_cast<uint8_t>(a.disk_id[7]) >> 4, 4);
  EXPECT_EQ(static_cast<uint8_t>(a.disk_id[8]) >> 6, 2);
}

TEST(VhdxViewTest, ConcurrentFirstReadersLoadOnceAndSeeTheSameBytes) {
  ViewShape shape = SmallShape();
  shape.disk.size = 200 * (64 << 10) + 300;
  VhdxFixture f(shape);
  ASSERT_TRUE(f.vhdx->Load().ok());
  const std::string want = f.Read(*f.vhdx, 0, f.vhdx->size());
  std::atomic<int> loads{0};
  VhdxView view(f.raw, f.MapLoader(nullptr, &loads), 42);
  EXPECT_EQ(testing::ConcurrentReadMismatches(
                *f.reader, view, want.size(), 50, 3 << 20,
                [&](uint64_t off, uint64_t len) { return want.substr(off, len); }),
            0);
  EXPECT_EQ(loads.load(), 1);
}

// A summary that its index contradicts would place blocks at other blocks' offsets:
// every read that needs the index is Corruption instead of another block's bytes.
TEST(VhdxViewTest, IndexThatContradictsItsSummaryIsCorruption) {
  ViewShape shape = SmallShape();  // data in every third slot
  VhdxFixture f(shape);
  ASSERT_TRUE(f.status.ok());
  const store::DiskRecord& rec = f.backup.disks[0];
  store::DiskIndex holes(store::SlotCount(rec));
  store::DiskSummary lying = store::SummarizeIndex(holes, rec.chunk_size);
  lying.page_data_slots[0] = 1;  // the page holds many more
  lying.page_data_groups[0] = 1;
  auto map = std::make_shared<const DataMap>(f.pages.get(), f.backup.id, 0, rec, lying);
  VhdxView view(f.raw, [map]() -> Result<std::shared_ptr<const DataMap>> { return map; }, 7);
  ASSERT_TRUE(view.Load().ok());  // the layout itself comes from the summary alone
  const uint64_t data_start = view.size() - view.block_size();
  ReadResult r;
  EXPECT_TRUE(f.reader->Read(view, 3 << 20, 4096, &r).IsCorruption());  // the BAT
  r.Clear();
  EXPECT_TRUE(f.reader->Read(view, data_start, 4096, &r).IsCorruption());  // the payload
}

TEST(VhdxViewTest, AFailedLoadIsReportedAndRetried) {
  const ViewShape shape = SmallShape();
  VhdxFixture f(shape);
  int calls = 0;
  bool failing = true;
  VhdxView view(
      f.raw,
      [&, load = f.MapLoader()]() -> Result<std::shared_ptr<const DataMap>> {
        ++calls;
        if (failing) return Status::IOError("catalog went away");
        return load();
      },
      1);
  EXPECT_EQ(calls, 0);  // constructing does nothing
  EXPECT_EQ(view.Load().code(), StatusCode::kIOError);
  Region r;
  EXPECT_EQ(view.RegionAt(0, &r).code(), StatusCode::kIOError);
  EXPECT_EQ(view.SeekData(0).status().code(), StatusCode::kIOError);
  EXPECT_EQ(view.size(), 0u);
  EXPECT_EQ(view.allocated_bytes(), 0u);
  const int failed_calls = calls;
  EXPECT_EQ(failed_calls, 3);  // Load, RegionAt and SeekData each tried again; size() never loads
  failing = false;
  ASSERT_TRUE(view.Load().ok());
  EXPECT_EQ(view.size(), f.vhdx->size());
  EXPECT_TRUE(view.Load().ok());
  EXPECT_TRUE(view.RegionAt(0, &r).ok());
  EXPECT_EQ(calls, failed_calls + 1);  // built once, then kept
}

TEST(VhdxViewTest, SizeAboveTheFormatLimitIsUnsupportedAndTheLimitLoads) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(4 << 20));
  IndexPageCache pages(&repo->catalog(), 1 << 20);
  const uint32_t cs = 4 << 20;
  for (uint64_t size : {uint64_t{64} << 40, (uint64_t{64} << 40) + 512}) {
    store::DiskRecord rec;
    rec.virtual_size = size;
    rec.chunk_size = cs;
    store::DiskSummary summary;
    summary.slots = testing::SlotCount(size, cs);
    summary.group_slots = store::GroupSlots(cs);
    const uint64_t n_pages = (summary.slots + kPageSlots - 1) / kPageSlots;
    summary.page_data_slots.assign(n_pages, 0);
    summary.page_data_groups.assign(n_pages, 0);
    auto map = std::make_shared<const DataMap>(&pages, 1, 0, rec, summary);
    VhdxView view(
        std::make_shared<RawView>(&pages, 1, 0, rec),
        [map]() -> Result<std::shared_ptr<const DataMap>> { return map; }, 9);
    const Status s = view.Load();
    if (size == (uint64_t{64} << 40)) {
      ASSERT_TRUE(s.ok()) << s.ToString();
      // 16 Mi blocks of 4 MiB, a bitmap entry per 1024: 128 MiB + 128 KiB of BAT.
      EXPECT_EQ(view.size(), 3 * kMiB + 129 * kMiB);
      EXPECT_EQ(view.allocated_bytes(), 7 * 4096 + (16ull << 20) * 8 + (16 << 10) * 8);
    } else {
      EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.ToString();
      EXPECT_EQ(view.size(), 0u);
      EXPECT_EQ(view.allocated_bytes(), 0u);
    }
  }
  EXPECT_EQ(pages.stats().loads, 0u);
}

TEST(VhdxViewTest, DataMapOfAnotherDiskIsCorruption) {
  const ViewShape shape = SmallShape();
  VhdxFixture f(shape);
  store::DiskRecord other = f.backup.disks[0];
  other.virtual_size += 64 << 10;
  auto bigger = std::make_shared<RawView>(f.pages.get(), f.backup.id, 0, other);
  auto view = f.MakeView(f.pages.get(), 1, bigger);
  EXPECT_TRUE(view->Load().IsCorruption());
  EXPECT_EQ(view->size(), 0u);
}

}  // namespace
}  // namespace vmvault::fs
