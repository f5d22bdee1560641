// The `<disk>.vmdk` file of the mount: a VMware monolithicFlat descriptor whose one
// extent is the raw view beside it, named by a relative path, so VMware tools and
// qemu-img open the backup as a VMDK without a byte of it being copied.
//
// Pure function; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmvault::fs {

// The descriptor for a disk of `size` bytes whose raw view is `raw_file` in the same
// directory. `cid` identifies the content (VMDK's CID; stable per backup disk). The
// extent covers ceil(size / 512) sectors. nullopt when `raw_file` cannot be written in
// a descriptor (it contains a double quote).
std::optional<std::string> VmdkDescriptor(std::string_view raw_file, uint64_t size, uint32_t cid);

}  // namespace vmvault::fs
