#include "fs/view_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace vmvault::fs {
namespace {

// Small enough to stay in the CPU's cache while the kernel copies it out again and
// again for a long hole.
constexpr size_t kZeroPageBytes = 16 << 10;

const uint8_t* ZeroPage() {
  static const auto* zeros = new uint8_t[kZeroPageBytes]();  // never freed
  return zeros;
}

}  // namespace

size_t DefaultPrefetchThreads() {
  return std::max<size_t>(8, ThreadPool::HardwareThreads());
}

void ReadResult::Add(const uint8_t* data, size_t size, std::shared_ptr<const void> keep) {
  if (size == 0) return;
  pieces_.push_back({data, size});
  if (keep && (keep_.empty() || keep_.back() != keep)) keep_.push_back(std::move(keep));
  size_ += size;
}

void ReadResult::AddZeros(size_t size) {
  size_ += size;
  if (!pieces_.empty() && pieces_.back().data == ZeroPage()) {  // top up the last one
    const size_t n = std::min(size, kZeroPageBytes - pieces_.back().size);
    pieces_.back().size += n;
    size -= n;
  }
  while (size > 0) {
    const size_t n = std::min(size, kZeroPageBytes);
    pieces_.push_back({ZeroPage(), n});
    size -= n;
  }
}

void ReadResult::DropTrailingZeros() {
  while (!pieces_.empty() && pieces_.back().data == ZeroPage()) {
    size_ -= pieces_.back().size;
    pieces_.pop_back();
  }
}

void ReadResult::CopyTo(uint8_t* dst) const {
  for (const Piece& p : pieces_) {
    std::memcpy(dst, p.data, p.size);
    dst += p.size;
  }
}

std::string ReadResult::ToString() const {
  std::string s(size_, '\0');
  CopyTo(reinterpret_cast<uint8_t*>(s.data()));
  return s;
}

void ReadResult::Clear() {
  pieces_.clear();
  keep_.clear();
  size_ = 0;
}

ViewReader::ViewReader(ChunkCache* cache, ThreadPool* pool, size_t max_prefetch_in_flight)
    : cache_(cache),
      pool_(pool),
      max_in_flight_(max_prefetch_in_flight),
      in_flight_(std::make_shared<std::atomic<size_t>>(0)) {}

Status ViewReader::CollectRegions(const View& view, uint64_t offset, uint64_t end,
                                  std::vector<Region>* regions) const {
  uint64_t pos = offset;
  while (pos < end) {
    Region r;
    VV_RETURN_IF_ERROR(view.RegionAt(pos, &r));
    if (r.offset > pos || r.end() <= pos) {
      return Status::Corruption(fmt::format("view has no region for offset {}", pos));
    }
    pos = r.end();
    regions->push_back(std::move(r));
  }
  return Status::OK();
}

Status ViewReader::Read(const View& view, uint64_t offset, uint64_t length,
                        ReadResult* out) const {
  VV_RETURN_IF_ERROR(view.Load());
  const uint64_t end = std::min(view.size(), offset + std::min(length, view.size()));
  if (offset >= end) return Status::OK();
  std::vector<Region> regions;
  VV_RETURN_IF_ERROR(CollectRegions(view, offset, end, &regions));

  // Load the uncached chunks after the first in parallel with the first.
  if (pool_ != nullptr) {
    bool first = true;
    for (const Region& r : regions) {
      if (r.type != RegionType::kChunk) continue;
      if (!first && !cache_->ContainsOrPending(r.chunk)) WarmAsync(r.chunk);
      first = false;
    }
  }

  for (const Region& r : regions) {
    const uint64_t from = std::max(offset, r.offset);
    const uint64_t to = std::min(end, r.end());
    const uint64_t n = to - from;
    const uint64_t src = r.source_offset + (from - r.offset);
    switch (r.type) {
      case RegionType::kZero:
        out->AddZeros(n);
        break;
      case RegionType::kBytes:
        if (src + n > r.bytes->size()) return Status::Corruption("bytes region out of range");
        out->Add(reinterpret_cast<const uint8_t*>(r.bytes->data()) + src, n, r.bytes);
        break;
      case RegionType::kChunk: {
        VV_ASSIGN_OR_RETURN(ChunkCache::Chunk chunk, cache_->Get(r.chunk));
        if (src + n > chunk->size()) {
          return Status::Corruption(fmt::format(
              "chunk {} holds {} bytes, fewer than its index slot needs", r.chunk.hex(),
              chunk->size()));
        }
        out->Add(reinterpret_cast<const uint8_t*>(chunk->data()) + src, n, chunk);
        break;
      }
      case RegionType::kView:
        if (r.view.get() == &view) return Status::Corruption("view region refers to itself");
        VV_RETURN_IF_ERROR(Read(*r.view, src, n, out));
        break;
    }
  }
  return Status::OK();
}

Status ViewReader::ReadAt(const View& view, uint64_t offset, std::span<uint8_t> out) const {
  ReadResult result;
  VV_RETURN_IF_ERROR(Read(view, offset, out.size(), &result));
  result.CopyTo(out.data());
  std::memset(out.data() + result.size(), 0, out.size() - result.size());
  return Status::OK();
}

void ViewReader::WarmAsync(const store::ChunkId& id) const {
  if (in_flight_->fetch_add(1) >= max_in_flight_) {
    in_flight_->fetch_sub(1);
    return;
  }
  ChunkCache* cache = cache_;
  pool_->Submit([cache, id, counter = in_flight_] {
    cache->Warm(id);
    counter->fetch_sub(1);
  });
}

void ViewReader::Prefetch(const std::shared_ptr<const View>& view, uint64_t offset,
                          uint64_t length) const {
  if (pool_ == nullptr || !view) return;
  const uint64_t end = std::min(view->size(), offset + std::min(length, view->size()));
  uint64_t pos = offset;
  while (pos < end) {
    Region r;
    if (!view->RegionAt(pos, &r).ok() || r.end() <= pos) return;
    if (r.type == RegionType::kChunk && !cache_->ContainsOrPending(r.chunk)) WarmAsync(r.chunk);
    if (r.type == RegionType::kView) {
      Prefetch(r.view, r.source_offset + (pos - r.offset), std::min(end, r.end()) - pos);
    }
    pos = r.end();
  }
}

std::optional<std::pair<uint64_t, uint64_t>> ReadAheadTracker::OnRead(uint64_t offset,
                                                                      uint64_t length,
                                                                      uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  // FUSE threads may deliver the kernel's sequential reads slightly out of order.
  const uint64_t slack = std::max<uint64_t>(length, 1 << 20);
  const bool sequential = offset + slack >= next_ && offset <= next_ + slack;
  streak_ = sequential ? streak_ + 1 : 0;
  next_ = sequential ? std::max(next_, offset + length) : offset + length;
  if (!sequential) warmed_to_ = next_;
  if (streak_ < 2 || window_ == 0) return std::nullopt;
  const uint64_t want_to = std::min(size, next_ + window_);
  // Ask again only when half the window has been consumed.
  if (warmed_to_ >= want_to || (warmed_to_ > next_ && warmed_to_ - next_ > window_ / 2)) {
    return std::nullopt;
  }
  const uint64_t from = std::max(warmed_to_, next_);
  warmed_to_ = want_to;
  return std::make_pair(from, want_to - from);
}

}  // namespace vmvault::fs
