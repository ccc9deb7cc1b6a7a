// Keys of the idempotency and payments stores: DecisionKey (versioned,
// length-prefixed) keeps every (customer_id, idempotency_key) pair apart, and
// entries written under the previous layout (customer_id '\0' idempotency_key)
// are still found after an upgrade.
#include <gtest/gtest.h>

#include "decide_processor.h"
#include "payments/decline_codes.h"
#include "payments/fingerprint.h"
#include "payments_state.pb.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;
using testing::MakeRefund;
using testing::ScanStore;

class StoreKeysTest : public testing::PaymentsDriverTest {};

TEST_F(StoreKeysTest, PairsThatSharedAKeyNoLongerMeet) {
  // ("a", "b\0c") and ("a\0b", "c") had the same key "a\0b\0c": the second
  // customer got the first one's stored confirmation. Both are now declined
  // (control characters), and nothing is stored for either.
  const auto first = MakePayment("a", std::string("b\0c", 3), 100);
  auto c1 = Decide(first, 1);
  EXPECT_EQ(c1.decline_code(), decline_code::kInvalidIdentifier);
  const auto second = MakePayment(std::string("a\0b", 3), "c", 100);
  auto c2 = Decide(second, 2, second.customer_id());
  EXPECT_EQ(c2.decline_code(), decline_code::kInvalidIdentifier);
  EXPECT_FALSE(c2.replay());
  EXPECT_EQ(c2.customer_id(), second.customer_id());
  EXPECT_NE(c1.payment_id(), c2.payment_id());
  EXPECT_TRUE(ScanStore(Store(kIdempotencyStoreName)).empty());
}

TEST_F(StoreKeysTest, EveryStoreKeyIsLengthPrefixed) {
  ASSERT_EQ(Decide(MakePayment("c1", "p1", 1000), 1).decision(), payments::v1::APPROVED);
  ASSERT_EQ(Decide(MakeRefund("c1", "r1", "p1", 10), 2).decision(), payments::v1::APPROVED);
  auto idempotency = ScanStore(Store(kIdempotencyStoreName));
  ASSERT_EQ(idempotency.size(), 1u);
  EXPECT_EQ(idempotency.begin()->first, DecisionKey("c1", "p1"));
  auto payments = ScanStore(Store(kPaymentsStoreName));
  ASSERT_EQ(payments.size(), 2u);
  internal::PaymentsEntry payment;
  ASSERT_TRUE(payment.ParseFromString(payments.at(DecisionKey("c1", "p1"))));
  ASSERT_TRUE(payment.has_payment());
  EXPECT_EQ(payment.payment().refunded_minor(), 10);
  internal::PaymentsEntry refund;
  ASSERT_TRUE(refund.ParseFromString(payments.at(DecisionKey("c1", "r1"))));
  ASSERT_TRUE(refund.has_refund_decision());
  EXPECT_EQ(refund.refund_decision().confirmation().decision(), payments::v1::APPROVED);
}

// State written by the previous version: its keys, its values.
class LegacyKeysTest : public testing::PaymentsDriverTest {
 protected:
  void SetUp() override {
    Start();
    // An approved payment p1 (1000 EUR, 250 refunded), its decision, and the
    // decision of a declined payment d1.
    original_ = MakePayment("c1", "p1", 1000);
    payments::v1::PaymentConfirmation approved;
    approved.set_payment_id("pay_legacy");
    approved.set_idempotency_key("p1");
    approved.set_customer_id("c1");
    approved.set_kind(payments::v1::PAYMENT);
    approved.set_decision(payments::v1::APPROVED);
    approved.set_amount_minor(1000);
    approved.set_currency("EUR");
    approved.set_decided_at_ms(500);
    internal::IdempotencyRecord record;
    record.set_fingerprint(RequestFingerprint(original_));
    *record.mutable_confirmation() = approved;
    Put(kIdempotencyStoreName, internal::LegacyStoreKey("c1", "p1"), record.SerializeAsString());
    internal::PaymentRecord payment;
    payment.set_amount_minor(1000);
    payment.set_currency("EUR");
    payment.set_refunded_minor(250);
    payment.set_approved_at_ms(500);
    Put(kPaymentsStoreName, internal::LegacyStoreKey("c1", "p1"), payment.SerializeAsString());
    payments::v1::PaymentConfirmation declined = approved;
    declined.set_idempotency_key("d1");
    declined.set_decision(payments::v1::DECLINED);
    declined.set_decline_code(std::string(decline_code::kFraudSuspected));
    record.set_fingerprint("x");
    *record.mutable_confirmation() = declined;
    Put(kIdempotencyStoreName, internal::LegacyStoreKey("c1", "d1"), record.SerializeAsString());
    ASSERT_TRUE(driver_->Commit().ok());
  }
  void Put(std::string_view store, const std::string& key, const std::string& value) {
    ASSERT_TRUE(Store(store)->Put(key, value).ok());
  }
  payments::v1::PaymentRequest original_;
};

TEST_F(LegacyKeysTest, RetryOfAnOldDecisionIsReplayed) {
  auto replay = Decide(original_, 1000);
  EXPECT_TRUE(replay.replay());
  EXPECT_EQ(replay.payment_id(), "pay_legacy");
  EXPECT_EQ(replay.decided_at_ms(), 500);
  auto other = original_;
  other.set_amount_minor(1);
  EXPECT_EQ(Decide(other, 1001).decline_code(), decline_code::kIdempotencyKeyReused);
}

TEST_F(LegacyKeysTest, OldPaymentsAreRefundedOnceAndMoveToTheNewKey) {
  EXPECT_EQ(Decide(MakeRefund("c1", "r1", "p1", 751), 1000).decline_code(),
            decline_code::kRefundExceedsPayment);
  EXPECT_EQ(Decide(MakeRefund("c1", "r2", "p1", 750), 1001).decision(), payments::v1::APPROVED);
  auto payments = ScanStore(Store(kPaymentsStoreName));
  EXPECT_EQ(payments.count(internal::LegacyStoreKey("c1", "p1")), 0u);
  internal::PaymentsEntry moved;
  ASSERT_TRUE(moved.ParseFromString(payments.at(DecisionKey("c1", "p1"))));
  EXPECT_EQ(moved.payment().refunded_minor(), 1000);
  EXPECT_EQ(moved.payment().approved_at_ms(), 500);
  EXPECT_EQ(Decide(MakeRefund("c1", "r3", "p1", 1), 1002).decline_code(),
            decline_code::kRefundExceedsPayment);
  // An old declined payment is still known as declined.
  EXPECT_EQ(Decide(MakeRefund("c1", "r4", "d1", 1), 1003).decline_code(),
            decline_code::kPaymentNotApproved);
}

TEST_F(LegacyKeysTest, AnOldRefundablePaymentKeepsItsKey) {
  // Its decision gone (as after the retention), the payment record still
  // holds the key.
  ASSERT_TRUE(Store(kIdempotencyStoreName)->Delete(internal::LegacyStoreKey("c1", "p1")).ok());
  ASSERT_TRUE(driver_->Commit().ok());
  EXPECT_EQ(Decide(MakePayment("c1", "p1", 7), 1000).decline_code(),
            decline_code::kIdempotencyKeyReused);
}

}  // namespace
}  // namespace payments
