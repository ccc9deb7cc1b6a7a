// Determinism: decisions depend only on the input. The same input gives
// byte-identical outputs in two drivers, and a run with crashes and restores
// gives the same outputs as one without.
#include <gtest/gtest.h>

#include <atomic>
#include <set>

#include "payments/decline_codes.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;
using testing::MakeRefund;
using testing::ParseConfirmation;
using testing::ScanStore;

struct Input {
  std::string key;
  std::string value;
  int64_t ts;
};

// A mixed workload from a fixed-seed LCG (fully specified arithmetic, so the
// same on every platform): payments over several customers, currencies and
// merchants, bursts, late records, exact duplicates, key reuse, refunds (some
// too large or in the wrong currency), invalid requests, PANs, key
// mismatches and undecodable payloads.
std::vector<Input> Workload(int n) {
  uint64_t state = 42;
  auto next = [&state](uint64_t bound) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % bound;
  };
  const char* currencies[] = {"EUR", "USD", "JPY"};
  std::vector<payments::v1::PaymentRequest> history;
  std::vector<Input> inputs;
  int64_t ts = 1'000'000'000;
  for (int i = 0; i < n; ++i) {
    ts += next(4) == 0 ? 0 : static_cast<int64_t>(next(30'000));
    int64_t record_ts = next(25) == 0 ? ts - 3'600'000 : ts;  // some late records
    const std::string customer = "cust-" + std::to_string(next(6));
    const uint64_t pick = next(100);
    payments::v1::PaymentRequest r;
    std::optional<std::string> key;
    std::string value;
    if (pick < 45 || history.empty()) {
      r = MakePayment(customer, "k" + std::to_string(i), 1 + next(2'000'000), currencies[next(3)],
                      "m" + std::to_string(next(8)));
    } else if (pick < 55) {
      r = history[next(history.size())];
      r.set_created_at_ms(r.created_at_ms() + 1);
    } else if (pick < 60) {
      r = history[next(history.size())];
      r.set_amount_minor(r.amount_minor() + 1);
    } else if (pick < 80) {
      const auto& original = history[next(history.size())];
      r = MakeRefund(original.customer_id(), "r" + std::to_string(i), original.idempotency_key(),
                     1 + next(std::max<int64_t>(1, original.amount_minor())),
                     next(10) == 0 ? "CHF" : original.currency());
    } else if (pick < 86) {
      r = MakePayment(customer, "bad" + std::to_string(i), next(2) ? 0 : 100,
                      next(2) ? "XXX" : "EUR");
    } else if (pick < 90) {
      r = MakePayment(customer, "pan" + std::to_string(i), 100);
      (*r.mutable_metadata())["note"] = "4111 1111 1111 1111";
    } else if (pick < 94) {
      r = MakePayment(customer, "mm" + std::to_string(i), 100);
      key = "someone-else";
    } else if (pick < 97) {
      value = "\x0a\xff\xff";  // not a PaymentRequest
      key = customer;
    } else {
      // A burst: several payments of one customer at the same time.
      for (int b = 0; b < 4; ++b) {
        auto burst = MakePayment(customer, "b" + std::to_string(i) + "-" + std::to_string(b), 10);
        inputs.push_back(Input{customer, burst.SerializeAsString(), record_ts});
        history.push_back(burst);
      }
      r = MakePayment(customer, "k" + std::to_string(i), 10, "EUR", "m1");
    }
    if (value.empty()) {
      value = r.SerializeAsString();
      if (r.kind() == payments::v1::PAYMENT) history.push_back(r);
    }
    inputs.push_back(Input{key.value_or(r.customer_id()), value, record_ts});
  }
  return inputs;
}

struct Outcome {
  std::vector<streams::TestRecord> confirmations;
  std::map<std::string, std::map<std::string, std::string>> stores;  // "<store>/<partition>"
};

class CountingObserver final : public DecisionObserver {
 public:
  void OnDecision(const payments::v1::PaymentConfirmation&) override { count_.fetch_add(1); }
  int count() const { return count_.load(); }

 private:
  std::atomic<int> count_{0};
};

class DeterminismTest : public ::testing::Test {
 protected:
  static constexpr int kPartitions = 3;

  static PaymentsConfig Config() {
    PaymentsConfig config;
    // Short enough for expiries to happen within the workload's hours.
    config.idempotency_retention = std::chrono::milliseconds(30 * 60 * 1000);
    config.refund_window = std::chrono::milliseconds(45 * 60 * 1000);
    config.rate_limit_per_minute = 2;
    config.rate_limit_burst = 3;
    return config;
  }

  // Runs the workload. With `crash_every` > 0: no auto-commit, a commit every
  // 5 records, and alternating simulated crashes every `crash_every` records.
  Outcome Run(const std::vector<Input>& inputs, int crash_every,
              DecisionObserver* observer = nullptr) {
    Outcome outcome;
    auto topology = BuildPaymentsTopology(Config(), nullptr, observer);
    EXPECT_TRUE(topology.ok()) << topology.status();
    if (!topology.ok()) return outcome;
    streams::TestDriverOptions options;
    options.default_partitions = kPartitions;
    options.auto_commit = crash_every == 0;
    auto driver = streams::TopologyTestDriver::Create(**topology, options);
    EXPECT_TRUE(driver.ok()) << driver.status();
    if (!driver.ok()) return outcome;
    auto& d = **driver;
    int crashes = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Input& in = inputs[i];
      streams::Status s =
          d.PipeInput("payments.requests", in.key, in.value, streams::Timestamp(in.ts));
      EXPECT_TRUE(s.ok()) << s;
      if (crash_every == 0) continue;
      if ((i + 1) % crash_every == 0) {
        auto point = crashes++ % 2 == 0 ? streams::CrashPoint::kBeforeCommit
                                        : streams::CrashPoint::kAfterKafkaCommit;
        s = d.SimulateCrash(point);
        EXPECT_TRUE(s.ok()) << s;
      } else if ((i + 1) % 5 == 0) {
        s = d.Commit();
        EXPECT_TRUE(s.ok()) << s;
      }
    }
    if (crash_every != 0) {
      streams::Status s = d.Commit();
      EXPECT_TRUE(s.ok()) << s;
      EXPECT_GT(crashes, 2);
    }
    outcome.confirmations = d.AllRecords("payments.confirmations");
    for (int p = 0; p < kPartitions; ++p) {
      for (auto store : {kIdempotencyStoreName, kPaymentsStoreName, kCustomersStoreName}) {
        outcome.stores[std::string(store) + "/" + std::to_string(p)] =
            ScanStore(d.GetStore(std::string(store), streams::Partition(p)));
      }
    }
    return outcome;
  }

  static void ExpectSameRecords(const std::vector<streams::TestRecord>& a,
                                const std::vector<streams::TestRecord>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].partition, b[i].partition) << i;
      EXPECT_EQ(a[i].offset, b[i].offset) << i;
      EXPECT_EQ(a[i].timestamp, b[i].timestamp) << i;
      EXPECT_EQ(a[i].key, b[i].key) << i;
      EXPECT_EQ(a[i].value, b[i].value) << i;  // byte-identical
    }
  }
};

TEST_F(DeterminismTest, WorkloadCoversTheRules) {
  const auto inputs = Workload(400);
  Outcome run = Run(inputs, 0);
  std::set<std::string> codes;
  int replays = 0;
  for (const auto& r : run.confirmations) {
    auto c = ParseConfirmation(r);
    codes.insert(c.decision() == payments::v1::APPROVED ? "APPROVED" : c.decline_code());
    replays += c.replay() ? 1 : 0;
  }
  for (std::string_view code :
       {std::string_view("APPROVED"), decline_code::kPanNotAllowed, decline_code::kKeyMismatch,
        decline_code::kInvalidAmount, decline_code::kUnknownCurrency,
        decline_code::kIdempotencyKeyReused, decline_code::kRateLimited,
        decline_code::kAmountLimitExceeded, decline_code::kUnknownPayment,
        decline_code::kRefundCurrencyMismatch, decline_code::kRefundExceedsPayment}) {
    EXPECT_EQ(codes.count(std::string(code)), 1u) << code;
  }
  EXPECT_GT(replays, 10);
  // Undecodable records were dead-lettered, every other record confirmed.
  int malformed = 0;
  for (const auto& in : inputs) malformed += in.value == "\x0a\xff\xff" ? 1 : 0;
  EXPECT_GT(malformed, 0);
  EXPECT_EQ(run.confirmations.size() + malformed, inputs.size());
}

TEST_F(DeterminismTest, SameInputGivesByteIdenticalOutputs) {
  const auto inputs = Workload(400);
  Outcome a = Run(inputs, 0);
  Outcome b = Run(inputs, 0);
  ExpectSameRecords(a.confirmations, b.confirmations);
  EXPECT_EQ(a.stores, b.stores);
}

TEST_F(DeterminismTest, CrashesAndRestoresDoNotChangeOutputs) {
  const auto inputs = Workload(400);
  Outcome plain = Run(inputs, 0);
  Outcome crashed = Run(inputs, 23);
  ExpectSameRecords(plain.confirmations, crashed.confirmations);
  EXPECT_EQ(plain.stores, crashed.stores);
}

TEST_F(DeterminismTest, ObserverSeesEveryDecisionAndRetriesAgain) {
  const auto inputs = Workload(100);
  CountingObserver plain_observer;
  Outcome plain = Run(inputs, 0, &plain_observer);
  EXPECT_EQ(plain_observer.count(), static_cast<int>(plain.confirmations.size()));
  // With crashes, aborted cycles are processed (and observed) again.
  CountingObserver crash_observer;
  Outcome crashed = Run(inputs, 23, &crash_observer);
  EXPECT_EQ(crashed.confirmations.size(), plain.confirmations.size());
  EXPECT_GT(crash_observer.count(), static_cast<int>(crashed.confirmations.size()));
}

}  // namespace
}  // namespace payments
