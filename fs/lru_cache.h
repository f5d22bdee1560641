// ShardedLruCache: a byte-bounded LRU cache of immutable values with single-flight
// loading, shared by every reader of the mount. It holds decompressed chunks
// (ChunkCache) and disk index pages (IndexPageCache).
//
// Values are std::shared_ptr<const V>: a value handed out stays alive after it is
// evicted, for as long as the caller holds it. Each value has a charge (its bytes);
// each shard evicts its least recently used values to stay within capacity / shards.
// A value whose charge exceeds the shard's capacity is returned but not kept.
//
// Single flight: when several threads ask for one missing key at once, the loader
// runs once and every caller gets its result. A failed load is not cached; the next
// caller tries again.
//
// Thread-safe. Locks: one mutex per shard (Shard::mu). A loader runs without any
// lock held, so it may use other caches; no thread ever holds two shard locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"

namespace vmvault::fs {

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;       // calls that had to load or wait for a load
  uint64_t loads = 0;        // loader invocations
  uint64_t load_errors = 0;
  uint64_t evictions = 0;
  uint64_t bytes = 0;        // sum of the charges of the values held
  uint64_t entries = 0;
};

template <typename K, typename V, typename Hash = std::hash<K>>
class ShardedLruCache {
 public:
  using Value = std::shared_ptr<const V>;
  using Loader = std::function<Result<Value>()>;
  using ChargeFn = std::function<size_t(const V&)>;

  // `shards` is at least 1. `charge` gives a value's size in bytes.
  ShardedLruCache(size_t capacity_bytes, size_t shards, ChargeFn charge)
      : capacity_(capacity_bytes),
        shards_(shards == 0 ? 1 : shards),
        shard_capacity_(capacity_bytes / (shards == 0 ? 1 : shards)),
        charge_(std::move(charge)) {}
  ShardedLruCache(const ShardedLruCache&) = delete;
  ShardedLruCache& operator=(const ShardedLruCache&) = delete;

  // The cached value for `key`, or the result of `load` (run once however many
  // threads ask at the same time). Errors reach every waiter and are not cached.
  Result<Value> GetOrLoad(const K& key, const Loader& load) {
    Shard& shard = ShardFor(key);
    std::unique_lock<std::mutex> lock(shard.mu);
    if (Value v = FindLocked(shard, key)) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return v;
    }
    misses_.fetch_add(1, std::memory_order_relaxed);
    if (auto it = shard.pending.find(key); it != shard.pending.end()) {
      std::shared_future<Result<Value>> future = it->second;
      lock.unlock();
      return future.get();
    }
    return LoadLocked(shard, key, load, std::move(lock));
  }

  // Loads `key` unless it is cached or being loaded; then it returns at once. For
  // read-ahead, which must never wait on another reader's load.
  void Warm(const K& key, const Loader& load) {
    Shard& shard = ShardFor(key);
    std::unique_lock<std::mutex> lock(shard.mu);
    if (shard.map.count(key) != 0 || shard.pending.count(key) != 0) return;
    LoadLocked(shard, key, load, std::move(lock)).status().IgnoreError();
  }

  // True when `key` is cached or being loaded. Does not touch the LRU order.
  bool ContainsOrPending(const K& key) const {
    const Shard& shard = ShardFor(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    return shard.map.count(key) != 0 || shard.pending.count(key) != 0;
  }

  size_t capacity() const { return capacity_; }

  CacheStats stats() const {
    CacheStats s;
    s.hits = hits_.load();
    s.misses = misses_.load();
    s.loads = loads_.load();
    s.load_errors = load_errors_.load();
    s.evictions = evictions_.load();
    for (const Shard& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard.mu);
      s.bytes += shard.usage;
      s.entries += shard.map.size();
    }
    return s;
  }

 private:
  struct Entry {
    Value value;
    size_t charge = 0;
    typename std::list<K>::iterator lru;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<K> lru;                                // GUARDED_BY(mu); front = newest
    std::unordered_map<K, Entry, Hash> map;          // GUARDED_BY(mu)
    std::unordered_map<K, std::shared_future<Result<Value>>, Hash> pending;  // GUARDED_BY(mu)
    size_t usage = 0;                                // GUARDED_BY(mu)
  };

  Shard& ShardFor(const K& key) { return shards_[ShardIndex(key)]; }
  const Shard& ShardFor(const K& key) const { return shards_[ShardIndex(key)]; }
  size_t ShardIndex(const K& key) const {
    uint64_t h = Hash()(key);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return static_cast<size_t>(h % shards_.size());
  }

  // REQUIRES: shard.mu held.
  Value FindLocked(Shard& shard, const K& key) {
    auto it = shard.map.find(key);
    if (it == shard.map.end()) return nullptr;
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second.lru);
    return it->second.value;
  }

  // REQUIRES: `lock` holds shard.mu and `key` is neither cached nor pending.
  Result<Value> LoadLocked(Shard& shard, const K& key, const Loader& load,
                           std::unique_lock<std::mutex> lock) {
    std::promise<Result<Value>> promise;
    shard.pending.emplace(key, promise.get_future().share());
    lock.unlock();

    loads_.fetch_add(1, std::memory_order_relaxed);
    Result<Value> result = RunLoader(load);

    lock.lock();
    shard.pending.erase(key);
    if (result.ok() && *result != nullptr) {
      InsertLocked(shard, key, *result);
    } else {
      load_errors_.fetch_add(1, std::memory_order_relaxed);
      if (result.ok()) result = Status::IOError("cache loader returned no value");
    }
    lock.unlock();
    promise.set_value(result);
    return result;
  }

  static Result<Value> RunLoader(const Loader& load) {
    try {
      return load();
    } catch (const std::exception& e) {
      return Status::IOError(std::string("cache load failed: ") + e.what());
    } catch (...) {
      return Status::IOError("cache load failed");
    }
  }

  // REQUIRES: shard.mu held and `key` not in shard.map.
  void InsertLocked(Shard& shard, const K& key, const Value& value) {
    const size_t charge = charge_(*value);
    if (charge > shard_capacity_) return;
    while (shard.usage + charge > shard_capacity_ && !shard.lru.empty()) {
      auto victim = shard.map.find(shard.lru.back());
      shard.usage -= victim->second.charge;
      shard.map.erase(victim);
      shard.lru.pop_back();
      evictions_.fetch_add(1, std::memory_order_relaxed);
    }
    shard.lru.push_front(key);
    shard.map.emplace(key, Entry{value, charge, shard.lru.begin()});
    shard.usage += charge;
  }

  const size_t capacity_;
  std::vector<Shard> shards_;
  const size_t shard_capacity_;
  const ChargeFn charge_;
  std::atomic<uint64_t> hits_{0}, misses_{0}, loads_{0}, load_errors_{0}, evictions_{0};
};

}  // namespace vmvault::fs
