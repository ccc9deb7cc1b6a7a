#include "tools/verifier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "payments/payments_topology.h"
#include "payments/v1/payments.pb.h"
#include "streams/test_driver.h"
#include "tools/request_generator.h"

namespace payments::tools {
namespace {

using payments::v1::PaymentConfirmation;
using payments::v1::PaymentRequest;

constexpr char kRequests[] = "payments.requests";
constexpr char kConfirmations[] = "payments.confirmations";

ReadRecord ToRead(const streams::TestRecord& r) {
  ReadRecord out;
  out.topic = r.topic;
  out.partition = r.partition;
  out.offset = r.offset;
  out.timestamp = r.timestamp;
  out.key = r.key;
  out.value = r.value;
  return out;
}

// Runs generated requests through the real payments topology once per test
// suite; each test tampers with a copy of the output.
class VerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto topology = BuildPaymentsTopology(PaymentsConfig());
    ASSERT_TRUE(topology.ok()) << topology.status();
    streams::TestDriverOptions options;
    options.application_id = "verifier-test";
    options.default_partitions = 4;
    auto driver = streams::TopologyTestDriver::Create(**topology, options);
    ASSERT_TRUE(driver.ok()) << driver.status();

    GeneratorOptions gen;
    gen.count = 3000;
    gen.customers = 60;
    gen.seed = 7;
    gen.shares = {
        .duplicates = 0.06, .key_reuse = 0.04, .invalid = 0.08, .refunds = 0.12, .bursts = 0.08};
    auto generator = RequestGenerator::Create(gen);
    ASSERT_TRUE(generator.ok());
    while (!generator->Done()) {
      GeneratedRequest next = generator->Next();
      ASSERT_TRUE((*driver)
                      ->PipeInput(kRequests, next.record_key, SerializeRequest(next.request),
                                  streams::Timestamp(next.timestamp_ms))
                      .ok());
    }
    requests_ = new std::vector<ReadRecord>();
    confirmations_ = new std::vector<ReadRecord>();
    for (const auto& r : (*driver)->AllRecords(kRequests)) requests_->push_back(ToRead(r));
    for (const auto& r : (*driver)->AllRecords(kConfirmations)) {
      confirmations_->push_back(ToRead(r));
    }
  }
  static void TearDownTestSuite() {
    delete requests_;
    delete confirmations_;
  }

  void SetUp() override {
    ASSERT_NE(requests_, nullptr);
    requests = *requests_;
    confirmations = *confirmations_;
  }

  VerifyReport Run() { return Verify(config, requests, confirmations, VerifyOptions()); }

  // Index of the first confirmation matching `pred`, or -1.
  int Find(const std::function<bool(const PaymentConfirmation&)>& pred) {
    for (size_t i = 0; i < confirmations.size(); ++i) {
      PaymentConfirmation c;
      c.ParseFromString(*confirmations[i].value);
      if (pred(c)) return static_cast<int>(i);
    }
    return -1;
  }
  PaymentConfirmation Decode(int i) {
    PaymentConfirmation c;
    c.ParseFromString(*confirmations[i].value);
    return c;
  }
  void Encode(int i, const PaymentConfirmation& c) {
    confirmations[i].value = c.SerializeAsString();
  }
  static uint64_t Count(const VerifyReport& report, const std::string& kind) {
    auto it = report.violations.find(kind);
    return it == report.violations.end() ? 0 : it->second.count;
  }

  static std::vector<ReadRecord>* requests_;
  static std::vector<ReadRecord>* confirmations_;
  PaymentsConfig config;
  std::vector<ReadRecord> requests;
  std::vector<ReadRecord> confirmations;
};

std::vector<ReadRecord>* VerifierTest::requests_ = nullptr;
std::vector<ReadRecord>* VerifierTest::confirmations_ = nullptr;

TEST_F(VerifierTest, RealTopologyOutputHasNoViolations) {
  VerifyReport report = Run();
  EXPECT_TRUE(report.ok()) << report.ToText();
  EXPECT_EQ(report.requests, 3000u);
  EXPECT_EQ(report.confirmations, 3000u);
  EXPECT_EQ(report.approved + report.declined + report.replays, 3000u);
  EXPECT_GT(report.replays, 50u);
  EXPECT_GT(report.key_reused, 50u);
  EXPECT_GT(report.approved_refunds, 0u);
  for (const char* code :
       {"RATE_LIMITED", "PAN_NOT_ALLOWED", "MISSING_FIELD", "UNKNOWN_CURRENCY", "INVALID_AMOUNT",
        "KEY_MISMATCH", "REFUND_EXCEEDS_PAYMENT", "UNKNOWN_PAYMENT", "IDEMPOTENCY_KEY_REUSED",
        "REFUND_CURRENCY_MISMATCH"}) {
    EXPECT_GT(report.declined_by_code[code], 0u) << code << "\n" << report.ToText();
  }
}

TEST_F(VerifierTest, DetectsAMissingConfirmation) {
  confirmations.erase(confirmations.begin() + 10);
  VerifyReport report = Run();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(Count(report, "missing_confirmation"), 1u) << report.ToText();
}

TEST_F(VerifierTest, DetectsADuplicateConfirmation) {
  int approved = Find([](const auto& c) { return c.decision() == payments::v1::APPROVED; });
  ASSERT_GE(approved, 0);
  confirmations.push_back(confirmations[approved]);
  VerifyReport report = Run();
  EXPECT_EQ(Count(report, "duplicate_confirmation"), 1u) << report.ToText();
}

TEST_F(VerifierTest, DetectsAnExtraReplay) {
  int replay = Find([](const auto& c) { return c.replay(); });
  ASSERT_GE(replay, 0);
  confirmations.push_back(confirmations[replay]);
  VerifyReport report = Run();
  EXPECT_FALSE(report.ok());
  EXPECT_GE(Count(report, "duplicate_confirmation"), 1u) << report.ToText();
}

TEST_F(VerifierTest, DetectsASecondDecisionInsteadOfAReplay) {
  // The duplicate gets a fresh decision naming itself instead of a replay.
  int replay = Find([](const auto& c) { return c.replay(); });
  ASSERT_GE(replay, 0);
  PaymentConfirmation c = Decode(replay);  // names the duplicate request it answers
  c.set_replay(false);
  Encode(replay, c);
  VerifyReport report = Run();
  EXPECT_GE(Count(report, "duplicate_decision") + Count(report, "key_reuse_not_declined"), 1u)
      << report.ToText();
}

TEST_F(VerifierTest, DetectsAReplayThatDiffersFromTheFirstDecision) {
  int replay = Find([](const auto& c) { return c.replay(); });
  ASSERT_GE(replay, 0);
  PaymentConfirmation c = Decode(replay);
  c.set_fraud_score(c.fraud_score() + 0.125);
  Encode(replay, c);
  VerifyReport report = Run();
  EXPECT_EQ(Count(report, "replay_mismatch"), 1u) << report.ToText();
}

TEST_F(VerifierTest, DetectsAnApprovedKeyReuse) {
  int reused = Find([](const auto& c) { return c.decline_code() == "IDEMPOTENCY_KEY_REUSED"; });
  ASSERT_GE(reused, 0);
  PaymentConfirmation c = Decode(reused);
  c.set_decision(payments::v1::APPROVED);
  c.clear_decline_code();
  Encode(reused, c);
  VerifyReport report = Run();
  EXPECT_EQ(Count(report, "key_reuse_not_declined"), 1u) << report.ToText();
}

TEST_F(VerifierTest, DetectsAWrongValidationCode) {
  int invalid = Find([](const auto& c) { return c.decline_code() == "UNKNOWN_CURRENCY"; });
  ASSERT_GE(invalid, 0);
  PaymentConfirmation c = Decode(invalid);
  c.set_decline_code("INVALID_AMOUNT");
  Encode(invalid, c);
  VerifyReport report = Run();
  EXPECT_EQ(Count(report, "validation_code_mismatch"), 1u) << report.ToText();
}

TEST_F(VerifierTest, DetectsAValidRequestDeclinedForValidation) {
  int approved = Find([](const auto& c) {
    return c.decision() == payments::v1::APPROVED && c.kind() == payments::v1::PAYMENT &&
           !c.replay();
  });
  ASSERT_GE(approved, 0);
  PaymentConfirmation c = Decode(approved);
  c.set_decision(payments::v1::DECLINED);
  c.set_decline_code("MISSING_FIELD");
  Encode(approved, c);
  VerifyReport report = Run();
  EXPECT_EQ(Count(report, "unexpected_validation_code"), 1u) << report.ToText();
}

TEST_F(VerifierTest, DetectsARefundApprovedBeyondItsPayment) {
  int over = Find(
      [](const auto& c) { return c.decline_code() == "REFUND_EXCEEDS_PAYMENT" && !c.replay(); });
  ASSERT_GE(over, 0);
  PaymentConfirmation c = Decode(over);
  c.set_decision(payments::v1::APPROVED);
  c.clear_decline_code();
  c.clear_decline_message();
  Encode(over, c);
  VerifyReport report = Run();
  EXPECT_GE(Count(report, "refund_exceeds_payment"), 1u) << report.ToText();
}

TEST_F(VerifierTest, DetectsARefundOfAnUnknownPaymentApproved) {
  int unknown = Find([](const auto& c) { return c.decline_code() == "UNKNOWN_PAYMENT"; });
  ASSERT_GE(unknown, 0);
  PaymentConfirmation c = Decode(unknown);
  c.set_decision(payments::v1::APPROVED);
  c.clear_decline_code();
  Encode(unknown, c);
  VerifyReport report = Run();
  EXPECT_EQ(Count(report, "refund_of_unapproved_payment"), 1u) << report.ToText();
}

TEST_F(VerifierTest, DetectsAPanInAConfirmationWithoutPrintingIt) {
  int any = Find([](const auto& c) { return !c.replay(); });
  ASSERT_GE(any, 0);
  PaymentConfirmation c = Decode(any);
  c.set_decline_message("card 4111 1111 1111 1111 was used");
  Encode(any, c);
  confirmations[any + 1].key = "4012888888881881";
  VerifyReport report = Run();
  EXPECT_EQ(Count(report, "pan_in_confirmation"), 2u) << report.ToText();
  EXPECT_EQ(report.ToText().find("4111 1111 1111 1111"), std::string::npos);
  EXPECT_EQ(report.ToJson().find("4012888888881881"), std::string::npos);
}

TEST_F(VerifierTest, DetectsTheRequestsCardNumberInThePaymentId) {
  int pan = Find([](const auto& c) { return c.decline_code() == "PAN_NOT_ALLOWED"; });
  ASSERT_GE(pan, 0);
  PaymentConfirmation c = Decode(pan);
  std::string digits;
  for (const auto& r : requests) {
    if (r.partition.value() != c.source_partition() || r.offset.value() != c.source_offset()) {
      continue;
    }
    PaymentRequest request;
    request.ParseFromString(*r.value);
    std::string text = request.payment_method_token();
    for (const auto& [key, value] : request.metadata()) text += " " + value;
    for (char ch : text) {
      if (ch >= '0' && ch <= '9') digits.push_back(ch);
    }
  }
  ASSERT_GE(digits.size(), 13u);
  c.set_payment_id("pay_" + digits);
  Encode(pan, c);
  VerifyReport report = Run();
  EXPECT_GE(Count(report, "pan_in_confirmation"), 1u) << report.ToText();
  EXPECT_EQ(report.ToText().find(digits), std::string::npos);
}

TEST_F(VerifierTest, APanInAPaymentIdIsAViolation) {
  int approved = Find([](const auto& c) { return c.decision() == payments::v1::APPROVED; });
  ASSERT_GE(approved, 0);
  PaymentConfirmation c = Decode(approved);
  c.set_payment_id("pay_4111111111111111ab");
  Encode(approved, c);
  VerifyReport report = Run();
  EXPECT_GE(Count(report, "pan_in_confirmation"), 1u) << report.ToText();
  EXPECT_EQ(report.ToText().find("4111111111111111"), std::string::npos);
}

TEST_F(VerifierTest, DetectsAnOrphanAndAnUndecodableConfirmation) {
  PaymentConfirmation c = Decode(0);
  c.set_source_offset(1'000'000);
  ReadRecord orphan = confirmations[0];
  orphan.value = c.SerializeAsString();
  confirmations.push_back(orphan);
  ReadRecord garbage = confirmations[0];
  garbage.value = std::string("\xff\xff\xff", 3);
  confirmations.push_back(garbage);
  VerifyReport report = Run();
  EXPECT_EQ(Count(report, "orphan_confirmation"), 1u) << report.ToText();
  EXPECT_EQ(Count(report, "undecodable_confirmation"), 1u) << report.ToText();
}

TEST_F(VerifierTest, AnUndecodableRequestNeedsNoConfirmation) {
  ReadRecord garbage = requests.back();
  garbage.offset = streams::Offset(garbage.offset.value() + 1);
  garbage.value = std::string("\xff\xff\xff", 3);
  requests.push_back(garbage);
  VerifyReport report = Run();
  EXPECT_TRUE(report.ok()) << report.ToText();
  EXPECT_EQ(report.undecodable_requests, 1u);
}

TEST_F(VerifierTest, AReplayNamingTheOriginalRequestIsADuplicate) {
  // Every confirmation must name the request it answers: a replay that points
  // at the original leaves its own request unanswered and answers another twice.
  int replay = Find([](const auto& c) { return c.replay(); });
  ASSERT_GE(replay, 0);
  PaymentConfirmation c = Decode(replay);
  int original = Find([&](const auto& o) {
    return !o.replay() && o.customer_id() == c.customer_id() &&
           o.idempotency_key() == c.idempotency_key();
  });
  ASSERT_GE(original, 0);
  c.set_source_offset(Decode(original).source_offset());
  Encode(replay, c);
  VerifyReport report = Run();
  EXPECT_EQ(Count(report, "duplicate_confirmation"), 1u) << report.ToText();
  EXPECT_EQ(Count(report, "missing_confirmation"), 1u) << report.ToText();
}

TEST_F(VerifierTest, LimitsExamplesAndReportsJson) {
  confirmations.resize(confirmations.size() / 2);
  VerifyOptions options;
  options.max_examples = 3;
  VerifyReport report = Verify(config, requests, confirmations, options);
  ASSERT_GT(Count(report, "missing_confirmation"), 3u);
  EXPECT_EQ(report.violations["missing_confirmation"].examples.size(), 3u);
  std::string json = report.ToJson();
  EXPECT_NE(json.find("\"missing_confirmation\""), std::string::npos);
  EXPECT_NE(json.find("\"ok\": false"), std::string::npos);
  EXPECT_NE(report.ToText().find("RESULT: FAILED"), std::string::npos);
}

TEST_F(VerifierTest, JsonNeverThrowsOnInvalidUtf8) {
  VerifyReport report;
  report.violations["missing_confirmation"] = {1, {std::string("key=\xff\xfe")}};
  report.declined_by_code[std::string("\xc3")] = 1;
  std::string json;
  EXPECT_NO_THROW(json = report.ToJson());
  EXPECT_NE(json.find("missing_confirmation"), std::string::npos);
}

}  // namespace
}  // namespace payments::tools
