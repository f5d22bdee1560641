#include "fs/vhdx_view.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <thread>

#include "base/image.h"
#include "fs/chunk_cache.h"
#include "fs/data_map.h"
#include "fs/index_page_cache.h"
#include "fs/raw_view.h"
#include "fs/view_reader.h"
#include "tests/fs/fs_test_util.h"
#include "tests/fs/vhdx_decoder.h"

namespace vmvault::fs {
namespace {

using testing::CommitDisks;
using testing::DiskSpec;
using testing::FileReader;
using testing::VhdxFile;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kPageSlots = store::kIndexPageSlots;

struct Shape {
  std::string label;
  uint32_t chunk_size = 0;
  DiskSpec disk;
};

// Names the shape in test listings instead of dumping its bytes.
void PrintTo(const Shape& shape, std::ostream* os) { *os << shape.label; }

std::string SizeLabel(uint32_t cs) {
  return cs >= kMiB ? std::to_string(cs / kMiB) + "m" : std::to_string(cs >> 10) + "k";
}

// The shapes of raw_view_test, in slots of each chunk size, plus a 1 TiB sparse disk.
std::vector<Shape> Shapes() {
  std::vector<Shape> s;
  for (uint32_t cs : {64u << 10, 256u << 10, 1u << 20, 4u << 20}) {
    const uint64_t page_bytes = kPageSlots * cs;
    auto add = [&](std::string label, uint64_t size, std::function<bool(uint64_t)> data,
                   uint64_t dedup = 0) {
      DiskSpec d;
      d.size = size;
      d.seed = s.size() + 11;
      d.has_data = std::move(data);
      d.dedup_period = dedup;
      s.push_back({label + "_" + SizeLabel(cs), cs, d});
    };
    add("full", 3 * cs + cs / 2 + 123, [](uint64_t) { return true; });
    add("single_chunk", cs, [](uint64_t) { return true; });
    add("tiny_partial", 1000, [](uint64_t) { return true; });
    add("all_holes", 10 << 20, [](uint64_t) { return false; });
    // Groups with one data slot of many, and runs of data across group boundaries.
    const uint64_t run = 2 * kMiB / cs + 3;  // a run of data over two group boundaries
    add("sparse", 4800ull * cs, [run](uint64_t slot) {
      return slot % 397 == 3 || slot == 4799 || (slot >= 40 && slot < 40 + run);
    });
    // Several index pages; runs of data across page boundaries; an absent middle page;
    // a partial last chunk; shared chunks.
    add(
        "multi_page", 3 * page_bytes + 777,
        [](uint64_t slot) {
          if (slot >= 4096 && slot < 8190) return false;  // page 1 nearly empty
          return slot % 1501 == 0 || (slot >= 4090 && slot <= 4097) ||
                 (slot >= 8190 && slot <= 8193) || slot == 3 * 4096 || slot >= 12286;
        },
        7);
    add("not_multiple", 5 * cs + 1, [](uint64_t slot) { return slot != 2; });
    add("empty", 0, [](uint64_t) { return true; });
    const uint64_t tb_slots = (1ull << 40) / cs;
    add("terabyte_sparse", 1ull << 40, [tb_slots](uint64_t slot) {
      return slot == 0 || slot == tb_slots / 3 + 5 ||
             (slot >= 2 * kPageSlots - 1 && slot <= 2 * kPageSlots + 1) || slot == tb_slots - 1;
    });
  }
  return s;
}

// One committed disk and its raw view, with a VhdxView over it.
class VhdxFixture {
 public:
  explicit VhdxFixture(const Shape& shape) : shape_(shape) {
    repo_ = store::Repository::OpenInMemory(testing::TestConfig(shape.chunk_size));
    auto b = CommitDisks(repo_.get(), testing::MakeVm("vm1"), testing::TestTime(), {shape.disk});
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    backup_ = *b;
    pages_ = std::make_unique<IndexPageCache>(&repo_->catalog(), 16 << 20);
    cache_ = std::make_unique<ChunkCache>(&repo_->chunks(), 64 << 20, shape.chunk_size);
    reader_ = std::make_unique<ViewReader>(cache_.get(), nullptr);
    raw_ = std::make_shared<RawView>(pages_.get(), backup_.id, 0, backup_.disks[0]);
    vhdx_ = MakeView(pages_.get(), 42);
  }

  std::shared_ptr<VhdxView> MakeView(IndexPageCache* pages, uint64_t identity,
                                     std::shared_ptr<const View> raw = nullptr) {
    if (!raw) raw = std::make_shared<RawView>(pages, backup_.id, 0, backup_.disks[0]);
    store::Catalog* catalog = &repo_->catalog();
    const store::BackupRecord b = backup_;
    return std::make_shared<VhdxView>(
        raw, [catalog, pages, b] { return DataMap::Load(*catalog, pages, b.id, 0, b.disks[0]); },
        identity);
  }

  std::string Read(const View& view, uint64_t off, uint64_t len) const {
    ReadResult r;
    const Status s = reader_->Read(view, off, len, &r);
    EXPECT_TRUE(s.ok()) << s.ToString() << " at " << off << " + " << len;
    return r.ToString();
  }
  FileReader VhdxReader() const {
    return [this](uint64_t off, uint64_t len) { return Read(*vhdx_, off, len); };
  }
  // The raw view's bytes, then zeros up to `len` (the VHDX rounds the size up).
  std::string RawPadded(uint64_t off, uint64_t len, uint64_t virtual_size) const {
    std::string s = off < raw_->size() ? Read(*raw_, off, len) : std::string();
    const uint64_t want = off >= virtual_size ? 0 : std::min(len, virtual_size - off);
    s.resize(want, '\0');
    return s;
  }

  const Shape& shape_;
  std::unique_ptr<store::Repository> repo_;
  store::BackupRecord backup_;
  std::unique_ptr<IndexPageCache> pages_;
  std::unique_ptr<ChunkCache> cache_;
  std::unique_ptr<ViewReader> reader_;
  std::shared_ptr<RawView> raw_;
  std::shared_ptr<VhdxView> vhdx_;
};

class VhdxViewShapeTest : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    f_ = std::make_unique<VhdxFixture>(GetParam());
    ASSERT_TRUE(f_->vhdx_->Load().ok()) << f_->vhdx_->Load().ToString();
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
  const VhdxView& view = *f_->vhdx_;
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
  const VhdxView& view = *f_->vhdx_;
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
  IndexPageCache pages(&f_->repo_->catalog(), 16 << 20);
  auto view = f_->MakeView(&pages, 42);
  ASSERT_TRUE(view->Load().ok());
  EXPECT_GT(view->size(), 0u);
  EXPECT_GT(view->allocated_bytes(), 0u);
  ASSERT_TRUE(view->SeekData(0).ok());
  ASSERT_TRUE(view->SeekHole(view->size() / 2).ok());
  EXPECT_EQ(pages.stats().misses, 0u);  // construct, Load, stat and seek: no index page
  EXPECT_EQ(pages.stats().loads, 0u);

  VhdxFile v;
  ASSERT_TRUE(testing::DecodeVhdx(f_->VhdxReader(), f_->vhdx_->size(), &v));
  // One read of the BAT: the pages its 512 entries cover, at most three.
  ReadResult bat;
  const uint64_t piece = v.bat.size() > 1024 ? 1 : 0;
  ASSERT_TRUE(f_->reader_->Read(*view, v.bat_offset + piece * 4096 + 100, 300, &bat).ok());
  EXPECT_LE(pages.stats().loads, 3u);
  // One read in a payload block: its page (the raw view reads the same one).
  if (v.present_blocks > 0) {
    IndexPageCache fresh(&f_->repo_->catalog(), 16 << 20);
    auto view2 = f_->MakeView(&fresh, 42);
    const uint64_t k = v.present_blocks / 2;
    ReadResult block;
    ASSERT_TRUE(
        f_->reader_->Read(*view2, v.data_start + k * v.block_size + 5000, 8192, &block).ok());
    EXPECT_LE(fresh.stats().loads, 2u);
    EXPECT_TRUE(block.ToString() ==
                f_->Read(*f_->vhdx_, v.data_start + k * v.block_size + 5000, 8192));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, VhdxViewShapeTest, ::testing::ValuesIn(Shapes()),
                         [](const auto& info) { return info.param.label; });

Shape SmallShape() {
  Shape s;
  s.label = "small";
  s.chunk_size = 64 << 10;
  s.disk.size = 40 * (64 << 10) + 300;
  s.disk.has_data = [](uint64_t slot) { return slot % 3 == 0; };
  return s;
}

TEST(VhdxViewTest, SameIdentitySameBytesOtherIdentityOtherGuids) {
  const Shape shape = SmallShape();
  VhdxFixture f(shape);
  auto again = f.MakeView(f.pages_.get(), 42);
  auto other = f.MakeView(f.pages_.get(), 43);
  ASSERT_TRUE(again->Load().ok());
  ASSERT_TRUE(other->Load().ok());
  ASSERT_EQ(again->size(), f.vhdx_->size());
  EXPECT_TRUE(f.Read(*again, 0, again->size()) == f.Read(*f.vhdx_, 0, f.vhdx_->size()));
  VhdxFile a, b;
  ASSERT_TRUE(testing::DecodeVhdx(f.VhdxReader(), f.vhdx_->size(), &a));
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
  Shape shape = SmallShape();
  shape.disk.size = 200 * (64 << 10) + 300;
  VhdxFixture f(shape);
  ASSERT_TRUE(f.vhdx_->Load().ok());
  const std::string want = f.Read(*f.vhdx_, 0, f.vhdx_->size());
  std::atomic<int> loads{0};
  store::Catalog* catalog = &f.repo_->catalog();
  IndexPageCache* pages = f.pages_.get();
  const store::BackupRecord b = f.backup_;
  VhdxView view(
      f.raw_,
      [&]() -> Result<std::shared_ptr<const DataMap>> {
        loads.fetch_add(1);
        return DataMap::Load(*catalog, pages, b.id, 0, b.disks[0]);
      },
      42);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      for (int i = 0; i < 50; ++i) {
        const uint64_t off = rng() % want.size();
        const uint64_t len = 1 + rng() % (3 << 20);
        ReadResult r;
        if (!f.reader_->Read(view, off, len, &r).ok() || r.ToString() != want.substr(off, len)) {
          mismatches.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(loads.load(), 1);
}

TEST(VhdxViewTest, AFailedLoadIsReportedAndRetried) {
  const Shape shape = SmallShape();
  VhdxFixture f(shape);
  int calls = 0;
  bool failing = true;
  store::Catalog* catalog = &f.repo_->catalog();
  IndexPageCache* pages = f.pages_.get();
  const store::BackupRecord b = f.backup_;
  VhdxView view(
      f.raw_,
      [&]() -> Result<std::shared_ptr<const DataMap>> {
        ++calls;
        if (failing) return Status::IOError("catalog went away");
        return DataMap::Load(*catalog, pages, b.id, 0, b.disks[0]);
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
  EXPECT_GE(failed_calls, 5);  // every use tried again
  failing = false;
  ASSERT_TRUE(view.Load().ok());
  EXPECT_EQ(view.size(), f.vhdx_->size());
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
  const Shape shape = SmallShape();
  VhdxFixture f(shape);
  store::DiskRecord other = f.backup_.disks[0];
  other.virtual_size += 64 << 10;
  auto bigger = std::make_shared<RawView>(f.pages_.get(), f.backup_.id, 0, other);
  auto view = f.MakeView(f.pages_.get(), 1, bigger);
  EXPECT_TRUE(view->Load().IsCorruption());
  EXPECT_EQ(view->size(), 0u);
}

}  // namespace
}  // namespace vmvault::fs
