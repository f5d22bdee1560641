// SliceView: a window of another disk view, for `<disk>.partN.raw`: bytes
// [offset, offset + length) of the raw view, so `mount -o loop,ro` of a partition
// needs no offset arithmetic.
//
// Reads and SEEK_DATA/SEEK_HOLE go to the raw view (one kView region). st_blocks is
// exact: Load() counts the data chunks inside the window from the disk summary (the
// DataMap) plus at most the two index pages at its edges, so listing a backup
// directory never scans an index. Load() never fails: if the count cannot be made
// (damage, logged), st_blocks says the whole window and the partition still reads.
//
// The raw view is shared. Immutable once loaded; thread-safe (fs/lazy.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "fs/data_map.h"
#include "fs/lazy.h"
#include "fs/view.h"

namespace vmvault::fs {

class SliceView final : public View {
 public:
  using MapLoader = std::function<Result<std::shared_ptr<const DataMap>>()>;
  // REQUIRES: offset + length <= raw->size().
  SliceView(std::shared_ptr<const View> raw, uint64_t offset, uint64_t length,
            MapLoader load_map);

  Status Load() const override;
  uint64_t size() const override { return length_; }
  uint64_t allocated_bytes() const override;  // length() until counted
  Status RegionAt(uint64_t offset, Region* out) const override;
  Result<uint64_t> SeekData(uint64_t offset) const override;
  Result<uint64_t> SeekHole(uint64_t offset) const override;

 private:
  Result<std::shared_ptr<const uint64_t>> CountAllocated(const MapLoader& load_map) const;

  const std::shared_ptr<const View> raw_;
  const uint64_t offset_;
  const uint64_t length_;
  Lazy<uint64_t> allocated_;
};

}  // namespace vmvault::fs
