// View: a file of the mount as a map of regions, after nbdkit's common/regions and
// partitioning plugin. A view does not read bytes; it answers "what holds offset X":
//
//   kZero   zeros (a hole: SEEK_HOLE finds it, st_blocks does not count it)
//   kBytes  bytes held in memory (a manifest, a generated image header)
//   kChunk  a slice of one stored chunk's plaintext
//   kView   a slice of another view (a partition of a raw disk, the data clusters
//           of a qcow2 or VHDX view laid over the raw view)
//
// ViewReader (view_reader.h) is the one read loop that turns regions into bytes for
// every view. The raw view (raw_view.h) computes its regions from the disk index;
// RegionMap (region_map.h) is a view built from a fixed list of regions.
//
// Views are immutable after construction and thread-safe; they are shared through
// std::shared_ptr<const View> by the tree, open files and read-ahead tasks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "store/chunk_id.h"

namespace vmvault::fs {

class View;

enum class RegionType : uint8_t { kZero, kBytes, kChunk, kView };

struct Region {
  uint64_t offset = 0;  // in the view
  uint64_t length = 0;
  RegionType type = RegionType::kZero;
  // kBytes: offset in *bytes; kChunk: offset in the chunk's plaintext; kView: offset
  // in *view. The region's first byte is found there.
  uint64_t source_offset = 0;
  std::shared_ptr<const std::string> bytes;  // kBytes
  store::ChunkId chunk;                      // kChunk
  std::shared_ptr<const View> view;          // kView

  uint64_t end() const { return offset + length; }
  bool is_data() const { return type != RegionType::kZero; }
};

class View {
 public:
  virtual ~View() = default;

  // Prepares what size() and allocated_bytes() need. Most views know both from the
  // backup record and have nothing to do. The compacted image views (qcow2, VHDX) lay
  // themselves out on first use, from one small catalog read; a failure is returned
  // here and retried on the next call. The Filesystem calls Load() before it stats or
  // opens a file; size() and allocated_bytes() of a view that cannot load are 0, and
  // its RegionAt and seeks return the error.
  virtual Status Load() const { return Status::OK(); }

  virtual uint64_t size() const = 0;
  // Bytes that hold data, for st_blocks.
  virtual uint64_t allocated_bytes() const = 0;

  // The region that holds `offset`: out->offset <= offset < out->end().
  // REQUIRES: offset < size().
  virtual Status RegionAt(uint64_t offset, Region* out) const = 0;

  // SEEK_DATA: the first offset >= `offset` in a data region, or size() when there is
  // none. SEEK_HOLE: the first offset >= `offset` in a hole, or size() (the implicit
  // hole at the end). Both return size() for offset >= size(). The defaults walk
  // RegionAt, asking kView regions' views; views with a faster way override them.
  virtual Result<uint64_t> SeekData(uint64_t offset) const;
  virtual Result<uint64_t> SeekHole(uint64_t offset) const;
};

}  // namespace vmvault::fs
