// A small, independent VHDX ([MS-VHDX]) decoder for the tests of fs/vhdx_view.h. It
// reads a file through a callback, checks what a strict reader would (signatures, every
// CRC-32C, the current header, both region tables, the metadata items, every BAT entry)
// plus what vmvault promises on top (no log, dynamic, payload blocks 1 MiB aligned,
// dense in guest order right after the metadata, the file ending with the last one),
// and then reads guest bytes through the BAT.
//
// Test-only; plain functions and values, thread-compatible.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/crc32c.h"

namespace vmvault::fs::testing {

// Reads [offset, offset + length) of the file; shorter only at its end.
using FileReader = std::function<std::string(uint64_t offset, uint64_t length)>;

struct VhdxFile {
  uint64_t file_size = 0;
  uint64_t virtual_size = 0;
  uint64_t block_size = 0;
  uint32_t logical_sector_size = 0;
  uint32_t physical_sector_size = 0;
  uint64_t chunk_ratio = 0;
  uint64_t log_offset = 0, log_length = 0;
  uint64_t bat_offset = 0, bat_length = 0;
  uint64_t metadata_offset = 0, metadata_length = 0;
  uint64_t data_start = 0;  // the first 1 MiB boundary after every metadata object
  std::string file_write_guid, data_write_guid, disk_id;
  std::vector<uint64_t> bat;                // every entry
  std::vector<uint64_t> block_file_offset;  // per payload block: its offset, 0 = zeros
  uint64_t present_blocks = 0;

  // The payload block the file block at `file_offset` holds, or -1.
  int64_t GuestBlockAt(uint64_t file_offset) const {
    if (file_offset < data_start) return -1;
    const uint64_t k = (file_offset - data_start) / block_size;
    return k < guest_of_present.size() ? static_cast<int64_t>(guest_of_present[k]) : -1;
  }
  std::vector<uint64_t> guest_of_present;  // present block k -> payload block number
};

namespace vhdx_internal {

inline std::string GuidText(uint32_t d1, uint16_t d2, uint16_t d3, std::array<uint8_t, 8> d4) {
  std::string g(16, '\0');
  for (int i = 0; i < 4; ++i) g[i] = static_cast<char>(d1 >> (8 * i));
  for (int i = 0; i < 2; ++i) g[4 + i] = static_cast<char>(d2 >> (8 * i));
  for (int i = 0; i < 2; ++i) g[6 + i] = static_cast<char>(d3 >> (8 * i));
  for (int i = 0; i < 8; ++i) g[8 + i] = static_cast<char>(d4[i]);
  return g;
}

inline bool ChecksumOk(std::string s, size_t at) {
  const uint32_t stored = GetLittleEndian32(s.data() + at);
  std::memset(s.data() + at, 0, 4);
  return Crc32c(s.data(), s.size()) == stored;
}

inline bool AllZero(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

}  // namespace vhdx_internal

inline ::testing::AssertionResult DecodeVhdx(const FileReader& read, uint64_t file_size,
                                             VhdxFile* v) {
  using namespace vhdx_internal;  // NOLINT(build/namespaces): test-local helpers
  constexpr uint64_t kMiB = 1 << 20;
  auto fail = [](const std::string& why) { return ::testing::AssertionFailure() << why; };
  auto read_exact = [&](uint64_t off, uint64_t len, std::string* out) {
    *out = read(off, len);
    return out->size() == len;
  };
  *v = VhdxFile();
  v->file_size = file_size;
  if (file_size < 4 * kMiB || file_size % kMiB != 0) {
    return fail("file size " + std::to_string(file_size) + " is not whole MiBs past 4 MiB");
  }

  // File type identifier.
  std::string id;
  if (!read_exact(0, 64 << 10, &id)) return fail("short file identifier");
  if (id.compare(0, 8, "vhdxfile") != 0) return fail("no vhdxfile signature");
  const std::string creator("v\0m\0v\0a\0u\0l\0t\0\0\0", 16);
  if (id.compare(8, creator.size(), creator) != 0) return fail("creator is not vmvault");

  // Headers: both valid, the current one has the greater sequence number.
  std::string h[2];
  uint64_t seq[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    if (!read_exact((i + 1) * (64 << 10), 4096, &h[i])) return fail("short header");
    if (h[i].compare(0, 4, "head") != 0) return fail("header signature");
    if (!ChecksumOk(h[i], 4)) return fail("header " + std::to_string(i + 1) + " checksum");
    seq[i] = GetLittleEndian64(h[i].data() + 8);
  }
  if (seq[0] == seq[1]) return fail("both headers have the same sequence number");
  const std::string& cur = seq[0] > seq[1] ? h[0] : h[1];
  v->file_write_guid = cur.substr(16, 16);
  v->data_write_guid = cur.substr(32, 16);
  if (!AllZero(cur.substr(48, 16))) return fail("LogGuid is not zero: a log to replay");
  if (GetLittleEndian16(cur.data() + 64) != 0) return fail("LogVersion is not 0");
  if (GetLittleEndian16(cur.data() + 66) != 1) return fail("Version is not 1");
  v->log_length = GetLittleEndian32(cur.data() + 68);
  v->log_offset = GetLittleEndian64(cur.data() + 72);
  if (v->log_length == 0 || v->log_length % kMiB != 0) return fail("bad LogLength");
  if (v->log_offset < kMiB || v->log_offset % kMiB != 0) return fail("bad LogOffset");
  if (AllZero(v->file_write_guid) || AllZero(v->data_write_guid)) return fail("zero GUIDs");

  // Region tables: identical, valid, BAT and metadata exactly once, both required.
  std::string rt[2];
  for (int i = 0; i < 2; ++i) {
    if (!read_exact((3 + i) * (64 << 10), 64 << 10, &rt[i])) return fail("short region table");
    if (rt[i].compare(0, 4, "regi") != 0) return fail("region table signature");
    if (!ChecksumOk(rt[i], 4)) return fail("region table " + std::to_string(i + 1) + " checksum");
  }
  if (rt[0] != rt[1]) return fail("region tables differ");
  const std::string bat_guid =
      GuidText(0x2DC27766, 0xF623, 0x4200, {0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08});
  const std::string meta_guid =
      GuidText(0x8B7CA206, 0x4790, 0x4B9A, {0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E});
  const uint64_t entries = GetLittleEndian32(rt[0].data() + 8);
  if (entries > 2047) return fail("too many region table entries");
  int found_bat = 0, found_meta = 0;
  std::vector<std::pair<uint64_t, uint64_t>> objects = {{0, kMiB}, {v->log_offset, v->log_length}};
  for (uint64_t e = 0; e < entries; ++e) {
    const size_t at = 16 + 32 * e;
    const std::string guid = rt[0].substr(at, 16);
    const uint64_t off = GetLittleEndian64(rt[0].data() + at + 16);
    const uint64_t len = GetLittleEndian32(rt[0].data() + at + 24);
    const bool required = (GetLittleEndian32(rt[0].data() + at + 28) & 1) != 0;
    if (off < kMiB || off % kMiB != 0 || len == 0 || len % kMiB != 0) {
      return fail("region not 1 MiB aligned");
    }
    if (guid == bat_guid) {
      ++found_bat;
      v->bat_offset = off;
      v->bat_length = len;
    } else if (guid == meta_guid) {
      ++found_meta;
      v->metadata_offset = off;
      v->metadata_length = len;
    } else if (required) {
      return fail("unknown required region");
    }
    if (!required) return fail("BAT and metadata regions must be required");
    objects.push_back({off, len});
  }
  if (found_bat != 1 || found_meta != 1) return fail("BAT or metadata region missing");
  std::sort(objects.begin(), objects.end());
  for (size_t i = 1; i < objects.size(); ++i) {
    if (objects[i - 1].first + objects[i - 1].second > objects[i].first) {
      return fail("header section, log, BAT and metadata overlap");
    }
  }
  v->data_start = objects.back().first + objects.back().second;

  // Metadata table and items.
  std::string meta;
  if (!read_exact(v->metadata_offset, v->metadata_length, &meta)) return fail("short metadata");
  if (meta.compare(0, 8, "metadata") != 0) return fail("metadata signature");
  const uint64_t items = GetLittleEndian16(meta.data() + 10);
  if (items > 2047) return fail("too many metadata items");
  const std::string params_guid =
      GuidText(0xCAA16737, 0xFA36, 0x4D43, {0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B});
  const std::string size_guid =
      GuidText(0x2FA54224, 0xCD1B, 0x4876, {0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8});
  const std::string page83_guid =
      GuidText(0xBECA12AB, 0xB2E6, 0x4523, {0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46});
  const std::string logical_guid =
      GuidText(0x8141BF1D, 0xA96F, 0x4709, {0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F});
  const std::string physical_guid =
      GuidText(0xCDA348C7, 0x445D, 0x4471, {0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56});
  int seen = 0;
  uint32_t param_bits = 0;
  for (uint64_t i = 0; i < items; ++i) {
    const size_t at = 32 + 32 * i;
    const std::string guid = meta.substr(at, 16);
    const uint64_t off = GetLittleEndian32(meta.data() + at + 16);
    const uint64_t len = GetLittleEndian32(meta.data() + at + 20);
    const uint64_t flags = GetLittleEndian32(meta.data() + at + 24);
    if (off < (64 << 10) || off + len > v->metadata_length || len > kMiB) {
      return fail("metadata item outside the region");
    }
    if ((flags & 4) == 0) return fail("metadata item not required");
    const bool virtual_disk = (flags & 2) != 0;
    if (guid == params_guid && len == 8 && !virtual_disk) {
      v->block_size = GetLittleEndian32(meta.data() + off);
      param_bits = GetLittleEndian32(meta.data() + off + 4);
      seen |= 1;
    } else if (guid == size_guid && len == 8 && virtual_disk) {
      v->virtual_size = GetLittleEndian64(meta.data() + off);
      seen |= 2;
    } else if (guid == page83_guid && len == 16 && virtual_disk) {
      v->disk_id = meta.substr(off, 16);
      seen |= 4;
    } else if (guid == logical_guid && len == 4 && virtual_disk) {
      v->logical_sector_size = GetLittleEndian32(meta.data() + off);
      seen |= 8;
    } else if (guid == physical_guid && len == 4 && virtual_disk) {
      v->physical_sector_size = GetLittleEndian32(meta.data() + off);
      seen |= 16;
    } else {
      return fail("unknown or malformed metadata item " + std::to_string(i));
    }
  }
  if (seen != 31) return fail("a required metadata item is missing");
  if (param_bits != 0) return fail("not a dynamic disk without a parent");
  if (v->block_size < kMiB || v->block_size > 256 * kMiB || !std::has_single_bit(v->block_size)) {
    return fail("bad block size");
  }
  if (v->logical_sector_size != 512 && v->logical_sector_size != 4096) return fail("bad LSS");
  if (v->physical_sector_size != 512 && v->physical_sector_size != 4096) return fail("bad PSS");
  if (v->virtual_size % v->logical_sector_size != 0) return fail("size not whole sectors");
  if (v->virtual_size > (uint64_t{64} << 40)) return fail("size over 64 TiB");
  if (AllZero(v->disk_id)) return fail("zero virtual disk id");

  // BAT.
  v->chunk_ratio = (uint64_t{1} << 23) * v->logical_sector_size / v->block_size;
  const uint64_t blocks = (v->virtual_size + v->block_size - 1) / v->block_size;
  const uint64_t bat_entries = blocks == 0 ? 0 : blocks + (blocks - 1) / v->chunk_ratio;
  if (bat_entries * 8 > v->bat_length) return fail("BAT region too small");
  std::string bat;
  if (!read_exact(v->bat_offset, v->bat_length, &bat)) return fail("short BAT");
  if (!AllZero(bat.substr(bat_entries * 8))) return fail("BAT has bytes past its entries");
  const uint64_t stride = v->chunk_ratio + 1;
  v->bat.resize(bat_entries);
  v->block_file_offset.assign(blocks, 0);
  for (uint64_t e = 0; e < bat_entries; ++e) {
    const uint64_t entry = GetLittleEndian64(bat.data() + e * 8);
    v->bat[e] = entry;
    if (e % stride == v->chunk_ratio) {
      if (entry != 0) return fail("sector bitmap entry " + std::to_string(e) + " not zero");
      continue;
    }
    const uint64_t block = e / stride * v->chunk_ratio + e % stride;
    const uint64_t state = entry & 7;
    const uint64_t offset = entry & ~(kMiB - 1);
    if ((entry & (kMiB - 1) & ~uint64_t{7}) != 0) return fail("reserved BAT bits set");
    if (state == 2) {  // PAYLOAD_BLOCK_ZERO
      if (offset != 0) return fail("ZERO block with a file offset");
    } else if (state == 6) {  // PAYLOAD_BLOCK_FULLY_PRESENT
      const uint64_t want = v->data_start + v->present_blocks * v->block_size;
      if (offset != want) {
        return fail("block " + std::to_string(block) + " at " + std::to_string(offset) +
                    ", not densely at " + std::to_string(want));
      }
      if (offset + v->block_size > file_size) return fail("block past the end of the file");
      v->block_file_offset[block] = offset;
      v->guest_of_present.push_back(block);
      ++v->present_blocks;
    } else {
      return fail("BAT entry " + std::to_string(e) + " in state " + std::to_string(state));
    }
  }
  if (file_size != v->data_start + v->present_blocks * v->block_size) {
    return fail("file does not end with its last payload block");
  }
  return ::testing::AssertionSuccess();
}

// The guest bytes [offset, offset + length), cut at the virtual size, through the BAT.
inline std::string ReadGuest(const VhdxFile& v, const FileReader& read, uint64_t offset,
                             uint64_t length) {
  std::string out;
  const uint64_t end = std::min(v.virtual_size, offset + length);
  while (offset < end) {
    const uint64_t block = offset / v.block_size;
    const uint64_t in_block = offset % v.block_size;
    const uint64_t n = std::min(end - offset, v.block_size - in_block);
    if (v.block_file_offset[block] == 0) {
      out.append(n, '\0');
    } else {
      out += read(v.block_file_offset[block] + in_block, n);
    }
    offset += n;
  }
  return out;
}

}  // namespace vmvault::fs::testing
