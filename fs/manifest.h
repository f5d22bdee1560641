// manifest.json: the description of one backup shown in its directory of the mount.
// Generated from the catalog records; nothing here reads chunks.
//
//   {"format": "vmvault-manifest", "version": 1, "vm", "backup", "id", "time" (ISO
//    8601 UTC), "time_us", "tier", "method", "parent" (backup name or null),
//    "parent_id", "host", "duration_seconds", "config_kind", "config_file",
//    "disks": [{"name", "file" (the raw view's; null when the mount does not show
//               it), "virtual_size", "chunk_size", "source_format", "source_path",
//               "allocated_bytes", "bytes_read", "data_chunks", "new_chunks",
//               "new_bytes", "stored_bytes", "partitions", "files" (every view of
//               the disk the mount shows: raw, qcow2, vhdx, vmdk, partitions)}],
//    "vm_origin", "vm_period", "verified" (null, or the last verify: "time", "ok",
//    "sample_percent", "chunks", "problems")}
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "store/catalog.h"

namespace vmvault::fs {

struct ManifestInput {
  const store::VmRecord* vm = nullptr;
  const store::BackupRecord* backup = nullptr;
  std::optional<std::string> parent_name;  // when the parent backup still exists
  std::vector<std::string> disk_files;     // the raw view's file name, per disk ("": not shown)
  std::vector<std::vector<std::string>> disk_views;  // every file of each disk
  std::string config_file;                 // "" when the backup has no configuration
  std::optional<store::VerifyRecord> verification;  // the last `vmvault verify`
};

// The manifest as pretty-printed JSON with a trailing newline. Strings that are not
// valid UTF-8 are written with replacement characters rather than failing.
std::string BuildManifest(const ManifestInput& in);

}  // namespace vmvault::fs
