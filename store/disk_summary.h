// DiskSummary: how many data slots each index page of a disk holds, stored beside the
// index at commit (FORMAT.md, `ds/` keys). It is what lets the image-format views
// (qcow2, VHDX) place data densely without reading a whole index: the file offset of a
// data cluster is the number of data slots before it, and per-page counts make that
// O(pages) to prepare and O(1) to ask.
//
// Per page it keeps two counts: data slots, and data groups, where a group is
// group_slots consecutive slots covering 1 MiB (one slot when chunks are 1 MiB or
// larger) -- the VHDX block. Both fit in 16 bits (a page has 4096 slots).
//
// Plain values; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/chunk_id.h"

namespace vmvault::store {

inline constexpr uint64_t kGroupBytes = 1 << 20;

// Slots per group for `chunk_size`: 1 MiB / chunk_size, at least 1.
// REQUIRES: chunk_size is a power of two.
uint32_t GroupSlots(uint32_t chunk_size);

struct DiskSummary {
  uint64_t slots = 0;        // ceil(virtual_size / chunk_size)
  uint32_t group_slots = 1;  // slots per group
  std::vector<uint16_t> page_data_slots;   // one per index page, ceil(slots / 4096)
  std::vector<uint16_t> page_data_groups;  // one per index page

  uint64_t pages() const { return page_data_slots.size(); }
  bool operator==(const DiskSummary&) const = default;
};

// Summarizes a disk index (one id per slot, zero for holes).
DiskSummary SummarizeIndex(const std::vector<ChunkId>& index, uint32_t chunk_size);
// Appends the counts of the next page, `n` slots (4096, or fewer for the last page; 0
// for a page that is not stored) to *summary. For building a summary page by page from stored pages.
void AddSummaryPage(const ChunkId* slots, size_t n, DiskSummary* summary);

// The stored form: byte 0 = 1 (version), u64 LE slots, u32 LE group_slots, then per
// page u16 LE data slots and u16 LE data groups. Decoding checks every count.
std::string EncodeDiskSummary(const DiskSummary& summary);
Result<DiskSummary> DecodeDiskSummary(std::string_view value);

}  // namespace vmvault::store
