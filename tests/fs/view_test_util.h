// Pieces the view tests share (raw, qcow2 and VHDX views, and the tests that hand the
// images to qemu-img): the disk shapes each suite is instantiated over, one committed
// disk with the caches, reader and raw view the image-format views sit on, and the
// check that many threads reading one view at once all see the right bytes.
//
// Test-only. A CommittedDisk is set up and torn down on one thread; its reader and the
// views over it are as thread-safe as the fs classes they are.
#pragma once

#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "fs/chunk_cache.h"
#include "fs/data_map.h"
#include "fs/index_page_cache.h"
#include "fs/raw_view.h"
#include "fs/view.h"
#include "fs/view_reader.h"
#include "tests/fs/fs_test_util.h"

namespace vmvault::fs::testing {

// A disk in slots of `chunk_size`, named `label` in the test listing.
struct ViewShape {
  std::string label;
  uint32_t chunk_size = 64 << 10;
  DiskSpec disk;
};

// Names the shape in test listings instead of dumping its bytes.
inline void PrintTo(const ViewShape& shape, std::ostream* os) { *os << shape.label; }

// A shape of `size` bytes whose data slots are those `has_data` holds for. Its seed is
// 1 until NumberSeeds.
inline ViewShape MakeShape(std::string label, uint32_t chunk_size, uint64_t size,
                           std::function<bool(uint64_t slot)> has_data, uint64_t dedup_period = 0) {
  ViewShape s;
  s.label = std::move(label);
  s.chunk_size = chunk_size;
  s.disk.size = size;
  s.disk.has_data = std::move(has_data);
  s.disk.dedup_period = dedup_period;
  return s;
}

// Gives the shapes the seeds first_seed, first_seed + 1, ... in order, so that each
// disk's bytes depend only on its place in the suite's list.
inline void NumberSeeds(std::vector<ViewShape>* shapes, uint64_t first_seed) {
  for (size_t i = 0; i < shapes->size(); ++i) (*shapes)[i].disk.seed = first_seed + i;
}

// The shape labelled `label`; aborts when there is none (the lists are built before
// any test runs).
inline std::vector<ViewShape>::iterator FindShape(std::vector<ViewShape>& shapes,
                                                  std::string_view label) {
  auto it = std::find_if(shapes.begin(), shapes.end(),
                         [&](const ViewShape& s) { return s.label == label; });
  if (it == shapes.end()) {
    fprintf(stderr, "no shape labelled %.*s\n", static_cast<int>(label.size()), label.data());
    abort();
  }
  return it;
}

// What a suite varies in the common shapes; the defaults are the raw view's.
struct CommonShapeOptions {
  std::string label_suffix;  // appended to every label, e.g. "_64k"
  uint64_t all_holes_size = 10 << 20;
  // sparse: data where slot % sparse_period == 3, in the last slot, and in the
  // sparse_run slots from slot 40.
  uint64_t sparse_period = 97;
  uint64_t sparse_run = 0;
  // multi_page: data every multi_page_period slots besides the runs.
  uint64_t multi_page_period = 501;
};

// The shapes every view suite reads, in slots of `cs`, in this order:
//   full          3.5 chunks and 123 bytes, all data
//   single_chunk  one whole chunk
//   tiny_partial  1000 bytes: part of one chunk, not whole sectors
//   all_holes     no data at all
//   sparse        4800 slots, little data (see CommonShapeOptions)
//   multi_page    three index pages and 777 bytes: runs of data across the page
//                 boundaries, page 1 nearly empty, a partial last chunk, shared chunks
//   not_multiple  5 chunks and a byte, slot 2 a hole
//   empty         0 bytes
// Suites change or add shapes (FindShape), then NumberSeeds the whole list.
inline std::vector<ViewShape> CommonShapes(uint32_t cs, const CommonShapeOptions& o = {}) {
  const uint64_t c = cs;
  const uint64_t page_bytes = uint64_t{store::kIndexPageSlots} * cs;
  const std::string& suffix = o.label_suffix;
  const auto all = [](uint64_t) { return true; };
  std::vector<ViewShape> s;
  s.push_back(MakeShape("full" + suffix, cs, 3 * c + c / 2 + 123, all));
  s.push_back(MakeShape("single_chunk" + suffix, cs, c, all));
  s.push_back(MakeShape("tiny_partial" + suffix, cs, 1000, all));
  s.push_back(
      MakeShape("all_holes" + suffix, cs, o.all_holes_size, [](uint64_t) { return false; }));
  s.push_back(MakeShape("sparse" + suffix, cs, 4800 * c,
                        [period = o.sparse_period, run = o.sparse_run](uint64_t slot) {
                          return slot % period == 3 || slot == 4799 ||
                                 (slot >= 40 && slot < 40 + run);
                        }));
  s.push_back(MakeShape(
      "multi_page" + suffix, cs, 3 * page_bytes + 777,
      [period = o.multi_page_period](uint64_t slot) {
        if (slot >= 4096 && slot < 8190) return false;  // page 1 nearly empty
        return slot % period == 0 || (slot >= 4090 && slot <= 4097) ||
               (slot >= 8190 && slot <= 8193) || slot == 3 * 4096 || slot >= 12286;
      },
      7));
  s.push_back(
      MakeShape("not_multiple" + suffix, cs, 5 * c + 1, [](uint64_t slot) { return slot != 2; }));
  s.push_back(MakeShape("empty" + suffix, cs, 0, all));
  return s;
}

// Loads a disk's DataMap (VhdxView::MapLoader and Qcow2View::MapLoader are this).
using DataMapLoader = std::function<Result<std::shared_ptr<const DataMap>>()>;

// What a CommittedDisk sizes.
struct CommittedDiskOptions {
  size_t page_cache_bytes = 16 << 20;
  size_t chunk_cache_bytes = 64 << 20;
  size_t reader_threads = 0;  // 0: the reader reads on the calling thread
};

// `spec` committed as the one disk of a backup of "vm1" in an in-memory repository in
// chunks of `cs`, with an index page cache, a chunk cache, a reader and the raw view
// over it. Check `status` first: when the commit failed, only `repo` is set.
struct CommittedDisk {
  CommittedDisk(uint32_t cs, DiskSpec spec, const CommittedDiskOptions& options = {})
      : chunk_size(cs),
        disk(std::move(spec)),
        repo(store::Repository::OpenInMemory(TestConfig(cs))) {
    auto b = CommitDisks(repo.get(), MakeVm("vm1"), TestTime(), {disk});
    if (!b.ok()) {
      status = b.status();
      return;
    }
    backup = *b;
    pages = std::make_unique<IndexPageCache>(&repo->catalog(), options.page_cache_bytes);
    cache = std::make_unique<ChunkCache>(&repo->chunks(), options.chunk_cache_bytes, cs);
    if (options.reader_threads > 0) pool = std::make_unique<ThreadPool>(options.reader_threads);
    reader = std::make_unique<ViewReader>(cache.get(), pool.get());
    raw = NewRawView(pages.get());
  }

  // Another raw view of the disk, whose index pages come from `page_cache`.
  std::shared_ptr<RawView> NewRawView(IndexPageCache* page_cache) const {
    return std::make_shared<RawView>(page_cache, backup.id, 0, backup.disks[0]);
  }

  // Loads the disk's map through `page_cache` (this disk's when null), adding 1 to
  // *loads (when given) on every call. Holds no pointer to this object: the repository
  // and the page cache must outlive it.
  DataMapLoader MapLoader(IndexPageCache* page_cache = nullptr,
                          std::atomic<int>* loads = nullptr) const {
    const store::Catalog* catalog = &repo->catalog();
    if (page_cache == nullptr) page_cache = pages.get();
    return [catalog, page_cache, loads, id = backup.id, rec = backup.disks[0]] {
      if (loads != nullptr) loads->fetch_add(1);
      return DataMap::Load(*catalog, page_cache, id, 0, rec);
    };
  }

  const uint32_t chunk_size;
  const DiskSpec disk;
  std::unique_ptr<store::Repository> repo;
  Status status;  // of the commit
  store::BackupRecord backup;
  std::unique_ptr<IndexPageCache> pages;
  std::unique_ptr<ChunkCache> cache;
  std::unique_ptr<ThreadPool> pool;  // set when reader_threads > 0
  std::unique_ptr<ViewReader> reader;
  std::shared_ptr<RawView> raw;
};

// Six threads read `view` through `reader` at once, each `reads` random ranges of 1 to
// `max_len` bytes starting in [0, size) (thread t draws from mt19937_64(100 + t)).
// Returns how many reads failed or returned other bytes than want(offset, length).
// For a view fresh from MapLoader(nullptr, &loads), the test then expects one load.
inline int ConcurrentReadMismatches(
    const ViewReader& reader, const View& view, uint64_t size, int reads, uint64_t max_len,
    const std::function<std::string(uint64_t offset, uint64_t length)>& want) {
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      for (int i = 0; i < reads; ++i) {
        const uint64_t off = rng() % size;
        const uint64_t len = 1 + rng() % max_len;
        ReadResult r;
        if (!reader.Read(view, off, len, &r).ok() || r.ToString() != want(off, len)) {
          mismatches.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return mismatches.load();
}

}  // namespace vmvault::fs::testing
