#include "fs/vhdx_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <string>
#include <string_view>
#include <vector>

#include "base/crc32c.h"
#include "base/image.h"
#include "fs/region_map.h"
#include "store/disk_summary.h"

namespace vmvault::fs {
namespace {

constexpr uint64_t kKiB = 1 << 10;
constexpr uint64_t kMiB = 1 << 20;

// Fixed placement of the metadata objects (see the header comment).
constexpr uint64_t kFileIdOffset = 0;
constexpr uint64_t kHeader1Offset = 64 * kKiB;
constexpr uint64_t kHeader2Offset = 128 * kKiB;
constexpr uint64_t kRegionTable1Offset = 192 * kKiB;
constexpr uint64_t kRegionTable2Offset = 256 * kKiB;
constexpr uint64_t kLogOffset = 1 * kMiB;
constexpr uint64_t kLogLength = 1 * kMiB;
constexpr uint64_t kMetadataOffset = 2 * kMiB;
constexpr uint64_t kMetadataLength = 1 * kMiB;
constexpr uint64_t kMetadataItemsOffset = 64 * kKiB;  // within the metadata region
constexpr uint64_t kBatOffset = 3 * kMiB;

constexpr uint64_t kHeaderBytes = 4 * kKiB;        // a header's checksummed size
constexpr uint64_t kRegionTableBytes = 64 * kKiB;  // a region table's checksummed size
constexpr uint64_t kPieceBytes = 4 * kKiB;         // the unit metadata is served in
constexpr uint64_t kBatPieceEntries = kPieceBytes / 8;

constexpr uint32_t kLogicalSectorSize = 512;
constexpr uint32_t kPhysicalSectorSize = 4096;
constexpr uint64_t kMaxBlockSize = 256 * kMiB;
constexpr uint64_t kMaxVirtualSize = uint64_t{64} << 40;  // 64 TiB
// Sectors one sector bitmap block describes (2^23); with the logical sector size it
// gives the chunk ratio: payload blocks per sector bitmap entry.
constexpr uint64_t kSectorsPerBitmapBlock = uint64_t{1} << 23;

constexpr uint64_t kPayloadBlockZero = 2;
constexpr uint64_t kPayloadBlockFullyPresent = 6;

// Metadata table entry flags.
constexpr uint32_t kMetaIsVirtualDisk = 0x2;
constexpr uint32_t kMetaIsRequired = 0x4;

// A GUID as stored: Data1 (u32 LE), Data2 (u16 LE), Data3 (u16 LE), Data4 (8 bytes).
using Guid = std::array<uint8_t, 16>;

constexpr Guid MakeGuid(uint32_t d1, uint16_t d2, uint16_t d3, std::array<uint8_t, 8> d4) {
  Guid g{};
  for (int i = 0; i < 4; ++i) g[i] = static_cast<uint8_t>(d1 >> (8 * i));
  for (int i = 0; i < 2; ++i) g[4 + i] = static_cast<uint8_t>(d2 >> (8 * i));
  for (int i = 0; i < 2; ++i) g[6 + i] = static_cast<uint8_t>(d3 >> (8 * i));
  for (int i = 0; i < 8; ++i) g[8 + i] = d4[i];
  return g;
}

// [MS-VHDX] 2.2.3.2 (regions) and 2.6.2 (known metadata items).
constexpr Guid kBatGuid =
    MakeGuid(0x2DC27766, 0xF623, 0x4200, {0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08});
constexpr Guid kMetadataGuid =
    MakeGuid(0x8B7CA206, 0x4790, 0x4B9A, {0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E});
constexpr Guid kFileParametersGuid =
    MakeGuid(0xCAA16737, 0xFA36, 0x4D43, {0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B});
constexpr Guid kVirtualDiskSizeGuid =
    MakeGuid(0x2FA54224, 0xCD1B, 0x4876, {0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8});
constexpr Guid kPage83DataGuid =
    MakeGuid(0xBECA12AB, 0xB2E6, 0x4523, {0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46});
constexpr Guid kLogicalSectorSizeGuid =
    MakeGuid(0x8141BF1D, 0xA96F, 0x4709, {0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F});
constexpr Guid kPhysicalSectorSizeGuid =
    MakeGuid(0xCDA348C7, 0x445D, 0x4471, {0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56});

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A random-looking (version 4, RFC 4122 variant) GUID that depends only on
// (identity, which).
Guid DerivedGuid(uint64_t identity, uint64_t which) {
  const uint64_t a = Mix(Mix(identity) ^ (which * 0xd1b54a32d192ed03ULL));
  const uint64_t b = Mix(a ^ 0x5648445856564d56ULL);  // "VMVVXDHV"
  Guid g{};
  for (int i = 0; i < 8; ++i) {
    g[i] = static_cast<uint8_t>(a >> (8 * i));
    g[8 + i] = static_cast<uint8_t>(b >> (8 * i));
  }
  g[7] = static_cast<uint8_t>((g[7] & 0x0f) | 0x40);  // Data3's top nibble: version 4
  g[8] = static_cast<uint8_t>((g[8] & 0x3f) | 0x80);  // Data4[0]: variant 10
  return g;
}

void Put16(std::string* s, size_t at, uint16_t v) {
  for (int i = 0; i < 2; ++i) (*s)[at + i] = static_cast<char>(v >> (8 * i));
}
void Put32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>(v >> (8 * i));
}
void Put64(std::string* s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*s)[at + i] = static_cast<char>(v >> (8 * i));
}
void PutGuid(std::string* s, size_t at, const Guid& g) {
  std::copy(g.begin(), g.end(), s->begin() + static_cast<ptrdiff_t>(at));
}
void PutAscii(std::string* s, size_t at, std::string_view text) {
  std::copy(text.begin(), text.end(), s->begin() + static_cast<ptrdiff_t>(at));
}
// Stores the CRC-32C of *s (with the checksum field zero, as it is here) at `at`.
void PutChecksum(std::string* s, size_t at) { Put32(s, at, Crc32c(std::string_view(*s))); }

uint64_t RoundUp(uint64_t v, uint64_t unit) { return (v + unit - 1) / unit * unit; }

// 2.2.1: "vhdxfile" and a UTF-16 creator string.
std::string FileIdentifier() {
  std::string s(kPieceBytes, '\0');
  PutAscii(&s, 0, "vhdxfile");
  constexpr std::string_view kCreator = "vmvault";
  for (size_t i = 0; i < kCreator.size(); ++i) Put16(&s, 8 + 2 * i, kCreator[i]);
  return s;
}

// 2.2.2: one 4 KiB header.
std::string Header(uint64_t sequence, const Guid& file_write, const Guid& data_write) {
  std::string s(kHeaderBytes, '\0');
  PutAscii(&s, 0, "head");
  Put64(&s, 8, sequence);
  PutGuid(&s, 16, file_write);
  PutGuid(&s, 32, data_write);
  // LogGuid (48) stays zero: the log is empty and nothing needs replaying.
  Put16(&s, 64, 0);  // LogVersion
  Put16(&s, 66, 1);  // Version
  Put32(&s, 68, static_cast<uint32_t>(kLogLength));
  Put64(&s, 72, kLogOffset);
  PutChecksum(&s, 4);
  return s;
}

// 2.2.3: the region table, checksummed over its 64 KiB; returns its first 4 KiB (the
// rest is zeros).
std::string RegionTable(uint64_t bat_length) {
  std::string s(kRegionTableBytes, '\0');
  PutAscii(&s, 0, "regi");
  Put32(&s, 8, 2);  // EntryCount
  auto entry = [&](size_t at, const Guid& guid, uint64_t offset, uint64_t length) {
    PutGuid(&s, at, guid);
    Put64(&s, at + 16, offset);
    Put32(&s, at + 24, static_cast<uint32_t>(length));
    Put32(&s, at + 28, 1);  // Required
  };
  entry(16, kBatGuid, kBatOffset, bat_length);
  entry(48, kMetadataGuid, kMetadataOffset, kMetadataLength);
  PutChecksum(&s, 4);
  s.resize(kPieceBytes);
  return s;
}

// 2.6.1: the metadata table (first 4 KiB of the region).
std::string MetadataTable() {
  std::string s(kPieceBytes, '\0');
  PutAscii(&s, 0, "metadata");
  Put16(&s, 10, 5);  // EntryCount
  size_t at = 32;
  auto entry = [&](const Guid& id, uint32_t item_offset, uint32_t length, uint32_t flags) {
    PutGuid(&s, at, id);
    Put32(&s, at + 16, static_cast<uint32_t>(kMetadataItemsOffset) + item_offset);
    Put32(&s, at + 20, length);
    Put32(&s, at + 24, flags);
    at += 32;
  };
  entry(kFileParametersGuid, 0, 8, kMetaIsRequired);
  entry(kVirtualDiskSizeGuid, 8, 8, kMetaIsVirtualDisk | kMetaIsRequired);
  entry(kPage83DataGuid, 16, 16, kMetaIsVirtualDisk | kMetaIsRequired);
  entry(kLogicalSectorSizeGuid, 32, 4, kMetaIsVirtualDisk | kMetaIsRequired);
  entry(kPhysicalSectorSizeGuid, 36, 4, kMetaIsVirtualDisk | kMetaIsRequired);
  return s;
}

// 2.6.2: the items the table points at, packed at 64 KiB into the region.
std::string MetadataItems(uint64_t block_size, uint64_t virtual_size, const Guid& disk_id) {
  std::string s(kPieceBytes, '\0');
  Put32(&s, 0, static_cast<uint32_t>(block_size));
  Put32(&s, 4, 0);  // LeaveBlockAllocated = 0 (dynamic), HasParent = 0
  Put64(&s, 8, virtual_size);
  PutGuid(&s, 16, disk_id);
  Put32(&s, 32, kLogicalSectorSize);
  Put32(&s, 36, kPhysicalSectorSize);
  return s;
}

}  // namespace

struct VhdxView::Layout {
  std::shared_ptr<const DataMap> map;
  uint64_t raw_size = 0;
  uint64_t virtual_size = 0;    // raw_size rounded up to the logical sector size
  uint64_t block_size = 0;      // one data group
  uint64_t chunk_ratio = 0;     // payload entries per sector bitmap entry
  uint64_t payload_blocks = 0;  // ceil(virtual_size / block_size)
  uint64_t bat_entries = 0;     // payload and sector bitmap entries
  uint64_t bat_bytes = 0;       // bat_entries * 8, rounded up to whole pieces
  uint64_t bat_length = 0;      // the BAT region, a multiple of 1 MiB
  uint64_t data_start = 0;
  uint64_t data_blocks = 0;  // payload blocks stored: the disk's data groups
  uint64_t file_size = 0;
  uint64_t allocated = 0;
  RegionMap fixed;              // [0, kBatOffset): header section, log, metadata
  std::vector<Extent> extents;  // the file's data/hole map, normalized
};

VhdxView::VhdxView(std::shared_ptr<const View> raw, MapLoader load_map, uint64_t identity)
    : raw_(std::move(raw)),
      load_map_(std::move(load_map)),
      identity_(identity),
      layout_([this] { return Build(); }) {}

VhdxView::~VhdxView() = default;

Result<std::shared_ptr<const VhdxView::Layout>> VhdxView::Build() const {
  VV_RETURN_IF_ERROR(raw_->Load());
  VV_ASSIGN_OR_RETURN(std::shared_ptr<const DataMap> map, load_map_());
  if (map == nullptr) return Status::Corruption("vhdx view: no data map");
  auto l = std::make_shared<Layout>();
  l->raw_size = raw_->size();
  if (map->virtual_size() != l->raw_size) {
    return Status::Corruption(fmt::format("vhdx view: data map covers {} bytes, the disk {}",
                                          map->virtual_size(), l->raw_size));
  }
  const uint64_t chunk = map->chunk_size();
  if (chunk < kLogicalSectorSize || !std::has_single_bit(chunk)) {
    return Status::Corruption(fmt::format("vhdx view: invalid chunk size {}", chunk));
  }
  l->block_size = std::max<uint64_t>(kMiB, chunk);
  if (l->block_size > kMaxBlockSize) {
    return Status::Unsupported(
        fmt::format("vhdx view: chunks of {} bytes exceed the largest VHDX block", chunk));
  }
  if (map->group_slots() != l->block_size / chunk) {
    return Status::Corruption(
        fmt::format("vhdx view: {} slots per group for {}-byte chunks", map->group_slots(), chunk));
  }
  if (l->raw_size > kMaxVirtualSize) {
    return Status::Unsupported(
        fmt::format("a disk of {} bytes is larger than a VHDX can be (64 TiB)", l->raw_size));
  }
  l->virtual_size = RoundUp(l->raw_size, kLogicalSectorSize);
  l->payload_blocks = (l->virtual_size + l->block_size - 1) / l->block_size;
  if (map->groups() != l->payload_blocks || map->data_groups() > l->payload_blocks) {
    return Status::Corruption(
        fmt::format("vhdx view: data map has {} groups ({} with data), the disk {} blocks",
                    map->groups(), map->data_groups(), l->payload_blocks));
  }
  l->data_blocks = map->data_groups();
  l->chunk_ratio = kSectorsPerBitmapBlock * kLogicalSectorSize / l->block_size;
  // 2.5: a dynamic disk's last BAT entry is its last payload block's.
  l->bat_entries =
      l->payload_blocks == 0 ? 0 : l->payload_blocks + (l->payload_blocks - 1) / l->chunk_ratio;
  // qemu computes the entry count in 32 bits as blocks + (blocks - 1) / ratio, which
  // for an empty disk wraps to 2^32 / ratio entries, and refuses a smaller BAT region;
  // reserve that much (zeros, a hole) so an empty disk opens too.
  const uint64_t reserve = l->payload_blocks == 0
                               ? uint64_t{0xFFFFFFFF} >> std::countr_zero(l->chunk_ratio)
                               : l->bat_entries;
  l->bat_length = std::max(kMiB, RoundUp(reserve * 8, kMiB));
  l->bat_bytes = RoundUp(l->bat_entries * 8, kPieceBytes);
  l->data_start = kBatOffset + l->bat_length;
  l->file_size = l->data_start + l->data_blocks * l->block_size;
  l->map = std::move(map);

  const Guid file_write = DerivedGuid(identity_, 1);
  const Guid data_write = DerivedGuid(identity_, 2);
  const Guid disk_id = DerivedGuid(identity_, 3);
  const std::string region_table = RegionTable(l->bat_length);
  RegionMap& f = l->fixed;
  f.AppendBytes(FileIdentifier());
  f.AppendZero(kHeader1Offset - f.size());
  f.AppendBytes(Header(1, file_write, data_write));
  f.AppendZero(kHeader2Offset - f.size());
  f.AppendBytes(Header(2, file_write, data_write));  // the current header
  f.AppendZero(kRegionTable1Offset - f.size());
  f.AppendBytes(region_table);
  f.AppendZero(kRegionTable2Offset - f.size());
  f.AppendBytes(region_table);
  f.AppendZero(kMetadataOffset - f.size());  // the rest of the header section; the log
  f.AppendBytes(MetadataTable());
  f.AppendZero(kMetadataOffset + kMetadataItemsOffset - f.size());
  f.AppendBytes(MetadataItems(l->block_size, l->virtual_size, disk_id));
  f.AppendZero(kBatOffset - f.size());

  std::vector<Extent> extents;
  for (const Region& r : f.regions()) extents.push_back({r.offset, r.length, r.is_data()});
  extents.push_back({kBatOffset, l->bat_bytes, true});
  extents.push_back({kBatOffset + l->bat_bytes, l->data_start - kBatOffset - l->bat_bytes, false});
  extents.push_back({l->data_start, l->file_size - l->data_start, true});
  l->extents = NormalizeExtents(std::move(extents));
  for (const Extent& e : l->extents) l->allocated += e.data ? e.length : 0;
  return std::shared_ptr<const Layout>(std::move(l));
}

Status VhdxView::Load() const { return layout_.Get().status(); }

uint64_t VhdxView::size() const {
  const Layout* l = layout_.Peek();
  return l != nullptr ? l->file_size : 0;
}

uint64_t VhdxView::allocated_bytes() const {
  const Layout* l = layout_.Peek();
  return l != nullptr ? l->allocated : 0;
}

uint32_t VhdxView::block_size() const {
  const Layout* l = layout_.Peek();
  return l != nullptr ? static_cast<uint32_t>(l->block_size) : 0;
}

// The BAT entries [piece * 512, piece * 512 + 512), as 4 KiB. Walks the groups of the
// piece in order with one running count of data groups before the current one, so it
// reads the index pages the piece covers (at most three) and no others; pages the
// summary says are empty are not read at all.
Result<std::shared_ptr<const std::string>> VhdxView::BatPiece(const Layout& l,
                                                              uint64_t piece) const {
  const DataMap& map = *l.map;
  auto out = std::make_shared<std::string>(kPieceBytes, '\0');
  const uint64_t first = piece * kBatPieceEntries;
  const uint64_t end = std::min(l.bat_entries, first + kBatPieceEntries);
  const uint64_t stride = l.chunk_ratio + 1;  // payload entries, then one bitmap entry
  auto block_of = [&](uint64_t entry) { return entry / stride * l.chunk_ratio + entry % stride; };
  uint64_t next_block = first % stride == l.chunk_ratio ? block_of(first + 1) : block_of(first);
  if (first >= end || next_block >= l.payload_blocks) {
    return std::shared_ptr<const std::string>(std::move(out));
  }
  VV_ASSIGN_OR_RETURN(uint64_t before, map.DataGroupsBefore(next_block));

  const uint64_t group_slots = map.group_slots();
  uint64_t page_no = UINT64_MAX;
  IndexPageCache::Page page;
  for (uint64_t e = first; e < end; ++e) {
    if (e % stride == l.chunk_ratio) continue;  // sector bitmap: SB_BLOCK_NOT_PRESENT
    const uint64_t block = block_of(e);
    const uint64_t slot = block * group_slots;
    const uint64_t p = slot / store::kIndexPageSlots;
    if (p != page_no) {
      page_no = p;
      page.reset();
      if (map.DataSlotsBeforePage(p + 1) > map.DataSlotsBeforePage(p)) {
        VV_ASSIGN_OR_RETURN(page, map.Page(p));
      }
    }
    const auto in_page = static_cast<uint32_t>(slot - p * store::kIndexPageSlots);
    const bool data =
        page != nullptr &&
        page->DataBefore(in_page + static_cast<uint32_t>(group_slots)) > page->DataBefore(in_page);
    uint64_t entry = kPayloadBlockZero;  // FileOffsetMB stays 0, as Hyper-V requires
    if (data) {
      if (before >= l.data_blocks) {
        return Status::Corruption(
            "vhdx view: the index holds more data groups than the disk summary says");
      }
      entry = kPayloadBlockFullyPresent | (l.data_start + before * l.block_size);
      ++before;
    }
    Put64(out.get(), (e - first) * 8, entry);
  }
  return std::shared_ptr<const std::string>(std::move(out));
}

Status VhdxView::RegionAt(uint64_t offset, Region* out) const {
  VV_ASSIGN_OR_RETURN(const Layout* l, layout_.Get());
  if (offset >= l->file_size) return Status::InvalidArgument("offset beyond the end of the vhdx");
  if (offset < kBatOffset) return l->fixed.RegionAt(offset, out);
  *out = Region();
  if (offset < kBatOffset + l->bat_bytes) {
    const uint64_t piece = (offset - kBatOffset) / kPieceBytes;
    VV_ASSIGN_OR_RETURN(out->bytes, BatPiece(*l, piece));
    out->type = RegionType::kBytes;
    out->offset = kBatOffset + piece * kPieceBytes;
    out->length = kPieceBytes;
    return Status::OK();
  }
  if (offset < l->data_start) {
    out->type = RegionType::kZero;
    out->offset = kBatOffset + l->bat_bytes;
    out->length = l->data_start - out->offset;
    return Status::OK();
  }
  // Payload block k holds data group k; its bytes are the raw view's, cut at the raw
  // view's end, then zeros to the block's end.
  const uint64_t k = (offset - l->data_start) / l->block_size;
  VV_ASSIGN_OR_RETURN(uint64_t group, l->map->NthDataGroup(k));
  const uint64_t guest = group * l->block_size;
  if (guest >= l->raw_size) {
    return Status::Corruption(fmt::format("vhdx view: data group {} lies past the disk", group));
  }
  const uint64_t block_start = l->data_start + k * l->block_size;
  const uint64_t raw_bytes = std::min(l->block_size, l->raw_size - guest);
  if (offset - block_start < raw_bytes) {
    out->type = RegionType::kView;
    out->offset = block_start;
    out->length = raw_bytes;
    out->view = raw_;
    out->source_offset = guest;
  } else {
    out->type = RegionType::kZero;
    out->offset = block_start + raw_bytes;
    out->length = l->block_size - raw_bytes;
  }
  return Status::OK();
}

Result<uint64_t> VhdxView::SeekData(uint64_t offset) const { return Seek(offset, true); }
Result<uint64_t> VhdxView::SeekHole(uint64_t offset) const { return Seek(offset, false); }

Result<uint64_t> VhdxView::Seek(uint64_t offset, bool want_data) const {
  VV_ASSIGN_OR_RETURN(const Layout* l, layout_.Get());
  if (offset >= l->file_size) return l->file_size;
  // The first extent that ends after `offset`; extents alternate, so the wanted kind
  // is here or in the next one.
  const auto it = std::upper_bound(l->extents.begin(), l->extents.end(), offset,
                                   [](uint64_t off, const Extent& e) { return off < e.end(); });
  if (it == l->extents.end()) return l->file_size;
  if (it->data == want_data) return offset;
  return it->end();
}

}  // namespace vmvault::fs
