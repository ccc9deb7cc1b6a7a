// PAN handling end to end: detection in every field, redaction of the
// confirmation and its key, and no PAN in outputs, stores or changelogs.
#include <gtest/gtest.h>

#include <mutex>

#include "payments/decision_observer.h"
#include "payments/decline_codes.h"
#include "payments/fingerprint.h"
#include "payments/pan.h"
#include "payments_test_util.h"
#include "streams/stream_task.h"

namespace payments {
namespace {

using testing::MakePayment;
using testing::ScanStore;

constexpr char kPan[] = "4111111111111111";
constexpr char kPanDigitsBeforeLast4[] = "411111111111";

class RecordingObserver final : public DecisionObserver {
 public:
  void OnDecision(const payments::v1::PaymentConfirmation& c) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(c);
  }
  std::vector<payments::v1::PaymentConfirmation> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<payments::v1::PaymentConfirmation> seen_;
};

class PanTest : public testing::PaymentsDriverTest {
 protected:
  void SetUp() override { Start({}, nullptr, {}, &observer_); }

  // True when `bytes` holds the PAN (or its leading digits) in clear.
  static bool HasPan(std::string_view bytes) {
    return bytes.find(kPanDigitsBeforeLast4) != std::string_view::npos ||
           bytes.find("4111 1111 1111") != std::string_view::npos;
  }

  // Every byte the driver holds outside the input topic: outputs, changelogs,
  // dead letters, stores.
  void ExpectNoPanAnywhere() {
    for (const std::string& topic :
         {std::string("payments.confirmations"), Changelog(kIdempotencyStoreName),
          Changelog(kPaymentsStoreName), Changelog(kCustomersStoreName),
          std::string("payments.requests.dlq")}) {
      for (const auto& record : driver_->AllRecords(topic)) {
        EXPECT_FALSE(HasPan(record.key.value_or(""))) << topic;
        EXPECT_FALSE(HasPan(record.value.value_or(""))) << topic;
      }
    }
    for (auto store : {kIdempotencyStoreName, kPaymentsStoreName, kCustomersStoreName}) {
      for (const auto& [k, v] : ScanStore(Store(store))) {
        EXPECT_FALSE(HasPan(k)) << store;
        EXPECT_FALSE(HasPan(v)) << store;
      }
    }
    for (const auto& c : observer_.seen()) EXPECT_FALSE(HasPan(c.SerializeAsString()));
  }

  RecordingObserver observer_;
};

TEST_F(PanTest, PanInAnyFieldIsDeclinedRedactedAndNotStored) {
  using R = payments::v1::PaymentRequest;
  std::vector<std::pair<std::string, std::function<void(R&)>>> mutations = {
      {"idempotency_key", [](R& r) { r.set_idempotency_key(std::string("k-") + kPan); }},
      {"merchant_id", [](R& r) { r.set_merchant_id(std::string("shop ") + kPan); }},
      {"currency", [](R& r) { r.set_currency(kPan); }},
      {"refund_of", [](R& r) { r.set_refund_of(kPan); }},
      {"payment_method_token", [](R& r) { r.set_payment_method_token("4111-1111-1111-1111"); }},
      {"metadata key", [](R& r) { (*r.mutable_metadata())[kPan] = "x"; }},
      {"metadata value of 'note'",
       [](R& r) { (*r.mutable_metadata())["note"] = "4111 1111 1111 1111"; }},
  };
  int64_t ts = 1;
  for (const auto& [where, mutate] : mutations) {
    R r = MakePayment("c1", "k" + std::to_string(ts), 100);
    mutate(r);
    auto c = Decide(r, ts++);
    EXPECT_EQ(c.decision(), payments::v1::DECLINED) << where;
    EXPECT_EQ(c.decline_code(), decline_code::kPanNotAllowed) << where;
    EXPECT_NE(c.decline_message().find(where), std::string::npos) << c.decline_message();
    EXPECT_EQ(c.fraud_score(), 0.0);
  }
  ExpectNoPanAnywhere();
  EXPECT_TRUE(ScanStore(Store(kIdempotencyStoreName)).empty());
  EXPECT_TRUE(ScanStore(Store(kCustomersStoreName)).empty());
  EXPECT_TRUE(ScanStore(Store(kPaymentsStoreName)).empty());
  EXPECT_EQ(observer_.seen().size(), mutations.size());
}

TEST_F(PanTest, EchoedFieldsAreRedactedKeepingLastFour) {
  auto r = MakePayment("c1", std::string("key ") + kPan, 100);
  r.set_merchant_id("shop 4111-1111-1111-1111 x");
  r.set_refund_of(kPan);
  auto c = Decide(r, 1);
  EXPECT_EQ(c.idempotency_key(), "key ************1111");
  EXPECT_EQ(c.merchant_id(), "shop ****-****-****-1111 x");
  EXPECT_EQ(c.refund_of(), "************1111");
  EXPECT_EQ(c.customer_id(), "c1");
  // The payment id is derived from the redacted values only.
  EXPECT_EQ(c.payment_id(), PaymentIdFor("c1", "key ************1111"));
  ExpectNoPanAnywhere();
}

TEST_F(PanTest, PanInRecordKeyAndCustomerIdIsRedactedInTheOutputKey) {
  auto r = MakePayment(kPan, "k1", 100);
  auto c = Decide(r, 1, std::string(kPan));
  EXPECT_EQ(c.decline_code(), decline_code::kPanNotAllowed);
  EXPECT_EQ(c.customer_id(), "************1111");
  EXPECT_EQ(last_record_.key, "************1111");
  // A PAN only in the record key.
  c = Decide(MakePayment("c1", "k2", 100), 2, std::string("c1 ") + kPan);
  EXPECT_EQ(c.decline_code(), decline_code::kPanNotAllowed);
  EXPECT_NE(c.decline_message().find("record key"), std::string::npos);
  EXPECT_EQ(last_record_.key, "c1 ************1111");
  ExpectNoPanAnywhere();
}

TEST_F(PanTest, PanRequestsLeaveStateUntouched) {
  EXPECT_EQ(Decide(MakePayment("c1", "k1", 100), 1).decision(), payments::v1::APPROVED);
  auto idem = ScanStore(Store(kIdempotencyStoreName));
  auto customers = ScanStore(Store(kCustomersStoreName));
  auto payments = ScanStore(Store(kPaymentsStoreName));
  const size_t changelog_records = driver_->AllRecords(Changelog(kIdempotencyStoreName)).size() +
                                   driver_->AllRecords(Changelog(kCustomersStoreName)).size() +
                                   driver_->AllRecords(Changelog(kPaymentsStoreName)).size();
  // Same idempotency key, now with a PAN: not a reuse, not stored.
  auto r = MakePayment("c1", "k1", 100);
  (*r.mutable_metadata())["card"] = kPan;
  EXPECT_EQ(Decide(r, 2).decline_code(), decline_code::kPanNotAllowed);
  EXPECT_EQ(ScanStore(Store(kIdempotencyStoreName)), idem);
  EXPECT_EQ(ScanStore(Store(kCustomersStoreName)), customers);
  EXPECT_EQ(ScanStore(Store(kPaymentsStoreName)), payments);
  EXPECT_EQ(driver_->AllRecords(Changelog(kIdempotencyStoreName)).size() +
                driver_->AllRecords(Changelog(kCustomersStoreName)).size() +
                driver_->AllRecords(Changelog(kPaymentsStoreName)).size(),
            changelog_records);
  // The original is still replayed.
  EXPECT_TRUE(Decide(MakePayment("c1", "k1", 100), 3).replay());
}

TEST_F(PanTest, NonPanDigitsAreNotFlagged) {
  auto r = MakePayment("c1", "order-41111111111111111305", 100);  // 20 digits
  (*r.mutable_metadata())["phone"] = "+1 555 0100";
  (*r.mutable_metadata())["ref"] = "4111111111111112";  // fails Luhn
  auto c = Decide(r, 1);
  EXPECT_EQ(c.decision(), payments::v1::APPROVED) << c.decline_code();
  EXPECT_EQ(c.idempotency_key(), "order-41111111111111111305");
}

TEST_F(PanTest, CardNumbersWithOtherSeparatorsOrGluedToAnExpiryAreDeclined) {
  // These were approved and stored (card number included) before.
  const char* values[] = {"4111.1111.1111.1111", "4111/1111/1111/1111", "4111\t1111\t1111\t1111",
                          "4111  1111  1111  1111", "4111 - 1111 - 1111 - 1111",
                          "41111111111111111225", "4111111111111111123"};
  int64_t ts = 1;
  for (const char* value : values) {
    auto r = MakePayment("c1", "k" + std::to_string(ts), 100);
    (*r.mutable_metadata())["note"] = value;
    auto c = Decide(r, ts++);
    EXPECT_EQ(c.decline_code(), decline_code::kPanNotAllowed) << value;
  }
  EXPECT_TRUE(ScanStore(Store(kIdempotencyStoreName)).empty());
  ExpectNoPanAnywhere();
}

TEST_F(PanTest, UndecodableRecordReachesTheDeadLetterTopicMasked) {
  // A request with a card number, made undecodable by a trailing byte; the
  // card number also in the record key and in a header.
  auto r = MakePayment("c1", "k1", 100);
  (*r.mutable_metadata())["note"] = std::string("card ") + kPan + " exp 1225";
  const std::string value = r.SerializeAsString() + "\xff";
  const std::string key = std::string("c1 ") + kPan;
  streams::Headers headers = {streams::Header{"card", "4111-1111-1111-1111"},
                              streams::Header{std::string("x-") + kPan, "v"},
                              streams::Header{"trace", "abc-123"}};
  ASSERT_TRUE(driver_->PipeInput("payments.requests", key, value, streams::Timestamp(5), headers)
                  .ok());
  EXPECT_TRUE(ReadConfirmations().empty());
  const auto dlq = driver_->AllRecords("payments.requests.dlq");
  ASSERT_EQ(dlq.size(), 1u);
  const auto& record = dlq[0];
  // Same sizes, digits of card numbers masked, everything else as read.
  ASSERT_TRUE(record.key.has_value());
  // Raw bytes are masked by digit run: the "1" of "c1" is joined to the card
  // number by a space, so it goes too.
  EXPECT_EQ(*record.key, "c* ****************");
  ASSERT_TRUE(record.value.has_value());
  EXPECT_EQ(record.value->size(), value.size());
  EXPECT_FALSE(ContainsPan(*record.value));
  EXPECT_NE(record.value->find("card **************** exp 1225"), std::string::npos);
  EXPECT_NE(record.value->find("tok_visa_abc"), std::string::npos);
  bool saw_card = false, saw_trace = false, saw_error = false;
  for (const auto& header : record.headers) {
    EXPECT_FALSE(ContainsPan(header.key)) << header.key;
    EXPECT_FALSE(ContainsPan(header.value)) << header.key;
    saw_card |= header.key == "card" && header.value == "****-****-****-****";
    saw_trace |= header.key == "trace" && header.value == "abc-123";
    saw_error |= header.key == streams::kDlqErrorHeader;
  }
  EXPECT_TRUE(saw_card);
  EXPECT_TRUE(saw_trace);
  EXPECT_TRUE(saw_error);
  ExpectNoPanAnywhere();
}

}  // namespace
}  // namespace payments
