// Repository: a directory that holds one vmvault store.
//
//   <repo>/vmvault.json   format file: format name, version, chunk size, zstd level
//   <repo>/secret         the per-repository key for chunk ids (mode 0600)
//   <repo>/db/            the RocksDB database
//   <repo>/lock           flock()ed by the single writer
//   <repo>/reserve        kReserveBytes of allocated zeros, deleted by gc to have room
//                         to work on a full filesystem, made again when it is done
//
// Init makes the directory and the database directory mode 0700 and every file it
// writes 0600, whatever the umask. Open() warns (spdlog) when the directory or the
// secret has been opened to other users since, and goes on: a group may be meant to
// read it. Open() checks the format version and refuses one it does not know
// (FailedPrecondition); opening an older version for writing upgrades it. Only one
// writer (ingest, prune, gc) opens a repository at a time; a second gets Busy.
// Readers (list, mount) never take the lock.
//
// A Repository owns its engine, chunk store and catalog. It is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "store/catalog.h"
#include "store/chunk_id.h"
#include "store/chunk_store.h"
#include "store/kv_engine.h"

namespace vmvault::store {

// Version 2 added the disk summaries (`ds/` keys). Version 1 repositories are read as
// they are (summaries are computed when needed) and upgraded by the first writer.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr uint32_t kOldestFormatVersion = 1;
inline constexpr std::string_view kFormatName = "vmvault-repository";
inline constexpr uint32_t kDefaultChunkSize = 256 << 10;  // docs/chunk-size.md
inline constexpr int kDefaultZstdLevel = 3;
// The reserve file: space gc frees before it writes anything, so it can reclaim space
// even when a failed ingest filled the filesystem.
inline constexpr std::string_view kReserveFile = "reserve";
inline constexpr uint64_t kReserveBytes = 16 << 20;

// Makes <repo>/reserve (kReserveBytes, allocated) unless it is there. Best effort: the
// error says why it could not (no space), and nothing depends on it existing.
Status MakeReserve(const std::string& repo_path);
// Deletes <repo>/reserve if it is there.
void ReleaseReserve(const std::string& repo_path);

struct RepoConfig {
  uint32_t format_version = kFormatVersion;
  uint32_t chunk_size = kDefaultChunkSize;
  int zstd_level = kDefaultZstdLevel;
  std::string id;          // random, hex
  int64_t created_us = 0;
};

// InvalidArgument unless chunk_size is a power of two in [64 KiB, 4 MiB] and the level
// is one zstd accepts (1..19).
Status ValidateRepoConfig(const RepoConfig& config);

enum class RepoMode {
  kWrite,     // takes the writer lock
  kReadOnly,  // a snapshot, no lock (list)
  kFollow,    // follows the writer and sees new backups after Refresh() (mount)
};

class Repository {
 public:
  ~Repository();

  // Creates a repository at `path`, which must not exist or be an empty directory.
  static Status Init(const std::string& path, const RepoConfig& config);
  static Result<std::unique_ptr<Repository>> Open(const std::string& path, RepoMode mode);
  // A repository on a MemKvEngine, for tests. `engine` may be passed to share or to
  // inject faults; nullptr makes a new one.
  static std::unique_ptr<Repository> OpenInMemory(const RepoConfig& config,
                                                  std::shared_ptr<KvEngine> engine = nullptr,
                                                  std::string secret = "test-secret-0123456789abcdef0123");

  const RepoConfig& config() const { return config_; }
  const std::string& path() const { return path_; }
  const ChunkHasher& hasher() const { return hasher_; }
  ChunkStore& chunks() { return *chunks_; }
  const ChunkStore& chunks() const { return *chunks_; }
  Catalog& catalog() { return *catalog_; }
  const Catalog& catalog() const { return *catalog_; }
  KvEngine& kv() { return *kv_; }
  bool writable() const { return mode_ == RepoMode::kWrite; }

  // Sees what a writer in another process has committed since (kFollow).
  Status Refresh() { return kv_->Refresh(); }

 private:
  Repository(std::string path, RepoMode mode, RepoConfig config, std::string_view secret,
             std::shared_ptr<KvEngine> kv, int lock_fd);
  // Brings an older format up to kFormatVersion (a writer only).
  Status Upgrade(const std::string& format_path);

  const std::string path_;
  const RepoMode mode_;
  RepoConfig config_;  // changes only in Upgrade(), before Open() returns
  const ChunkHasher hasher_;
  std::shared_ptr<KvEngine> kv_;
  std::unique_ptr<ChunkStore> chunks_;
  std::unique_ptr<Catalog> catalog_;
  int lock_fd_ = -1;
};

}  // namespace vmvault::store
