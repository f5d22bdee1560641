// Sizes: how much of the repository each backup and each VM takes, for `vmvault list`,
// `show-backups` and `status`.
//
// Three sizes per backup:
//   logical: the disks' virtual sizes added up (from the backup record; free);
//   stored: the stored (compressed) bytes of the distinct chunks the backup references;
//   unique: the stored bytes of the chunks no other backup references, which is what
//     pruning the backup and running gc would free.
// Per VM the same over all its backups together: stored counts each chunk once, unique
// is what pruning every backup of the VM would free.
//
// Cost: one pass over the metadata of every stored chunk (ChunkStore::ForEach: small
// values, read in key order) and one over every index page of every backup, as gc's
// mark phase does, whatever `only_vm` says (a chunk's uniqueness depends on every
// other backup). Memory is about 70 bytes per stored chunk (1 TiB of 256 KiB chunks:
// about 300 MiB). So compute it once per command, never per backup.
//
// Pure functions over a Catalog and ChunkStore; thread-safe as they are. Run it on a
// repository opened read-only (a snapshot), so both passes see the same state.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/result.h"
#include "store/catalog.h"
#include "store/chunk_store.h"

namespace vmvault::store {

struct UsageSizes {
  uint64_t logical = 0;  // bytes of the disks' virtual sizes
  uint64_t stored = 0;   // stored bytes of the distinct chunks referenced
  uint64_t unique = 0;   // stored bytes of the chunks referenced by nothing else
  uint64_t chunks = 0;   // distinct chunks referenced
};

struct RepoSizes {
  uint64_t chunks = 0;             // chunks stored
  uint64_t stored = 0;             // their stored bytes
  uint64_t referenced_chunks = 0;  // distinct chunks some backup references
  uint64_t referenced = 0;         // their stored bytes
  uint64_t unreferenced = 0;       // stored bytes of the others: what gc frees now
  uint64_t missing_chunks = 0;     // referenced but not stored (damage; run verify)
};

struct SizeReport {
  std::map<uint64_t, UsageSizes> backups;  // by backup id
  // By VM name; logical is the newest backup's.
  std::map<std::string, UsageSizes, std::less<>> vms;
  RepoSizes repo;
};

// The sizes of every backup and VM in the catalog. `progress`: a progress line on
// stderr (drawn on a terminal only).
Result<SizeReport> ComputeSizes(const Catalog& catalog, const ChunkStore& chunks,
                                bool progress = false);

}  // namespace vmvault::store
