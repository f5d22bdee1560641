#include "fs/vmdk_descriptor.h"

#include <fmt/format.h>

#include <algorithm>

namespace vmvault::fs {

std::optional<std::string> VmdkDescriptor(std::string_view raw_file, uint64_t size,
                                          uint32_t cid) {
  if (raw_file.find('"') != std::string_view::npos) return std::nullopt;
  const uint64_t sectors = (size + 511) / 512;
  // The BIOS geometry VMware writes for IDE disks: 16 heads, 63 sectors per track.
  const uint64_t cylinders = std::min<uint64_t>(sectors / (16 * 63), 16383);
  return fmt::format(
      "# Disk DescriptorFile\n"
      "version=1\n"
      "CID={:08x}\n"
      "parentCID=ffffffff\n"
      "createType=\"monolithicFlat\"\n"
      "\n"
      "# Extent description\n"
      "RW {} FLAT \"{}\" 0\n"
      "\n"
      "# The Disk Data Base\n"
      "#DDB\n"
      "\n"
      "ddb.virtualHWVersion = \"4\"\n"
      "ddb.geometry.cylinders = \"{}\"\n"
      "ddb.geometry.heads = \"16\"\n"
      "ddb.geometry.sectors = \"63\"\n"
      "ddb.adapterType = \"ide\"\n",
      cid, sectors, raw_file, cylinders);
}

}  // namespace vmvault::fs
