// Partition tables: reads the GPT or MBR (with its chain of logical partitions) of a
// disk image and lists the partitions the way Linux would number them, so a partition
// file in the mount matches what the guest called /dev/sda3. Sector size is 512.
//
// A missing or damaged table is not an error: the disk still backs up and keeps its raw
// view, it just has no partitions. Only a failing read of the image is an error.
// Partitions that do not lie entirely on the disk are dropped, never clipped.
//
// ReadPartitions() holds no state; calls are as thread-safe as the Image's ReadAt().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/image.h"
#include "base/result.h"

namespace vmvault {

struct Partition {
  // As Linux numbers them: GPT entry index + 1; MBR primaries 1-4 by slot, logical
  // partitions 5, 6, ... in chain order. Dropped and unused entries leave gaps.
  uint32_t number = 0;
  uint64_t offset = 0;  // bytes from the start of the disk
  uint64_t length = 0;  // bytes
  std::string scheme;   // "gpt" or "mbr"
  // GPT: the type GUID in lower-case canonical form, "0fc63daf-8483-4772-8e79-3d69d8477de4";
  // MBR: the type byte, "0x83".
  std::string type;
  std::string name;  // GPT: the partition name as UTF-8, cut at the first NUL; MBR: ""

  bool operator==(const Partition&) const = default;
};

// The partitions of `image` in number order; empty when the disk has no usable table
// (smaller than a sector, no 0x55aa signature, an MBR whose boot indicators say it is a
// boot sector rather than a table, or a protective MBR whose primary and backup GPT both
// fail their checks). An MBR with a 0xee entry is read as GPT only (no hybrid MBRs).
// Reads at most about 520 KiB: the MBR, two GPT headers and entry arrays of up to
// 256 KiB, or up to 256 EBRs.
Result<std::vector<Partition>> ReadPartitions(Image& image);

}  // namespace vmvault
