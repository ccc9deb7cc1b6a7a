// Backoff with jitter and a circuit breaker, for retrying a dependency (a
// database, an HTTP endpoint) without hammering it.
//
// Thread safety: BackoffDelay is thread-safe. A CircuitBreaker is not
// thread-safe: one owner thread (guard it externally when shared).
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string_view>

namespace streams::connect {

struct BackoffPolicy {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{10000};
  // The delay is the capped exponential value initial * 2^(retry-1) scaled by a
  // uniformly random factor in [1 - jitter, 1] (clamped to [0, 1]).
  double jitter = 0.5;
};

// The delay before retry number `retry` (1 = the first retry; values < 1 count
// as 1). Never above policy.max, never negative.
std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int retry,
                                       std::mt19937_64& rng);

// Closed while calls succeed. Each failure makes the next attempt wait a
// BackoffDelay (growing with the consecutive failures); once `open_after`
// consecutive failures are reached the breaker is open: it still lets one
// probe through whenever the delay has passed (half-open), and the first
// success closes it again.
class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };

  CircuitBreaker(BackoffPolicy policy, int open_after, uint64_t seed = std::random_device{}())
      : policy_(policy), open_after_(open_after < 1 ? 1 : open_after), rng_(seed) {}

  // True when an attempt may be made at `now` (no failure pending, or its
  // delay has passed).
  bool AllowAttempt(std::chrono::steady_clock::time_point now) const { return now >= next_; }
  // Records a success: closes the breaker and clears the failure count.
  void RecordSuccess();
  // Records a failure at `now`; schedules the next allowed attempt. Returns
  // the delay until then.
  std::chrono::milliseconds RecordFailure(std::chrono::steady_clock::time_point now);

  State state(std::chrono::steady_clock::time_point now) const;
  int consecutive_failures() const { return failures_; }
  std::chrono::steady_clock::time_point next_attempt() const { return next_; }

 private:
  BackoffPolicy policy_;
  int open_after_;
  std::mt19937_64 rng_;
  int failures_ = 0;
  std::chrono::steady_clock::time_point next_{};
};

// "closed", "open", "half_open".
std::string_view CircuitStateName(CircuitBreaker::State state);

}  // namespace streams::connect
