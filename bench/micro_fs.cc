// Micro-benchmarks of the mount's read path on an in-memory repository: index pages
// (store::Catalog::ReadIndexPage, fs::IndexPageCache), region lookups (fs::RawView,
// fs::RegionMap) and reads through fs::ViewReader with a warm fs::ChunkCache.
//
// The repository (built once, lazily): chunk size 256 KiB, one disk of 16 index pages
// (65536 slots, 16 GiB virtual); every eighth slot is a hole and page 5 is all holes
// (absent); data slots reuse 64 distinct chunks of seeded random bytes (slot % 64), so
// the whole working set fits the default 64 MiB chunk cache.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "fs/chunk_cache.h"
#include "fs/index_page_cache.h"
#include "fs/raw_view.h"
#include "fs/region_map.h"
#include "fs/view_reader.h"
#include "store/catalog.h"
#include "store/chunk_codec.h"
#include "store/repository.h"

namespace vmvault::fs {
namespace {

constexpr uint32_t kCs = 256 << 10;
constexpr uint64_t kPages = 16;
constexpr uint64_t kSlots = kPages * store::kIndexPageSlots;
constexpr uint64_t kDistinct = 64;
constexpr uint64_t kAbsentPage = 5;

uint64_t Next(uint64_t& state) {
  uint64_t x = (state += 0x9e3779b97f4a7c15ULL);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "vmvault_micro: %s: %s\n", what, s.ToString().c_str());
    std::abort();
  }
}

bool SlotHasData(uint64_t slot) {
  return slot % 8 != 7 && slot / store::kIndexPageSlots != kAbsentPage;
}

struct Fixture {
  std::unique_ptr<store::Repository> repo;
  store::BackupRecord backup;
  std::unique_ptr<IndexPageCache> pages;
  std::unique_ptr<ChunkCache> chunks;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<ViewReader> reader;
  std::unique_ptr<RawView> view;

  Fixture() {
    store::RepoConfig config;
    config.chunk_size = kCs;
    config.zstd_level = 1;
    config.id = "bench";
    repo = store::Repository::OpenInMemory(config);

    std::vector<store::ChunkId> ids(kDistinct);
    store::ChunkEncoder encoder(1);
    std::string value;
    uint64_t state = 7;
    for (uint64_t k = 0; k < kDistinct; ++k) {
      std::vector<uint8_t> bytes(kCs);
      for (size_t i = 0; i < kCs; i += 8) {
        const uint64_t v = Next(state);
        std::memcpy(bytes.data() + i, &v, 8);
      }
      ids[k] = repo->hasher().Hash(bytes);
      encoder.Encode(bytes, &value);
      Check(repo->chunks().Put(ids[k], value), "put chunk");
    }
    store::DiskRecord rec;
    rec.name = "vda";
    rec.virtual_size = kSlots * kCs;
    rec.chunk_size = kCs;
    rec.source_format = "raw";
    rec.source_path = "/images/vda.img";
    store::DiskIndex index(kSlots);
    for (uint64_t slot = 0; slot < kSlots; ++slot) {
      if (!SlotHasData(slot)) continue;
      index[slot] = ids[slot % kDistinct];
      ++rec.data_chunks;
    }
    rec.allocated_bytes = rec.bytes_read = rec.data_chunks * kCs;
    store::VmRecord vm;
    vm.name = "bench";
    backup.vm = vm.name;
    backup.time_us = int64_t{1795231800} * 1'000'000;
    backup.disks.push_back(rec);
    Check(repo->catalog().CommitBackup(vm, &backup, {index}), "commit backup");

    pages = std::make_unique<IndexPageCache>(&repo->catalog(), kDefaultIndexCacheBytes);
    chunks = std::make_unique<ChunkCache>(&repo->chunks(), kDefaultChunkCacheBytes, kCs);
    pool = std::make_unique<ThreadPool>(1);  // as the mount: a pool, nothing to prefetch
    reader = std::make_unique<ViewReader>(chunks.get(), pool.get());
    view = std::make_unique<RawView>(pages.get(), backup.id, 0, backup.disks[0]);

    // Warm both caches: every index page, every distinct chunk (all are on page 0).
    for (uint64_t p = 0; p < kPages; ++p) Check(pages->Get({backup.id, 0, p}).status(), "warm page");
    ReadResult r;
    Check(reader->Read(*view, 0, uint64_t{kDistinct} * kCs, &r), "warm chunks");
  }
};

Fixture& Fix() {
  static Fixture f;
  return f;
}

// 4096 offsets in [0, limit), aligned to `align`.
std::vector<uint64_t> RandomOffsets(uint64_t limit, uint64_t align, uint64_t seed) {
  std::vector<uint64_t> out(4096);
  uint64_t state = seed;
  for (uint64_t& o : out) o = (Next(state) % (limit / align)) * align;
  return out;
}

// --- index lookup ----------------------------------------------------------------

void BM_CatalogReadIndexPage(benchmark::State& state) {
  Fixture& f = Fix();
  std::vector<store::ChunkId> slots;
  uint64_t page = 0;
  for (auto _ : state) {
    Check(f.repo->catalog().ReadIndexPage(f.backup.id, 0, page, &slots), "read index page");
    benchmark::DoNotOptimize(slots.data());
    page = (page + 1) % kPages;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));  // pages
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * store::kIndexPageSlots * 16);
}
BENCHMARK(BM_CatalogReadIndexPage);

void BM_IndexPageCacheGetWarm(benchmark::State& state) {
  Fixture& f = Fix();
  uint64_t page = 0;
  for (auto _ : state) {
    auto p = f.pages->Get({f.backup.id, 0, page});
    benchmark::DoNotOptimize(p);
    page = (page + 1) % kPages;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_IndexPageCacheGetWarm);

void BM_RawViewRegionAt(benchmark::State& state) {
  Fixture& f = Fix();
  const std::vector<uint64_t> offsets = RandomOffsets(f.view->size(), 4096, 11);
  size_t i = 0;
  Region r;
  for (auto _ : state) {
    Check(f.view->RegionAt(offsets[i], &r), "region at");
    benchmark::DoNotOptimize(r.length);
    i = (i + 1) % offsets.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_RawViewRegionAt);

// --- reads through the chunk cache -----------------------------------------------

// Sequential reads of range(0) bytes; zero-copy (pieces into cached chunks), as FUSE
// gets them. A hole every eighth chunk.
void BM_ViewReaderSequential(benchmark::State& state) {
  Fixture& f = Fix();
  const uint64_t len = static_cast<uint64_t>(state.range(0));
  uint64_t off = 0;
  ReadResult r;
  for (auto _ : state) {
    r.Clear();
    Check(f.reader->Read(*f.view, off, len, &r), "read");
    benchmark::DoNotOptimize(r.pieces().data());
    off += len;
    if (off + len > f.view->size()) off = 0;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(len));
}
BENCHMARK(BM_ViewReaderSequential)->Arg(128 << 10)->ArgName("bytes");

// The same, copied out (ReadAt), as a caller that needs the bytes in its buffer.
void BM_ViewReaderSequentialCopy(benchmark::State& state) {
  Fixture& f = Fix();
  const uint64_t len = static_cast<uint64_t>(state.range(0));
  std::vector<uint8_t> buf(len);
  uint64_t off = 0;
  for (auto _ : state) {
    Check(f.reader->ReadAt(*f.view, off, buf), "read at");
    benchmark::DoNotOptimize(buf.data());
    off += len;
    if (off + len > f.view->size()) off = 0;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(len));
}
BENCHMARK(BM_ViewReaderSequentialCopy)->Arg(128 << 10)->ArgName("bytes");

// Random 4 KiB reads, 4 KiB aligned, over the whole disk (1 in 8 in a hole, page 5
// all holes), zero-copy.
void BM_ViewReaderRandom4K(benchmark::State& state) {
  Fixture& f = Fix();
  const std::vector<uint64_t> offsets = RandomOffsets(f.view->size(), 4096, 13);
  size_t i = 0;
  ReadResult r;
  for (auto _ : state) {
    r.Clear();
    Check(f.reader->Read(*f.view, offsets[i], 4096, &r), "read");
    benchmark::DoNotOptimize(r.pieces().data());
    i = (i + 1) % offsets.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 4096);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ViewReaderRandom4K);

// --- region map ------------------------------------------------------------------

void BM_RegionMapRegionAt(benchmark::State& state) {
  const int64_t n = state.range(0);
  RegionMap map;
  uint64_t seed = 17;
  for (int64_t k = 0; k < n; ++k) {
    const uint64_t len = (1 + Next(seed) % 64) * 4096;  // 4 KiB .. 256 KiB
    if (k % 2 == 0) {
      store::ChunkId id;
      const uint64_t a = Next(seed), b = Next(seed) | 1;
      std::memcpy(id.bytes.data(), &a, 8);
      std::memcpy(id.bytes.data() + 8, &b, 8);
      map.AppendChunk(id, 0, len);
    } else {
      map.AppendZero(len);
    }
  }
  const std::vector<uint64_t> offsets = RandomOffsets(map.size(), 1, 19);
  size_t i = 0;
  Region r;
  for (auto _ : state) {
    Check(map.RegionAt(offsets[i], &r), "region at");
    benchmark::DoNotOptimize(r.length);
    i = (i + 1) % offsets.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["regions"] = static_cast<double>(map.regions().size());
}
BENCHMARK(BM_RegionMapRegionAt)->Arg(10000)->ArgName("regions");

}  // namespace
}  // namespace vmvault::fs
