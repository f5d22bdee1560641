// Qcow2View: a disk of a backup as `<disk>.qcow2`, a valid qcow2 version 3 image that is
// synthesized on the fly from the disk's index and never stored (docs/interop/qcow2.txt
// in qemu). Its data clusters are kView slices of the disk's raw view; its metadata
// (header, refcount table and blocks, L1 and L2 tables) is generated on demand in
// 4 KiB pieces.
//
// Image: cluster_size = min(chunk_size, 2 MiB), so a chunk ("slot") is c =
// chunk_size / cluster_size clusters (1, or 2 for 4 MiB chunks); 16-bit refcounts, no extended L2, no compression, no backing file, no
// feature bits, header_length 104 and no header extensions. The virtual size is the
// disk's size rounded up to 512 bytes (qemu counts whole sectors; the added bytes read
// as zeros). Every cluster the image references has refcount 1 and OFLAG_COPIED set;
// hole slots are unallocated clusters (L2 entry 0); L2 tables exist only for L2 ranges
// that hold data. Host layout, in clusters:
//
//   0                   header
//   1 .. T              refcount table
//   then R              refcount blocks (they cover every cluster of the file)
//   then L              L1 table
//   then N2             L2 tables, one per L1 entry whose range holds data, in guest order
//   data_offset + k*cs  data slot number k (in guest order), chunk_size bytes each
//
// T and R depend on the file's cluster count and the other way round: they are the
// fixed point of that recurrence. The file ends at data_offset + data_slots * cs. When
// the disk's last slot is partial and holds data, its bytes past the disk's end read as
// zeros and are reported as data, so the file's size and allocation do not depend on
// whether that slot is data (which only its index page knows); a 4 MiB chunk whose
// data ends in its first 2 MiB cluster leaves the file's last cluster unreferenced, with
// refcount 0.
//
// Cost: constructing does nothing. Load() calls the MapLoader once (one small catalog
// record, never an index page) and builds the layout in O(index pages). size() and
// allocated_bytes() are then O(1) and never load. RegionAt reads at most one index page:
// an L2 piece reads the page of its slots, a data offset the page of its data slot (and
// its region covers the run of consecutive data slots on that page). SeekData and
// SeekHole read nothing: the file's data and holes are a handful of extents computed
// at Load. Metadata pieces are built per call (4 KiB); nothing large is cached.
//
// Data regions: the meaningful prefix of each metadata structure (4 KiB granular) and
// the whole data area; the rest of each metadata cluster is kZero. allocated_bytes() is
// exactly the length of the data regions.
//
// Errors are Status: an index that contradicts its summary is Corruption; a chunk size
// or disk too large for qcow2 is Unsupported. The raw view and the loader's DataMap are
// shared. Qcow2View is immutable after Load and thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fs/data_map.h"
#include "fs/lazy.h"
#include "fs/view.h"

namespace vmvault::fs {

class Qcow2View final : public View {
 public:
  using MapLoader = std::function<Result<std::shared_ptr<const DataMap>>()>;

  // `raw` is the disk's raw view (data clusters are kView slices of it); `load_map` is
  // called on first use (Load) and gives where the data lies.
  Qcow2View(std::shared_ptr<const View> raw, MapLoader load_map);
  ~Qcow2View() override;

  Status Load() const override;
  // 0 until Load() has succeeded.
  uint64_t size() const override;
  uint64_t allocated_bytes() const override;
  Status RegionAt(uint64_t offset, Region* out) const override;
  Result<uint64_t> SeekData(uint64_t offset) const override;
  Result<uint64_t> SeekHole(uint64_t offset) const override;

  // The qcow2 cluster size for `chunk_size`: min(chunk_size, 2 MiB).
  static uint32_t ClusterSizeFor(uint32_t chunk_size);

  struct Layout;

 private:
  Result<std::shared_ptr<const Layout>> BuildLayout() const;
  Status MetadataRegion(const Layout& l, uint64_t offset, Region* out) const;
  Status DataRegion(const Layout& l, uint64_t offset, Region* out) const;
  Result<std::string> L2Piece(const Layout& l, uint64_t table, uint64_t piece) const;
  Result<std::string> RefblockPiece(const Layout& l, uint64_t piece) const;

  const std::shared_ptr<const View> raw_;
  const MapLoader load_map_;
  Lazy<Layout> layout_;
};

}  // namespace vmvault::fs
