#include "fs/chunk_cache.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace vmvault::fs {
namespace {

// A chunk's charge: its bytes plus bookkeeping.
size_t ChunkCharge(const std::string& plaintext) { return plaintext.size() + 128; }

size_t PickShards(size_t capacity, size_t typical_chunk_bytes) {
  // Each shard should hold at least eight chunks, so one hot shard does not thrash.
  const size_t per_shard = 8 * std::max<size_t>(typical_chunk_bytes, 4096);
  return std::clamp<size_t>(capacity / per_shard, 1, 16);
}

}  // namespace

ChunkCache::ChunkCache(const store::ChunkReader* reader, size_t capacity_bytes,
                       size_t typical_chunk_bytes, size_t shards)
    : reader_(reader),
      lru_(capacity_bytes, shards != 0 ? shards : PickShards(capacity_bytes, typical_chunk_bytes),
           ChunkCharge) {}

Result<ChunkCache::Chunk> ChunkCache::Get(const store::ChunkId& id) {
  return lru_.GetOrLoad(id, [this, &id] { return Load(id); });
}

void ChunkCache::Warm(const store::ChunkId& id) {
  lru_.Warm(id, [this, &id] { return Load(id); });
}

Result<ChunkCache::Chunk> ChunkCache::Load(const store::ChunkId& id) const {
  auto plaintext = std::make_shared<std::string>();
  Status s = reader_->Read(id, plaintext.get());
  if (s.ok()) return Chunk(std::move(plaintext));
  if (s.IsNotFound()) {
    // The index names a chunk the store lacks: the repository is damaged.
    s = Status::Corruption(fmt::format("chunk {} is referenced but missing", id.hex()));
  }
  if (s.IsCorruption()) spdlog::error("{}", s.ToString());  // names the chunk id
  return s;
}

}  // namespace vmvault::fs
