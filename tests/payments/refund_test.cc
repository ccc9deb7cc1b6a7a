// Refunds end to end: every refund code, and no double refund under
// duplicates, retries and crashes.
#include <gtest/gtest.h>

#include "payments/decline_codes.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;
using testing::MakeRefund;
using testing::ParseConfirmation;

class RefundTest : public testing::PaymentsDriverTest {
 protected:
  std::string Refund(const std::string& key, const std::string& refund_of, int64_t amount,
                     int64_t ts, const std::string& currency = "EUR",
                     const std::string& customer = "c1") {
    auto c = Decide(MakeRefund(customer, key, refund_of, amount, currency), ts);
    EXPECT_EQ(c.kind(), payments::v1::REFUND);
    EXPECT_EQ(c.refund_of(), refund_of);
    return c.decision() == payments::v1::APPROVED ? "APPROVED" : c.decline_code();
  }
  void Paid(const std::string& key, int64_t amount, int64_t ts, const std::string& customer = "c1",
            const std::string& currency = "EUR") {
    ASSERT_EQ(Decide(MakePayment(customer, key, amount, currency), ts).decision(),
              payments::v1::APPROVED);
  }
};

TEST_F(RefundTest, PartialRefundsUpToTheAmount) {
  Paid("p1", 1000, 1);
  EXPECT_EQ(Refund("r1", "p1", 300, 2), "APPROVED");
  EXPECT_EQ(Refund("r2", "p1", 701, 3), decline_code::kRefundExceedsPayment);
  EXPECT_EQ(Refund("r3", "p1", 700, 4), "APPROVED");
  EXPECT_EQ(Refund("r4", "p1", 1, 5), decline_code::kRefundExceedsPayment);
}

TEST_F(RefundTest, UnknownPayment) {
  Paid("p1", 1000, 1, "c1");
  EXPECT_EQ(Refund("r1", "nope", 10, 2), decline_code::kUnknownPayment);
  // Another customer's payment is not this customer's.
  EXPECT_EQ(Refund("r2", "p1", 10, 3, "EUR", "c2"), decline_code::kUnknownPayment);
  // A refund is not refundable.
  EXPECT_EQ(Refund("r3", "p1", 10, 4), "APPROVED");
  EXPECT_EQ(Refund("r4", "r3", 10, 5), decline_code::kUnknownPayment);
}

TEST_F(RefundTest, PaymentNotApproved) {
  PaymentsConfig config;
  config.daily_amount_limit_minor = 500;
  config.max_amount_minor = 10'000;
  Start(config);
  ASSERT_EQ(Decide(MakePayment("c1", "p1", 600), 1).decline_code(),
            decline_code::kAmountLimitExceeded);
  EXPECT_EQ(Refund("r1", "p1", 100, 2), decline_code::kPaymentNotApproved);
  // A validation decline is a declined payment too.
  ASSERT_EQ(Decide(MakePayment("c1", "p2", 20'000), 3).decline_code(),
            decline_code::kAmountTooLarge);
  EXPECT_EQ(Refund("r2", "p2", 100, 4), decline_code::kPaymentNotApproved);
}

TEST_F(RefundTest, CurrencyMismatch) {
  Paid("p1", 1000, 1);
  EXPECT_EQ(Refund("r1", "p1", 100, 2, "USD"), decline_code::kRefundCurrencyMismatch);
  EXPECT_EQ(Refund("r2", "p1", 1000, 3, "EUR"), "APPROVED");
}

TEST_F(RefundTest, NotRefundableAfterTheWindow) {
  PaymentsConfig config;
  config.refund_window = std::chrono::milliseconds(10'000);
  Start(config);
  Paid("p1", 1000, 1000);
  EXPECT_EQ(Refund("r1", "p1", 100, 10'999), "APPROVED");  // last refundable millisecond
  // Refunding rewrote the entry (restarting its store TTL), but the window
  // still runs from the payment's time.
  EXPECT_EQ(Refund("r2", "p1", 100, 11'000), decline_code::kUnknownPayment);
}

TEST_F(RefundTest, DuplicateRefundRequestsRefundOnce) {
  Paid("p1", 1000, 1);
  auto refund = MakeRefund("c1", "r1", "p1", 600);
  auto first = Decide(refund, 2);
  ASSERT_EQ(first.decision(), payments::v1::APPROVED);
  for (int i = 0; i < 3; ++i) {
    auto again = Decide(refund, 3 + i);
    EXPECT_TRUE(again.replay());
    EXPECT_EQ(again.decision(), payments::v1::APPROVED);
    EXPECT_EQ(again.payment_id(), first.payment_id());
  }
  EXPECT_EQ(Refund("r2", "p1", 401, 10), decline_code::kRefundExceedsPayment);
  EXPECT_EQ(Refund("r3", "p1", 400, 11), "APPROVED");
}

TEST_F(RefundTest, RefundRetriedAfterTheIdempotencyRetentionIsReplayed) {
  PaymentsConfig config;
  config.idempotency_retention = std::chrono::milliseconds(10'000);
  config.refund_window = std::chrono::milliseconds(100'000);
  Start(config);
  Paid("p1", 2000, 1000);
  const auto refund = MakeRefund("c1", "r1", "p1", 600);
  const auto first = Decide(refund, 2000);
  ASSERT_EQ(first.decision(), payments::v1::APPROVED);
  // Past the idempotency retention, inside the refund window: the retry is a
  // replay (it was approved a second time while money was left).
  Paid("other", 1, 20'000, "c2");
  auto retry = Decide(refund, 20'000);
  EXPECT_TRUE(retry.replay());
  EXPECT_EQ(retry.decision(), payments::v1::APPROVED);
  EXPECT_EQ(retry.decided_at_ms(), 2000);
  EXPECT_EQ(Refund("r2", "p1", 1401, 21'000), decline_code::kRefundExceedsPayment);
  // Declined refunds are kept as long.
  EXPECT_TRUE(Decide(MakeRefund("c1", "r2", "p1", 1401), 22'000).replay());
  EXPECT_EQ(Refund("r3", "p1", 1400, 23'000), "APPROVED");
  // Until the end of the payment's window.
  Paid("other2", 1, 100'999, "c2");
  EXPECT_TRUE(Decide(refund, 100'999).replay());
  // After it the payment is not refundable: a retry cannot refund anything.
  Paid("other3", 1, 102'001, "c2");
  auto late = Decide(refund, 102'001);
  EXPECT_FALSE(late.replay());
  EXPECT_EQ(late.decline_code(), decline_code::kUnknownPayment);
}

TEST_F(RefundTest, ExpiredKeyReuseDoesNotOverwriteARefundablePayment) {
  PaymentsConfig config;
  config.idempotency_retention = std::chrono::milliseconds(10'000);
  config.refund_window = std::chrono::milliseconds(100'000);
  Start(config);
  Paid("p1", 1000, 1000);
  EXPECT_EQ(Refund("r1", "p1", 300, 2000), "APPROVED");
  Paid("other", 1, 20'000, "c2");  // p1's decision expires
  // A new payment with p1's key, and p1 itself again: both declined, the
  // payment record (amount, refunded total, approval time) is untouched.
  auto reuse = Decide(MakePayment("c1", "p1", 5000), 20'000);
  EXPECT_EQ(reuse.decline_code(), decline_code::kIdempotencyKeyReused);
  EXPECT_FALSE(reuse.replay());
  EXPECT_EQ(Decide(MakePayment("c1", "p1", 1000), 20'001).decline_code(),
            decline_code::kIdempotencyKeyReused);
  EXPECT_EQ(Decide(MakeRefund("c1", "p1", "r1", 1), 20'002).decline_code(),
            decline_code::kIdempotencyKeyReused);
  EXPECT_EQ(Refund("r2", "p1", 701, 21'000), decline_code::kRefundExceedsPayment);
  EXPECT_EQ(Refund("r3", "p1", 700, 22'000), "APPROVED");
  // p1 stays refundable from its own approval time: not after 1000 + window.
  Paid("other2", 1, 101'000, "c2");
  EXPECT_EQ(Refund("r4", "p1", 1, 101'000), decline_code::kUnknownPayment);
  // Then the key is free again.
  auto fresh = Decide(MakePayment("c1", "p1", 5000), 101'001);
  EXPECT_EQ(fresh.decision(), payments::v1::APPROVED);
  EXPECT_FALSE(fresh.replay());
  EXPECT_EQ(Refund("r5", "p1", 5000, 101'002), "APPROVED");
}

class RefundCrashTest : public RefundTest,
                        public ::testing::WithParamInterface<streams::CrashPoint> {
 protected:
  void SetUp() override {
    streams::TestDriverOptions options;
    options.auto_commit = false;
    Start({}, nullptr, options);
  }
  void PipeAndCommit(const payments::v1::PaymentRequest& r, int64_t ts) {
    Pipe(r, ts);
    ASSERT_TRUE(driver_->Commit().ok());
  }
};

TEST_P(RefundCrashTest, NoDoubleRefundAfterCrash) {
  PipeAndCommit(MakePayment("c1", "p1", 1000), 1);
  const auto refund = MakeRefund("c1", "r1", "p1", 600);
  Pipe(refund, 2);
  ASSERT_TRUE(driver_->SimulateCrash(GetParam()).ok());
  ASSERT_TRUE(driver_->Commit().ok());
  // The refund was decided exactly once as far as readers can see.
  auto out = ReadConfirmations();
  ASSERT_EQ(out.size(), 2u);
  auto decided = ParseConfirmation(out[1]);
  EXPECT_EQ(decided.idempotency_key(), "r1");
  EXPECT_EQ(decided.decision(), payments::v1::APPROVED);
  EXPECT_FALSE(decided.replay());

  // The client retries after the crash: a replay, not a second refund.
  PipeAndCommit(refund, 3);
  PipeAndCommit(MakeRefund("c1", "r2", "p1", 401), 4);
  PipeAndCommit(MakeRefund("c1", "r3", "p1", 400), 5);
  out = ReadConfirmations();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(ParseConfirmation(out[0]).replay());
  EXPECT_EQ(ParseConfirmation(out[1]).decline_code(), decline_code::kRefundExceedsPayment);
  EXPECT_EQ(ParseConfirmation(out[2]).decision(), payments::v1::APPROVED);
}

TEST_P(RefundCrashTest, CrashBetweenDuplicatesStillRefundsOnce) {
  PipeAndCommit(MakePayment("c1", "p1", 1000), 1);
  const auto refund = MakeRefund("c1", "r1", "p1", 1000);
  Pipe(refund, 2);
  Pipe(refund, 3);  // duplicate in the same cycle
  ASSERT_TRUE(driver_->SimulateCrash(GetParam()).ok());
  Pipe(refund, 4);  // and another after the restart
  ASSERT_TRUE(driver_->Commit().ok());
  auto out = ReadConfirmations();
  ASSERT_EQ(out.size(), 4u);
  int approved_fresh = 0;
  for (size_t i = 1; i < out.size(); ++i) {
    auto c = ParseConfirmation(out[i]);
    EXPECT_EQ(c.decision(), payments::v1::APPROVED);
    if (!c.replay()) ++approved_fresh;
  }
  EXPECT_EQ(approved_fresh, 1);
  PipeAndCommit(MakeRefund("c1", "r2", "p1", 1), 5);
  out = ReadConfirmations();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ParseConfirmation(out[0]).decline_code(), decline_code::kRefundExceedsPayment);
}

INSTANTIATE_TEST_SUITE_P(CrashPoints, RefundCrashTest,
                         ::testing::Values(streams::CrashPoint::kBeforeCommit,
                                           streams::CrashPoint::kAfterKafkaCommit),
                         [](const auto& info) {
                           return info.param == streams::CrashPoint::kBeforeCommit
                                      ? std::string("BeforeCommit")
                                      : std::string("AfterKafkaCommit");
                         });

}  // namespace
}  // namespace payments
