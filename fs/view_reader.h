// ViewReader: the one read loop that serves every view. It walks a view's regions and
// gathers the bytes of a range as a list of pieces that point into cached chunks,
// in-memory bytes or a shared page of zeros, so the FUSE adapter can hand them to the
// kernel with one writev and no copy. A ReadResult keeps every chunk it points into
// alive until it is destroyed.
//
// When a read spans several uncached chunks, all but the first are loaded in
// parallel on the prefetch pool while the reading thread loads the first.
// ReadAheadTracker notices sequential access on one open file and asks the reader
// to warm the next chunks on the pool.
//
// A chunk that fails to load fails the whole read with its Status (Corruption ->
// EIO at the mount); other ranges of the view stay readable.
//
// The cache and the pool are not owned and must outlive the reader; the pool may be
// null (no prefetch). ViewReader is thread-safe. ReadResult is not.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/thread_pool.h"
#include "fs/chunk_cache.h"
#include "fs/view.h"

namespace vmvault::fs {

class ReadResult {
 public:
  struct Piece {
    const uint8_t* data;
    size_t size;
  };
  const std::vector<Piece>& pieces() const { return pieces_; }
  size_t size() const { return size_; }
  void CopyTo(uint8_t* dst) const;
  std::string ToString() const;
  void Clear();

  // Appends [data, data + size); `keep` keeps the memory alive.
  void Add(const uint8_t* data, size_t size, std::shared_ptr<const void> keep);
  void AddZeros(size_t size);
  // Removes the zeros (AddZeros) at the end, for a receiver that zero-fills whatever a
  // reply leaves out: the kernel's page cache, see fs/fuse_ops.cc.
  void DropTrailingZeros();

 private:
  std::vector<Piece> pieces_;
  std::vector<std::shared_ptr<const void>> keep_;
  size_t size_ = 0;
};

// Threads for a prefetch pool: max(8, hardware threads). A cold chunk load waits on
// the disk about as long as zstd takes on it, so the pool has more threads than cores:
// on 2 cores, 8 instead of 2 read a cold raw view with O_DIRECT in 1.49-1.60 s instead
// of 1.96-2.02 s, the qcow2 view in 1.20-1.23 s instead of 1.66-1.78 s (bench/README.md).
size_t DefaultPrefetchThreads();

class ViewReader {
 public:
  ViewReader(ChunkCache* cache, ThreadPool* pool, size_t max_prefetch_in_flight = 64);

  // Appends the bytes of [offset, offset + length) of `view`, cut at its end, to *out.
  Status Read(const View& view, uint64_t offset, uint64_t length, ReadResult* out) const;
  // Fills `out` with the bytes at `offset`; zero-fills past the end.
  Status ReadAt(const View& view, uint64_t offset, std::span<uint8_t> out) const;
  // Queues loads of the chunks that hold [offset, offset + length) of `view`. Returns
  // at once; does nothing without a pool or when too many loads are queued.
  void Prefetch(const std::shared_ptr<const View>& view, uint64_t offset, uint64_t length) const;

  ChunkCache& cache() const { return *cache_; }

 private:
  Status CollectRegions(const View& view, uint64_t offset, uint64_t end,
                        std::vector<Region>* regions) const;
  void WarmAsync(const store::ChunkId& id) const;

  ChunkCache* cache_;
  ThreadPool* pool_;
  const size_t max_in_flight_;
  // Shared with queued tasks so a late task never touches a destroyed reader's counter.
  std::shared_ptr<std::atomic<size_t>> in_flight_;
};

// Detects sequential reads of one open file and says what to prefetch.
// Thread-safe: FUSE may deliver reads of one file on several threads.
class ReadAheadTracker {
 public:
  // `window` bytes are kept warm ahead of a sequential reader.
  explicit ReadAheadTracker(uint64_t window) : window_(window) {}

  // Records a read of [offset, offset + length) and returns the range to prefetch,
  // if any.
  std::optional<std::pair<uint64_t, uint64_t>> OnRead(uint64_t offset, uint64_t length,
                                                      uint64_t size);

 private:
  const uint64_t window_;
  std::mutex mu_;
  uint64_t next_ = 0;        // GUARDED_BY(mu_): where a sequential reader reads next
  int streak_ = 0;           // GUARDED_BY(mu_): sequential reads in a row
  uint64_t warmed_to_ = 0;   // GUARDED_BY(mu_): prefetch requested up to here
};

}  // namespace vmvault::fs
