// Clock: the source of wall-clock time, injectable so tests use a manual clock.
//
// Decisions of a topology must depend on record timestamps (event time), not on a
// Clock; the clock drives wall-clock punctuation, commit intervals and metrics only.
#pragma once

#include <atomic>

#include "streams/kafka_types.h"

namespace streams {

// Thread safety: implementations are safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp Now() const = 0;
};

// The system's real-time clock. Thread-safe.
class SystemClock final : public Clock {
 public:
  Timestamp Now() const override;
  // A process-wide instance; never destroyed.
  static SystemClock* Default();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start = Timestamp(0)) : now_(start.millis()) {}
  Timestamp Now() const override { return Timestamp(now_.load()); }
  void Advance(int64_t millis) { now_.fetch_add(millis); }
  void Set(Timestamp t) { now_.store(t.millis()); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace streams
