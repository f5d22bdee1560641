#include "base/partition_table.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "base/bytes.h"

namespace vmvault {
namespace {

constexpr uint64_t kSectorSize = 512;
constexpr uint32_t kMaxGptEntries = 1024;
constexpr uint64_t kMaxGptArrayBytes = 256 << 10;
constexpr uint32_t kMaxLogicals = 256;  // also the most EBRs read per disk
constexpr uint32_t kFirstLogical = 5;

using Sector = std::array<uint8_t, kSectorSize>;

Status ReadSector(Image& image, uint64_t lba, Sector* out) {
  return image.ReadAt(lba * kSectorSize, *out);
}

// Appends the partition at sectors [start, start + sectors) to `out`, unless it is empty
// or does not lie entirely within the disk's `disk_sectors` whole sectors.
void AddIfOnDisk(Partition p, uint64_t start, uint64_t sectors, uint64_t disk_sectors,
                 std::vector<Partition>* out) {
  if (sectors == 0 || start >= disk_sectors || sectors > disk_sectors - start) return;
  p.offset = start * kSectorSize;
  p.length = sectors * kSectorSize;
  out->push_back(std::move(p));
}

// ---- GPT (UEFI 2.10, section 5.3) ----

// "0fc63daf-8483-4772-8e79-3d69d8477de4": the first three fields are little-endian.
std::string GuidText(const uint8_t* g) {
  return fmt::format("{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                     GetLittleEndian32(g), GetLittleEndian16(g + 4), GetLittleEndian16(g + 6), g[8],
                     g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// UTF-16LE up to the first NUL, as UTF-8. An unpaired surrogate becomes U+FFFD.
std::string Utf16LeToUtf8(std::span<const uint8_t> in) {
  std::string out;
  for (size_t i = 0; i + 1 < in.size(); i += 2) {
    uint32_t cp = GetLittleEndian16(&in[i]);
    if (cp == 0) break;
    if (cp >= 0xd800 && cp <= 0xdbff && i + 3 < in.size()) {
      const uint32_t low = GetLittleEndian16(&in[i + 2]);
      if (low >= 0xdc00 && low <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i += 2;
      }
    }
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    AppendUtf8(cp, &out);
  }
  return out;
}

struct GptEntries {
  uint32_t entry_size = 0;
  std::vector<uint8_t> bytes;  // the whole entry array, its CRC checked
};

// The entry array of the GPT whose header is at `lba`, or nullopt when the header or the
// array fails a check. Only a failing read is an error.
Result<std::optional<GptEntries>> ReadGpt(Image& image, uint64_t lba) {
  using Maybe = std::optional<GptEntries>;
  const uint64_t disk_sectors = image.size() / kSectorSize;
  if (lba >= disk_sectors) return Maybe();
  Sector h;
  VV_RETURN_IF_ERROR(ReadSector(image, lba, &h));
  const uint32_t revision = GetLittleEndian32(&h[8]);
  const uint32_t header_size = GetLittleEndian32(&h[12]);
  if (std::memcmp(h.data(), "EFI PART", 8) != 0 || revision >> 16 != 1 || header_size < 92 ||
      header_size > kSectorSize) {
    return Maybe();
  }
  const uint32_t header_crc = GetLittleEndian32(&h[16]);
  std::fill_n(&h[16], 4, 0);  // the CRC covers the header with its own field zeroed
  if (Crc32({h.data(), header_size}) != header_crc) return Maybe();

  const uint64_t my_lba = GetLittleEndian64(&h[24]);
  const uint64_t first_usable = GetLittleEndian64(&h[40]);
  const uint64_t last_usable = GetLittleEndian64(&h[48]);
  const uint64_t array_lba = GetLittleEndian64(&h[72]);
  const uint32_t count = GetLittleEndian32(&h[80]);
  const uint32_t entry_size = GetLittleEndian32(&h[84]);
  const uint32_t array_crc = GetLittleEndian32(&h[88]);
  const uint64_t array_bytes = uint64_t{count} * entry_size;
  if (my_lba != lba || first_usable > last_usable || last_usable >= disk_sectors ||
      count > kMaxGptEntries || entry_size < 128 || entry_size % 8 != 0 ||
      array_bytes > kMaxGptArrayBytes || array_lba >= disk_sectors ||
      array_bytes > (disk_sectors - array_lba) * kSectorSize) {
    return Maybe();
  }
  GptEntries entries{entry_size, std::vector<uint8_t>(array_bytes)};
  if (array_bytes > 0) VV_RETURN_IF_ERROR(image.ReadAt(array_lba * kSectorSize, entries.bytes));
  if (Crc32(entries.bytes) != array_crc) return Maybe();
  return Maybe(std::move(entries));
}

Result<std::vector<Partition>> ReadGptPartitions(Image& image) {
  const uint64_t disk_sectors = image.size() / kSectorSize;
  // The primary header is at LBA 1; the backup at the last LBA.
  VV_ASSIGN_OR_RETURN(std::optional<GptEntries> gpt, ReadGpt(image, 1));
  if (!gpt) {
    VV_ASSIGN_OR_RETURN(gpt, ReadGpt(image, disk_sectors - 1));
  }
  std::vector<Partition> out;
  if (!gpt) return out;
  static constexpr uint8_t kUnused[16] = {};
  for (size_t i = 0; i * gpt->entry_size < gpt->bytes.size(); ++i) {
    const uint8_t* e = &gpt->bytes[i * gpt->entry_size];
    if (std::memcmp(e, kUnused, 16) == 0) continue;
    const uint64_t first = GetLittleEndian64(e + 32), last = GetLittleEndian64(e + 40);
    if (last < first) continue;
    Partition p{.number = static_cast<uint32_t>(i + 1),
                .scheme = "gpt",
                .type = GuidText(e),
                .name = Utf16LeToUtf8({e + 56, 72})};
    AddIfOnDisk(std::move(p), first, last - first + 1, disk_sectors, &out);
  }
  return out;
}

// ---- MBR ----

struct MbrEntry {
  uint8_t boot = 0;
  uint8_t type = 0;
  uint32_t start = 0;    // sectors, relative to the table's sector or extended partition
  uint32_t sectors = 0;  // 0 or type 0: unused
};

MbrEntry EntryAt(const Sector& s, int i) {
  const uint8_t* e = &s[446 + 16 * i];
  return {e[0], e[4], GetLittleEndian32(e + 8), GetLittleEndian32(e + 12)};
}
bool HasSignature(const Sector& s) { return s[510] == 0x55 && s[511] == 0xaa; }
bool IsExtended(uint8_t type) { return type == 0x05 || type == 0x0f || type == 0x85; }
bool IsUsed(const MbrEntry& e) { return e.type != 0 && e.sectors != 0; }

Partition MbrPartition(uint32_t number, uint8_t type) {
  return {.number = number, .scheme = "mbr", .type = fmt::format("0x{:02x}", type), .name = ""};
}

// Follows the chain of EBRs of the extended partition at sectors [ext_start, ext_start +
// ext_sectors), as Linux's parse_extended() does: every non-extended entry of an EBR is a
// logical partition relative to that EBR (the third and fourth only when they lie within
// both the EBR's and the extended partition's extent), and the first extended entry links
// to the next EBR, relative to `ext_start`. Stops at a missing signature, an EBR beyond the
// disk, an EBR seen before, or when `*ebrs_left` runs out.
Status ReadLogicals(Image& image, uint64_t ext_start, uint64_t ext_sectors, uint32_t* next_number,
                    uint32_t* ebrs_left, std::vector<Partition>* out) {
  const uint64_t disk_sectors = image.size() / kSectorSize;
  std::set<uint64_t> seen;
  uint64_t ebr = ext_start, ebr_sectors = ext_sectors;
  while (*ebrs_left > 0 && *next_number < kFirstLogical + kMaxLogicals && ebr < disk_sectors &&
         seen.insert(ebr).second) {
    --*ebrs_left;
    Sector s;
    VV_RETURN_IF_ERROR(ReadSector(image, ebr, &s));
    if (!HasSignature(s)) break;
    std::optional<MbrEntry> link;
    for (int i = 0; i < 4; ++i) {
      const MbrEntry e = EntryAt(s, i);
      if (!IsUsed(e)) continue;
      if (IsExtended(e.type)) {
        if (!link) link = e;
        continue;
      }
      const uint64_t start = ebr + e.start;
      if (i >= 2 && (uint64_t{e.start} + e.sectors > ebr_sectors ||
                     start + e.sectors > ext_start + ext_sectors)) {
        continue;  // the third and fourth entries of an EBR sometimes hold garbage
      }
      AddIfOnDisk(MbrPartition((*next_number)++, e.type), start, e.sectors, disk_sectors, out);
      if (*next_number == kFirstLogical + kMaxLogicals) break;
    }
    if (!link) break;
    ebr = ext_start + link->start;
    ebr_sectors = link->sectors;
  }
  return Status::OK();
}

}  // namespace

Result<std::vector<Partition>> ReadPartitions(Image& image) {
  std::vector<Partition> out;
  if (image.size() < kSectorSize) return out;
  Sector mbr;
  VV_RETURN_IF_ERROR(ReadSector(image, 0, &mbr));
  if (!HasSignature(mbr)) return out;
  std::array<MbrEntry, 4> entries;
  for (int i = 0; i < 4; ++i) entries[i] = EntryAt(mbr, i);
  for (const MbrEntry& e : entries) {
    if (e.type == 0xee) return ReadGptPartitions(image);
  }
  // A boot indicator other than 0 and 0x80 means a boot sector (FAT, NTFS), not a table.
  for (const MbrEntry& e : entries) {
    if (e.boot != 0 && e.boot != 0x80) return out;
  }

  const uint64_t disk_sectors = image.size() / kSectorSize;
  uint32_t next_logical = kFirstLogical, ebrs_left = kMaxLogicals;
  for (uint32_t slot = 0; slot < 4; ++slot) {
    const MbrEntry& e = entries[slot];
    if (!IsUsed(e)) continue;
    if (IsExtended(e.type)) {
      VV_RETURN_IF_ERROR(ReadLogicals(image, e.start, e.sectors, &next_logical, &ebrs_left, &out));
    } else {
      AddIfOnDisk(MbrPartition(slot + 1, e.type), e.start, e.sectors, disk_sectors, &out);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Partition& a, const Partition& b) { return a.number < b.number; });
  return out;
}

}  // namespace vmvault
