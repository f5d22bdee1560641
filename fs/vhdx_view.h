// VhdxView: a disk of a backup as `<disk>.vhdx`, a dynamic VHDX ([MS-VHDX]) that is
// synthesized from the backup's index on every read and never stored. Windows attaches
// it read-only (Hyper-V, Disk Management "Attach VHD"); qemu-img opens it as `vhdx`.
//
// File layout (every object 1 MiB aligned, as the format requires):
//
//   0        header section: file type identifier ("vhdxfile", creator "vmvault"),
//            headers at 64 KiB and 128 KiB (sequence 1 and 2, no log to replay),
//            region tables at 192 KiB and 256 KiB (BAT and metadata, both required)
//   1 MiB    log, 1 MiB of zeros (LogGuid is zero: nothing to replay)
//   2 MiB    metadata region, 1 MiB: File Parameters (block size, dynamic, no
//            parent), Virtual Disk Size, Page 83 Data (virtual disk id), Logical
//            Sector Size 512, Physical Sector Size 4096
//   3 MiB    BAT, rounded up to 1 MiB: payload entries with a sector bitmap entry
//            (always SB_BLOCK_NOT_PRESENT) after every chunk-ratio of them
//   then     payload blocks, densely and in guest order: data group k (the k-th
//            block of the disk that holds any data) at data_start + k * block_size
//
// The block size is one data group of the DataMap: max(1 MiB, chunk size). A block
// with data is PAYLOAD_BLOCK_FULLY_PRESENT; every other block is PAYLOAD_BLOCK_ZERO
// with FileOffsetMB 0 -- the one state the spec defines as "reads as zeros" for a
// dynamic disk (NOT_PRESENT means "undefined contents" there), and qemu reads it as
// zeros too. The virtual size is the disk's size rounded up to 512 bytes; the few
// bytes past the raw disk's end read as zeros. Disks over 64 TiB (the format's limit)
// fail to load with kUnsupported. An empty disk gets a BAT region as large as qemu's
// 32-bit entry count wants (8 MiB for 1 MiB blocks, all zeros: a hole) so qemu opens it.
//
// Cost: constructing does no I/O. Load() calls the MapLoader once (the disk summary:
// one small catalog record, no index page) and builds the fixed metadata (28 KiB).
// A read of the BAT generates 4 KiB pieces (512 entries) from O(1) index pages; a read
// of a payload block finds its group with one index page and returns a kView region
// over the raw view. size(), allocated_bytes(), SeekData and SeekHole need no I/O:
// the file's data/hole map is a short list fixed at Load, in which a payload block is
// data as a whole (its hole chunks and its tail past the raw end included, as a VHDX
// file stores a present block whole), the BAT's used pieces and the metadata's
// written 4 KiB pieces are data, and everything else is a hole. allocated_bytes() is
// exactly the sum of that map's data.
//
// The raw view is shared; the DataMap the loader returns is kept for the view's
// lifetime (it refers to the mount's IndexPageCache, which must outlive it).
// VhdxView is immutable once loaded and thread-safe: concurrent first uses build the
// layout once (fs/lazy.h); a failed build is retried by the next call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "base/result.h"
#include "fs/data_map.h"
#include "fs/lazy.h"
#include "fs/view.h"

namespace vmvault::fs {

class VhdxView final : public View {
 public:
  using MapLoader = std::function<Result<std::shared_ptr<const DataMap>>()>;

  // `raw` is the disk's raw view (payload blocks are kView slices of it); `load_map`
  // is called on first use (Load). `identity` seeds the GUIDs (file write / data write
  // / virtual disk id) deterministically, so the same backup always yields the same
  // bytes.
  VhdxView(std::shared_ptr<const View> raw, MapLoader load_map, uint64_t identity);
  ~VhdxView() override;

  Status Load() const override;
  uint64_t size() const override;  // 0 if Load failed
  uint64_t allocated_bytes() const override;
  Status RegionAt(uint64_t offset, Region* out) const override;
  Result<uint64_t> SeekData(uint64_t offset) const override;
  Result<uint64_t> SeekHole(uint64_t offset) const override;

  // The payload block size, once loaded (0 before or on failure). For tests and
  // diagnostics.
  uint32_t block_size() const;

 private:
  struct Layout;

  Result<std::shared_ptr<const Layout>> Build() const;
  Result<std::shared_ptr<const std::string>> BatPiece(const Layout& l, uint64_t piece) const;
  Result<uint64_t> Seek(uint64_t offset, bool want_data) const;

  const std::shared_ptr<const View> raw_;
  const MapLoader load_map_;
  const uint64_t identity_;
  Lazy<Layout> layout_;
};

}  // namespace vmvault::fs
