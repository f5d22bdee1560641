#include "fs/raw_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

namespace vmvault::fs {
namespace {

constexpr uint64_t kPageSlots = store::kIndexPageSlots;

uint64_t AllocatedBytes(const store::DiskRecord& r) {
  if (r.chunk_size == 0) return 0;
  return std::min<uint64_t>(r.data_chunks * uint64_t{r.chunk_size}, r.virtual_size);
}

// What the summary is checked against: not the record's partitions or paths.
store::DiskRecord Shape(const store::DiskRecord& r) {
  store::DiskRecord shape;
  shape.virtual_size = r.virtual_size;
  shape.chunk_size = r.chunk_size;
  return shape;
}

}  // namespace

RawView::RawView(IndexPageCache* pages, uint64_t backup_id, uint32_t disk,
                 const store::DiskRecord& record)
    : pages_(pages),
      backup_id_(backup_id),
      disk_(disk),
      size_(record.virtual_size),
      chunk_size_(record.chunk_size),
      allocated_(AllocatedBytes(record)),
      data_chunks_(record.data_chunks),
      summary_([pages, backup_id, disk, shape = Shape(record)]()
                   -> Result<std::shared_ptr<const std::optional<store::DiskSummary>>> {
        VV_ASSIGN_OR_RETURN(std::optional<store::DiskSummary> s,
                            pages->catalog().ReadStoredDiskSummary(backup_id, disk, shape));
        return std::make_shared<const std::optional<store::DiskSummary>>(std::move(s));
      }),
      stored_data_chunks_([pages, backup_id, disk,
                           shape = Shape(record)]() -> Result<std::shared_ptr<const uint64_t>> {
        // Computed from the stored pages, since there is no stored summary.
        VV_ASSIGN_OR_RETURN(const store::DiskSummary s,
                            pages->catalog().ReadDiskSummary(backup_id, disk, shape));
        uint64_t n = 0;
        for (const uint16_t held : s.page_data_slots) n += held;
        return std::make_shared<const uint64_t>(n);
      }) {}

Status RawView::CheckValid() const {
  if (chunk_size_ == 0 || !std::has_single_bit(chunk_size_)) {
    return Status::Corruption(
        fmt::format("backup {} disk {} has invalid chunk size {}", backup_id_, disk_, chunk_size_));
  }
  return Status::OK();
}

Result<IndexPageCache::Page> RawView::PageAt(uint64_t page) const {
  const uint64_t slots = (size_ + chunk_size_ - 1) / chunk_size_;
  const IndexPageKey key{backup_id_, disk_, page};
  const auto in_disk = static_cast<uint32_t>(
      std::min<uint64_t>(kPageSlots, slots - std::min(slots, page * kPageSlots)));
  VV_ASSIGN_OR_RETURN(IndexPageCache::Page p, pages_->Get(key, in_disk));
  Result<const std::optional<store::DiskSummary>*> summary = summary_.Get();
  if (!summary.ok()) {
    // The backup was removed since the page was read: the page is still its own.
    if (!p->absent() && summary.status().IsNotFound()) return p;
    return summary.status();
  }
  if (!summary.value()->has_value()) {
    if (!p->absent()) return p;
    // Format 1: an absent page is holes only if the stored pages hold every data chunk
    // the record counts (the backup exists, or the page read would have been NotFound).
    VV_ASSIGN_OR_RETURN(const uint64_t* stored, stored_data_chunks_.Get());
    if (*stored == data_chunks_) return p;
    return Status::Corruption(fmt::format(
        "disk {} of backup {} has no summary and its index pages hold {} data chunks, not the "
        "{} of its record: a page is missing or damaged, so absent page {} may have held data",
        disk_, backup_id_, *stored, data_chunks_, page));
  }
  const store::DiskSummary& sum = **summary.value();
  const uint64_t held = page < sum.pages() ? sum.page_data_slots[page] : 0;
  if (p->absent() && held != 0) {
    return Status::Corruption(fmt::format(
        "index page {} of disk {} of backup {} is missing; its summary says it held {} data "
        "chunks",
        page, disk_, backup_id_, held));
  }
  VV_RETURN_IF_ERROR(CheckPageAgainstSummary(*p, key, in_disk, held));
  return p;
}

Status RawView::RegionAt(uint64_t offset, Region* out) const {
  VV_RETURN_IF_ERROR(CheckValid());
  if (offset >= size_) return Status::InvalidArgument("offset beyond the end of the disk");
  const uint64_t slot = offset / chunk_size_;
  const uint64_t page_no = slot / kPageSlots;
  const uint32_t i = static_cast<uint32_t>(slot % kPageSlots);
  VV_ASSIGN_OR_RETURN(IndexPageCache::Page page, PageAt(page_no));
  const uint64_t start = slot * chunk_size_;
  *out = Region();
  out->offset = start;
  if (page->IsHole(i)) {
    const uint64_t run_end_slot = page_no * kPageSlots + page->RunEnd(i);
    out->type = RegionType::kZero;
    out->length = std::min(size_, run_end_slot * chunk_size_) - start;
  } else {
    out->type = RegionType::kChunk;
    out->chunk = page->slot(i);
    out->source_offset = 0;
    out->length = std::min<uint64_t>(size_ - start, chunk_size_);
  }
  return Status::OK();
}

Result<uint64_t> RawView::SeekData(uint64_t offset) const { return Seek(offset, true); }
Result<uint64_t> RawView::SeekHole(uint64_t offset) const { return Seek(offset, false); }

Result<uint64_t> RawView::Seek(uint64_t offset, bool want_data) const {
  if (offset >= size_) return size_;
  VV_RETURN_IF_ERROR(CheckValid());
  const uint64_t slots = (size_ + chunk_size_ - 1) / chunk_size_;
  uint64_t slot = offset / chunk_size_;
  while (slot < slots) {
    const uint64_t page_no = slot / kPageSlots;
    uint32_t i = static_cast<uint32_t>(slot % kPageSlots);
    VV_ASSIGN_OR_RETURN(IndexPageCache::Page page, PageAt(page_no));
    // Skip to the first slot of the wanted kind on this page, if any.
    if (page->IsHole(i) == want_data) i = page->RunEnd(i);
    if (i < kPageSlots) {
      const uint64_t found = (page_no * kPageSlots + i) * chunk_size_;
      return std::min(size_, std::max(found, offset));
    }
    slot = (page_no + 1) * kPageSlots;
  }
  return size_;
}

}  // namespace vmvault::fs
