// Image: a disk as vmvault sees it, after nbdkit's plugin contract: a size, positional
// reads and a map of which ranges hold data. Sources (an NBD export of an image file,
// a block device) and fs views implement it; the ingest pipeline and the mount read
// through it.
//
// Thread-safety is per implementation; each one says so. Extents are sorted, do not
// overlap, and together cover [0, size()).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/status.h"

namespace vmvault {

struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool data = true;  // false: a hole or a range known to read as zeros

  uint64_t end() const { return offset + length; }
  bool operator==(const Extent&) const = default;
};

class Image {
 public:
  virtual ~Image() = default;

  // The virtual size in bytes.
  virtual uint64_t size() const = 0;

  // Fills `out` with the bytes at [offset, offset + out.size()).
  // REQUIRES: offset + out.size() <= size().
  virtual Status ReadAt(uint64_t offset, std::span<uint8_t> out) = 0;

  // The data and hole extents. The default is one data extent over the whole image.
  virtual Result<std::vector<Extent>> Extents() { return std::vector<Extent>{{0, size(), true}}; }
};

// Merges adjacent extents of the same kind and drops empty ones. Used by every
// producer of extent lists so consumers see a canonical form.
std::vector<Extent> NormalizeExtents(std::vector<Extent> extents);

}  // namespace vmvault
