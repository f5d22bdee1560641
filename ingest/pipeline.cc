#include "ingest/pipeline.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/bytes.h"
#include "base/thread_pool.h"
#include "store/chunk_codec.h"

namespace vmvault::ingest {
namespace {

// The data extents of `extents`, clipped to [0, size), sorted and merged.
std::vector<Extent> DataExtents(const std::vector<Extent>& extents, uint64_t size) {
  std::vector<Extent> data;
  for (const Extent& e : extents) {
    if (!e.data || e.offset >= size) continue;
    data.push_back({e.offset, std::min(e.length, size - e.offset), true});
  }
  std::sort(data.begin(), data.end(),
            [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
  // Merge overlapping or touching ranges.
  std::vector<Extent> out;
  for (const Extent& e : data) {
    if (e.length == 0) continue;
    if (!out.empty() && e.offset <= out.back().end()) {
      out.back().length = std::max(out.back().end(), e.end()) - out.back().offset;
    } else {
      out.push_back(e);
    }
  }
  return out;
}

class DiskIngest {
 public:
  DiskIngest(uint64_t size, std::vector<Extent> data, const store::ChunkHasher& hasher,
             store::ChunkWriter& writer, const PipelineOptions& options, store::DiskIndex base)
      : size_(size),
        chunk_size_(options.chunk_size),
        slots_((size + options.chunk_size - 1) / options.chunk_size),
        data_(std::move(data)),
        hasher_(hasher),
        writer_(writer),
        options_(options),
        index_(base.empty() ? store::DiskIndex(slots_) : std::move(base)) {}

  void Worker(const ReaderFactory& open_reader);
  // Records `s` if it is the first error and stops every worker.
  void Fail(Status s) {
    std::lock_guard<std::mutex> lock(error_mu_);
    if (first_error_.ok()) first_error_ = std::move(s);
    stop_.store(true);
  }
  Status status() {
    std::lock_guard<std::mutex> lock(error_mu_);
    return first_error_;
  }
  IngestedDisk Finish() {
    IngestedDisk out;
    out.index = std::move(index_);
    out.stats = {bytes_read_.load(), data_chunks_.load(), new_chunks_.load(),
                 new_stored_bytes_.load(), stored_bytes_.load(), 0};
    return out;
  }

 private:
  // The next slot that touches data, or slots_ when none is left.
  uint64_t ClaimSlot();
  Status ProcessSlot(uint64_t slot, Image& reader, uint8_t* buf, store::ChunkEncoder& encoder,
                     std::string* encoded);
  Status Store(const store::ChunkId& id, std::span<const uint8_t> chunk,
               store::ChunkEncoder& encoder, std::string* encoded);
  // The first data extent that ends after `offset`, as an index into data_.
  size_t FirstDataAfter(uint64_t offset) const {
    return std::upper_bound(data_.begin(), data_.end(), offset,
                            [](uint64_t off, const Extent& e) { return off < e.end(); }) -
           data_.begin();
  }

  const uint64_t size_;
  const uint64_t chunk_size_;
  const uint64_t slots_;
  const std::vector<Extent> data_;
  const store::ChunkHasher& hasher_;
  store::ChunkWriter& writer_;
  const PipelineOptions options_;

  std::atomic<uint64_t> next_slot_{0};
  std::atomic<bool> stop_{false};
  std::mutex error_mu_;
  Status first_error_;  // GUARDED_BY(error_mu_)
  // Each slot is written by the one worker that claimed it; read after all joined.
  store::DiskIndex index_;
  std::atomic<uint64_t> bytes_read_{0}, data_chunks_{0}, new_chunks_{0}, new_stored_bytes_{0},
      stored_bytes_{0};
};

uint64_t DiskIngest::ClaimSlot() {
  for (;;) {
    const uint64_t slot = next_slot_.fetch_add(1);
    if (slot >= slots_) return slots_;
    const size_t i = FirstDataAfter(slot * chunk_size_);
    if (i == data_.size()) {
      next_slot_.store(slots_);  // no data left anywhere
      return slots_;
    }
    const uint64_t data_slot = data_[i].offset / chunk_size_;
    if (data_slot <= slot) return slot;
    // Slots (slot, data_slot) are holes: let everyone skip them.
    uint64_t cur = next_slot_.load();
    while (cur < data_slot && !next_slot_.compare_exchange_weak(cur, data_slot)) {
    }
  }
}

void DiskIngest::Worker(const ReaderFactory& open_reader) {
  auto reader = open_reader();
  if (!reader.ok()) return Fail(reader.status());
  if ((*reader)->size() != size_) {
    return Fail(Status::External(fmt::format("the source reads as {} bytes, but qemu-img said {}",
                                             (*reader)->size(), size_)));
  }
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(chunk_size_);
  store::ChunkEncoder encoder(options_.zstd_level);
  std::string encoded;
  while (!stop_.load(std::memory_order_relaxed)) {
    const uint64_t slot = ClaimSlot();
    if (slot >= slots_) break;
    Status s = ProcessSlot(slot, **reader, buf.get(), encoder, &encoded);
    if (!s.ok()) return Fail(std::move(s));
  }
}

Status DiskIngest::ProcessSlot(uint64_t slot, Image& reader, uint8_t* buf,
                               store::ChunkEncoder& encoder, std::string* encoded) {
  const uint64_t start = slot * chunk_size_;
  const uint64_t len = std::min(chunk_size_, size_ - start);
  const uint64_t end = start + len;
  uint64_t pos = start;  // buf holds [start, pos)
  uint64_t read = 0;
  for (size_t i = FirstDataAfter(start); i < data_.size() && data_[i].offset < end; ++i) {
    const uint64_t a = std::max(data_[i].offset, start);
    const uint64_t b = std::min(data_[i].end(), end);
    if (a > pos) std::memset(buf + (pos - start), 0, a - pos);
    Status s = reader.ReadAt(a, std::span<uint8_t>(buf + (a - start), b - a));
    if (!s.ok()) {
      return s.WithContext(fmt::format("reading {} bytes at offset {}", b - a, a));
    }
    read += b - a;
    pos = b;
  }
  if (pos < end) std::memset(buf + (pos - start), 0, end - pos);
  bytes_read_.fetch_add(read, std::memory_order_relaxed);
  if (options_.progress != nullptr) options_.progress->Add(read);

  const std::span<const uint8_t> chunk(buf, len);
  if (IsAllZero(chunk)) return Status::OK();
  const store::ChunkId id = hasher_.Hash(chunk);
  index_[slot] = id;
  data_chunks_.fetch_add(1, std::memory_order_relaxed);
  return Store(id, chunk, encoder, encoded);
}

Status DiskIngest::Store(const store::ChunkId& id, std::span<const uint8_t> chunk,
                         store::ChunkEncoder& encoder, std::string* encoded) {
  // Claimed across every ingest of this store, so a chunk two backups meet at the same
  // time is encoded, stored and counted as new once.
  writer_.Claim(id);
  struct Releaser {
    store::ChunkWriter& writer;
    const store::ChunkId& id;
    ~Releaser() { writer.Release(id); }
  } releaser{writer_, id};

  auto meta = writer_.Lookup(id);
  if (!meta.ok()) return meta.status().WithContext(fmt::format("looking up chunk {}", id.hex()));
  if (meta->has_value()) {
    stored_bytes_.fetch_add((*meta)->stored_len, std::memory_order_relaxed);
    return Status::OK();
  }
  encoder.Encode(chunk, encoded);
  Status s = writer_.Put(id, *encoded);
  if (!s.ok()) return s.WithContext(fmt::format("storing chunk {}", id.hex()));
  new_chunks_.fetch_add(1, std::memory_order_relaxed);
  new_stored_bytes_.fetch_add(encoded->size(), std::memory_order_relaxed);
  stored_bytes_.fetch_add(encoded->size(), std::memory_order_relaxed);
  return Status::OK();
}

// The slot-aligned ranges the changed extents touch, clipped to [0, size), merged.
std::vector<Extent> ChangedSlotRanges(const std::vector<Extent>& changed, uint64_t size,
                                      uint64_t chunk_size) {
  std::vector<Extent> slots;
  for (const Extent& e : DataExtents(changed, size)) {
    const uint64_t a = e.offset / chunk_size * chunk_size;
    const uint64_t b = std::min(size, (e.end() + chunk_size - 1) / chunk_size * chunk_size);
    slots.push_back({a, b - a, true});
  }
  return DataExtents(slots, size);
}

// The parts of sorted, disjoint `a` that lie in sorted, disjoint `b`.
std::vector<Extent> Intersect(const std::vector<Extent>& a, const std::vector<Extent>& b) {
  std::vector<Extent> out;
  size_t j = 0;
  for (const Extent& e : a) {
    while (j < b.size() && b[j].end() <= e.offset) ++j;
    for (size_t k = j; k < b.size() && b[k].offset < e.end(); ++k) {
      const uint64_t lo = std::max(e.offset, b[k].offset);
      const uint64_t hi = std::min(e.end(), b[k].end());
      if (lo < hi) out.push_back({lo, hi - lo, true});
    }
  }
  return out;
}

// Takes the base's id for every slot outside `changed_slots` after checking that the
// store has the chunk, and clears the changed slots (the workers fill those that hold
// data). Adds what it reused to *stats.
Status ApplyBase(const store::DiskIndex& base, const std::vector<Extent>& changed_slots,
                 uint64_t chunk_size, const store::ChunkWriter& writer, store::DiskIndex* index,
                 DiskStats* stats) {
  *index = base;
  for (const Extent& r : changed_slots) {
    std::fill(index->begin() + r.offset / chunk_size,
              index->begin() + (r.end() + chunk_size - 1) / chunk_size, store::ChunkId{});
  }
  for (uint64_t slot = 0; slot < index->size(); ++slot) {
    const store::ChunkId& id = (*index)[slot];
    if (id.is_zero()) continue;
    auto meta = writer.Lookup(id);
    if (!meta.ok()) return meta.status().WithContext(fmt::format("looking up chunk {}", id.hex()));
    if (!meta->has_value()) {
      return Status::Corruption(fmt::format(
          "chunk {} of the parent backup (slot {}) is not in the repository", id.hex(), slot));
    }
    ++stats->reused_chunks;
    ++stats->data_chunks;
    stats->stored_bytes += (*meta)->stored_len;
  }
  return Status::OK();
}

}  // namespace

uint64_t CountDataSlots(const std::vector<Extent>& extents, uint64_t size, uint32_t chunk_size) {
  uint64_t count = 0;
  uint64_t next_free = 0;  // the first slot not counted yet
  for (const Extent& e : DataExtents(extents, size)) {
    const uint64_t first = std::max(e.offset / chunk_size, next_free);
    const uint64_t last = (e.end() - 1) / chunk_size;
    if (last >= first) count += last - first + 1;
    next_free = std::max(next_free, last + 1);
  }
  return count;
}

Result<IngestedDisk> IngestDisk(const ReaderFactory& open_reader, uint64_t size,
                                const std::vector<Extent>& extents,
                                const store::ChunkHasher& hasher, store::ChunkWriter& writer,
                                const PipelineOptions& options) {
  if (options.chunk_size == 0) return Status::InvalidArgument("chunk size is 0");
  std::vector<Extent> data = DataExtents(extents, size);
  const uint64_t slots = (size + options.chunk_size - 1) / options.chunk_size;
  store::DiskIndex base_index;
  DiskStats reused;
  if (options.base != nullptr) {
    if (options.base->size() != slots) {
      return Status::InvalidArgument(fmt::format(
          "the parent index has {} slots, the disk {}", options.base->size(), slots));
    }
    const std::vector<Extent> changed =
        ChangedSlotRanges(options.changed, size, options.chunk_size);
    VV_RETURN_IF_ERROR(ApplyBase(*options.base, changed, options.chunk_size, writer,
                                 &base_index, &reused));
    data = Intersect(data, changed);
  }
  const uint64_t data_slots = CountDataSlots(data, size, options.chunk_size);
  size_t threads = options.threads != 0 ? options.threads : ThreadPool::HardwareThreads();
  threads = static_cast<size_t>(std::min<uint64_t>(threads, std::max<uint64_t>(data_slots, 1)));

  DiskIngest ingest(size, std::move(data), hasher, writer, options, std::move(base_index));
  if (data_slots > 0) {
    std::vector<std::thread> workers;
    workers.reserve(threads);
    try {
      for (size_t i = 0; i < threads; ++i) {
        workers.emplace_back([&ingest, &open_reader] { ingest.Worker(open_reader); });
      }
    } catch (const std::system_error& e) {
      ingest.Fail(Status::IOError(fmt::format("cannot start a worker thread: {}", e.what())));
    }
    for (std::thread& t : workers) t.join();
  }
  VV_RETURN_IF_ERROR(ingest.status());
  IngestedDisk out = ingest.Finish();
  out.stats.data_chunks += reused.data_chunks;
  out.stats.stored_bytes += reused.stored_bytes;
  out.stats.reused_chunks = reused.reused_chunks;
  return out;
}

}  // namespace vmvault::ingest
