// Idempotency end to end: replays, key reuse, and expiry after the retention.
#include <gtest/gtest.h>

#include "google/protobuf/util/message_differencer.h"
#include "payments/decline_codes.h"
#include "payments/fingerprint.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;
using testing::ScanStore;

class IdempotencyTest : public testing::PaymentsDriverTest {
 protected:
  struct Snapshot {
    std::map<std::string, std::string> idempotency, payments, customers;
    size_t changelog_records = 0;
    bool operator==(const Snapshot&) const = default;
  };
  Snapshot Take() {
    Snapshot s;
    s.idempotency = ScanStore(Store(kIdempotencyStoreName));
    s.payments = ScanStore(Store(kPaymentsStoreName));
    s.customers = ScanStore(Store(kCustomersStoreName));
    for (auto store : {kIdempotencyStoreName, kPaymentsStoreName, kCustomersStoreName}) {
      s.changelog_records += driver_->AllRecords(Changelog(store)).size();
    }
    return s;
  }
};

TEST_F(IdempotencyTest, ReplayReEmitsTheStoredConfirmation) {
  auto request = MakePayment("c1", "k1", 2500);
  auto first = Decide(request, 1000);
  ASSERT_EQ(first.decision(), payments::v1::APPROVED);
  const Snapshot before = Take();

  auto retry = request;
  retry.set_created_at_ms(request.created_at_ms() + 60'000);  // re-stamped by the client
  auto second = Decide(retry, 7000);
  EXPECT_TRUE(second.replay());
  EXPECT_EQ(last_record_.timestamp, streams::Timestamp(7000));
  // Identical to the original except the replay flag and the source
  // coordinates, which name the retry's own record; decided_at is the original's.
  auto expected = first;
  expected.set_replay(true);
  expected.set_source_offset(1);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(second, expected))
      << second.DebugString();
  EXPECT_EQ(second.decided_at_ms(), 1000);
  EXPECT_EQ(second.source_offset(), 1);
  EXPECT_EQ(Take(), before);  // No state change, no changelog record.
}

TEST_F(IdempotencyTest, ReplayOfADeclineStaysDeclined) {
  PaymentsConfig config = testing::AllowingGaps();  // a day between two records
  config.daily_amount_limit_minor = 1000;
  Start(config);
  ASSERT_EQ(Decide(MakePayment("c1", "k1", 600), 1000).decision(), payments::v1::APPROVED);
  auto over = MakePayment("c1", "k2", 600);
  EXPECT_EQ(Decide(over, 2000).decline_code(), decline_code::kAmountLimitExceeded);
  // A day later the 600 left the window and a new request would pass, but the
  // retry (within the retention) replays the stored decline.
  const int64_t later = 1000 + 86'400'000 + 1;
  auto replay = Decide(over, later);
  EXPECT_TRUE(replay.replay());
  EXPECT_EQ(replay.decline_code(), decline_code::kAmountLimitExceeded);
  EXPECT_EQ(Decide(MakePayment("c1", "k3", 600), later).decision(), payments::v1::APPROVED);
}

TEST_F(IdempotencyTest, ReuseWithDifferentParametersIsDeclinedAndOriginalUntouched) {
  auto original = MakePayment("c1", "k1", 100);
  auto first = Decide(original, 1000);
  ASSERT_EQ(first.decision(), payments::v1::APPROVED);
  const Snapshot before = Take();

  auto other = original;
  other.set_amount_minor(200);
  auto reused = Decide(other, 2000);
  EXPECT_EQ(reused.decision(), payments::v1::DECLINED);
  EXPECT_EQ(reused.decline_code(), decline_code::kIdempotencyKeyReused);
  EXPECT_FALSE(reused.replay());
  EXPECT_EQ(reused.payment_id(), first.payment_id());
  EXPECT_EQ(reused.amount_minor(), 200);
  EXPECT_EQ(reused.decided_at_ms(), 2000);
  EXPECT_EQ(reused.fraud_score(), 0.0);
  EXPECT_EQ(Take(), before);

  other = original;
  (*other.mutable_metadata())["order"] = "1";
  EXPECT_EQ(Decide(other, 3000).decline_code(), decline_code::kIdempotencyKeyReused);
  EXPECT_EQ(Take(), before);

  // The original request is still replayed with its original decision.
  auto replay = Decide(original, 4000);
  EXPECT_TRUE(replay.replay());
  EXPECT_EQ(replay.decided_at_ms(), 1000);
  EXPECT_EQ(replay.amount_minor(), 100);
}

TEST_F(IdempotencyTest, KeysAreScopedPerCustomer) {
  auto a = Decide(MakePayment("c1", "same", 100), 1);
  auto b = Decide(MakePayment("c2", "same", 300), 2);
  EXPECT_EQ(a.decision(), payments::v1::APPROVED);
  EXPECT_EQ(b.decision(), payments::v1::APPROVED);
  EXPECT_FALSE(b.replay());
  EXPECT_NE(a.payment_id(), b.payment_id());
  EXPECT_EQ(b.payment_id(), PaymentIdFor("c2", "same"));
}

TEST_F(IdempotencyTest, StoredRecordHoldsFingerprintAndConfirmation) {
  auto request = MakePayment("c1", "k1", 100);
  auto c = Decide(request, 1);
  auto stored = ScanStore(Store(kIdempotencyStoreName));
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored.begin()->first, DecisionKey("c1", "k1"));
  // The value embeds the fingerprint and the confirmation bytes.
  EXPECT_NE(stored.begin()->second.find(RequestFingerprint(request)), std::string::npos);
  EXPECT_NE(stored.begin()->second.find(c.SerializeAsString()), std::string::npos);
}

TEST_F(IdempotencyTest, ExpiresAfterRetentionWithTombstoneInChangelog) {
  PaymentsConfig config;
  config.idempotency_retention = std::chrono::milliseconds(10'000);
  Start(config);
  ASSERT_EQ(Decide(MakePayment("c1", "k1", 100), 1000).decision(), payments::v1::APPROVED);
  const std::string key = DecisionKey("c1", "k1");

  // One millisecond before write time + retention: still there.
  ASSERT_EQ(Decide(MakePayment("c2", "x1", 100), 10'999).decision(), payments::v1::APPROVED);
  EXPECT_TRUE(Decide(MakePayment("c1", "k1", 100), 10'999).replay());
  for (const auto& r : driver_->AllRecords(Changelog(kIdempotencyStoreName))) {
    EXPECT_TRUE(r.value.has_value()) << "no tombstone before expiry";
  }

  // Another customer's record moves stream time to write time + retention:
  // the entry is expired, and the commit purges it with a tombstone.
  ASSERT_EQ(Decide(MakePayment("c2", "x2", 100), 11'000).decision(), payments::v1::APPROVED);
  auto changelog = driver_->AllRecords(Changelog(kIdempotencyStoreName));
  ASSERT_FALSE(changelog.empty());
  size_t tombstones = 0;
  for (const auto& r : changelog) {
    if (r.key == key && !r.value.has_value()) ++tombstones;
  }
  EXPECT_EQ(tombstones, 1u);
  EXPECT_EQ(ScanStore(Store(kIdempotencyStoreName)).count(key), 0u);

  // The key is free again once no refundable payment holds it: a different
  // request with the key of an expired decline is decided afresh.
  config.daily_amount_limit_minor = 100;
  Start(config);
  ASSERT_EQ(Decide(MakePayment("c1", "k1", 101), 1000).decline_code(),
            decline_code::kAmountLimitExceeded);
  ASSERT_EQ(Decide(MakePayment("c2", "x1", 1), 11'000).decision(), payments::v1::APPROVED);
  auto fresh = Decide(MakePayment("c1", "k1", 55), 11'002);
  EXPECT_FALSE(fresh.replay());
  EXPECT_EQ(fresh.decision(), payments::v1::APPROVED);
  EXPECT_EQ(fresh.amount_minor(), 55);
}

TEST_F(IdempotencyTest, RetryAfterAConfigChangeGetsTheStoredDecision) {
  // Approved under the old limits; the retry arrives after a restart with a
  // lower max amount and a tighter string limit: still a replay (validation
  // ran first before, and declined it afresh with replay = false).
  auto request = MakePayment("c1", "key-0123456789", 5000, "EUR", "merchant-with-a-long-name");
  const auto first = Decide(request, 1000);
  ASSERT_EQ(first.decision(), payments::v1::APPROVED);
  const Snapshot state = Take();

  PaymentsConfig tighter;
  tighter.max_amount_minor = 1000;
  tighter.string_max_length = 12;
  Start(tighter);
  // The new instance has the state of the old one.
  for (auto [store, entries] : {std::pair{kIdempotencyStoreName, &state.idempotency},
                                std::pair{kPaymentsStoreName, &state.payments},
                                std::pair{kCustomersStoreName, &state.customers}}) {
    for (const auto& [key, value] : *entries) ASSERT_TRUE(Store(store)->Put(key, value).ok());
  }
  ASSERT_TRUE(driver_->Commit().ok());

  const auto retry = Decide(request, 2000);
  EXPECT_TRUE(retry.replay());
  EXPECT_EQ(retry.decision(), payments::v1::APPROVED);
  EXPECT_EQ(retry.decided_at_ms(), 1000);
  EXPECT_EQ(retry.payment_id(), first.payment_id());
  // A new request is judged by the new limits; a changed one is still a reuse.
  EXPECT_EQ(Decide(MakePayment("c1", "k2", 5000), 3000).decline_code(),
            decline_code::kAmountTooLarge);
  auto changed = request;
  changed.set_amount_minor(5001);
  EXPECT_EQ(Decide(changed, 4000).decline_code(), decline_code::kIdempotencyKeyReused);
}

}  // namespace
}  // namespace payments
