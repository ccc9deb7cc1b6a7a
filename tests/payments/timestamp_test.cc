// Record timestamps the task rejects (streams::TimestampCheck): a far-future
// timestamp (beyond payments.max.clock.skew.ms ahead of stream time) and a
// negative or absurd one are declined with a stable code, store nothing, do
// not move stream time, and are answered at the stream time.
#include <gtest/gtest.h>

#include "payments/decline_codes.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;
using testing::MakeRefund;
using testing::ParseConfirmation;
using testing::ScanStore;

constexpr int64_t kT = 1'700'000'000'000;
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kYear = 365 * 24 * kHour;

class TimestampTest : public testing::PaymentsDriverTest {
 protected:
  std::map<std::string, std::map<std::string, std::string>> Stores() {
    std::map<std::string, std::map<std::string, std::string>> out;
    for (auto store : {kIdempotencyStoreName, kPaymentsStoreName, kCustomersStoreName}) {
      out[std::string(store)] = ScanStore(Store(store));
    }
    return out;
  }
  size_t ChangelogRecords() {
    size_t n = 0;
    for (auto store : {kIdempotencyStoreName, kPaymentsStoreName, kCustomersStoreName}) {
      n += driver_->AllRecords(Changelog(store)).size();
    }
    return n;
  }
};

TEST_F(TimestampTest, TopologyUsesTheConfiguredSkewAsMaxLead) {
  PaymentsConfig config;
  config.max_clock_skew = std::chrono::milliseconds(1234);
  Start(config);
  ASSERT_TRUE(topology_->timestamp_policy().max_lead.has_value());
  EXPECT_EQ(topology_->timestamp_policy().max_lead->count(), 1234);
}

TEST_F(TimestampTest, FarFutureRecordDoesNotExpireEntriesOrBreakRefunds) {
  const auto payment = MakePayment("c1", "p1", 1000);
  ASSERT_EQ(Decide(payment, kT).decision(), payments::v1::APPROVED);
  const auto before = Stores();
  const size_t changelog = ChangelogRecords();

  // A skewed clock ten years ahead, and a microsecond value: declined, at the
  // stream time, nothing stored or logged.
  auto skewed = Decide(MakePayment("c2", "x1", 100), kT + 10 * kYear);
  EXPECT_EQ(skewed.decision(), payments::v1::DECLINED);
  EXPECT_EQ(skewed.decline_code(), decline_code::kTimestampTooFarAhead);
  EXPECT_EQ(skewed.decided_at_ms(), kT);
  EXPECT_EQ(last_record_.timestamp, streams::Timestamp(kT));
  EXPECT_FALSE(skewed.replay());
  auto micros = Decide(MakePayment("c3", "x2", 100), kT * 1000);
  EXPECT_EQ(micros.decline_code(), decline_code::kTimestampInvalid);
  EXPECT_EQ(micros.decided_at_ms(), kT);
  EXPECT_EQ(Stores(), before);
  EXPECT_EQ(ChangelogRecords(), changelog);

  // The commits after them purged nothing: the payment's retry is a replay
  // and it can be refunded.
  auto retry = Decide(payment, kT + 1000);
  EXPECT_TRUE(retry.replay());
  EXPECT_EQ(Decide(MakeRefund("c1", "r1", "p1", 400), kT + 2000).decision(),
            payments::v1::APPROVED);
  // The skewed request, resent with a correct clock, is decided normally.
  auto resent = Decide(MakePayment("c2", "x1", 100), kT + 3000);
  EXPECT_EQ(resent.decision(), payments::v1::APPROVED);
  EXPECT_FALSE(resent.replay());
  EXPECT_EQ(resent.decided_at_ms(), kT + 3000);
}

TEST_F(TimestampTest, TheBoundIsRelativeToStreamTimeAndInclusive) {
  PaymentsConfig config;
  config.max_clock_skew = std::chrono::milliseconds(kHour);
  Start(config);
  ASSERT_EQ(Decide(MakePayment("c1", "a", 10), kT).decision(), payments::v1::APPROVED);
  EXPECT_EQ(Decide(MakePayment("c1", "b", 10), kT + kHour + 1).decline_code(),
            decline_code::kTimestampTooFarAhead);
  // Exactly the skew ahead is fine, and moves stream time.
  EXPECT_EQ(Decide(MakePayment("c1", "c", 10), kT + kHour).decision(), payments::v1::APPROVED);
  EXPECT_EQ(Decide(MakePayment("c1", "b", 10), kT + kHour + 1).decision(),
            payments::v1::APPROVED);
  // Late records are not bounded.
  EXPECT_EQ(Decide(MakePayment("c2", "d", 10), kT - 5 * kHour).decision(),
            payments::v1::APPROVED);
}

TEST_F(TimestampTest, RetryWithABadTimestampStillGetsItsStoredDecision) {
  const auto payment = MakePayment("c1", "p1", 1000);
  const auto first = Decide(payment, kT);
  auto replay = Decide(payment, kT + 10 * kYear);
  EXPECT_TRUE(replay.replay());
  EXPECT_EQ(replay.decision(), payments::v1::APPROVED);
  EXPECT_EQ(replay.decided_at_ms(), kT);
  EXPECT_EQ(last_record_.timestamp, streams::Timestamp(kT));  // not the skewed clock's
  auto other = payment;
  other.set_amount_minor(999);
  auto reused = Decide(other, -1);
  EXPECT_EQ(reused.decline_code(), decline_code::kIdempotencyKeyReused);
  EXPECT_EQ(reused.decided_at_ms(), kT);
}

TEST_F(TimestampTest, ARecordWithoutTimestampBeforeAnyOtherIsAnsweredAtZero) {
  auto c = Decide(MakePayment("c1", "k1", 100), -1);
  EXPECT_EQ(c.decline_code(), decline_code::kTimestampInvalid);
  EXPECT_EQ(c.decided_at_ms(), 0);
  EXPECT_EQ(last_record_.timestamp, streams::Timestamp(0));
  EXPECT_TRUE(ScanStore(Store(kIdempotencyStoreName)).empty());
}

// The same input in a fresh driver, and with crashes, gives byte-identical
// confirmations: no wall clock is substituted for a missing timestamp.
class NegativeTimestampReplayTest : public ::testing::Test {
 protected:
  struct Input {
    payments::v1::PaymentRequest request;
    int64_t ts;
  };
  static std::vector<Input> Inputs() {
    return {{MakePayment("c1", "p1", 1000), kT},
            {MakePayment("c2", "n1", 100), -1},
            {MakePayment("c1", "p2", 200), kT + 5},
            {MakePayment("c3", "n2", 100), -1'000'000},
            {MakePayment("c2", "n1", 100), -1}};  // the same request again: declined again
  }
  // crash: 0 none, 1 before the commit of the second record, 2 after the
  // Kafka commit of the first.
  static std::vector<streams::TestRecord> Run(int crash) {
    auto topology = BuildPaymentsTopology(PaymentsConfig{});
    EXPECT_TRUE(topology.ok());
    streams::TestDriverOptions options;
    options.auto_commit = crash == 0;
    auto driver = streams::TopologyTestDriver::Create(**topology, options);
    EXPECT_TRUE(driver.ok());
    auto& d = **driver;
    const auto inputs = Inputs();
    for (size_t i = 0; i < inputs.size(); ++i) {
      const auto& in = inputs[i];
      EXPECT_TRUE(d.PipeInput("payments.requests", in.request.customer_id(),
                              in.request.SerializeAsString(), streams::Timestamp(in.ts))
                      .ok());
      if (crash == 0) continue;
      if (crash == 1 && i == 1) {
        EXPECT_TRUE(d.SimulateCrash(streams::CrashPoint::kBeforeCommit).ok());
      } else if (crash == 2 && i == 0) {
        EXPECT_TRUE(d.Commit().ok());
        EXPECT_TRUE(d.SimulateCrash(streams::CrashPoint::kAfterKafkaCommit).ok());
      }
    }
    if (crash != 0) EXPECT_TRUE(d.Commit().ok());
    return d.AllRecords("payments.confirmations");
  }
};

TEST_F(NegativeTimestampReplayTest, DeclinedIdenticallyOnReplay) {
  const auto plain = Run(0);
  ASSERT_EQ(plain.size(), 5u);
  for (size_t i : {1u, 3u, 4u}) {
    auto c = ParseConfirmation(plain[i]);
    EXPECT_EQ(c.decline_code(), decline_code::kTimestampInvalid) << i;
    EXPECT_FALSE(c.replay()) << i;
    EXPECT_EQ(c.decided_at_ms(), i == 1 ? kT : kT + 5) << i;
    EXPECT_EQ(plain[i].timestamp, streams::Timestamp(c.decided_at_ms())) << i;
  }
  for (int crash : {0, 1, 2}) {
    const auto again = Run(crash);
    ASSERT_EQ(again.size(), plain.size()) << crash;
    for (size_t i = 0; i < plain.size(); ++i) {
      EXPECT_EQ(again[i].timestamp, plain[i].timestamp) << crash << " " << i;
      EXPECT_EQ(again[i].key, plain[i].key) << crash << " " << i;
      EXPECT_EQ(again[i].value, plain[i].value) << crash << " " << i;  // byte-identical
    }
  }
}

}  // namespace
}  // namespace payments

namespace payments {
namespace {

// The bound is measured from max(stream time, clock): a partition idle for
// longer than the bound (a night) goes on deciding once the clock moved on.
TEST_F(TimestampTest, AnIdleGapLongerThanTheSkewDoesNotStopThePartition) {
  PaymentsConfig config;
  config.max_clock_skew = std::chrono::milliseconds(kHour);
  Start(config);
  ASSERT_EQ(Decide(MakePayment("c1", "a", 10), kT).decision(), payments::v1::APPROVED);
  // Ten hours later by the host's clock; nothing arrived meanwhile.
  ASSERT_TRUE(driver_->AdvanceWallClockTime(std::chrono::milliseconds(kT + 10 * kHour)).ok());
  auto morning = Decide(MakePayment("c1", "b", 10), kT + 10 * kHour);
  EXPECT_EQ(morning.decision(), payments::v1::APPROVED) << morning.decline_code();
  // Still bounded: more than the skew ahead of the clock.
  EXPECT_EQ(Decide(MakePayment("c1", "c", 10), kT + 12 * kHour).decline_code(),
            decline_code::kTimestampTooFarAhead);
}

}  // namespace
}  // namespace payments
