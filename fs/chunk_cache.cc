#include "fs/chunk_cache.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <vector>

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

class ChunkCache::BufferPool {
 public:
  explicit BufferPool(size_t max_bytes) : max_bytes_(max_bytes) {}

  std::unique_ptr<std::string> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return std::make_unique<std::string>();
    std::unique_ptr<std::string> b = std::move(free_.back());
    free_.pop_back();
    bytes_ -= b->capacity();
    return b;
  }

  void Give(std::unique_ptr<std::string> b) {
    std::lock_guard<std::mutex> lock(mu_);
    if (bytes_ + b->capacity() > max_bytes_) return;  // freed
    bytes_ += b->capacity();
    free_.push_back(std::move(b));
  }

 private:
  const size_t max_bytes_;
  std::mutex mu_;
  std::vector<std::unique_ptr<std::string>> free_;  // GUARDED_BY(mu_)
  size_t bytes_ = 0;                                // GUARDED_BY(mu_)
};

ChunkCache::ChunkCache(const store::ChunkReader* reader, size_t capacity_bytes,
                       size_t typical_chunk_bytes, size_t shards)
    : reader_(reader),
      lru_(capacity_bytes, shards != 0 ? shards : PickShards(capacity_bytes, typical_chunk_bytes),
           ChunkCharge),
      // Enough for the loads in flight on every prefetch thread.
      pool_(std::make_shared<BufferPool>(16 * std::max<size_t>(typical_chunk_bytes, 4096))) {}

Result<ChunkCache::Chunk> ChunkCache::Get(const store::ChunkId& id) {
  return lru_.GetOrLoad(id, [this, &id] { return Load(id); });
}

void ChunkCache::Warm(const store::ChunkId& id) {
  lru_.Warm(id, [this, &id] { return Load(id); });
}

Result<ChunkCache::Chunk> ChunkCache::Load(const store::ChunkId& id) const {
  std::unique_ptr<std::string> plaintext = pool_->Take();
  Status s = reader_->Read(id, plaintext.get());
  if (s.ok()) {
    // The last holder of the chunk gives its buffer back to the pool.
    return Chunk(plaintext.release(), [pool = pool_](const std::string* b) {
      pool->Give(std::unique_ptr<std::string>(const_cast<std::string*>(b)));
    });
  }
  pool_->Give(std::move(plaintext));
  if (s.IsNotFound()) {
    // The index names a chunk the store lacks: the repository is damaged.
    s = Status::Corruption(fmt::format("chunk {} is referenced but missing", id.hex()));
  }
  if (s.IsCorruption()) spdlog::error("{}", s.ToString());  // names the chunk id
  return s;
}

}  // namespace vmvault::fs
