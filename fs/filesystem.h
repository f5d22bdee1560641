// Filesystem: the mount without FUSE. It answers lookups, attributes, directory
// listings, reads and seeks by inode number, over a Tree snapshot of the repository,
// and is what fs/fuse_ops.cc adapts to libfuse (and what the unit tests drive).
//
// Freshness: the root, VM and period directories and `latest` may change. When one of
// them is looked up, listed or stat'ed and the snapshot is older than
// refresh_interval, the Filesystem calls Repository::Refresh() and builds a new Tree,
// swapped in atomically; the other threads keep using the old one meanwhile. These
// nodes get short cache timeouts; backups and their files never change and get long
// ones, except the entry of a backup directory, which prune may remove: the kernel
// looks its name up again after the short timeout. A removed backup's open files keep
// their views; they read what is cached or still stored, and NotFound (ENOENT) for an
// index page that is gone, never zeros (store::Catalog::ReadIndexPage). After gc, a
// chunk of a removed backup that is gone is ENOENT too, and a read that fails because
// the mount's database instance names a blob file gc deleted is retried once on a
// fresh instance (Filesystem::Read).
//
// Reads go through one ViewReader with a shared ChunkCache and a prefetch pool.
//
// The repository is not owned and must outlive the Filesystem. Thread-safe. Locks, in
// order: refresh_mu_ (held while building a tree), then tree_mu_ (held only to copy or
// swap the snapshot pointer); cache shard locks are leaves.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "base/thread_pool.h"
#include "fs/chunk_cache.h"
#include "fs/index_page_cache.h"
#include "fs/tree.h"
#include "fs/view_reader.h"
#include "store/repository.h"

namespace vmvault::fs {

struct FilesystemOptions {
  size_t cache_bytes = kDefaultChunkCacheBytes;
  size_t index_cache_bytes = kDefaultIndexCacheBytes;
  size_t readahead_bytes = 8 << 20;  // kept warm ahead of a sequential reader
  size_t prefetch_threads = 4;       // 0: no prefetch, no parallel chunk loads
  int64_t refresh_interval_us = 1'000'000;
  double short_timeout_s = 1.0;      // root, VM and period directories, `latest`; the
                                     // entries (names) of backup directories
  double long_timeout_s = 86400.0;   // backups and their files
  const Clock* clock = nullptr;      // SystemClock::Default() when null
  uint32_t uid = 0;                  // owner shown for every node
  uint32_t gid = 0;
  TreeOptions tree;  // layout, and the views each disk shows
};

struct EntryInfo {
  struct stat attr {};
  double attr_timeout = 0;
  double entry_timeout = 0;
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint32_t mode = 0;  // S_IFDIR, S_IFREG or S_IFLNK
};

// An open regular file: its view, kept alive for as long as the file is open.
struct OpenFile {
  uint64_t ino = 0;
  uint64_t backup_id = 0;  // the backup the file belongs to
  std::shared_ptr<const View> view;
  ReadAheadTracker readahead;
  OpenFile(uint64_t i, uint64_t backup, std::shared_ptr<const View> v, uint64_t window)
      : ino(i), backup_id(backup), view(std::move(v)), readahead(window) {}
};

// The xattr of VM directories that shows the VM's schedule state (store/vm_state.h:
// NEW, BACKUP_NECESSARY, ..., ARCHIVED); absent for a VM the schedule has not seen.
inline constexpr std::string_view kStateXattr = "user.vmvault.state";

class Filesystem {
 public:
  static Result<std::unique_ptr<Filesystem>> Create(store::Repository* repo,
                                                    const FilesystemOptions& options);
  ~Filesystem();

  Result<EntryInfo> Lookup(uint64_t parent, std::string_view name);
  Result<EntryInfo> GetAttr(uint64_t ino);
  Result<std::string> ReadLink(uint64_t ino);
  // The entries of a directory, "." and ".." first.
  Result<std::vector<DirEntry>> ReadDir(uint64_t ino);
  // ReadOnly for any access mode but O_RDONLY or for O_TRUNC; InvalidArgument for a
  // directory or symlink.
  Result<std::unique_ptr<OpenFile>> Open(uint64_t ino, int flags);
  Status Read(OpenFile* file, uint64_t offset, size_t size, ReadResult* out);
  // SEEK_SET, SEEK_CUR (same as SET here), SEEK_END, SEEK_DATA, SEEK_HOLE. nullopt is
  // "no such position" (ENXIO): SEEK_DATA past the last data, or either at or beyond
  // the end of the file.
  Result<std::optional<uint64_t>> Lseek(OpenFile* file, uint64_t offset, int whence);
  // nullopt when the node has no such attribute (ENODATA).
  Result<std::optional<std::string>> GetXattr(uint64_t ino, std::string_view name);
  Result<std::vector<std::string>> ListXattr(uint64_t ino);
  struct statvfs StatFs();

  // Rebuilds the tree if it is older than the refresh interval (force: always).
  Status Refresh(bool force);
  std::shared_ptr<const Tree> tree() const;
  ChunkCache& cache() { return *cache_; }
  const ViewReader& reader() const { return *reader_; }

 private:
  Filesystem(store::Repository* repo, const FilesystemOptions& options);
  // The current snapshot, after refreshing it when it is stale and `ino` may change
  // (Node::changes) or is gone, or is a backup directory, whose manifest.json may name
  // another inode now (Node::removable).
  std::shared_ptr<const Tree> TreeFor(uint64_t ino);
  // The schedule state of the VM of `node` (Node::state_of), nullopt when it has none.
  Result<std::optional<std::string>> VmStateOf(const Node& node);
  // View::Load() of a file node; logged when it fails.
  Status LoadView(const Node& node) const;
  EntryInfo InfoOf(const Node& node) const;

  store::Repository* repo_;
  const FilesystemOptions options_;
  const Clock* clock_;
  std::unique_ptr<IndexPageCache> pages_;
  std::unique_ptr<ChunkCache> cache_;
  std::mutex refresh_mu_;  // serializes tree builds
  // When the last refresh was tried, successful or not: a failing catalog is retried
  // once per interval, not on every lookup.
  std::atomic<int64_t> refresh_tried_us_{0};
  // The catalog generation the current tree was built from; GUARDED_BY(refresh_mu_).
  std::optional<uint64_t> built_generation_;
  // Every backup node's inode number so far; GUARDED_BY(refresh_mu_).
  InodeHistory inode_history_;
  mutable std::mutex tree_mu_;
  std::shared_ptr<const Tree> tree_;  // GUARDED_BY(tree_mu_)
  // Declared last so queued prefetch tasks finish before the caches go away.
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ViewReader> reader_;
};

}  // namespace vmvault::fs
