#include "payments/token_bucket.h"

namespace payments {
namespace {
// One milli-token is this many refill units (elapsed_ms * rate_per_minute):
// rate tokens per 60000 ms = rate milli-tokens per 60 ms.
constexpr int64_t kUnitsPerMilliToken = 60;
}  // namespace

TokenBucketValue TokenBucket::Full(int64_t now_ms) const {
  return TokenBucketValue{capacity_milli_tokens(), now_ms, 0};
}

TokenBucketValue TokenBucket::Refill(const TokenBucketValue& value, int64_t now_ms) const {
  if (now_ms <= value.last_refill_ms) return value;
  const int64_t capacity = capacity_milli_tokens();
  if (value.milli_tokens >= capacity) return TokenBucketValue{capacity, now_ms, 0};
  const int64_t elapsed = now_ms - value.last_refill_ms;
  const int64_t missing_units = (capacity - value.milli_tokens) * kUnitsPerMilliToken;
  // Past this much time the bucket is full anyway; also keeps the product
  // below (capacity * 60 + rate) * rate, far from overflowing.
  if (elapsed >= (missing_units + rate_per_minute_ - 1) / rate_per_minute_) {
    return TokenBucketValue{capacity, now_ms, 0};
  }
  const int64_t units = elapsed * rate_per_minute_ + value.remainder;
  TokenBucketValue out{value.milli_tokens + units / kUnitsPerMilliToken, now_ms,
                       units % kUnitsPerMilliToken};
  if (out.milli_tokens >= capacity) return TokenBucketValue{capacity, now_ms, 0};
  return out;
}

TokenBucketValue TokenBucket::Take(const TokenBucketValue& value) const {
  TokenBucketValue out = value;
  out.milli_tokens -= kMilliTokensPerToken;
  return out;
}

}  // namespace payments
