// RegionMap: a view made of a fixed, ordered list of regions, after nbdkit's
// common/regions. Generated files (manifest.json, domain.xml) are one kBytes region;
// the partition and image-format views to come append their metadata as kBytes,
// their unallocated parts as kZero and their data as kView slices of the raw view.
//
// Build it with the Append* calls, then share it as std::shared_ptr<const View>.
// Lookups are a binary search. Appending is not thread-safe; a RegionMap that is no
// longer appended to is immutable and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fs/view.h"

namespace vmvault::fs {

class RegionMap final : public View {
 public:
  RegionMap() = default;

  void AppendBytes(std::string bytes);
  void AppendZero(uint64_t length);
  void AppendChunk(const store::ChunkId& id, uint64_t chunk_offset, uint64_t length);
  // [offset, offset + length) of `view`. REQUIRES: it lies within view->size().
  void AppendView(std::shared_ptr<const View> view, uint64_t offset, uint64_t length);
  // Zeros up to the next multiple of `alignment` (a power of two).
  void AppendPadding(uint64_t alignment);

  uint64_t size() const override { return size_; }
  uint64_t allocated_bytes() const override { return allocated_; }
  Status RegionAt(uint64_t offset, Region* out) const override;
  const std::vector<Region>& regions() const { return regions_; }

 private:
  void Append(Region r);

  std::vector<Region> regions_;
  uint64_t size_ = 0;
  uint64_t allocated_ = 0;
};

// A view of `bytes`, for generated files.
std::shared_ptr<const View> MakeBytesView(std::string bytes);

}  // namespace vmvault::fs
