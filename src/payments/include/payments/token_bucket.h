// TokenBucket: an integer token bucket driven by event time (record
// timestamps), used for the per-customer rate limit.
//
// Tokens are counted in milli-tokens; a request takes kMilliTokensPerToken.
// The bucket refills at rate_per_minute tokens per 60000 ms of event time,
// exactly: refill is computed in units of 1/60 milli-token (elapsed_ms *
// rate_per_minute) and the sub-milli-token remainder is carried, so refilling
// in many small steps gives the same tokens as one big step. The bucket holds
// at most burst tokens. Event time going backwards refills nothing.
//
// Thread safety: immutable after construction; const methods are safe to call
// from any thread. TokenBucketValue is a plain value.
#pragma once

#include <cstdint>

namespace payments {

struct TokenBucketValue {
  int64_t milli_tokens = 0;
  // Event time (ms) the bucket was last refilled to.
  int64_t last_refill_ms = 0;
  // Carried refill, in 1/60 milli-token (0..59).
  int64_t remainder = 0;
  friend bool operator==(const TokenBucketValue&, const TokenBucketValue&) = default;
};

class TokenBucket {
 public:
  static constexpr int64_t kMilliTokensPerToken = 1000;

  // Preconditions (PaymentsConfig::Validate ensures them): 1 <= rate_per_minute
  // <= 1000000 and 1 <= burst <= 1000000.
  TokenBucket(int64_t rate_per_minute, int64_t burst)
      : rate_per_minute_(rate_per_minute), burst_(burst) {}

  // A full bucket (burst tokens) at `now_ms`: the state of a new customer.
  TokenBucketValue Full(int64_t now_ms) const;

  // The bucket refilled from its last_refill_ms to `now_ms`; unchanged when
  // now_ms <= last_refill_ms.
  TokenBucketValue Refill(const TokenBucketValue& value, int64_t now_ms) const;

  // True when `value` holds at least one whole token.
  bool HasToken(const TokenBucketValue& value) const {
    return value.milli_tokens >= kMilliTokensPerToken;
  }

  // `value` minus one token. Precondition: HasToken(value).
  TokenBucketValue Take(const TokenBucketValue& value) const;

  int64_t capacity_milli_tokens() const { return burst_ * kMilliTokensPerToken; }

 private:
  int64_t rate_per_minute_;
  int64_t burst_;
};

}  // namespace payments
