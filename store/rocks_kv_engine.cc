// The RocksDB adapter: the only file in vmvault that includes RocksDB. Each KvSpace is
// a column family, tuned for its records (see store/FORMAT.md):
//   chunks      integrated BlobDB: chunk values go to blob files, so compactions move
//               only small references; no RocksDB compression (values are zstd already)
//   chunk_meta  small values with a bloom filter: the dedup lookup
//   catalog     small JSON records
//   index       index pages (random ids, mostly incompressible), 64 KiB values
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "store/kv_engine.h"

namespace vmvault::store {
namespace {

Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::OK();
  std::string msg = fmt::format("{}: {}", context, s.ToString());
  if (s.IsNotFound()) return Status::NotFound(std::move(msg));
  if (s.IsCorruption()) return Status::Corruption(std::move(msg));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(msg));
  if (s.IsBusy() || s.IsTryAgain()) return Status::Busy(std::move(msg));
  if (s.IsNoSpace() || s.ToString().find("No space left") != std::string::npos) {
    return Status::NoSpace(std::move(msg));
  }
  if (s.ToString().find("Read-only file system") != std::string::npos ||
      s.ToString().find("Permission denied") != std::string::npos) {
    return Status::ReadOnly(std::move(msg));
  }
  return Status::IOError(std::move(msg));
}

std::vector<rocksdb::ColumnFamilyDescriptor> Families(
    const std::shared_ptr<rocksdb::Cache>& cache) {
  auto table = [&](int bloom_bits) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    if (bloom_bits > 0) t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(bloom_bits));
    t.cache_index_and_filter_blocks = true;
    t.pin_l0_filter_and_index_blocks_in_cache = true;
    return rocksdb::NewBlockBasedTableFactory(t);
  };

  rocksdb::ColumnFamilyOptions chunks;
  chunks.table_factory.reset(table(10));
  chunks.compression = rocksdb::kNoCompression;
  chunks.enable_blob_files = true;
  chunks.min_blob_size = 512;
  chunks.blob_file_size = 256 << 20;
  chunks.blob_compression_type = rocksdb::kNoCompression;
  // Off until garbage collection can coordinate with mounts that hold old blob files.
  chunks.enable_blob_garbage_collection = false;
  // Memtables hold chunk values until they are flushed into blob files: keep them
  // small enough for ingest's memory budget.
  chunks.write_buffer_size = 32 << 20;

  rocksdb::ColumnFamilyOptions meta;
  meta.table_factory.reset(table(10));
  meta.compression = rocksdb::kNoCompression;
  meta.optimize_filters_for_hits = false;

  rocksdb::ColumnFamilyOptions catalog;
  catalog.table_factory.reset(table(0));

  rocksdb::ColumnFamilyOptions index;
  index.table_factory.reset(table(0));
  index.compression = rocksdb::kLZ4Compression;
  index.write_buffer_size = 64 << 20;

  return {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {"chunks", chunks},
      {"chunk_meta", meta},
      {"catalog", catalog},
      {"index", index},
  };
}

// An open database with its column family handles.
struct OpenDb {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // default, then one per KvSpace

  ~OpenDb() {
    if (!db) return;
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close().PermitUncheckedError();
  }
  rocksdb::ColumnFamilyHandle* Handle(KvSpace space) const {
    return handles[1 + static_cast<size_t>(space)];
  }
};

// RocksDB's messages go to vmvault's log, not to a LOG file in the repository: a file
// the database writes on its own, unsynced and unchecked, and in Debian's build an
// assertion once a write to it has failed, which a full filesystem turned into an abort.
class SpdlogRocksLogger final : public rocksdb::Logger {
 public:
  SpdlogRocksLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, format, ap);
    // Purging obsolete files lists the WAL archive folder, which vmvault never makes.
    if (std::strstr(buf, "Error when reading") != nullptr && std::strstr(buf, "NotFound") != nullptr) {
      return;
    }
    // Failures that matter come back as a Status; the log only adds detail. Warnings
    // (write stalls while ingest outruns the disk) are for debugging.
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      spdlog::warn("rocksdb: {}", buf);
    } else {
      spdlog::debug("rocksdb: {}", buf);
    }
  }
};

Result<std::shared_ptr<OpenDb>> OpenDatabase(const std::string& dir, KvOpenMode mode,
                                             const RocksKvOptions& options,
                                             const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create;
  db_options.create_missing_column_families = options.create;
  db_options.max_background_jobs = 4;
  db_options.bytes_per_sync = 1 << 20;
  db_options.keep_log_file_num = 4;
  db_options.max_manifest_file_size = 64 << 20;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.info_log = std::make_shared<SpdlogRocksLogger>();
  // Chunk writes skip the log (WriteUnlogged); flushing every key space together keeps
  // a chunk and its metadata from surviving a crash one without the other.
  db_options.atomic_flush = true;
  // Catalog writes are logged; do not let rarely-flushed key spaces pin old logs.
  db_options.max_total_wal_size = 64 << 20;
  // Closing and opening write nothing but the log: every commit has flushed what it
  // needs, and what a failed ingest left in memory is garbage. So a repository whose
  // filesystem is full still opens (for gc) and closes after an error without RocksDB
  // trying to write table files into no space.
  db_options.avoid_flush_during_shutdown = true;
  db_options.avoid_flush_during_recovery = true;
  // No preallocation: RocksDB reserves whole memtables' and blob files' worth of space
  // ahead of writing (tens of MiB), which fails a nearly full filesystem long before
  // the bytes themselves would, gc's few deletes included.
  db_options.allow_fallocate = false;

  const auto families = Families(cache);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (mode == KvOpenMode::kReadWrite) {
    s = rocksdb::DB::Open(db_options, dir, families, &handles, &raw);
  } else {
    // Followers use read-only opens too: RocksDB 7.8's secondary instances crash on
    // BlobDB reads (facebook/rocksdb#13296), so a follower reopens to catch up.
    db_options.max_open_files = -1;
    s = rocksdb::DB::OpenForReadOnly(db_options, dir, families, &handles, &raw);
  }
  if (!s.ok()) {
    Status st = FromRocks(s, fmt::format("open database {}", dir));
    // A database that is not there or does not parse is a damaged repository.
    if (st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kNotFound) {
      st = Status::Corruption(st.message());
    }
    return st;
  }
  auto open = std::make_shared<OpenDb>();
  open->db.reset(raw);
  open->handles = std::move(handles);
  return open;
}

class RocksKvEngine final : public KvEngine {
 public:
  RocksKvEngine(std::string dir, KvOpenMode mode, RocksKvOptions options,
                std::shared_ptr<rocksdb::Cache> cache, std::shared_ptr<OpenDb> db)
      : dir_(std::move(dir)),
        mode_(mode),
        options_(std::move(options)),
        cache_(std::move(cache)),
        db_(std::move(db)) {}

  Status Get(KvSpace space, std::string_view key, std::string* value) const override {
    const std::shared_ptr<OpenDb> db = Current();
    rocksdb::ReadOptions ro;
    // Chunk values are re-hashed by ChunkStore; a second checksum would only cost time.
    ro.verify_checksums = space != KvSpace::kChunks;
    rocksdb::PinnableSlice pinned;
    rocksdb::Status s =
        db->db->Get(ro, db->Handle(space), rocksdb::Slice(key.data(), key.size()), &pinned);
    if (s.IsNotFound()) return Status::NotFound("key not found");
    if (!s.ok()) return FromRocks(s, fmt::format("read {}", KvSpaceName(space)));
    value->assign(pinned.data(), pinned.size());
    return Status::OK();
  }

  Status Write(const KvBatch& batch, bool sync) override {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return Apply(batch, wo);
  }

  Status WriteUnlogged(const KvBatch& batch) override {
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;
    return Apply(batch, wo);
  }

  Status Flush() override {
    if (mode_ != KvOpenMode::kReadWrite) return Status::OK();
    const std::shared_ptr<OpenDb> db = Current();
    rocksdb::FlushOptions fo;
    fo.wait = true;
    if (Status failed = Failed(); !failed.ok()) return failed;
    return Remember(FromRocks(db->db->Flush(fo, db->handles), "flush"));
  }

  Status Scan(KvSpace space, std::string_view prefix, const KvScanFn& fn) const override {
    const std::shared_ptr<OpenDb> db = Current();
    rocksdb::ReadOptions ro;
    ro.fill_cache = space != KvSpace::kChunks;
    std::unique_ptr<rocksdb::Iterator> it(db->db->NewIterator(ro, db->Handle(space)));
    const rocksdb::Slice p(prefix.data(), prefix.size());
    for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
      if (!fn(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size()))) {
        break;
      }
    }
    return FromRocks(it->status(), fmt::format("scan {}", KvSpaceName(space)));
  }

  Status Refresh() override {
    if (mode_ != KvOpenMode::kFollower) return Status::OK();
    // Open the database as it is now and swap it in. Readers that hold the old one
    // finish on it; it closes when the last of them lets go.
    VV_ASSIGN_OR_RETURN(std::shared_ptr<OpenDb> fresh,
                        OpenDatabase(dir_, KvOpenMode::kReadOnly, options_, cache_));
    std::lock_guard<std::mutex> lock(mu_);
    db_ = std::move(fresh);
    return Status::OK();
  }

  Status Compact(KvSpace space) override {
    if (mode_ != KvOpenMode::kReadWrite) return Status::ReadOnly("the repository is open read-only");
    const std::shared_ptr<OpenDb> db = Current();
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    // Rewrite every blob file that holds a deleted value, so the ones left with only
    // garbage are deleted (automatic blob GC stays off: see the chunks options).
    o.blob_garbage_collection_policy = rocksdb::BlobGarbageCollectionPolicy::kForce;
    o.blob_garbage_collection_age_cutoff = 1.0;
    return FromRocks(db->db->CompactRange(o, db->Handle(space), nullptr, nullptr), "compact");
  }

 private:
  Status Apply(const KvBatch& batch, const rocksdb::WriteOptions& wo) {
    if (mode_ != KvOpenMode::kReadWrite) return Status::ReadOnly("the repository is open read-only");
    if (Status failed = Failed(); !failed.ok()) return failed;
    const std::shared_ptr<OpenDb> db = Current();
    rocksdb::WriteBatch wb;
    for (const auto& op : batch.ops()) {
      rocksdb::Status s = op.is_delete ? wb.Delete(db->Handle(op.space), op.key)
                                       : wb.Put(db->Handle(op.space), op.key, op.value);
      if (!s.ok()) return FromRocks(s, "build write batch");
    }
    return Remember(FromRocks(db->db->Write(wo, &wb), "write"));
  }

  // After a write or flush fails (no space, an I/O error), every later one fails the
  // same way without reaching RocksDB: its error recovery is not for a process that
  // is about to give up, and Debian's build asserts when writes race a failed one.
  Status Remember(Status s) {
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (failed_.ok()) failed_ = s;
    }
    return s;
  }
  Status Failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }

  std::shared_ptr<OpenDb> Current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return db_;
  }

  const std::string dir_;
  const KvOpenMode mode_;
  const RocksKvOptions options_;
  const std::shared_ptr<rocksdb::Cache> cache_;
  mutable std::mutex mu_;
  std::shared_ptr<OpenDb> db_;  // GUARDED_BY(mu_)
  Status failed_;               // GUARDED_BY(mu_): the first failed write or flush
};

}  // namespace

Result<std::unique_ptr<KvEngine>> OpenRocksKvEngine(const std::string& dir, KvOpenMode mode,
                                                    const RocksKvOptions& options) {
  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  VV_ASSIGN_OR_RETURN(std::shared_ptr<OpenDb> db, OpenDatabase(dir, mode, options, cache));
  return std::unique_ptr<KvEngine>(
      std::make_unique<RocksKvEngine>(dir, mode, options, std::move(cache), std::move(db)));
}

}  // namespace vmvault::store
