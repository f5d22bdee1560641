// ChunkCache: the mount's shared cache of decompressed, verified chunks, in front of a
// store::ChunkReader. One instance serves every open file and every FUSE thread.
//
// Each chunk is read through ChunkReader::Read, which re-hashes it: a chunk that fails
// its checksum is Corruption naming the chunk id (logged here, once per failed load),
// and is never cached, so each read of it fails again rather than returning bad
// bytes. A chunk the index names but the store lacks is Corruption too.
//
// The reader is not owned and must outlive the cache. Thread-safe (see
// ShardedLruCache for the locking).
//
// The buffers of evicted chunks are kept for the next loads (a few MiB at most): a
// reused buffer already has a chunk's size, so decoding into it neither allocates nor
// zero-fills memory.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "base/result.h"
#include "fs/lru_cache.h"
#include "store/chunk_id.h"
#include "store/chunk_store.h"

namespace vmvault::fs {

inline constexpr size_t kDefaultChunkCacheBytes = 64 << 20;

class ChunkCache {
 public:
  using Chunk = std::shared_ptr<const std::string>;

  // `shards` 0 picks a count from the capacity and `typical_chunk_bytes`.
  ChunkCache(const store::ChunkReader* reader, size_t capacity_bytes,
             size_t typical_chunk_bytes, size_t shards = 0);

  // The plaintext of chunk `id`. REQUIRES: !id.is_zero().
  Result<Chunk> Get(const store::ChunkId& id);
  // Starts nothing and waits for nothing: loads `id` in the calling thread unless it
  // is cached or already being loaded. Errors are dropped (a later Get reports them).
  void Warm(const store::ChunkId& id);
  bool ContainsOrPending(const store::ChunkId& id) const { return lru_.ContainsOrPending(id); }

  CacheStats stats() const { return lru_.stats(); }
  size_t capacity() const { return lru_.capacity(); }

 private:
  class BufferPool;

  Result<Chunk> Load(const store::ChunkId& id) const;

  const store::ChunkReader* reader_;
  ShardedLruCache<store::ChunkId, std::string, store::ChunkIdHash> lru_;
  const std::shared_ptr<BufferPool> pool_;  // shared with the chunks that return to it
};

}  // namespace vmvault::fs
