// Per-customer limits end to end: the event-time token bucket and the rolling
// 24 h approved amount per currency.
#include <gtest/gtest.h>

#include "payments/decline_codes.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::FixedScorer;
using testing::MakePayment;
using testing::MakeRefund;

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kHour = 3'600'000;

class LimitsTest : public testing::PaymentsDriverTest {
 protected:
  void SetUp() override {}
  void StartWith(int64_t rate, int64_t burst, int64_t daily) {
    // Day-long gaps between records.
    PaymentsConfig config = testing::AllowingGaps();
    config.rate_limit_per_minute = rate;
    config.rate_limit_burst = burst;
    config.daily_amount_limit_minor = daily;
    Start(config, std::make_shared<FixedScorer>(0));
  }
  std::string Pay(const std::string& customer, int64_t amount, int64_t ts,
                  const std::string& currency = "EUR") {
    auto c = Decide(MakePayment(customer, "k" + std::to_string(next_++), amount, currency), ts);
    return c.decision() == payments::v1::APPROVED ? "APPROVED" : c.decline_code();
  }
  int next_ = 0;
};

TEST_F(LimitsTest, BurstThenRateLimited) {
  StartWith(60, 3, 1'000'000);
  EXPECT_EQ(Pay("c1", 1, 0), "APPROVED");
  EXPECT_EQ(Pay("c1", 1, 0), "APPROVED");
  EXPECT_EQ(Pay("c1", 1, 0), "APPROVED");
  EXPECT_EQ(Pay("c1", 1, 0), decline_code::kRateLimited);
  EXPECT_EQ(Pay("c1", 1, 999), decline_code::kRateLimited);
  EXPECT_EQ(Pay("c1", 1, 1000), "APPROVED");  // 60/min = one token per second
  EXPECT_EQ(Pay("c1", 1, 1000), decline_code::kRateLimited);
  // Another customer has its own bucket.
  EXPECT_EQ(Pay("c2", 1, 1000), "APPROVED");
}

TEST_F(LimitsTest, RefillFollowsEventTimeNotWallClock) {
  StartWith(6, 1, 1'000'000);  // one token per 10 s
  EXPECT_EQ(Pay("c1", 1, 50'000), "APPROVED");
  ASSERT_TRUE(driver_->AdvanceWallClockTime(std::chrono::hours(1)).ok());
  EXPECT_EQ(Pay("c1", 1, 59'999), decline_code::kRateLimited);
  EXPECT_EQ(Pay("c1", 1, 60'000), "APPROVED");
}

TEST_F(LimitsTest, BucketIsCappedAtBurstAfterIdle) {
  StartWith(60, 2, 1'000'000);
  EXPECT_EQ(Pay("c1", 1, 0), "APPROVED");
  EXPECT_EQ(Pay("c1", 1, 10 * kHour), "APPROVED");
  EXPECT_EQ(Pay("c1", 1, 10 * kHour), "APPROVED");
  EXPECT_EQ(Pay("c1", 1, 10 * kHour), decline_code::kRateLimited);
}

TEST_F(LimitsTest, OnlyApprovedRequestsConsumeTokens) {
  PaymentsConfig config;
  config.rate_limit_per_minute = 1;
  config.rate_limit_burst = 1;
  config.daily_amount_limit_minor = 1000;
  Start(config, std::make_shared<FixedScorer>(0));
  // Declined by the amount limit, by fraud, and by validation: no token used.
  EXPECT_EQ(Pay("c1", 5000, 0), decline_code::kAmountLimitExceeded);
  auto fraud = MakePayment("c1", "f1", 10);
  (*fraud.mutable_metadata())["score"] = "10000";
  EXPECT_EQ(Decide(fraud, 0).decline_code(), decline_code::kFraudSuspected);
  EXPECT_EQ(Decide(MakePayment("c1", "v1", 10, "NOPE"), 0).decline_code(),
            decline_code::kUnknownCurrency);
  EXPECT_EQ(Pay("c1", 10, 0), "APPROVED");
  EXPECT_EQ(Pay("c1", 10, 0), decline_code::kRateLimited);
  // A rate-limited request does not consume either: one token after a minute.
  EXPECT_EQ(Pay("c1", 10, 60'000), "APPROVED");
}

TEST_F(LimitsTest, RefundsAreNotRateLimited) {
  StartWith(1, 1, 1'000'000);
  auto c = Decide(MakePayment("c1", "p1", 100), 0);
  ASSERT_EQ(c.decision(), payments::v1::APPROVED);
  EXPECT_EQ(Pay("c1", 1, 0), decline_code::kRateLimited);
  EXPECT_EQ(Decide(MakeRefund("c1", "r1", "p1", 10), 0).decision(), payments::v1::APPROVED);
  EXPECT_EQ(Decide(MakeRefund("c1", "r2", "p1", 10), 0).decision(), payments::v1::APPROVED);
}

TEST_F(LimitsTest, RollingDailyAmountIsExact) {
  StartWith(1000, 1000, 1000);
  const int64_t t0 = 10 * kDay;
  EXPECT_EQ(Pay("c1", 600, t0), "APPROVED");
  EXPECT_EQ(Pay("c1", 400, t0 + kHour), "APPROVED");  // exactly at the limit
  EXPECT_EQ(Pay("c1", 1, t0 + 2 * kHour), decline_code::kAmountLimitExceeded);
  EXPECT_EQ(Pay("c1", 600, t0 + kDay - 1), decline_code::kAmountLimitExceeded);
  // At t0 + 24 h the 600 leaves the window (entries at or before now - 24 h).
  EXPECT_EQ(Pay("c1", 601, t0 + kDay), decline_code::kAmountLimitExceeded);
  EXPECT_EQ(Pay("c1", 600, t0 + kDay), "APPROVED");
  EXPECT_EQ(Pay("c1", 1, t0 + kDay), decline_code::kAmountLimitExceeded);
  // The 400 leaves one hour later.
  EXPECT_EQ(Pay("c1", 400, t0 + kDay + kHour), "APPROVED");
}

TEST_F(LimitsTest, DailyAmountIsPerCurrencyAndPerCustomer) {
  StartWith(1000, 1000, 1000);
  EXPECT_EQ(Pay("c1", 1000, 0), "APPROVED");
  EXPECT_EQ(Pay("c1", 1, 1), decline_code::kAmountLimitExceeded);
  EXPECT_EQ(Pay("c1", 1000, 2, "USD"), "APPROVED");
  EXPECT_EQ(Pay("c2", 1000, 3), "APPROVED");
  // A single payment above the limit is declined even for a new customer.
  EXPECT_EQ(Pay("c3", 1001, 4), decline_code::kAmountLimitExceeded);
}

TEST_F(LimitsTest, RefundsDoNotCountTowardsTheDailyAmount) {
  StartWith(1000, 1000, 1000);
  ASSERT_EQ(Decide(MakePayment("c1", "p1", 1000), 0).decision(), payments::v1::APPROVED);
  ASSERT_EQ(Decide(MakeRefund("c1", "r1", "p1", 1000), 1).decision(), payments::v1::APPROVED);
  // The refund neither added to nor freed the window.
  EXPECT_EQ(Pay("c1", 1, 2), decline_code::kAmountLimitExceeded);
}

TEST_F(LimitsTest, LateRecordsAreJudgedAtTheCustomersLatestEventTime) {
  StartWith(60, 1, 1000);
  EXPECT_EQ(Pay("c1", 1000, 2 * kDay), "APPROVED");
  // A record stamped a day earlier does not escape the window or refill the bucket.
  EXPECT_EQ(Pay("c1", 1, kDay), decline_code::kRateLimited);
  EXPECT_EQ(Pay("c1", 1, 2 * kDay + 1000), decline_code::kAmountLimitExceeded);
}

}  // namespace
}  // namespace payments
