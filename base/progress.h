// Progress: a one-line progress bar on stderr for long operations. It draws only when
// stderr is a terminal (so cron mail stays empty) and the caller did not ask for
// quiet. Add() is thread-safe and cheap; the line is redrawn at most ten times a
// second.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace vmvault {

class Progress {
 public:
  // `total` may be 0 when unknown. `enabled` false makes every call a no-op.
  Progress(std::string label, uint64_t total, bool enabled);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(uint64_t n);
  // Draws the final state and ends the line.
  void Finish();

  // True when stderr is a terminal.
  static bool StderrIsTerminal();

 private:
  void Draw(bool final);

  const std::string label_;
  const uint64_t total_;
  const bool enabled_;
  const int64_t start_us_;
  std::atomic<uint64_t> done_{0};
  std::atomic<int64_t> last_draw_us_{0};
  std::mutex draw_mu_;
  bool finished_ = false;  // GUARDED_BY(draw_mu_)
};

// "1.5 GiB", "312 KiB".
std::string HumanBytes(uint64_t bytes);

}  // namespace vmvault
