// Garbage collection: removes the chunks no backup references, then compacts the
// chunk key spaces so the space comes back to the filesystem (borg compact, restic
// prune's repack, PBS's garbage collection).
//
// Mark: every index page of every backup, its chunk ids into a set (about 50 bytes per
// distinct chunk). Sweep: every stored chunk not in the set is deleted, in batches.
// Then RocksDB compacts the chunk spaces with blob garbage collection forced, which
// rewrites the blob files that still hold live chunks and deletes the rest.
//
// Unreferenced chunks come from pruned backups and from ingests that failed or were
// killed before they committed. The caller holds the writer lock (the repository is
// open in kWrite mode), so no ingest adds references while gc runs: a chunk an ingest
// stored but has not committed yet cannot exist then.
//
// Mounts: gc bumps the catalog generation when it deleted something, so mounts reopen
// their read-only view; a mount that still reads a pruned backup through an open file
// gets ENOENT for chunks that are gone (fs/view_reader), never other bytes.
#pragma once

#include <cstdint>
#include <string>

#include "base/progress.h"
#include "base/result.h"
#include "store/repository.h"

namespace vmvault::store {

struct GcOptions {
  bool dry_run = false;  // count what would go, delete nothing
  bool compact = true;   // compact afterwards (tests of the sweep alone turn it off)
  bool progress = false; // a progress line on stderr (a terminal only)
};

struct GcStats {
  uint64_t backups = 0;            // backups whose indexes were read
  uint64_t referenced_chunks = 0;  // distinct chunks they reference
  uint64_t stored_chunks = 0;      // chunks stored before gc
  uint64_t deleted_chunks = 0;     // (or, dry run, that would be)
  uint64_t deleted_bytes = 0;      // their stored (compressed) size
  uint64_t missing_chunks = 0;     // referenced but not stored (damage; run verify)
  uint64_t disk_bytes_before = 0;  // the repository's size on disk (allocated blocks)
  uint64_t disk_bytes_after = 0;
};

// REQUIRES: repo.writable().
Result<GcStats> CollectGarbage(Repository& repo, const GcOptions& options);

// The bytes allocated on disk under `path` (st_blocks, like du), 0 for a repository in
// memory.
uint64_t DiskUsage(const std::string& path);

}  // namespace vmvault::store
