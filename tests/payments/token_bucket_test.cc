// Unit tests of the event-time token bucket (no engine).
#include "payments/token_bucket.h"

#include <gtest/gtest.h>

namespace payments {
namespace {

class TokenBucketTest : public ::testing::Test {};

TEST_F(TokenBucketTest, StartsFullAndDrainsByBurst) {
  TokenBucket bucket(60, 3);
  TokenBucketValue v = bucket.Full(1000);
  EXPECT_EQ(v.milli_tokens, 3000);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(bucket.HasToken(v));
    v = bucket.Take(v);
  }
  EXPECT_FALSE(bucket.HasToken(v));
}

TEST_F(TokenBucketTest, RefillsOnEventTimeExactly) {
  TokenBucket bucket(6, 2);  // One token per 10 s.
  TokenBucketValue v = bucket.Take(bucket.Take(bucket.Full(0)));
  EXPECT_FALSE(bucket.HasToken(bucket.Refill(v, 9999)));
  EXPECT_EQ(bucket.Refill(v, 9999).milli_tokens, 999);
  EXPECT_TRUE(bucket.HasToken(bucket.Refill(v, 10000)));
  EXPECT_EQ(bucket.Refill(v, 10000).milli_tokens, 1000);
}

TEST_F(TokenBucketTest, ManySmallStepsEqualOneBigStep) {
  TokenBucket bucket(7, 100);  // 7/60 milli-token per ms: needs the carried remainder.
  TokenBucketValue start = bucket.Take(bucket.Full(0));
  for (int i = 0; i < 99; ++i) start = bucket.Take(start);
  ASSERT_EQ(start.milli_tokens, 0);
  TokenBucketValue stepped = start;
  for (int64_t t = 1; t <= 600'000; t += 7) stepped = bucket.Refill(stepped, t);
  stepped = bucket.Refill(stepped, 600'000);
  TokenBucketValue jumped = bucket.Refill(start, 600'000);
  EXPECT_EQ(stepped, jumped);
  EXPECT_EQ(jumped.milli_tokens, 70'000);  // 10 minutes at 7/min.
}

TEST_F(TokenBucketTest, CapsAtBurst) {
  TokenBucket bucket(60, 5);
  TokenBucketValue v = bucket.Take(bucket.Full(0));
  v = bucket.Refill(v, 3'600'000);
  EXPECT_EQ(v.milli_tokens, 5000);
  EXPECT_EQ(v.remainder, 0);
}

TEST_F(TokenBucketTest, EventTimeGoingBackRefillsNothing) {
  TokenBucket bucket(60, 5);
  TokenBucketValue v = bucket.Take(bucket.Full(10'000));
  TokenBucketValue back = bucket.Refill(v, 5'000);
  EXPECT_EQ(back, v);
}

TEST_F(TokenBucketTest, LargeValuesDoNotOverflow) {
  TokenBucket bucket(1'000'000, 1'000'000);
  TokenBucketValue v = bucket.Full(0);
  for (int i = 0; i < 10; ++i) v = bucket.Take(v);
  v = bucket.Refill(v, int64_t{1} << 60);
  EXPECT_EQ(v.milli_tokens, bucket.capacity_milli_tokens());
}

}  // namespace
}  // namespace payments
