#include "fs/index_page_cache.h"

#include <fmt/format.h>

#include <algorithm>

namespace vmvault::fs {

IndexPage::IndexPage(std::vector<store::ChunkId> slots) {
  const uint32_t n = static_cast<uint32_t>(slots.size());
  for (const store::ChunkId& id : slots) data_slots_ += id.is_zero() ? 0 : 1;
  if (data_slots_ == 0 || n != store::kIndexPageSlots) {
    if (data_slots_ == 0) return;  // absent
    slots.resize(store::kIndexPageSlots);  // defensive: pad a short page with holes
  }
  slots_ = std::move(slots);
  run_end_.resize(store::kIndexPageSlots);
  uint32_t end = store::kIndexPageSlots;
  for (uint32_t i = store::kIndexPageSlots; i-- > 0;) {
    if (i + 1 < store::kIndexPageSlots && slots_[i].is_zero() != slots_[i + 1].is_zero()) {
      end = i + 1;
    }
    run_end_[i] = static_cast<uint16_t>(end);
  }
  rank_.resize(store::kIndexPageSlots);
  uint16_t rank = 0;
  for (uint32_t i = 0; i < store::kIndexPageSlots; ++i) {
    rank_[i] = rank;
    rank += slots_[i].is_zero() ? 0 : 1;
  }
}

uint32_t IndexPage::NthData(uint32_t k) const {
  // The last slot whose rank is k is the k-th data slot (rank counts the slots before).
  const auto it = std::upper_bound(rank_.begin(), rank_.end(), k);
  return static_cast<uint32_t>(it - rank_.begin()) - 1;
}

IndexPageCache::IndexPageCache(const store::Catalog* catalog, size_t capacity_bytes)
    : catalog_(catalog),
      lru_(capacity_bytes, 8, [](const IndexPage& p) { return p.charge(); }) {}

Result<IndexPageCache::Page> IndexPageCache::Get(const IndexPageKey& key, uint64_t slots) {
  return lru_.GetOrLoad(key, [this, &key, expected = slots]() -> Result<Page> {
    std::vector<store::ChunkId> slots;
    Status s = catalog_->ReadIndexPage(key.backup_id, key.disk, key.page, &slots, expected);
    if (!s.ok()) return s.WithContext("read index page");
    return Page(std::make_shared<IndexPage>(std::move(slots)));
  });
}

Status CheckPageAgainstSummary(const IndexPage& page, const IndexPageKey& key, uint32_t in_disk,
                               uint64_t want) {
  std::string what;
  if (page.data_slots() != want) {
    what = fmt::format("{} data slots, the summary says {}", page.data_slots(), want);
  } else if (page.DataBefore(in_disk) != page.data_slots()) {
    what = "data past the disk's end";
  } else {
    return Status::OK();
  }
  return Status::Corruption(
      fmt::format("index page {} of backup {} disk {} contradicts the disk summary: {}", key.page,
                  key.backup_id, key.disk, what));
}

}  // namespace vmvault::fs
