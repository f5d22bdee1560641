#include "store/kv_engine.h"

#include <array>
#include <map>
#include <mutex>

namespace vmvault::store {

std::string_view KvSpaceName(KvSpace space) {
  switch (space) {
    case KvSpace::kChunks: return "chunks";
    case KvSpace::kChunkMeta: return "chunk_meta";
    case KvSpace::kCatalog: return "catalog";
    case KvSpace::kIndex: return "index";
  }
  return "unknown";
}

using Space = std::map<std::string, std::string, std::less<>>;
using Spaces = std::array<Space, kKvSpaceCount>;

struct MemKvEngine::State {
  mutable std::mutex mu;
  Spaces live;                  // GUARDED_BY(mu): what readers see
  Spaces durable;               // GUARDED_BY(mu): what survives DropUnsyncedWrites
  // GUARDED_BY(mu): batches not durable yet, oldest first; `logged` is false for
  // WriteUnlogged batches, which only Flush makes durable.
  std::vector<std::pair<KvBatch, bool>> pending;
  int fail_writes = 0;          // GUARDED_BY(mu)
  bool fail_flush = false;      // GUARDED_BY(mu)
};

namespace {
void Apply(const KvBatch& batch, Spaces* spaces) {
  for (const auto& op : batch.ops()) {
    Space& s = (*spaces)[static_cast<size_t>(op.space)];
    if (op.is_delete) {
      s.erase(op.key);
    } else {
      s[op.key] = op.value;
    }
  }
}
}  // namespace

MemKvEngine::MemKvEngine() : state_(std::make_unique<State>()) {}
MemKvEngine::~MemKvEngine() = default;

Status MemKvEngine::Get(KvSpace space, std::string_view key, std::string* value) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  const Space& s = state_->live[static_cast<size_t>(space)];
  auto it = s.find(key);
  if (it == s.end()) return Status::NotFound("key not found");
  *value = it->second;
  return Status::OK();
}

Status MemKvEngine::Write(const KvBatch& batch, bool sync) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->fail_writes > 0) {
    --state_->fail_writes;
    return Status::IOError("injected write failure");
  }
  Apply(batch, &state_->live);
  state_->pending.emplace_back(batch, /*logged=*/true);
  if (sync) {
    // Syncing the log makes every logged write durable; unlogged ones stay pending.
    std::vector<std::pair<KvBatch, bool>> still;
    for (auto& [b, logged] : state_->pending) {
      if (logged) {
        Apply(b, &state_->durable);
      } else {
        still.emplace_back(std::move(b), false);
      }
    }
    state_->pending = std::move(still);
  }
  return Status::OK();
}

Status MemKvEngine::WriteUnlogged(const KvBatch& batch) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->fail_writes > 0) {
    --state_->fail_writes;
    return Status::IOError("injected write failure");
  }
  Apply(batch, &state_->live);
  state_->pending.emplace_back(batch, /*logged=*/false);
  return Status::OK();
}

Status MemKvEngine::Scan(KvSpace space, std::string_view prefix, const KvScanFn& fn) const {
  // Copy the matching range so fn may call back into the engine.
  std::vector<std::pair<std::string, std::string>> rows;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    const Space& s = state_->live[static_cast<size_t>(space)];
    for (auto it = s.lower_bound(prefix); it != s.end(); ++it) {
      if (it->first.compare(0, prefix.size(), prefix) != 0) break;
      rows.emplace_back(it->first, it->second);
    }
  }
  for (const auto& [k, v] : rows) {
    if (!fn(k, v)) break;
  }
  return Status::OK();
}

Status MemKvEngine::Flush() {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->fail_flush) {
    state_->fail_flush = false;
    return Status::IOError("injected flush failure");
  }
  for (const auto& [b, logged] : state_->pending) Apply(b, &state_->durable);
  state_->pending.clear();
  return Status::OK();
}

void MemKvEngine::DropUnsyncedWrites() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->pending.clear();
  state_->live = state_->durable;
}

void MemKvEngine::FailNextWrites(int n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->fail_writes = n;
}

void MemKvEngine::FailNextFlush() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->fail_flush = true;
}

size_t MemKvEngine::Count(KvSpace space) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->live[static_cast<size_t>(space)].size();
}

}  // namespace vmvault::store
