#include "base/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "base/clock.h"

namespace vmvault {

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      start_us_(SystemClock::Default().NowMicros()) {}

Progress::~Progress() { Finish(); }

bool Progress::StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

void Progress::Add(uint64_t n) {
  if (!enabled_) return;
  done_.fetch_add(n, std::memory_order_relaxed);
  const int64_t now = SystemClock::Default().NowMicros();
  int64_t last = last_draw_us_.load(std::memory_order_relaxed);
  if (now - last < 100'000) return;
  if (!last_draw_us_.compare_exchange_strong(last, now)) return;
  Draw(false);
}

void Progress::Finish() {
  if (!enabled_) return;
  Draw(true);
}

void Progress::Draw(bool final) {
  std::lock_guard<std::mutex> lock(draw_mu_);
  if (finished_) return;
  const uint64_t done = done_.load();
  const double secs = (SystemClock::Default().NowMicros() - start_us_) / 1e6;
  const double rate = secs > 0 ? done / secs : 0;
  std::string line;
  if (total_ > 0) {
    const double frac = std::min(1.0, static_cast<double>(done) / total_);
    const int width = 30;
    const int filled = static_cast<int>(frac * width);
    line = fmt::format("\r{} [{}{}] {:5.1f}% {} / {}  {}/s", label_, std::string(filled, '#'),
                       std::string(width - filled, '.'), frac * 100, HumanBytes(done),
                       HumanBytes(total_), HumanBytes(static_cast<uint64_t>(rate)));
  } else {
    line = fmt::format("\r{} {}  {}/s", label_, HumanBytes(done),
                       HumanBytes(static_cast<uint64_t>(rate)));
  }
  std::fputs(line.c_str(), stderr);
  std::fputs("\x1b[K", stderr);
  if (final) {
    std::fputc('\n', stderr);
    finished_ = true;
  }
  std::fflush(stderr);
}

std::string HumanBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

}  // namespace vmvault
