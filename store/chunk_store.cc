#include "store/chunk_store.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/bytes.h"
#include "store/chunk_codec.h"

namespace vmvault::store {

std::string EncodeChunkMeta(const ChunkMeta& meta) {
  std::string out;
  PutLittleEndian32(&out, meta.plain_len);
  PutLittleEndian32(&out, meta.stored_len);
  return out;
}

bool DecodeChunkMeta(std::string_view value, ChunkMeta* meta) {
  if (value.size() != 8) return false;
  meta->plain_len = GetLittleEndian32(value.data());
  meta->stored_len = GetLittleEndian32(value.data() + 4);
  return true;
}

Status ChunkStore::Read(const ChunkId& id, std::string* plaintext) const {
  std::string value;
  Status s = kv_->Get(KvSpace::kChunks, id.key(), &value);
  if (s.IsNotFound()) return Status::NotFound(fmt::format("chunk {} is missing", id.hex()));
  VV_RETURN_IF_ERROR(s.WithContext(fmt::format("read chunk {}", id.hex())));
  thread_local ChunkDecoder decoder;
  s = decoder.Decode(value, plaintext);
  if (!s.ok()) return s.WithContext(fmt::format("chunk {}", id.hex()));
  const ChunkId actual = hasher_->Hash(
      {reinterpret_cast<const uint8_t*>(plaintext->data()), plaintext->size()});
  if (actual != id) {
    plaintext->clear();
    return Status::Corruption(
        fmt::format("chunk {} fails its checksum (its bytes hash to {})", id.hex(), actual.hex()));
  }
  return Status::OK();
}

Result<std::optional<ChunkMeta>> ChunkStore::Lookup(const ChunkId& id) const {
  std::string value;
  Status s = kv_->Get(KvSpace::kChunkMeta, id.key(), &value);
  if (s.IsNotFound()) return std::optional<ChunkMeta>();
  VV_RETURN_IF_ERROR(s);
  ChunkMeta meta;
  if (!DecodeChunkMeta(value, &meta)) {
    return Status::Corruption(fmt::format("metadata of chunk {} does not decode", id.hex()));
  }
  return std::optional<ChunkMeta>(meta);
}

Status ChunkStore::Put(const ChunkId& id, std::string_view value) {
  KvBatch batch;
  batch.Put(KvSpace::kChunks, id.key(), value);
  batch.Put(KvSpace::kChunkMeta, id.key(),
            EncodeChunkMeta({EncodedPlainLength(value), static_cast<uint32_t>(value.size())}));
  // Unlogged: the catalog's commit flushes before it writes (catalog.h).
  return kv_->WriteUnlogged(batch);
}

void ChunkStore::Claim(const ChunkId& id) {
  std::unique_lock<std::mutex> lock(claims_mu_);
  while (std::find(claims_.begin(), claims_.end(), id) != claims_.end()) {
    ++claim_waiters_;
    claims_cv_.wait(lock);
    --claim_waiters_;
  }
  claims_.push_back(id);
}

void ChunkStore::Release(const ChunkId& id) {
  bool notify;
  {
    std::lock_guard<std::mutex> lock(claims_mu_);
    claims_.erase(std::find(claims_.begin(), claims_.end(), id));
    notify = claim_waiters_ > 0;
  }
  if (notify) claims_cv_.notify_all();
}

Status ChunkStore::ReadRaw(const ChunkId& id, std::string* value) const {
  return kv_->Get(KvSpace::kChunks, id.key(), value);
}

Status ChunkStore::DeleteMany(std::span<const ChunkId> ids) {
  KvBatch batch;
  for (const ChunkId& id : ids) {
    batch.Delete(KvSpace::kChunks, id.key());
    batch.Delete(KvSpace::kChunkMeta, id.key());
  }
  return kv_->Write(batch, /*sync=*/false);
}

Status ChunkStore::ForEach(const std::function<bool(const ChunkId&, const ChunkMeta&)>& fn) const {
  Status inner;
  VV_RETURN_IF_ERROR(kv_->Scan(KvSpace::kChunkMeta, "", [&](std::string_view k,
                                                            std::string_view v) {
    ChunkMeta meta;
    if (k.size() != 16 || !DecodeChunkMeta(v, &meta)) {
      inner = Status::Corruption(fmt::format("chunk metadata key {} does not decode", ToHex(k)));
      return false;
    }
    return fn(ChunkId::FromKey(k), meta);
  }));
  return inner;
}

}  // namespace vmvault::store
