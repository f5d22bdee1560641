// The chunking pipeline: reads one disk through Images, cuts it into fixed chunk slots,
// and stores every chunk the repository does not have yet.
//
// IngestDisk runs `threads` workers. Each owns one reader Image (from the factory, so
// one NBD connection per thread), one chunk-sized read buffer and one ChunkEncoder
// (zstd context), so at most about threads x chunk_size x 2 bytes are in flight
// whatever the disk's size. Workers claim slots in order from a shared counter:
//
//   - a slot that touches no data extent is a hole: it is never read;
//   - otherwise only its data extents are read (whole-chunk reads where the data is
//     contiguous) and the holes between them are zero-filled;
//   - an all-zero chunk is a hole too: never hashed or stored (zero id in the index);
//   - a chunk whose id the store has (ChunkWriter::Lookup) is only referenced;
//   - a new chunk is encoded and Put once, even when several workers, or several
//     backups running at the same time, meet the same content at once
//     (ChunkWriter::Claim).
//
// Changed-block tracking: with a base index (the parent backup's index of the same
// disk), only the slots a changed extent touches are read; every other slot takes the
// base's id, once the store confirms it still holds that chunk (a missing chunk is
// Corruption: the caller falls back to a full read rather than carry damage forward).
//
// The last slot may be short; only its real bytes are hashed and stored. The first
// error of any worker stops all of them and is returned; chunks already Put stay (they
// are unreferenced until some backup commits an index naming them).
//
// IngestDisk is thread-safe with respect to other calls; `writer` must be thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/image.h"
#include "base/progress.h"
#include "base/result.h"
#include "store/catalog.h"
#include "store/chunk_id.h"
#include "store/chunk_store.h"

namespace vmvault::ingest {

struct PipelineOptions {
  uint32_t chunk_size = 1 << 20;  // REQUIRES: > 0; the repository's chunk size
  int zstd_level = 3;
  size_t threads = 0;            // 0: one per hardware thread
  Progress* progress = nullptr;  // not owned; gets the bytes read
  // Changed-block tracking: when set, the parent backup's index of this disk (same size
  // and chunk size), and `changed` the ranges written since (data = true extents; others
  // are ignored). Not owned; must outlive the call.
  const store::DiskIndex* base = nullptr;
  std::vector<Extent> changed;
};

struct DiskStats {
  uint64_t bytes_read = 0;        // bytes read from the source
  uint64_t data_chunks = 0;       // slots that are not holes
  uint64_t new_chunks = 0;        // chunks this run stored first
  uint64_t new_stored_bytes = 0;  // their stored (encoded) size
  // Sum over the data slots of the stored size of each slot's chunk (a chunk that two
  // slots reference counts twice): what the disk takes compressed, before dedup.
  uint64_t stored_bytes = 0;
  uint64_t reused_chunks = 0;  // data slots whose id came from the base index unread
};

struct IngestedDisk {
  store::DiskIndex index;  // ceil(size / chunk_size) ids, zero for holes
  DiskStats stats;
};

// Makes a reader for one worker thread. Called once per worker, from that worker's
// thread, possibly concurrently.
using ReaderFactory = std::function<Result<std::unique_ptr<Image>>()>;

// Ingests a disk of `size` bytes whose data lies in the data extents of `extents`
// (other ranges read as zeros). Every reader must have exactly this size.
Result<IngestedDisk> IngestDisk(const ReaderFactory& open_reader, uint64_t size,
                                const std::vector<Extent>& extents,
                                const store::ChunkHasher& hasher, store::ChunkWriter& writer,
                                const PipelineOptions& options);

// The number of chunk slots of `chunk_size` that touch a data extent.
uint64_t CountDataSlots(const std::vector<Extent>& extents, uint64_t size, uint32_t chunk_size);

}  // namespace vmvault::ingest
