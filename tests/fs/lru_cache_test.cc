#include "fs/lru_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace vmvault::fs {
namespace {

using Cache = ShardedLruCache<int, std::string>;
using Value = Cache::Value;

size_t Charge(const std::string& s) { return s.size(); }

Cache::Loader Make(std::string s, std::atomic<int>* calls) {
  return [s = std::move(s), calls]() -> Result<Value> {
    calls->fetch_add(1);
    return Value(std::make_shared<const std::string>(s));
  };
}

TEST(LruCacheTest, CachesLoadedValues) {
  Cache cache(1 << 20, 4, Charge);
  std::atomic<int> calls{0};
  auto a = cache.GetOrLoad(7, Make("seven", &calls));
  ASSERT_TRUE(a.ok());
  auto b = cache.GetOrLoad(7, Make("other", &calls));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(**b, "seven");
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().loads, 1u);
  EXPECT_TRUE(cache.ContainsOrPending(7));
  EXPECT_FALSE(cache.ContainsOrPending(8));
}

TEST(LruCacheTest, SingleFlightLoadsOnce) {
  Cache cache(1 << 20, 2, Charge);
  std::atomic<int> calls{0};
  auto slow = [&]() -> Result<Value> {
    calls.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return Value(std::make_shared<const std::string>("slow"));
  };
  std::vector<std::thread> threads;
  std::vector<const std::string*> seen(16, nullptr);
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      auto r = cache.GetOrLoad(1, slow);
      if (r.ok()) seen[i] = r->get();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  for (const std::string* p : seen) {
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p, seen[0]);
  }
  EXPECT_EQ(cache.stats().loads, 1u);
}

TEST(LruCacheTest, ErrorsReachEveryWaiterAndAreNotCached) {
  Cache cache(1 << 20, 1, Charge);
  std::atomic<int> calls{0};
  auto failing = [&]() -> Result<Value> {
    calls.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return Status::Corruption("bad chunk");
  };
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (cache.GetOrLoad(3, failing).status().IsCorruption()) errors.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 4);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_FALSE(cache.ContainsOrPending(3));
  std::atomic<int> ok_calls{0};
  auto r = cache.GetOrLoad(3, Make("fine", &ok_calls));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, "fine");
}

TEST(LruCacheTest, EvictsLeastRecentlyUsedWithinCapacity) {
  Cache cache(10 * 1024, 1, Charge);
  std::atomic<int> calls{0};
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(cache.GetOrLoad(i, Make(std::string(1024, 'a' + i % 26), &calls)).ok());
    // Keep key 0 hot: it must survive every eviction.
    ASSERT_TRUE(cache.GetOrLoad(0, Make("unused", &calls)).ok());
    const CacheStats s = cache.stats();
    ASSERT_LE(s.bytes, cache.capacity());
  }
  EXPECT_EQ(calls.load(), 50);
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.entries, 10u);
  EXPECT_EQ(s.evictions, 40u);
  EXPECT_TRUE(cache.ContainsOrPending(0));
  EXPECT_TRUE(cache.ContainsOrPending(49));
  EXPECT_FALSE(cache.ContainsOrPending(1));
  // An evicted key loads again.
  ASSERT_TRUE(cache.GetOrLoad(1, Make("again", &calls)).ok());
  EXPECT_EQ(calls.load(), 51);
}

TEST(LruCacheTest, OversizedValueIsReturnedButNotKept) {
  Cache cache(1000, 1, Charge);
  std::atomic<int> calls{0};
  auto r = cache.GetOrLoad(1, Make(std::string(5000, 'x'), &calls));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->size(), 5000u);
  EXPECT_EQ(cache.stats().bytes, 0u);
  EXPECT_FALSE(cache.ContainsOrPending(1));
}

TEST(LruCacheTest, WarmDoesNotWaitForPendingLoads) {
  Cache cache(1 << 20, 1, Charge);
  std::atomic<bool> release{false};
  std::atomic<int> calls{0};
  std::thread loader([&] {
    auto r = cache.GetOrLoad(5, [&]() -> Result<Value> {
      calls.fetch_add(1);
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return Value(std::make_shared<const std::string>("five"));
    });
    EXPECT_TRUE(r.ok());
  });
  while (!cache.ContainsOrPending(5)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  cache.Warm(5, Make("never", &calls));  // returns at once
  release.store(true);
  loader.join();
  EXPECT_EQ(calls.load(), 1);
  cache.Warm(6, Make("six", &calls));
  EXPECT_EQ(calls.load(), 2);
  EXPECT_TRUE(cache.ContainsOrPending(6));
}

TEST(LruCacheTest, LoaderExceptionBecomesError) {
  Cache cache(1 << 20, 1, Charge);
  auto r = cache.GetOrLoad(1, []() -> Result<Value> { throw std::runtime_error("boom"); });
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("boom"), std::string::npos);
}

}  // namespace
}  // namespace vmvault::fs
