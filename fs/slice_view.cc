#include "fs/slice_view.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace vmvault::fs {

SliceView::SliceView(std::shared_ptr<const View> raw, uint64_t offset, uint64_t length,
                     MapLoader load_map)
    : raw_(std::move(raw)),
      offset_(offset),
      length_(length),
      allocated_([this, load_map = std::move(load_map)] { return CountAllocated(load_map); }) {}

Result<std::shared_ptr<const uint64_t>> SliceView::CountAllocated(
    const MapLoader& load_map) const {
  if (length_ == 0) return std::make_shared<const uint64_t>(0);
  VV_ASSIGN_OR_RETURN(std::shared_ptr<const DataMap> map, load_map());
  const uint64_t cs = map->chunk_size();
  const uint64_t end = offset_ + length_;
  const uint64_t first = offset_ / cs;
  const uint64_t last = (end - 1) / cs;  // the slot holding the window's last byte
  VV_ASSIGN_OR_RETURN(uint64_t before, map->DataSlotsBefore(first));
  VV_ASSIGN_OR_RETURN(uint64_t through, map->DataSlotsBefore(last + 1));
  if (through == before) return std::make_shared<const uint64_t>(0);
  // Whole data slots, but only the parts of the two edge slots inside the window.
  VV_ASSIGN_OR_RETURN(bool first_data, map->IsData(first));
  VV_ASSIGN_OR_RETURN(bool last_data, map->IsData(last));
  uint64_t inner = through - before;
  if (first_data) --inner;
  if (last_data && last != first) --inner;
  uint64_t bytes = inner * cs;
  if (first_data) bytes += std::min(end, first * cs + map->SlotBytes(first)) - offset_;
  if (last_data && last != first) bytes += end - last * cs;
  return std::make_shared<const uint64_t>(bytes);
}

Status SliceView::Load() const {
  // Only st_blocks needs the count; a partition whose count fails still reads.
  Status s = allocated_.Get().status();
  if (!s.ok()) spdlog::warn("partition view: cannot count its data: {}", s.ToString());
  return Status::OK();
}

uint64_t SliceView::allocated_bytes() const {
  const uint64_t* a = allocated_.Peek();
  return a != nullptr ? *a : length_;  // uncounted: as if fully allocated
}

Status SliceView::RegionAt(uint64_t offset, Region* out) const {
  if (offset >= length_) return Status::InvalidArgument("offset beyond the end of the partition");
  *out = Region();
  out->offset = offset;
  out->length = length_ - offset;
  out->type = RegionType::kView;
  out->view = raw_;
  out->source_offset = offset_ + offset;
  return Status::OK();
}

Result<uint64_t> SliceView::SeekData(uint64_t offset) const {
  if (offset >= length_) return length_;
  VV_ASSIGN_OR_RETURN(uint64_t found, raw_->SeekData(offset_ + offset));
  return std::min(found, offset_ + length_) - offset_;
}

Result<uint64_t> SliceView::SeekHole(uint64_t offset) const {
  if (offset >= length_) return length_;
  VV_ASSIGN_OR_RETURN(uint64_t found, raw_->SeekHole(offset_ + offset));
  return std::min(found, offset_ + length_) - offset_;
}

}  // namespace vmvault::fs
