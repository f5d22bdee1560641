// DataMap: where the data of one disk of a backup lies, in the terms the compacted
// image views (qcow2, VHDX) need to place it densely: "how many data slots come before
// slot s" and "which slot is the k-th data slot", and the same for groups of
// group_slots() slots (1 MiB, the VHDX block; one slot when chunks are 1 MiB or more).
//
// It is built from the disk's stored summary (store/disk_summary.h: per-page counts,
// 4 bytes per 1 GiB of a 256 KiB-chunk disk) into prefix sums, so building it reads one
// small record and never an index page; questions about whole pages need no I/O, and
// questions inside a page read that one page through the shared IndexPageCache.
//
// Questions about slots or groups past the disk's end are InvalidArgument, and index
// pages that contradict the summary are Corruption: a damaged repository gives errors,
// never another slot's bytes. The page cache must outlive the map. Immutable after
// Load; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"
#include "fs/index_page_cache.h"
#include "store/catalog.h"
#include "store/disk_summary.h"

namespace vmvault::fs {

class DataMap {
 public:
  // Reads the summary of disk `disk` of backup `backup_id` (computed from the index for
  // a backup that predates summaries) and checks it against `record`.
  static Result<std::shared_ptr<const DataMap>> Load(const store::Catalog& catalog,
                                                     IndexPageCache* pages, uint64_t backup_id,
                                                     uint32_t disk,
                                                     const store::DiskRecord& record);
  // From a summary in hand (tests, and Load).
  DataMap(IndexPageCache* pages, uint64_t backup_id, uint32_t disk,
          const store::DiskRecord& record, const store::DiskSummary& summary);

  uint64_t virtual_size() const { return virtual_size_; }
  uint32_t chunk_size() const { return chunk_size_; }
  uint64_t slots() const { return slots_; }
  uint64_t pages() const { return page_slots_before_.size() - 1; }
  uint64_t data_slots() const { return page_slots_before_.back(); }
  // The bytes of slot `slot`: chunk_size, or less for the last one.
  uint64_t SlotBytes(uint64_t slot) const;

  // Data slots in whole pages [0, page). REQUIRES: page <= pages(). No I/O.
  uint64_t DataSlotsBeforePage(uint64_t page) const { return page_slots_before_[page]; }
  // Data slots in [0, slot), for slot <= slots(). Reads slot's page unless it is
  // page-aligned.
  Result<uint64_t> DataSlotsBefore(uint64_t slot) const;
  Result<bool> IsData(uint64_t slot) const;
  // The slot that is data slot number k (from 0), for k < data_slots().
  Result<uint64_t> NthDataSlot(uint64_t k) const;

  uint32_t group_slots() const { return group_slots_; }
  uint64_t groups() const { return (slots_ + group_slots_ - 1) / group_slots_; }
  uint64_t data_groups() const { return page_groups_before_.back(); }
  // Groups holding at least one data slot, in [0, group), for group <= groups().
  Result<uint64_t> DataGroupsBefore(uint64_t group) const;
  Result<bool> GroupHasData(uint64_t group) const;
  // The group that is data group number k (from 0), for k < data_groups().
  Result<uint64_t> NthDataGroup(uint64_t k) const;

  // The index page `page` of the disk, through the cache, checked against the summary:
  // a page whose data slots or groups differ from the summary's counts, or that holds
  // data past the disk's end, is Corruption (views placed by the summary would serve
  // other slots' bytes). Every lookup inside a page goes through here.
  Result<IndexPageCache::Page> Page(uint64_t page) const;

 private:
  IndexPageCache* pages_;
  const uint64_t backup_id_;
  const uint32_t disk_;
  const uint64_t virtual_size_;
  const uint32_t chunk_size_;
  const uint64_t slots_;
  const uint32_t group_slots_;
  std::vector<uint64_t> page_slots_before_;   // pages() + 1 prefix sums
  std::vector<uint64_t> page_groups_before_;  // pages() + 1 prefix sums
};

}  // namespace vmvault::fs
