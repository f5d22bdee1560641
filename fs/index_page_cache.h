// IndexPageCache: cached pages of disk indexes (store::Catalog::ReadIndexPage), shared
// by every raw view of the mount. A page holds kIndexPageSlots chunk ids; a page the
// catalog does not store (all holes) is cached as an empty IndexPage that costs a few
// bytes, so a sparse disk's absent pages are cheap to skip after the first look. The
// cache does not know whether an absent page should have held data: its readers ask
// the disk summary (RawView, DataMap).
//
// Each IndexPage also knows where every run of holes or data ends (RunEnd), which
// makes region lookups and SEEK_DATA/SEEK_HOLE within a page O(1), and how many data
// slots precede each slot (DataBefore), for the compacted image views (data_map.h).
//
// The catalog is not owned and must outlive the cache. IndexPage is immutable;
// IndexPageCache is thread-safe (see ShardedLruCache).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"
#include "fs/lru_cache.h"
#include "store/catalog.h"
#include "store/chunk_id.h"

namespace vmvault::fs {

inline constexpr size_t kDefaultIndexCacheBytes = 16 << 20;

class IndexPage {
 public:
  // An absent page: every slot is a hole.
  IndexPage() = default;
  // Takes the page's kIndexPageSlots slots; a page without data becomes absent.
  explicit IndexPage(std::vector<store::ChunkId> slots);

  bool absent() const { return slots_.empty(); }
  bool IsHole(uint32_t i) const { return absent() || slots_[i].is_zero(); }
  // REQUIRES: !IsHole(i).
  const store::ChunkId& slot(uint32_t i) const { return slots_[i]; }
  // The first slot after i that differs from slot i in being a hole, or
  // kIndexPageSlots.
  uint32_t RunEnd(uint32_t i) const { return absent() ? store::kIndexPageSlots : run_end_[i]; }
  uint32_t data_slots() const { return data_slots_; }
  // Data slots in [0, i). REQUIRES: i <= kIndexPageSlots.
  uint32_t DataBefore(uint32_t i) const {
    if (absent()) return 0;
    return i >= store::kIndexPageSlots ? data_slots_ : rank_[i];
  }
  // The slot that is data slot number k of this page. REQUIRES: k < data_slots().
  uint32_t NthData(uint32_t k) const;
  size_t charge() const {
    return 96 + slots_.size() * sizeof(store::ChunkId) + (run_end_.size() + rank_.size()) * 2;
  }

 private:
  std::vector<store::ChunkId> slots_;
  std::vector<uint16_t> run_end_;
  std::vector<uint16_t> rank_;  // rank_[i]: data slots before slot i
  uint32_t data_slots_ = 0;
};

struct IndexPageKey {
  uint64_t backup_id = 0;
  uint32_t disk = 0;
  uint64_t page = 0;
  bool operator==(const IndexPageKey&) const = default;
};

struct IndexPageKeyHash {
  size_t operator()(const IndexPageKey& k) const {
    uint64_t h = k.backup_id * 0x9e3779b97f4a7c15ULL;
    h ^= (uint64_t{k.disk} << 48) ^ k.page;
    return static_cast<size_t>(h * 0xc2b2ae3d27d4eb4fULL);
  }
};

class IndexPageCache {
 public:
  using Page = std::shared_ptr<const IndexPage>;

  IndexPageCache(const store::Catalog* catalog, size_t capacity_bytes);

  // `slots`: how many slots of the disk the page covers (kIndexPageSlots, less on the
  // last page); a stored page of another length is Corruption. 0: not checked.
  Result<Page> Get(const IndexPageKey& key, uint64_t slots = 0);
  CacheStats stats() const { return lru_.stats(); }
  const store::Catalog& catalog() const { return *catalog_; }

 private:
  const store::Catalog* catalog_;
  ShardedLruCache<IndexPageKey, IndexPage, IndexPageKeyHash> lru_;
};

// Corruption unless `page` (index page `key.page` of its disk, with `in_disk` of its
// slots inside the disk) holds `want` data slots, none past the disk's end: the count
// the disk summary stored at commit gives it. A page that contradicts its summary is
// damage; read as it is, it would serve zeros (or other chunks) for the disk's data.
Status CheckPageAgainstSummary(const IndexPage& page, const IndexPageKey& key, uint32_t in_disk,
                               uint64_t want);

}  // namespace vmvault::fs
