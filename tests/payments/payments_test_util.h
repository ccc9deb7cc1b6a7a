// Shared helpers of the payments tests: request builders and a fixture that
// runs the payments topology in a TopologyTestDriver.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "payments/fraud_scorer.h"
#include "payments/payments_config.h"
#include "payments/payments_topology.h"
#include "payments/v1/payments.pb.h"
#include "streams/test_driver.h"

namespace payments::testing {

using payments::v1::PaymentConfirmation;
using payments::v1::PaymentRequest;

// `config` with payments.max.clock.skew.ms raised to a year, for tests whose
// records jump further ahead of stream time than the default allows (days of
// event time between two records of a partition).
inline PaymentsConfig AllowingGaps(PaymentsConfig config = {}) {
  config.max_clock_skew = std::chrono::milliseconds(365LL * 24 * 60 * 60 * 1000);
  return config;
}

inline PaymentRequest MakePayment(const std::string& customer, const std::string& key,
                                  int64_t amount_minor, const std::string& currency = "EUR",
                                  const std::string& merchant = "merchant-1") {
  PaymentRequest r;
  r.set_idempotency_key(key);
  r.set_customer_id(customer);
  r.set_merchant_id(merchant);
  r.set_kind(payments::v1::PAYMENT);
  r.set_amount_minor(amount_minor);
  r.set_currency(currency);
  r.set_payment_method_token("tok_visa_abc");
  r.set_created_at_ms(1'700'000'000'000);
  return r;
}

inline PaymentRequest MakeRefund(const std::string& customer, const std::string& key,
                                 const std::string& refund_of, int64_t amount_minor,
                                 const std::string& currency = "EUR") {
  PaymentRequest r;
  r.set_idempotency_key(key);
  r.set_customer_id(customer);
  r.set_merchant_id("merchant-1");
  r.set_kind(payments::v1::REFUND);
  r.set_amount_minor(amount_minor);
  r.set_currency(currency);
  r.set_refund_of(refund_of);
  r.set_created_at_ms(1'700'000'000'000);
  return r;
}

// A scorer returning a fixed score, or the integer in metadata "score" when present.
class FixedScorer final : public FraudScorer {
 public:
  explicit FixedScorer(int32_t bp) : bp_(bp) {}
  int32_t ScoreBasisPoints(const PaymentRequest& request, const CustomerProfile&) const override {
    auto it = request.metadata().find("score");
    return it == request.metadata().end() ? bp_ : std::stoi(it->second);
  }

 private:
  int32_t bp_;
};

// Scores like FixedScorer and remembers the profile of every scored request
// (by idempotency key).
class ProfileRecordingScorer final : public FraudScorer {
 public:
  explicit ProfileRecordingScorer(int32_t bp = 0) : bp_(bp) {}
  int32_t ScoreBasisPoints(const PaymentRequest& request,
                           const CustomerProfile& profile) const override {
    profiles[request.idempotency_key()] = profile;
    auto it = request.metadata().find("score");
    return it == request.metadata().end() ? bp_ : std::stoi(it->second);
  }
  bool NeedsRecentApprovals() const override { return false; }
  mutable std::map<std::string, CustomerProfile> profiles;

 private:
  int32_t bp_;
};

inline PaymentConfirmation ParseConfirmation(const streams::TestRecord& record) {
  PaymentConfirmation c;
  EXPECT_TRUE(record.value.has_value());
  EXPECT_TRUE(c.ParseFromString(record.value.value_or("")));
  return c;
}

// All entries of a store, as key -> value.
inline std::map<std::string, std::string> ScanStore(streams::state::KeyValueStore* store) {
  std::map<std::string, std::string> out;
  EXPECT_NE(store, nullptr);
  if (store == nullptr) return out;
  auto it = store->Range("", "");
  EXPECT_TRUE(it.ok()) << it.status();
  if (!it.ok()) return out;
  for (auto& i = *it; i->Valid(); i->Next()) out.emplace(i->key(), i->value());
  EXPECT_TRUE((*it)->status().ok());
  return out;
}

class PaymentsDriverTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }
  void TearDown() override {
    driver_.reset();
    topology_.reset();
  }

  // (Re)creates the topology and a fresh driver.
  void Start(PaymentsConfig config = {}, std::shared_ptr<const FraudScorer> scorer = nullptr,
             streams::TestDriverOptions options = {}, DecisionObserver* observer = nullptr) {
    driver_.reset();
    config_ = std::move(config);
    auto topology = BuildPaymentsTopology(config_, std::move(scorer), observer);
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = std::move(*topology);
    auto driver = streams::TopologyTestDriver::Create(*topology_, std::move(options));
    ASSERT_TRUE(driver.ok()) << driver.status();
    driver_ = std::move(*driver);
  }

  // Pipes `request` with record key `key` (default: its customer_id) at event
  // time `ts_ms`.
  void Pipe(const PaymentRequest& request, int64_t ts_ms,
            std::optional<std::string> key = std::nullopt) {
    streams::Status status =
        driver_->PipeInput(config_.requests_topic, key.value_or(request.customer_id()),
                           request.SerializeAsString(), streams::Timestamp(ts_ms));
    ASSERT_TRUE(status.ok()) << status;
  }

  // New committed confirmations since the last read.
  std::vector<streams::TestRecord> ReadConfirmations() {
    return driver_->ReadOutput(config_.confirmations_topic);
  }

  // Pipes `request` and returns the one confirmation it produced (auto-commit).
  PaymentConfirmation Decide(const PaymentRequest& request, int64_t ts_ms,
                             std::optional<std::string> key = std::nullopt) {
    Pipe(request, ts_ms, key);
    auto out = ReadConfirmations();
    EXPECT_EQ(out.size(), 1u) << "expected exactly one confirmation";
    if (out.size() != 1) return PaymentConfirmation();
    last_record_ = out[0];
    return ParseConfirmation(out[0]);
  }

  streams::state::KeyValueStore* Store(std::string_view name) {
    return driver_->GetStore(std::string(name));
  }

  std::string Changelog(std::string_view store) const {
    return streams::Topology::ChangelogTopic("test-app", store);
  }

  PaymentsConfig config_;
  std::unique_ptr<streams::Topology> topology_;
  std::unique_ptr<streams::TopologyTestDriver> driver_;
  streams::TestRecord last_record_;
};

}  // namespace payments::testing
