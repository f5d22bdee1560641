// The RocksDB adapter: the only file in vmvault that includes RocksDB. Each KvSpace is
// a column family, tuned for its records (see store/FORMAT.md):
//   chunks      integrated BlobDB: chunk values go to blob files, so compactions move
//               only small references; no RocksDB compression (values are zstd already)
//   chunk_meta  small values with a bloom filter: the dedup lookup
//   catalog     small JSON records
//   index       index pages (random ids, mostly incompressible), 64 KiB values
#include <unistd.h>

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <fmt/format.h>

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
  chunks.enable_blob_garbage_collection = true;
  chunks.write_buffer_size = 64 << 20;

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

class RocksKvEngine final : public KvEngine {
 public:
  RocksKvEngine(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
                KvOpenMode mode)
      : db_(std::move(db)), handles_(std::move(handles)), mode_(mode) {}

  ~RocksKvEngine() override {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close().PermitUncheckedError();
  }

  Status Get(KvSpace space, std::string_view key, std::string* value) const override {
    rocksdb::PinnableSlice pinned;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), Handle(space),
                                 rocksdb::Slice(key.data(), key.size()), &pinned);
    if (s.IsNotFound()) return Status::NotFound("key not found");
    if (!s.ok()) return FromRocks(s, fmt::format("read {}", KvSpaceName(space)));
    value->assign(pinned.data(), pinned.size());
    return Status::OK();
  }

  Status Write(const KvBatch& batch, bool sync) override {
    if (mode_ != KvOpenMode::kReadWrite) return Status::ReadOnly("the repository is open read-only");
    rocksdb::WriteBatch wb;
    for (const auto& op : batch.ops()) {
      rocksdb::Status s = op.is_delete ? wb.Delete(Handle(op.space), op.key)
                                       : wb.Put(Handle(op.space), op.key, op.value);
      if (!s.ok()) return FromRocks(s, "build write batch");
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return FromRocks(db_->Write(wo, &wb), "write");
  }

  Status Scan(KvSpace space, std::string_view prefix, const KvScanFn& fn) const override {
    rocksdb::ReadOptions ro;
    ro.fill_cache = space != KvSpace::kChunks;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, Handle(space)));
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
    return FromRocks(db_->TryCatchUpWithPrimary(), "catch up with the writer");
  }

  Status Compact(KvSpace space) override {
    if (mode_ != KvOpenMode::kReadWrite) return Status::ReadOnly("the repository is open read-only");
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    return FromRocks(db_->CompactRange(o, Handle(space), nullptr, nullptr), "compact");
  }

 private:
  rocksdb::ColumnFamilyHandle* Handle(KvSpace space) const {
    return handles_[1 + static_cast<size_t>(space)];
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, then one per KvSpace
  const KvOpenMode mode_;
};

}  // namespace

Result<std::unique_ptr<KvEngine>> OpenRocksKvEngine(const std::string& dir, KvOpenMode mode,
                                                    const RocksKvOptions& options) {
  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create;
  db_options.create_missing_column_families = options.create;
  db_options.max_background_jobs = 4;
  db_options.bytes_per_sync = 1 << 20;
  db_options.keep_log_file_num = 4;
  db_options.max_manifest_file_size = 64 << 20;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  if (mode == KvOpenMode::kFollower) db_options.max_open_files = -1;

  const auto families = Families(cache);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  const rocksdb::Options opts(db_options, rocksdb::ColumnFamilyOptions());
  switch (mode) {
    case KvOpenMode::kReadWrite:
      s = rocksdb::DB::Open(db_options, dir, families, &handles, &raw);
      break;
    case KvOpenMode::kReadOnly:
      s = rocksdb::DB::OpenForReadOnly(db_options, dir, families, &handles, &raw);
      break;
    case KvOpenMode::kFollower:
      if (options.follower_dir.empty()) {
        return Status::InvalidArgument("a follower needs a directory of its own");
      }
      s = rocksdb::DB::OpenAsSecondary(db_options, dir, options.follower_dir, families, &handles,
                                       &raw);
      break;
  }
  if (!s.ok()) return FromRocks(s, fmt::format("open database {}", dir));
  return std::unique_ptr<KvEngine>(
      std::make_unique<RocksKvEngine>(std::unique_ptr<rocksdb::DB>(raw), std::move(handles), mode));
}

}  // namespace vmvault::store
