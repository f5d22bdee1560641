// Clock: the time source. Production code takes a Clock& so tests can use FakeClock
// (after RocksDB's MockTimeEnv). Times are microseconds since the Unix epoch, UTC.
// SystemClock is thread-safe; FakeClock is thread-safe too (an atomic).
#pragma once

#include <atomic>
#include <cstdint>

namespace vmvault {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMicros() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMicros() const override;
  static SystemClock& Default();
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_us = 0) : now_us_(now_us) {}
  int64_t NowMicros() const override { return now_us_.load(); }
  void Set(int64_t now_us) { now_us_.store(now_us); }
  void Advance(int64_t delta_us) { now_us_.fetch_add(delta_us); }

 private:
  std::atomic<int64_t> now_us_;
};

}  // namespace vmvault
