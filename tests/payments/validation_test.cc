// End-to-end tests of the stateless checks through the TopologyTestDriver:
// every validation decline code, what is echoed and what is stored.
#include <gtest/gtest.h>

#include "payments/decline_codes.h"
#include "payments/fingerprint.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;
using testing::MakeRefund;
using testing::ScanStore;

class ValidationTest : public testing::PaymentsDriverTest {
 protected:
  void ExpectDeclined(const payments::v1::PaymentConfirmation& c, std::string_view code) {
    EXPECT_EQ(c.decision(), payments::v1::DECLINED);
    EXPECT_EQ(c.decline_code(), code) << c.decline_message();
    EXPECT_FALSE(c.decline_message().empty());
    EXPECT_EQ(c.fraud_score(), 0.0);
    EXPECT_FALSE(c.replay());
  }
};

TEST_F(ValidationTest, ValidPaymentIsApprovedWithEchoedFields) {
  auto request = MakePayment("cust-1", "key-1", 1234, "EUR", "shop-7");
  request.set_refund_of("");
  auto c = Decide(request, 5000);
  EXPECT_EQ(c.decision(), payments::v1::APPROVED);
  EXPECT_EQ(c.decline_code(), "");
  EXPECT_EQ(c.decline_message(), "");
  EXPECT_EQ(c.payment_id(), "pay_colamcmabcbjphbhlhaaledn");
  EXPECT_EQ(c.idempotency_key(), "key-1");
  EXPECT_EQ(c.customer_id(), "cust-1");
  EXPECT_EQ(c.merchant_id(), "shop-7");
  EXPECT_EQ(c.kind(), payments::v1::PAYMENT);
  EXPECT_EQ(c.amount_minor(), 1234);
  EXPECT_EQ(c.currency(), "EUR");
  EXPECT_EQ(c.decided_at_ms(), 5000);
  EXPECT_EQ(c.source_topic(), "payments.requests");
  EXPECT_EQ(c.source_partition(), 0);
  EXPECT_EQ(c.source_offset(), 0);
  EXPECT_FALSE(c.replay());
  EXPECT_EQ(last_record_.key, "cust-1");
  EXPECT_EQ(last_record_.timestamp, streams::Timestamp(5000));
  EXPECT_TRUE(last_record_.headers.empty());
}

TEST_F(ValidationTest, MissingFieldNamesTheField) {
  struct Case {
    std::string field;
    payments::v1::PaymentRequest request;
  };
  std::vector<Case> cases;
  auto base = MakePayment("c1", "k", 100);
  auto r = base;
  r.clear_idempotency_key();
  cases.push_back({"idempotency_key", r});
  r = base;
  r.clear_customer_id();
  cases.push_back({"customer_id", r});
  r = base;
  r.clear_merchant_id();
  cases.push_back({"merchant_id", r});
  r = base;
  r.clear_currency();
  cases.push_back({"currency", r});
  r = base;
  r.clear_payment_method_token();
  cases.push_back({"payment_method_token", r});
  int i = 0;
  for (auto& [field, request] : cases) {
    if (field != "idempotency_key") request.set_idempotency_key("k" + std::to_string(i++));
    auto c = Decide(request, 1000, std::string("c1"));
    ExpectDeclined(c, decline_code::kMissingField);
    EXPECT_NE(c.decline_message().find(field), std::string::npos) << c.decline_message();
  }
}

TEST_F(ValidationTest, InvalidKind) {
  auto r = MakePayment("c1", "k1", 100);
  r.set_kind(payments::v1::PAYMENT_KIND_UNSPECIFIED);
  ExpectDeclined(Decide(r, 1), decline_code::kInvalidKind);
  r.set_idempotency_key("k2");
  r.set_kind(static_cast<payments::v1::PaymentKind>(7));  // unknown to this version
  ExpectDeclined(Decide(r, 2), decline_code::kInvalidKind);
}

TEST_F(ValidationTest, InvalidAmountAndAmountTooLarge) {
  PaymentsConfig config;
  config.max_amount_minor = 1000;
  Start(config);
  ExpectDeclined(Decide(MakePayment("c1", "k1", 0), 1), decline_code::kInvalidAmount);
  ExpectDeclined(Decide(MakePayment("c1", "k2", -5), 2), decline_code::kInvalidAmount);
  ExpectDeclined(Decide(MakePayment("c1", "k3", 1001), 3), decline_code::kAmountTooLarge);
  EXPECT_EQ(Decide(MakePayment("c1", "k4", 1000), 4).decision(), payments::v1::APPROVED);
}

TEST_F(ValidationTest, UnknownCurrency) {
  int i = 0;
  for (const char* currency : {"XYZ", "eur", "DEM", "EURO"}) {
    ++i;
    ExpectDeclined(Decide(MakePayment("c1", "k" + std::to_string(i), 100, currency), i),
                   decline_code::kUnknownCurrency);
  }
  EXPECT_EQ(Decide(MakePayment("c1", "kj", 100, "JPY"), 10).decision(), payments::v1::APPROVED);
}

TEST_F(ValidationTest, FieldTooLong) {
  PaymentsConfig config;
  config.string_max_length = 10;
  config.metadata_max_entries = 2;
  Start(config);
  auto ok = MakePayment("c1", "k1", 100, "EUR", std::string(10, 'm'));
  ok.set_payment_method_token("tok");
  (*ok.mutable_metadata())["a"] = std::string(10, 'v');
  EXPECT_EQ(Decide(ok, 1).decision(), payments::v1::APPROVED);

  auto r = ok;
  r.set_idempotency_key("k2");
  r.set_merchant_id(std::string(11, 'm'));
  ExpectDeclined(Decide(r, 2), decline_code::kFieldTooLong);
  r = ok;
  r.set_idempotency_key("k3");
  (*r.mutable_metadata())["a"] = std::string(11, 'v');
  ExpectDeclined(Decide(r, 3), decline_code::kFieldTooLong);
  r = ok;
  r.set_idempotency_key("k4");
  (*r.mutable_metadata())[std::string(11, 'k')] = "v";
  ExpectDeclined(Decide(r, 4), decline_code::kFieldTooLong);
  r = ok;
  r.set_idempotency_key("k5");
  (*r.mutable_metadata())["b"] = "1";
  (*r.mutable_metadata())["c"] = "2";
  ExpectDeclined(Decide(r, 5), decline_code::kFieldTooLong);
}

TEST_F(ValidationTest, RefundOfRequired) {
  auto r = MakeRefund("c1", "r1", "", 100);
  ExpectDeclined(Decide(r, 1), decline_code::kRefundOfRequired);
}

TEST_F(ValidationTest, KeyMismatchIsDeclinedAndNotStored) {
  auto c = Decide(MakePayment("c1", "k1", 100), 1, std::string("c2"));
  ExpectDeclined(c, decline_code::kKeyMismatch);
  EXPECT_EQ(c.customer_id(), "c1");
  EXPECT_EQ(last_record_.key, "c2");  // Keyed like the input record.
  EXPECT_TRUE(ScanStore(Store(kIdempotencyStoreName)).empty());
  // The same request correctly keyed is decided on its own (not a reuse).
  EXPECT_EQ(Decide(MakePayment("c1", "k1", 999), 2).decision(), payments::v1::APPROVED);
}

TEST_F(ValidationTest, ValidationDeclineIsStoredAndItsKeyCannotBeReused) {
  ExpectDeclined(Decide(MakePayment("c1", "k1", -1), 1000), decline_code::kInvalidAmount);
  auto stored = ScanStore(Store(kIdempotencyStoreName));
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored.begin()->first, DecisionKey("c1", "k1"));
  // The corrected request with the same key is a reuse (Stripe semantics).
  ExpectDeclined(Decide(MakePayment("c1", "k1", 100), 2000), decline_code::kIdempotencyKeyReused);
  // The key is looked up before validation: another invalid request with it
  // is a reuse too, and the same one is a replay.
  ExpectDeclined(Decide(MakePayment("c1", "k1", -2), 3000), decline_code::kIdempotencyKeyReused);
  auto replay = Decide(MakePayment("c1", "k1", -1), 4000);
  EXPECT_TRUE(replay.replay());
  EXPECT_EQ(replay.decline_code(), decline_code::kInvalidAmount);
  EXPECT_EQ(replay.decided_at_ms(), 1000);
  EXPECT_EQ(ScanStore(Store(kIdempotencyStoreName)), stored);
  EXPECT_TRUE(ScanStore(Store(kCustomersStoreName)).empty());
  EXPECT_TRUE(ScanStore(Store(kPaymentsStoreName)).empty());
}

TEST_F(ValidationTest, DeclinesWithoutIdentityAreNotStored) {
  auto r = MakePayment("c1", "k1", 100);
  r.clear_idempotency_key();
  ExpectDeclined(Decide(r, 1), decline_code::kMissingField);
  r = MakePayment("", "k1", 100);
  ExpectDeclined(Decide(r, 2, std::string("")), decline_code::kMissingField);
  EXPECT_TRUE(ScanStore(Store(kIdempotencyStoreName)).empty());
}

TEST_F(ValidationTest, ControlCharactersInIdentifiersAreDeclined) {
  auto r = MakePayment(std::string("c\0x", 3), "k1", 100);
  auto c = Decide(r, 1, r.customer_id());
  ExpectDeclined(c, decline_code::kInvalidIdentifier);
  EXPECT_NE(c.decline_message().find("customer_id"), std::string::npos);
  r = MakePayment("c1", "k\n1", 100);
  ExpectDeclined(Decide(r, 2), decline_code::kInvalidIdentifier);
  // Not usable as a key: nothing looked up or stored.
  EXPECT_TRUE(ScanStore(Store(kIdempotencyStoreName)).empty());
  // merchant_id and refund_of: declined after the lookup, stored like every
  // validation decline.
  r = MakePayment("c1", "k3", 100, "EUR", "shop\x7f");
  ExpectDeclined(Decide(r, 3), decline_code::kInvalidIdentifier);
  auto refund = MakeRefund("c1", "r1", std::string("k\0" "3", 3), 100);
  ExpectDeclined(Decide(refund, 4), decline_code::kInvalidIdentifier);
  EXPECT_EQ(ScanStore(Store(kIdempotencyStoreName)).size(), 2u);
}

TEST_F(ValidationTest, MalformedPayloadGoesToDeadLetterTopic) {
  ASSERT_TRUE(driver_
                  ->PipeInput("payments.requests", std::string("c1"), std::string("\xff\xff\xff"),
                              streams::Timestamp(1))
                  .ok());
  EXPECT_TRUE(ReadConfirmations().empty());
  EXPECT_EQ(driver_->AllRecords("payments.requests.dlq").size(), 1u);
  // Processing goes on.
  EXPECT_EQ(Decide(MakePayment("c1", "k1", 100), 2).decision(), payments::v1::APPROVED);
}

TEST_F(ValidationTest, CustomTopicsAreUsed) {
  PaymentsConfig config;
  config.requests_topic = "in";
  config.confirmations_topic = "out";
  Start(config);
  auto c = Decide(MakePayment("c1", "k1", 100), 1);
  EXPECT_EQ(c.source_topic(), "in");
  EXPECT_EQ(driver_->AllRecords("out").size(), 1u);
}

TEST_F(ValidationTest, InvalidConfigIsRejectedByTheBuilder) {
  PaymentsConfig config;
  config.rate_limit_burst = 0;
  auto topology = BuildPaymentsTopology(config);
  ASSERT_FALSE(topology.ok());
  EXPECT_NE(topology.status().message().find("payments.rate.limit.burst"), std::string::npos);
}

}  // namespace
}  // namespace payments
