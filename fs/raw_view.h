// RawView: a disk of a backup, byte for byte, as `<disk>.raw`. Its regions come from
// the disk's dense index in O(1): the chunk for offset X is slot X / chunk_size, on
// index page slot / kIndexPageSlots, read through the shared IndexPageCache. A run of
// hole slots within a page is one kZero region; a data slot is one kChunk region.
//
// Nothing is scanned to open, stat or read: the size comes from the DiskRecord and
// st_blocks from DiskRecord::data_chunks. SEEK_DATA and SEEK_HOLE walk index pages,
// skipping absent (all-hole) pages without reading any slot.
//
// Every index page is checked against the disk summary stored at commit (read once, at
// the first page): an absent page is holes only when the summary says the page held no
// data, and a present page must hold the summary's count of data slots. A page the
// summary contradicts is damage, and every read or seek in its range is Corruption,
// never zeros. A disk without a stored summary (a format 1 repository opened only for
// reading) cannot tell which page is missing: at its first absent page, the data slots
// of its stored pages are counted once, and when they fall short of the record's
// data_chunks, every absent page of the disk is Corruption; else they read as holes.
//
// The catalog and the page cache are not owned and must outlive the view. RawView is
// immutable and thread-safe.
#pragma once

#include <cstdint>

#include <optional>

#include "fs/index_page_cache.h"
#include "fs/lazy.h"
#include "fs/view.h"
#include "store/catalog.h"
#include "store/disk_summary.h"

namespace vmvault::fs {

class RawView final : public View {
 public:
  // `disk` is the disk's position in the backup's BackupRecord::disks.
  RawView(IndexPageCache* pages, uint64_t backup_id, uint32_t disk,
          const store::DiskRecord& record);

  uint64_t size() const override { return size_; }
  uint64_t allocated_bytes() const override { return allocated_; }
  Status RegionAt(uint64_t offset, Region* out) const override;
  Result<uint64_t> SeekData(uint64_t offset) const override;
  Result<uint64_t> SeekHole(uint64_t offset) const override;

  uint32_t chunk_size() const { return chunk_size_; }

 private:
  Status CheckValid() const;
  // Index page `page`; Corruption when the stored summary contradicts it (see above).
  Result<IndexPageCache::Page> PageAt(uint64_t page) const;
  Result<uint64_t> Seek(uint64_t offset, bool want_data) const;

  IndexPageCache* pages_;
  const uint64_t backup_id_;
  const uint32_t disk_;
  const uint64_t size_;
  const uint32_t chunk_size_;
  const uint64_t allocated_;
  const uint64_t data_chunks_;  // the record's count of data slots
  // The summary stored at commit; nullopt when the disk has none.
  Lazy<std::optional<store::DiskSummary>> summary_;
  // Without a stored summary: the data slots its stored pages hold.
  Lazy<uint64_t> stored_data_chunks_;
};

}  // namespace vmvault::fs
