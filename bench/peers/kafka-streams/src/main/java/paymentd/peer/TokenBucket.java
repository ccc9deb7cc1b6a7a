package paymentd.peer;

/**
 * paymentd's integer event-time token bucket (src/payments/src/token_bucket.cc): milli-tokens,
 * refill in units of 1/60 milli-token with the remainder carried, so refills are exact.
 */
final class TokenBucket {
  static final long MILLI_TOKENS_PER_TOKEN = 1000;
  private static final long UNITS_PER_MILLI_TOKEN = 60;

  /** milliTokens, lastRefillMs, remainder (0..59). */
  record Value(long milliTokens, long lastRefillMs, long remainder) {}

  private final long ratePerMinute;
  private final long burst;

  TokenBucket(long ratePerMinute, long burst) {
    this.ratePerMinute = ratePerMinute;
    this.burst = burst;
  }

  long capacity() {
    return burst * MILLI_TOKENS_PER_TOKEN;
  }

  Value full(long nowMs) {
    return new Value(capacity(), nowMs, 0);
  }

  Value refill(Value v, long nowMs) {
    if (nowMs <= v.lastRefillMs()) return v;
    long capacity = capacity();
    if (v.milliTokens() >= capacity) return new Value(capacity, nowMs, 0);
    long elapsed = nowMs - v.lastRefillMs();
    long missingUnits = (capacity - v.milliTokens()) * UNITS_PER_MILLI_TOKEN;
    if (elapsed >= (missingUnits + ratePerMinute - 1) / ratePerMinute) {
      return new Value(capacity, nowMs, 0);
    }
    long units = elapsed * ratePerMinute + v.remainder();
    Value out =
        new Value(
            v.milliTokens() + units / UNITS_PER_MILLI_TOKEN, nowMs, units % UNITS_PER_MILLI_TOKEN);
    if (out.milliTokens() >= capacity) return new Value(capacity, nowMs, 0);
    return out;
  }

  boolean hasToken(Value v) {
    return v.milliTokens() >= MILLI_TOKENS_PER_TOKEN;
  }

  Value take(Value v) {
    return new Value(v.milliTokens() - MILLI_TOKENS_PER_TOKEN, v.lastRefillMs(), v.remainder());
  }
}
