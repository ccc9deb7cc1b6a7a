// The state is bounded: rate-limited declines are not stored, and every store
// has a TTL; the customers store's (payments.customer.retention.ms) removes
// idle customers with their approvals while active customers keep theirs.
#include <gtest/gtest.h>

#include "customer_model.h"
#include "payments/decline_codes.h"
#include "payments_state.pb.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;
using testing::ProfileRecordingScorer;
using testing::ScanStore;

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

class StateBoundsTest : public testing::PaymentsDriverTest {
 protected:
  void SetUp() override {}

  // The tests jump days ahead between records.
  static PaymentsConfig Config() {
    PaymentsConfig config;
    config.max_clock_skew = std::chrono::milliseconds(30 * kDay);
    return config;
  }

  size_t Entries() {
    size_t n = 0;
    for (auto store : {kIdempotencyStoreName, kPaymentsStoreName, kCustomersStoreName}) {
      n += ScanStore(Store(store)).size();
    }
    return n;
  }
  size_t ChangelogRecords() {
    size_t n = 0;
    for (auto store : {kIdempotencyStoreName, kPaymentsStoreName, kCustomersStoreName}) {
      n += driver_->AllRecords(Changelog(store)).size();
    }
    return n;
  }
  // Keys of the customers store that belong to `customer` (record and approvals).
  size_t CustomerKeys(const std::string& customer) {
    const std::string prefix = internal::ApprovalKeyPrefix(customer);
    size_t n = 0;
    for (const auto& [key, value] : ScanStore(Store(kCustomersStoreName))) {
      n += key == customer || key.compare(0, prefix.size(), prefix) == 0 ? 1 : 0;
    }
    return n;
  }
  std::string Code(const payments::v1::PaymentConfirmation& c) {
    return c.decision() == payments::v1::APPROVED ? "APPROVED" : c.decline_code();
  }
};

TEST_F(StateBoundsTest, RateLimitedDeclinesStoreNothing) {
  PaymentsConfig config = Config();
  config.rate_limit_per_minute = 1;
  config.rate_limit_burst = 3;
  Start(config);
  const int64_t t = 10 * kDay;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Code(Decide(MakePayment("c1", "ok" + std::to_string(i), 10), t)), "APPROVED");
  }
  const size_t entries = Entries();
  const size_t changelog = ChangelogRecords();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(Code(Decide(MakePayment("c1", "flood" + std::to_string(i), 10), t + i)),
              decline_code::kRateLimited);
  }
  EXPECT_EQ(Entries(), entries);
  EXPECT_EQ(ChangelogRecords(), changelog);  // not a single write
  // Not stored, so the retry after the bucket refilled is decided again.
  auto retry = Decide(MakePayment("c1", "flood7", 10), t + 60'000);
  EXPECT_FALSE(retry.replay());
  EXPECT_EQ(Code(retry), "APPROVED");
}

TEST_F(StateBoundsTest, IdleCustomerExpiresWithItsApprovals) {
  PaymentsConfig config = Config();
  config.customer_retention = std::chrono::milliseconds(2 * kDay);
  auto scorer = std::make_shared<ProfileRecordingScorer>();
  Start(config, scorer);
  const int64_t t0 = 10 * kDay;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Code(Decide(MakePayment("idle", "k" + std::to_string(i), 10), t0)), "APPROVED");
  }
  EXPECT_EQ(CustomerKeys("idle"), 6u);  // the record and 5 approvals
  // Another customer moves stream time just short of the retention: kept.
  ASSERT_EQ(Code(Decide(MakePayment("other", "o1", 10), t0 + 2 * kDay - 1)), "APPROVED");
  EXPECT_EQ(CustomerKeys("idle"), 6u);
  // Past it: the commit purges the record and its approvals with tombstones.
  ASSERT_EQ(Code(Decide(MakePayment("other", "o2", 10), t0 + 2 * kDay)), "APPROVED");
  EXPECT_EQ(CustomerKeys("idle"), 0u);
  size_t tombstones = 0;
  for (const auto& r : driver_->AllRecords(Changelog(kCustomersStoreName))) {
    tombstones += r.value.has_value() ? 0 : 1;
  }
  EXPECT_EQ(tombstones, 6u);
  // The customer comes back as a new one.
  ASSERT_EQ(Code(Decide(MakePayment("idle", "back", 10), t0 + 3 * kDay)), "APPROVED");
  EXPECT_EQ(scorer->profiles["back"].approved_payments, 0);
  EXPECT_EQ(scorer->profiles["k4"].approved_payments, 4);
}

TEST_F(StateBoundsTest, ActiveCustomerKeepsItsHistoryThroughDeclines) {
  PaymentsConfig config = Config();
  config.customer_retention = std::chrono::milliseconds(2 * kDay);
  auto scorer = std::make_shared<ProfileRecordingScorer>();
  Start(config, scorer);
  const int64_t t0 = 10 * kDay;
  ASSERT_EQ(Code(Decide(MakePayment("c1", "paid", 10), t0)), "APPROVED");
  // Only fraud declines for 6 days, one every 20 h: each is judged with the
  // customer's history, which a write at least once per 24 h keeps alive.
  for (int i = 1; i <= 7; ++i) {
    auto r = MakePayment("c1", "d" + std::to_string(i), 10);
    (*r.mutable_metadata())["score"] = "10000";
    ASSERT_EQ(Code(Decide(r, t0 + i * 20 * kHour)), decline_code::kFraudSuspected);
    EXPECT_EQ(scorer->profiles[r.idempotency_key()].approved_payments, 1) << i;
  }
  EXPECT_EQ(CustomerKeys("c1"), 1u);  // the record; its approval left the window long ago
  ASSERT_EQ(Code(Decide(MakePayment("c1", "again", 10), t0 + 7 * 20 * kHour + 1)), "APPROVED");
  EXPECT_EQ(scorer->profiles["again"].approved_payments, 1);
}

TEST_F(StateBoundsTest, AnExpiredApprovalInTheSumsIsRebuiltNotCorruption) {
  // Retention 48 h: requests are judged at customer time >= stream time - 24 h.
  PaymentsConfig config = Config();
  config.customer_retention = std::chrono::milliseconds(2 * kDay);
  config.daily_amount_limit_minor = 300;
  auto scorer = std::make_shared<ProfileRecordingScorer>();
  Start(config, scorer);
  const int64_t h = kHour;
  ASSERT_EQ(Code(Decide(MakePayment("x", "e", 100), 50 * h)), "APPROVED");
  ASSERT_EQ(Code(Decide(MakePayment("x", "f", 200), 60 * h)), "APPROVED");
  // Stream time 100 h: e (written at 50 h) expires, f (60 h) does not, and x's
  // record still counts e in its 24 h sums.
  ASSERT_EQ(Code(Decide(MakePayment("y", "y1", 1), 100 * h)), "APPROVED");
  EXPECT_EQ(CustomerKeys("x"), 2u);  // the record and f
  // A record of x 30 h late is judged at 100 h - 24 h = 76 h: e is out of the
  // window (76 h - 24 h = 52 h >= 50 h), f (200) is in: 200 + 100 fits.
  auto late = Decide(MakePayment("x", "late", 100), 70 * h);
  EXPECT_EQ(Code(late), "APPROVED");
  EXPECT_EQ(late.decided_at_ms(), 70 * h);
  EXPECT_EQ(scorer->profiles["late"].now_ms, 76 * h);
  EXPECT_EQ(*scorer->profiles["late"].approvals_last_hour, 0);
  EXPECT_EQ(Code(Decide(MakePayment("x", "over", 1), 76 * h)), decline_code::kAmountLimitExceeded);
}

}  // namespace
}  // namespace payments
