#include "fs/region_map.h"

#include <algorithm>

namespace vmvault::fs {

void RegionMap::Append(Region r) {
  if (r.length == 0) return;
  r.offset = size_;
  size_ += r.length;
  if (r.is_data()) allocated_ += r.length;
  // Merge adjacent zero regions so SEEK_HOLE/SEEK_DATA see canonical extents.
  if (r.type == RegionType::kZero && !regions_.empty() &&
      regions_.back().type == RegionType::kZero) {
    regions_.back().length += r.length;
    return;
  }
  regions_.push_back(std::move(r));
}

void RegionMap::AppendBytes(std::string bytes) {
  Region r;
  r.type = RegionType::kBytes;
  r.length = bytes.size();
  r.bytes = std::make_shared<const std::string>(std::move(bytes));
  Append(std::move(r));
}

void RegionMap::AppendZero(uint64_t length) {
  Region r;
  r.type = RegionType::kZero;
  r.length = length;
  Append(std::move(r));
}

void RegionMap::AppendChunk(const store::ChunkId& id, uint64_t chunk_offset, uint64_t length) {
  Region r;
  r.type = RegionType::kChunk;
  r.chunk = id;
  r.source_offset = chunk_offset;
  r.length = length;
  Append(std::move(r));
}

void RegionMap::AppendView(std::shared_ptr<const View> view, uint64_t offset, uint64_t length) {
  Region r;
  r.type = RegionType::kView;
  r.view = std::move(view);
  r.source_offset = offset;
  r.length = length;
  Append(std::move(r));
}

void RegionMap::AppendPadding(uint64_t alignment) {
  if (alignment == 0) return;
  const uint64_t rem = size_ & (alignment - 1);
  if (rem != 0) AppendZero(alignment - rem);
}

Status RegionMap::RegionAt(uint64_t offset, Region* out) const {
  if (offset >= size_) return Status::InvalidArgument("offset beyond the end of the view");
  auto it = std::upper_bound(regions_.begin(), regions_.end(), offset,
                             [](uint64_t off, const Region& r) { return off < r.offset; });
  *out = *std::prev(it);
  return Status::OK();
}

std::shared_ptr<const View> MakeBytesView(std::string bytes) {
  auto map = std::make_shared<RegionMap>();
  map->AppendBytes(std::move(bytes));
  return map;
}

}  // namespace vmvault::fs
