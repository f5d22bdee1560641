#include "base/clock.h"

#include <chrono>

namespace vmvault {

int64_t SystemClock::NowMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

SystemClock& SystemClock::Default() {
  static SystemClock clock;
  return clock;
}

}  // namespace vmvault
