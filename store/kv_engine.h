// KvEngine: the ordered key-value store under a repository, split into key spaces
// (RocksDB column families). RocksKvEngine (rocks_kv_engine.cc, the only file that
// includes RocksDB) is the real one; MemKvEngine is a complete in-memory one for
// tests, which can also simulate a crash that drops every write not yet synced.
//
// Every method is thread-safe. A Write is atomic: after a crash either all of its
// operations are there or none. A Write with sync=true is durable when it returns,
// and so is every logged write that was issued before it (one shared write-ahead log).
//
// WriteUnlogged skips the write-ahead log: chunk values are most of the bytes an
// ingest writes, and logging them would write them twice. Unlogged writes become
// durable only through Flush(); until then a crash loses them, all together (RocksDB's
// atomic flush keeps the key spaces consistent with each other).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vmvault::store {

enum class KvSpace : uint8_t {
  kChunks = 0,  // chunk id -> stored chunk value (large values: BlobDB)
  kChunkMeta,   // chunk id -> plaintext and stored lengths (small: the dedup lookup)
  kCatalog,     // VMs, backups, counters
  kIndex,       // disk index pages
};
inline constexpr int kKvSpaceCount = 4;
std::string_view KvSpaceName(KvSpace space);

class KvBatch {
 public:
  struct Op {
    KvSpace space;
    bool is_delete;
    std::string key;
    std::string value;
  };
  void Put(KvSpace space, std::string_view key, std::string_view value) {
    bytes_ += key.size() + value.size();
    ops_.push_back({space, false, std::string(key), std::string(value)});
  }
  void Delete(KvSpace space, std::string_view key) {
    bytes_ += key.size();
    ops_.push_back({space, true, std::string(key), {}});
  }
  const std::vector<Op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }
  size_t approximate_bytes() const { return bytes_; }
  void Clear() {
    ops_.clear();
    bytes_ = 0;
  }

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

using KvScanFn = std::function<bool(std::string_view key, std::string_view value)>;

class KvEngine {
 public:
  virtual ~KvEngine() = default;

  // NotFound when the key is absent.
  virtual Status Get(KvSpace space, std::string_view key, std::string* value) const = 0;
  // Applies the batch atomically. ReadOnly on an engine opened for reading.
  virtual Status Write(const KvBatch& batch, bool sync) = 0;
  // Applies the batch atomically without logging it; durable after the next Flush().
  virtual Status WriteUnlogged(const KvBatch& batch) = 0;
  // Makes every write made so far durable, unlogged ones included.
  virtual Status Flush() = 0;
  // Calls fn for each key that starts with `prefix`, in key order, until fn returns false.
  virtual Status Scan(KvSpace space, std::string_view prefix, const KvScanFn& fn) const = 0;
  // For an engine that follows a writer in another process: catch up with what the
  // writer has committed. A no-op elsewhere.
  virtual Status Refresh() { return Status::OK(); }
  // Reclaims space after many deletes in `space` (garbage collection).
  virtual Status Compact(KvSpace space) = 0;
};

// An in-memory engine that models durability like RocksDB: unsynced logged writes
// become durable with a later synced write or Flush(), unlogged writes only with
// Flush(). DropUnsyncedWrites() throws away whatever is not durable, as a power cut
// would.
class MemKvEngine final : public KvEngine {
 public:
  MemKvEngine();
  ~MemKvEngine() override;
  Status Get(KvSpace space, std::string_view key, std::string* value) const override;
  Status Write(const KvBatch& batch, bool sync) override;
  Status WriteUnlogged(const KvBatch& batch) override;
  Status Flush() override;
  Status Scan(KvSpace space, std::string_view prefix, const KvScanFn& fn) const override;
  Status Compact(KvSpace) override { return Status::OK(); }

  // Simulates a crash: every write since the last synced one is lost.
  void DropUnsyncedWrites();
  // Fault injection: the next `n` writes (logged or not) fail with an I/O error.
  void FailNextWrites(int n);
  // Fault injection: the next Flush fails with an I/O error.
  void FailNextFlush();
  // Number of keys in `space`.
  size_t Count(KvSpace space) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

enum class KvOpenMode {
  kReadWrite,  // the single writer; creates the database if `create`
  kReadOnly,   // a snapshot of the committed state, for listing
  kFollower,   // a read-only view that Refresh() moves up to the writer's latest commit
};

struct RocksKvOptions {
  bool create = false;
  // Block cache for index and catalog reads, in bytes.
  size_t block_cache_bytes = 32 << 20;
};

Result<std::unique_ptr<KvEngine>> OpenRocksKvEngine(const std::string& dir, KvOpenMode mode,
                                                    const RocksKvOptions& options);

}  // namespace vmvault::store
