// Fraud scoring end to end: threshold, score on every confirmation, default scorer.
#include <gtest/gtest.h>

#include "payments/decline_codes.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::FixedScorer;
using testing::MakePayment;
using testing::MakeRefund;

// Records the profiles it was asked to score.
class ProfileCapturingScorer final : public FraudScorer {
 public:
  int32_t ScoreBasisPoints(const payments::v1::PaymentRequest&,
                           const CustomerProfile& profile) const override {
    profiles.push_back(profile);
    return 0;
  }
  mutable std::vector<CustomerProfile> profiles;
};

class FraudTest : public testing::PaymentsDriverTest {
 protected:
  payments::v1::PaymentRequest Scored(const std::string& key, int32_t bp) {
    auto r = MakePayment("c1", key, 100);
    (*r.mutable_metadata())["score"] = std::to_string(bp);
    return r;
  }
};

TEST_F(FraudTest, DeclinedOnlyAboveTheThreshold) {
  Start({}, std::make_shared<FixedScorer>(0));
  auto at = Decide(Scored("k1", 9500), 1);
  EXPECT_EQ(at.decision(), payments::v1::APPROVED);
  EXPECT_DOUBLE_EQ(at.fraud_score(), 0.95);
  auto above = Decide(Scored("k2", 9501), 2);
  EXPECT_EQ(above.decision(), payments::v1::DECLINED);
  EXPECT_EQ(above.decline_code(), decline_code::kFraudSuspected);
  EXPECT_DOUBLE_EQ(above.fraud_score(), 0.9501);
}

TEST_F(FraudTest, ThresholdComesFromConfig) {
  auto config = PaymentsConfig::FromProperties({{"payments.fraud.threshold", "0.3"}});
  ASSERT_TRUE(config.ok());
  Start(*config, std::make_shared<FixedScorer>(0));
  EXPECT_EQ(Decide(Scored("k1", 3000), 1).decision(), payments::v1::APPROVED);
  EXPECT_EQ(Decide(Scored("k2", 3001), 2).decline_code(), decline_code::kFraudSuspected);
}

TEST_F(FraudTest, ScoresOutsideTheRangeAreClamped) {
  Start({}, std::make_shared<FixedScorer>(0));
  EXPECT_DOUBLE_EQ(Decide(Scored("k1", -50), 1).fraud_score(), 0.0);
  auto high = Decide(Scored("k2", 20000), 2);
  EXPECT_DOUBLE_EQ(high.fraud_score(), 1.0);
  EXPECT_EQ(high.decline_code(), decline_code::kFraudSuspected);
}

TEST_F(FraudTest, EveryConfirmationCarriesItsScore) {
  PaymentsConfig config;
  config.rate_limit_burst = 1;
  config.daily_amount_limit_minor = 150;
  Start(config, std::make_shared<FixedScorer>(1234));
  auto approved = Decide(MakePayment("c1", "k1", 100), 1);
  EXPECT_DOUBLE_EQ(approved.fraud_score(), 0.1234);
  // Scored, then declined by a limit: the score is still reported.
  EXPECT_DOUBLE_EQ(Decide(MakePayment("c1", "k2", 100), 2).fraud_score(), 0.1234);
  EXPECT_DOUBLE_EQ(Decide(MakePayment("c2", "k3", 200), 3).fraud_score(), 0.1234);
  // Replays carry the stored score.
  EXPECT_DOUBLE_EQ(Decide(MakePayment("c1", "k1", 100), 4).fraud_score(), 0.1234);
  // Not scored: validation failures, key reuse, refunds.
  EXPECT_EQ(Decide(MakePayment("c1", "k4", -1), 5).fraud_score(), 0.0);
  EXPECT_EQ(Decide(MakePayment("c1", "k1", 101), 6).fraud_score(), 0.0);
  EXPECT_EQ(Decide(MakeRefund("c1", "r1", "k1", 10), 7).fraud_score(), 0.0);
}

TEST_F(FraudTest, ScorerSeesTheCustomersHistory) {
  auto scorer = std::make_shared<ProfileCapturingScorer>();
  Start({}, scorer);
  ASSERT_EQ(Decide(MakePayment("c1", "k1", 100, "EUR", "m1"), 1000).decision(),
            payments::v1::APPROVED);
  ASSERT_EQ(Decide(MakePayment("c1", "k2", 300, "USD", "m2"), 2000).decision(),
            payments::v1::APPROVED);
  Decide(MakePayment("c1", "k3", 50, "EUR", "m3"), 3000);
  ASSERT_EQ(scorer->profiles.size(), 3u);
  EXPECT_EQ(scorer->profiles[0].approved_payments, 0);
  const CustomerProfile& p = scorer->profiles[2];
  EXPECT_EQ(p.now_ms, 3000);
  EXPECT_EQ(p.approved_payments, 2);
  EXPECT_EQ(p.known_merchants, (std::vector<std::string>{"m2", "m1"}));
  EXPECT_EQ(p.known_currencies, (std::vector<std::string>{"USD", "EUR"}));
  ASSERT_EQ(p.currency_stats.size(), 2u);
  EXPECT_EQ(p.currency_stats[0].currency, "EUR");
  EXPECT_EQ(p.currency_stats[0].approved_sum_minor, 100);
  EXPECT_EQ(p.currency_stats[1].currency, "USD");
  ASSERT_EQ(p.recent_approvals.size(), 2u);
  EXPECT_EQ(p.recent_approvals[0].at_ms, 1000);
  EXPECT_EQ(p.recent_approvals[1].amount_minor, 300);
}

TEST_F(FraudTest, DefaultScorerDeclinesAnOutlier) {
  PaymentsConfig config;
  config.rate_limit_burst = 100;
  Start(config);  // default scorer
  auto first = Decide(MakePayment("c1", "k0", 100, "EUR", "m1"), 0);
  EXPECT_DOUBLE_EQ(first.fraud_score(), 0.25);  // first-ever payment
  for (int i = 1; i <= 10; ++i) {
    auto c = Decide(MakePayment("c1", "k" + std::to_string(i), 100, "EUR", "m1"), i * 1000);
    ASSERT_EQ(c.decision(), payments::v1::APPROVED) << i;
  }
  // > 10x the average, 11 approvals in the last hour, new merchant: 10000 bp.
  auto outlier = Decide(MakePayment("c1", "big", 5000, "EUR", "m-new"), 20'000);
  EXPECT_EQ(outlier.decline_code(), decline_code::kFraudSuspected);
  EXPECT_DOUBLE_EQ(outlier.fraud_score(), 1.0);
  // The fraud decline changed nothing: a normal payment is still fine and
  // m-new is still unknown (scored as new merchant + velocity only).
  auto normal = Decide(MakePayment("c1", "n1", 100, "EUR", "m-new"), 21'000);
  EXPECT_EQ(normal.decision(), payments::v1::APPROVED);
  EXPECT_DOUBLE_EQ(normal.fraud_score(), 0.5);
}

TEST_F(FraudTest, ScoresAreDeterministicAcrossRuns) {
  std::vector<double> runs[2];
  for (auto& scores : runs) {
    Start();
    int64_t ts = 0;
    for (int i = 0; i < 20; ++i) {
      auto r = MakePayment("c" + std::to_string(i % 3), "k" + std::to_string(i), 50 + i * 37 % 400,
                           i % 5 == 0 ? "USD" : "EUR", "m" + std::to_string(i % 4));
      scores.push_back(Decide(r, ts += 900).fraud_score());
    }
  }
  EXPECT_EQ(runs[0], runs[1]);
}

}  // namespace
}  // namespace payments
