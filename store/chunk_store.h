// The chunk store: content-addressed chunks over a KvEngine. Interfaces are split by
// capability (after RocksDB's backup engine): the mount holds a const ChunkReader&,
// ingest a ChunkWriter&, and only garbage collection sees ChunkStore::Delete.
//
// Every read re-hashes the plaintext: a mismatch is Corruption naming the chunk id,
// never wrong bytes. ChunkStore is thread-safe; it keeps a zstd context per thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "store/chunk_id.h"
#include "store/kv_engine.h"

namespace vmvault::store {

struct ChunkMeta {
  uint32_t plain_len = 0;   // plaintext bytes
  uint32_t stored_len = 0;  // bytes of the stored value, header included
};

class ChunkReader {
 public:
  virtual ~ChunkReader() = default;
  // Replaces *plaintext with chunk `id`'s bytes, verified against the id.
  // NotFound when the chunk is missing; Corruption when it fails to decode or verify.
  // REQUIRES: !id.is_zero().
  virtual Status Read(const ChunkId& id, std::string* plaintext) const = 0;
};

class ChunkWriter {
 public:
  virtual ~ChunkWriter() = default;
  // The chunk's metadata when chunk `id` is stored, nullopt when not (the dedup lookup;
  // reads only the small metadata, never the value).
  virtual Result<std::optional<ChunkMeta>> Lookup(const ChunkId& id) const = 0;
  // Stores `value` (from ChunkEncoder) as chunk `id`. Idempotent. Not durable until the
  // engine is flushed (the catalog's commit does that first).
  virtual Status Put(const ChunkId& id, std::string_view value) = 0;
  // Claims `id` for the Lookup-then-Put of a new chunk, waiting while another caller
  // (another worker, or another backup running at the same time) holds it, so no chunk
  // is encoded twice and exactly one caller counts it as new. Release ends the claim.
  virtual void Claim(const ChunkId& id) = 0;
  virtual void Release(const ChunkId& id) = 0;
};

class ChunkStore final : public ChunkReader, public ChunkWriter {
 public:
  // Neither pointer is owned; both must outlive the store.
  ChunkStore(KvEngine* kv, const ChunkHasher* hasher) : kv_(kv), hasher_(hasher) {}

  Status Read(const ChunkId& id, std::string* plaintext) const override;
  Result<std::optional<ChunkMeta>> Lookup(const ChunkId& id) const override;
  Status Put(const ChunkId& id, std::string_view value) override;
  void Claim(const ChunkId& id) override;
  void Release(const ChunkId& id) override;

  // The stored value as it is on disk, undecoded (verify, tests).
  Status ReadRaw(const ChunkId& id, std::string* value) const;
  // Removes a chunk, or several in one write. Only garbage collection calls these.
  Status Delete(const ChunkId& id) { return DeleteMany({&id, 1}); }
  Status DeleteMany(std::span<const ChunkId> ids);
  // Calls fn for every stored chunk until it returns false.
  Status ForEach(const std::function<bool(const ChunkId&, const ChunkMeta&)>& fn) const;

 private:
  KvEngine* kv_;
  const ChunkHasher* hasher_;
  // The claimed ids: at most one per ingest worker, so a vector.
  std::mutex claims_mu_;
  std::condition_variable claims_cv_;
  std::vector<ChunkId> claims_;  // GUARDED_BY(claims_mu_)
  int claim_waiters_ = 0;        // GUARDED_BY(claims_mu_)
};

std::string EncodeChunkMeta(const ChunkMeta& meta);
bool DecodeChunkMeta(std::string_view value, ChunkMeta* meta);

}  // namespace vmvault::store
