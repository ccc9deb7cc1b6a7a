#include "streams/connect/backoff.h"

#include <algorithm>

namespace streams::connect {

std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int retry,
                                       std::mt19937_64& rng) {
  const int64_t initial = std::max<int64_t>(0, policy.initial.count());
  const int64_t cap = std::max<int64_t>(initial, policy.max.count());
  int64_t delay = initial;
  for (int i = 1; i < retry && delay < cap; ++i) delay = std::min(cap, delay * 2);
  delay = std::min(delay, cap);
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  if (jitter > 0 && delay > 0) {
    std::uniform_real_distribution<double> factor(1.0 - jitter, 1.0);
    delay = static_cast<int64_t>(static_cast<double>(delay) * factor(rng));
  }
  return std::chrono::milliseconds(delay);
}

void CircuitBreaker::RecordSuccess() {
  failures_ = 0;
  next_ = {};
}

std::chrono::milliseconds CircuitBreaker::RecordFailure(std::chrono::steady_clock::time_point now) {
  ++failures_;
  std::chrono::milliseconds delay = BackoffDelay(policy_, failures_, rng_);
  next_ = now + delay;
  return delay;
}

CircuitBreaker::State CircuitBreaker::state(std::chrono::steady_clock::time_point now) const {
  if (failures_ < open_after_) return State::kClosed;
  return now >= next_ ? State::kHalfOpen : State::kOpen;
}

std::string_view CircuitStateName(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

}  // namespace streams::connect
