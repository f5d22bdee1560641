#include "store/disk_summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "base/bytes.h"
#include "store/catalog.h"

namespace vmvault::store {
namespace {

constexpr uint8_t kSummaryVersion = 1;
constexpr size_t kHeaderBytes = 1 + 8 + 4;

void PutLittleEndian16(std::string* dst, uint16_t v) {
  dst->push_back(static_cast<char>(v & 0xff));
  dst->push_back(static_cast<char>(v >> 8));
}

uint16_t GetLittleEndian16(const char* p) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint16_t>(b[0] | (b[1] << 8));
}

}  // namespace

uint32_t GroupSlots(uint32_t chunk_size) {
  return chunk_size >= kGroupBytes ? 1 : static_cast<uint32_t>(kGroupBytes / chunk_size);
}

void AddSummaryPage(const ChunkId* slots, size_t n, DiskSummary* summary) {
  uint16_t data = 0;
  uint16_t groups = 0;
  const uint32_t g = summary->group_slots;
  for (size_t first = 0; first < n; first += g) {
    uint16_t in_group = 0;
    for (size_t i = first; i < std::min<size_t>(n, first + g); ++i) {
      in_group += slots[i].is_zero() ? 0 : 1;
    }
    data += in_group;
    groups += in_group != 0 ? 1 : 0;
  }
  summary->page_data_slots.push_back(data);
  summary->page_data_groups.push_back(groups);
}

DiskSummary SummarizeIndex(const std::vector<ChunkId>& index, uint32_t chunk_size) {
  DiskSummary s;
  s.slots = index.size();
  s.group_slots = GroupSlots(chunk_size);
  for (uint64_t first = 0; first < index.size(); first += kIndexPageSlots) {
    AddSummaryPage(index.data() + first,
                   static_cast<size_t>(std::min<uint64_t>(kIndexPageSlots, index.size() - first)),
                   &s);
  }
  return s;
}

std::string EncodeDiskSummary(const DiskSummary& summary) {
  std::string out;
  out.reserve(kHeaderBytes + summary.pages() * 4);
  out.push_back(static_cast<char>(kSummaryVersion));
  PutLittleEndian32(&out, static_cast<uint32_t>(summary.slots));
  PutLittleEndian32(&out, static_cast<uint32_t>(summary.slots >> 32));
  PutLittleEndian32(&out, summary.group_slots);
  for (uint64_t p = 0; p < summary.pages(); ++p) {
    PutLittleEndian16(&out, summary.page_data_slots[p]);
    PutLittleEndian16(&out, summary.page_data_groups[p]);
  }
  return out;
}

Result<DiskSummary> DecodeDiskSummary(std::string_view value) {
  auto bad = [](std::string_view why) {
    return Status::Corruption(fmt::format("disk summary does not decode: {}", why));
  };
  if (value.size() < kHeaderBytes) return bad("too short");
  if (static_cast<uint8_t>(value[0]) != kSummaryVersion) return bad("unknown version");
  DiskSummary s;
  s.slots = GetLittleEndian32(value.data() + 1) |
            (uint64_t{GetLittleEndian32(value.data() + 5)} << 32);
  s.group_slots = GetLittleEndian32(value.data() + 9);
  if (s.group_slots == 0 || !std::has_single_bit(s.group_slots) ||
      s.group_slots > kIndexPageSlots) {
    return bad("bad group size");
  }
  const uint64_t pages = (s.slots + kIndexPageSlots - 1) / kIndexPageSlots;
  if ((value.size() - kHeaderBytes) != pages * 4) return bad("wrong length");
  s.page_data_slots.resize(pages);
  s.page_data_groups.resize(pages);
  for (uint64_t p = 0; p < pages; ++p) {
    const char* e = value.data() + kHeaderBytes + p * 4;
    const uint64_t page_slots = std::min<uint64_t>(kIndexPageSlots, s.slots - p * kIndexPageSlots);
    s.page_data_slots[p] = GetLittleEndian16(e);
    s.page_data_groups[p] = GetLittleEndian16(e + 2);
    const uint64_t max_groups = (page_slots + s.group_slots - 1) / s.group_slots;
    if (s.page_data_slots[p] > page_slots || s.page_data_groups[p] > max_groups ||
        s.page_data_groups[p] > s.page_data_slots[p] ||
        (s.page_data_slots[p] != 0) != (s.page_data_groups[p] != 0)) {
      return bad(fmt::format("page {} has impossible counts", p));
    }
  }
  return s;
}

}  // namespace vmvault::store
