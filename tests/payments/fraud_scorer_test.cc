// Unit tests of the default fraud scorer (no engine).
#include "payments/fraud_scorer.h"

#include <gtest/gtest.h>

#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;

class DefaultFraudScorerTest : public ::testing::Test {
 protected:
  // A customer with 4 approved EUR payments of 100 at merchant-1, long ago.
  CustomerProfile Regular() {
    CustomerProfile p;
    p.now_ms = 100'000'000;
    p.approved_payments = 4;
    p.currency_stats = {{"EUR", 4, 400}};
    p.known_merchants = {"merchant-1"};
    p.known_currencies = {"EUR"};
    return p;
  }
  int32_t Score(const payments::v1::PaymentRequest& r, const CustomerProfile& p) {
    return scorer_.ScoreBasisPoints(r, p);
  }
  DefaultFraudScorer scorer_;
};

TEST_F(DefaultFraudScorerTest, FirstPaymentGetsItsWeightOnly) {
  EXPECT_EQ(Score(MakePayment("c", "k", 99'999'999, "JPY", "new"), CustomerProfile{}),
            DefaultFraudScorer::kFirstPaymentBp);
}

TEST_F(DefaultFraudScorerTest, RegularPaymentScoresZero) {
  EXPECT_EQ(Score(MakePayment("c", "k", 200), Regular()), 0);  // exactly 2x the average
}

TEST_F(DefaultFraudScorerTest, AmountTiersAgainstOwnAverage) {
  EXPECT_EQ(Score(MakePayment("c", "k", 201), Regular()), DefaultFraudScorer::kAmountOver2xBp);
  EXPECT_EQ(Score(MakePayment("c", "k", 500), Regular()), DefaultFraudScorer::kAmountOver2xBp);
  EXPECT_EQ(Score(MakePayment("c", "k", 501), Regular()), DefaultFraudScorer::kAmountOver5xBp);
  EXPECT_EQ(Score(MakePayment("c", "k", 1000), Regular()), DefaultFraudScorer::kAmountOver5xBp);
  EXPECT_EQ(Score(MakePayment("c", "k", 1001), Regular()), DefaultFraudScorer::kAmountOver10xBp);
}

TEST_F(DefaultFraudScorerTest, NewMerchantAndNewCurrency) {
  EXPECT_EQ(Score(MakePayment("c", "k", 100, "EUR", "merchant-2"), Regular()),
            DefaultFraudScorer::kNewMerchantBp);
  // New currency: no history there, so no amount component.
  EXPECT_EQ(Score(MakePayment("c", "k", 1'000'000, "USD"), Regular()),
            DefaultFraudScorer::kNewCurrencyBp);
}

TEST_F(DefaultFraudScorerTest, VelocityCountsApprovalsOfTheLastHourOnly) {
  auto p = Regular();
  const int64_t hour = 3'600'000;
  auto with_recent = [&](int64_t count, int64_t age_ms) {
    auto q = p;
    q.recent_approvals = {{p.now_ms - age_ms, "EUR", 100 * count, count}};
    return Score(MakePayment("c", "k", 100), q);
  };
  EXPECT_EQ(with_recent(2, 0), 0);
  EXPECT_EQ(with_recent(3, 0), DefaultFraudScorer::kVelocity3Bp);
  EXPECT_EQ(with_recent(6, hour - 1), DefaultFraudScorer::kVelocity6Bp);
  EXPECT_EQ(with_recent(10, 1), DefaultFraudScorer::kVelocity10Bp);
  EXPECT_EQ(with_recent(50, hour), 0);  // exactly one hour ago: outside
}

TEST_F(DefaultFraudScorerTest, VelocityUsesApprovalsLastHourWhenSet) {
  EXPECT_FALSE(scorer_.NeedsRecentApprovals());
  auto p = Regular();
  p.approvals_last_hour = 6;
  EXPECT_EQ(Score(MakePayment("c", "k", 100), p), DefaultFraudScorer::kVelocity6Bp);
  p.approvals_last_hour = 2;
  EXPECT_EQ(Score(MakePayment("c", "k", 100), p), 0);
  // When set, the count is used as is, whatever the list holds.
  p.recent_approvals = {{p.now_ms, "EUR", 1000, 10}};
  EXPECT_EQ(Score(MakePayment("c", "k", 100), p), 0);
  p.approvals_last_hour = 10;
  EXPECT_EQ(Score(MakePayment("c", "k", 100), p), DefaultFraudScorer::kVelocity10Bp);
}

TEST_F(DefaultFraudScorerTest, SumIsCappedAt10000) {
  auto p = Regular();
  p.recent_approvals = {{p.now_ms, "EUR", 1000, 10}};
  // 5000 (amount > 10x) + 2000 (new merchant) + 3000 (velocity) = 10000.
  EXPECT_EQ(Score(MakePayment("c", "k", 100'000, "EUR", "merchant-x"), p), 10000);
  p.known_currencies.clear();  // + new currency 1500: still capped
  EXPECT_EQ(Score(MakePayment("c", "k", 100'000, "EUR", "merchant-x"), p), 10000);
}

TEST_F(DefaultFraudScorerTest, IsDeterministic) {
  auto p = Regular();
  p.recent_approvals = {{p.now_ms - 10, "EUR", 300, 3}};
  auto r = MakePayment("c", "k", 777, "EUR", "merchant-9");
  const int32_t first = Score(r, p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Score(r, p), first);
  EXPECT_EQ(DefaultFraudScorerInstance()->ScoreBasisPoints(r, p), first);
  EXPECT_EQ(first, DefaultFraudScorer::kNewMerchantBp + DefaultFraudScorer::kAmountOver5xBp +
                       DefaultFraudScorer::kVelocity3Bp);
}

}  // namespace
}  // namespace payments
