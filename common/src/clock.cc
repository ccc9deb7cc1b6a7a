#include "streams/clock.h"

#include <chrono>

namespace streams {

Timestamp SystemClock::Now() const {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  return Timestamp(
      duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

SystemClock* SystemClock::Default() {
  static auto* clock = new SystemClock();
  return clock;
}

}  // namespace streams
