// The rolling 24 h amount window and the 1 h velocity window, kept as running
// sums in the customer record plus one store entry per approval: decisions and
// scorer profiles must equal those of the rules applied to one list of
// approvals per customer (how the state was kept before), also across crashes,
// late records and day-long gaps; the record stays small and old approvals are
// deleted; a record of the old layout is migrated.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "customer_model.h"
#include "payments/decline_codes.h"
#include "payments/token_bucket.h"
#include "payments_state.pb.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;
using testing::ParseConfirmation;
using testing::ScanStore;

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

// Records the profile of every scored request (by idempotency key) and scores
// 10000 (fraud) when metadata "fraud" is present, else 0.
class RecordingScorer final : public FraudScorer {
 public:
  explicit RecordingScorer(bool needs_recent) : needs_recent_(needs_recent) {}
  int32_t ScoreBasisPoints(const payments::v1::PaymentRequest& r,
                           const CustomerProfile& profile) const override {
    profiles[r.idempotency_key()] = profile;
    return r.metadata().count("fraud") != 0 ? 10000 : 0;
  }
  bool NeedsRecentApprovals() const override { return needs_recent_; }
  mutable std::map<std::string, CustomerProfile> profiles;

 private:
  bool needs_recent_;
};

std::string Describe(const std::vector<RecentApproval>& list) {
  std::string out;
  for (const auto& a : list) {
    out += "(" + std::to_string(a.at_ms) + " " + a.currency + " " + std::to_string(a.amount_minor) +
           " x" + std::to_string(a.count) + ")";
  }
  return out;
}

// The rules of src/payments/README.md applied to one list of the approvals of
// the last 24 h per customer (the representation before the split): the
// reference the topology must match.
class ListModel {
 public:
  explicit ListModel(const PaymentsConfig& config)
      : config_(config), bucket_(config.rate_limit_per_minute, config.rate_limit_burst) {}

  struct Outcome {
    std::string code;
    int64_t last_hour = 0;
    std::vector<RecentApproval> recent;  // what the scorer sees
    // The customer time is before that of an earlier request of the customer
    // (only possible after a decline: the late-record path of the sums).
    bool behind = false;
  };

  Outcome Decide(const payments::v1::PaymentRequest& r, int64_t record_ms) {
    Customer& c = customers_[r.customer_id()];
    const int64_t now = std::max(c.last_event_ms, record_ms);
    const TokenBucketValue bucket = c.known ? bucket_.Refill(c.bucket, now) : bucket_.Full(now);
    Outcome out;
    out.behind = now < c.latest_ms;
    c.latest_ms = std::max(c.latest_ms, now);
    int64_t approved = 0;
    for (const RecentApproval& a : c.recent) {
      if (a.at_ms <= now - kDay) continue;
      out.recent.push_back(a);
      if (a.at_ms > now - kHour) out.last_hour += a.count;
      if (a.currency == r.currency()) approved += a.amount_minor;
    }
    if (!bucket_.HasToken(bucket)) {
      out.code = decline_code::kRateLimited;
    } else if (approved + r.amount_minor() > config_.daily_amount_limit_minor) {
      out.code = decline_code::kAmountLimitExceeded;
    } else if (r.metadata().count("fraud") != 0) {
      out.code = decline_code::kFraudSuspected;
    } else {
      out.code = "APPROVED";
      c.known = true;
      c.bucket = bucket_.Take(bucket);
      c.recent = out.recent;
      bool merged = false;
      for (auto it = c.recent.rbegin(); it != c.recent.rend() && it->at_ms == now; ++it) {
        if (it->currency == r.currency()) {
          it->amount_minor += r.amount_minor();
          it->count += 1;
          merged = true;
          break;
        }
      }
      if (!merged) c.recent.push_back(RecentApproval{now, r.currency(), r.amount_minor(), 1});
      c.last_event_ms = now;
    }
    return out;
  }

  // The approvals the store must still hold: at_ms > last_event_ms - 24 h.
  int64_t StoredApprovals(const std::string& customer) const {
    auto it = customers_.find(customer);
    if (it == customers_.end()) return 0;
    int64_t n = 0;
    for (const auto& a : it->second.recent) n += a.count;
    return n;
  }

 private:
  struct Customer {
    bool known = false;
    int64_t last_event_ms = 0;
    int64_t latest_ms = 0;
    TokenBucketValue bucket;
    std::vector<RecentApproval> recent;
  };
  PaymentsConfig config_;
  TokenBucket bucket_;
  std::map<std::string, Customer> customers_;
};

struct TimedRequest {
  payments::v1::PaymentRequest request;
  int64_t ts = 0;
};

// Shape of a fixed-seed workload (percentages).
struct WorkloadShape {
  int same_time = 30;  // gap 0
  int day_gap = 3;     // gap 20..30 h (else 10..70 min for 7%, else 0..10 s)
  int late = 10;       // record time before the previous one, by up to `max_late_ms`
  int64_t max_late_ms = 30 * kHour;
  int fraud = 10;  // forced FRAUD_SUSPECTED (a decline at the customer's time)
  int64_t max_amount = 2500;
};

// PAYMENTs of one hot and two other customers in three currencies, with
// bursts at one time, gaps from 0 s to 30 h, late records and forced fraud
// declines; amounts hit the daily limit now and then.
std::vector<TimedRequest> Workload(int n, uint64_t seed, const WorkloadShape& shape = {}) {
  uint64_t state = seed;
  auto next = [&state](uint64_t bound) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % bound;
  };
  auto percent = [&next](int p) { return static_cast<int>(next(100)) < p; };
  const char* currencies[] = {"EUR", "USD", "JPY"};
  std::vector<TimedRequest> out;
  int64_t ts = 5 * kDay;
  for (int i = 0; i < n; ++i) {
    if (percent(shape.same_time)) {
      // same time
    } else if (percent(shape.day_gap)) {
      ts += 20 * kHour + static_cast<int64_t>(next(10 * kHour));
    } else if (percent(7)) {
      ts += 10 * 60'000 + static_cast<int64_t>(next(60 * 60'000));
    } else {
      ts += static_cast<int64_t>(next(10'000));
    }
    int64_t record_ts = ts;
    if (percent(shape.late)) {
      record_ts -= static_cast<int64_t>(next(static_cast<uint64_t>(shape.max_late_ms)));
    }
    const std::string customer = next(10) < 6 ? "hot" : "cust-" + std::to_string(next(2));
    auto r = MakePayment(customer, "k" + std::to_string(i),
                         1 + static_cast<int64_t>(next(static_cast<uint64_t>(shape.max_amount))),
                         currencies[next(3)], "m" + std::to_string(next(4)));
    if (percent(shape.fraud)) (*r.mutable_metadata())["fraud"] = "1";
    out.push_back(TimedRequest{r, record_ts});
  }
  return out;
}

std::string CodeOf(const payments::v1::PaymentConfirmation& c) {
  return c.decision() == payments::v1::APPROVED ? "APPROVED" : c.decline_code();
}

class RollingWindowTest : public testing::PaymentsDriverTest {
 protected:
  void SetUp() override {}

  // The workloads have gaps of up to 30 h between records.
  static PaymentsConfig ModelConfig() {
    PaymentsConfig config = testing::AllowingGaps();
    config.rate_limit_per_minute = 6;
    config.rate_limit_burst = 3;
    config.daily_amount_limit_minor = 10'000;
    return config;
  }

  // The ApprovalEntry keys of `customer` in the customers store.
  size_t StoredApprovals(const std::string& customer) {
    const std::string prefix = internal::ApprovalKeyPrefix(customer);
    size_t n = 0;
    for (const auto& [key, value] : ScanStore(Store(kCustomersStoreName))) {
      n += key.compare(0, prefix.size(), prefix) == 0 ? 1 : 0;
    }
    return n;
  }

  std::optional<std::string> Record(const std::string& customer) {
    auto stored = Store(kCustomersStoreName)->Get(customer);
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() ? *stored : std::nullopt;
  }

  internal::CustomerState State(const std::string& customer) {
    internal::CustomerState state;
    auto bytes = Record(customer);
    EXPECT_TRUE(bytes.has_value()) << customer;
    EXPECT_TRUE(state.ParseFromString(bytes.value_or("")));
    return state;
  }

  // Runs the workload and checks every decision and scorer profile against the model.
  void ExpectMatchesModel(bool scorer_needs_recent, uint64_t seed,
                          const WorkloadShape& shape = {}) {
    auto scorer = std::make_shared<RecordingScorer>(scorer_needs_recent);
    Start(ModelConfig(), scorer);
    ListModel model(ModelConfig());
    std::map<std::string, int> codes;
    int late = 0;    // judged at a later customer time than the record's
    int behind = 0;  // judged before the time of an earlier (declined) request
    for (const auto& [request, ts] : Workload(3000, seed, shape)) {
      const ListModel::Outcome expected = model.Decide(request, ts);
      const auto got = Decide(request, ts);
      const std::string& key = request.idempotency_key();
      ASSERT_EQ(CodeOf(got), expected.code) << key << " at " << ts;
      ++codes[expected.code];
      ASSERT_EQ(scorer->profiles.count(key), 1u) << key;
      const CustomerProfile& profile = scorer->profiles[key];
      ASSERT_TRUE(profile.approvals_last_hour.has_value());
      ASSERT_EQ(*profile.approvals_last_hour, expected.last_hour) << key;
      if (scorer_needs_recent) {
        ASSERT_EQ(Describe(profile.recent_approvals), Describe(expected.recent)) << key;
      } else {
        ASSERT_TRUE(profile.recent_approvals.empty());
      }
      late += profile.now_ms > ts ? 1 : 0;
      behind += expected.behind ? 1 : 0;
    }
    // The workload reached every rule and had late records.
    EXPECT_GT(codes["APPROVED"], 1000);
    EXPECT_GT(codes[std::string(decline_code::kRateLimited)], 50);
    EXPECT_GT(codes[std::string(decline_code::kAmountLimitExceeded)], 50);
    EXPECT_GT(codes[std::string(decline_code::kFraudSuspected)], 50);
    EXPECT_GT(late, 100);
    EXPECT_GT(behind, 50);
    // Only the approvals of the last 24 h of each customer are stored.
    for (const std::string customer : {"hot", "cust-0", "cust-1"}) {
      EXPECT_EQ(static_cast<int64_t>(StoredApprovals(customer)), model.StoredApprovals(customer))
          << customer;
    }
  }
};

TEST_F(RollingWindowTest, MatchesTheListModelWithTheFullList) { ExpectMatchesModel(true, 17); }

TEST_F(RollingWindowTest, MatchesTheListModelWithoutTheList) { ExpectMatchesModel(false, 17); }

// Many records behind a later decline of their customer (the path where the
// sums describe a later time than the request's).
TEST_F(RollingWindowTest, MatchesTheListModelWithManyLateRecords) {
  WorkloadShape shape;
  shape.day_gap = 8;
  shape.late = 40;
  shape.max_late_ms = 26 * kHour;
  shape.fraud = 30;
  shape.max_amount = 4000;
  ExpectMatchesModel(true, 99, shape);
}

TEST_F(RollingWindowTest, MatchesTheListModelAcrossCrashesAndRestores) {
  const auto workload = Workload(2000, 5);
  ListModel model(ModelConfig());
  std::vector<std::string> expected;
  for (const auto& [request, ts] : workload) expected.push_back(model.Decide(request, ts).code);

  // A plain run, then one with a commit every 7 records and a crash every 61.
  std::map<std::string, std::string> stores[2];
  for (int run = 0; run < 2; ++run) {
    streams::TestDriverOptions options;
    options.auto_commit = run == 0;
    Start(ModelConfig(), std::make_shared<RecordingScorer>(false), options);
    int crashes = 0;
    for (size_t i = 0; i < workload.size(); ++i) {
      Pipe(workload[i].request, workload[i].ts);
      if (run == 0) continue;
      if ((i + 1) % 61 == 0) {
        auto point = crashes++ % 2 == 0 ? streams::CrashPoint::kBeforeCommit
                                        : streams::CrashPoint::kAfterKafkaCommit;
        ASSERT_TRUE(driver_->SimulateCrash(point).ok());
      } else if ((i + 1) % 7 == 0) {
        ASSERT_TRUE(driver_->Commit().ok());
      }
    }
    ASSERT_TRUE(driver_->Commit().ok());
    const auto out = driver_->AllRecords(config_.confirmations_topic);
    ASSERT_EQ(out.size(), expected.size());
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(CodeOf(ParseConfirmation(out[i])), expected[i]) << "run " << run << " record " << i;
    }
    stores[run] = ScanStore(Store(kCustomersStoreName));
  }
  EXPECT_EQ(stores[0], stores[1]);
}

TEST_F(RollingWindowTest, LateRecordAfterALaterDeclineSeesTheWholeWindow) {
  auto scorer = std::make_shared<RecordingScorer>(true);
  PaymentsConfig config;
  config.daily_amount_limit_minor = 1000;
  Start(testing::AllowingGaps(config), scorer);
  const int64_t t0 = 10 * kDay;
  ASSERT_EQ(CodeOf(Decide(MakePayment("c1", "a", 600), t0)), "APPROVED");
  ASSERT_EQ(CodeOf(Decide(MakePayment("c1", "b", 400), t0 + kHour)), "APPROVED");
  // A declined request a day later moves the window sums past the 600 (it is
  // stored again, so the record changes although nothing was approved).
  auto fraud = MakePayment("c1", "f", 1);
  (*fraud.mutable_metadata())["fraud"] = "1";
  const auto before = Record("c1");
  EXPECT_EQ(CodeOf(Decide(fraud, t0 + kDay + 30 * 60'000)), decline_code::kFraudSuspected);
  EXPECT_NE(Record("c1"), before);
  EXPECT_EQ(State("c1").window_end_ms(), t0 + kDay + 30 * 60'000);
  EXPECT_EQ(State("c1").last_event_ms(), t0 + kHour);
  // A record stamped t0 + 90 min is judged then: both approvals count.
  const int64_t late = t0 + 90 * 60'000;
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "late", 1), late)), decline_code::kAmountLimitExceeded);
  EXPECT_EQ(scorer->profiles["late"].now_ms, late);
  EXPECT_EQ(*scorer->profiles["late"].approvals_last_hour, 1);  // the 400 at t0 + 1 h
  EXPECT_EQ(scorer->profiles["late"].recent_approvals.size(), 2u);
  // At the later time only the 400 counts.
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "now", 600), t0 + kDay + 30 * 60'000)), "APPROVED");
  EXPECT_EQ(*scorer->profiles["now"].approvals_last_hour, 0);
  // That approval moved last_event_ms: the 600 at t0 is deleted, the 400 is kept.
  EXPECT_EQ(StoredApprovals("c1"), 2u);
}

TEST_F(RollingWindowTest, LateApprovalKeepsWhatLaterLateRecordsStillCount) {
  PaymentsConfig config;
  config.daily_amount_limit_minor = 1000;
  Start(testing::AllowingGaps(config), std::make_shared<RecordingScorer>(false));
  const int64_t t0 = 10 * kDay;
  ASSERT_EQ(CodeOf(Decide(MakePayment("c1", "a", 600), t0)), "APPROVED");
  auto fraud = MakePayment("c1", "f", 1);
  (*fraud.mutable_metadata())["fraud"] = "1";
  ASSERT_EQ(CodeOf(Decide(fraud, t0 + 30 * kHour)), decline_code::kFraudSuspected);
  // The sums now describe t0 + 30 h (the 600 is out), but a late record at
  // t0 + 1 h still counts it, and its approval must not delete it.
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "b", 100), t0 + kHour)), "APPROVED");
  EXPECT_EQ(StoredApprovals("c1"), 2u);
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "c", 301), t0 + 2 * kHour)),
            decline_code::kAmountLimitExceeded);
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "d", 300), t0 + 2 * kHour)), "APPROVED");
  // At t0 + 24 h the 600 left: 100 + 300 + 600 fits; that approval deletes the 600.
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "e", 600), t0 + kDay)), "APPROVED");
  EXPECT_EQ(StoredApprovals("c1"), 3u);
}

TEST_F(RollingWindowTest, LateApprovalIsNotCountedWhereItIsOutOfTheWindow) {
  auto scorer = std::make_shared<RecordingScorer>(false);
  PaymentsConfig config;
  config.daily_amount_limit_minor = 1000;
  Start(testing::AllowingGaps(config), scorer);
  const int64_t t0 = 10 * kDay;
  ASSERT_EQ(CodeOf(Decide(MakePayment("c1", "a", 100), t0)), "APPROVED");
  auto fraud = MakePayment("c1", "f", 1);
  (*fraud.mutable_metadata())["fraud"] = "1";
  ASSERT_EQ(CodeOf(Decide(fraud, t0 + 60 * kHour)), decline_code::kFraudSuspected);
  // Approved at t0 + 10 h: more than 24 h before the time the sums describe.
  ASSERT_EQ(CodeOf(Decide(MakePayment("c1", "b", 900), t0 + 10 * kHour)), "APPROVED");
  // At t0 + 35 h neither the 100 nor the 900 is in the window or the last hour.
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "c", 1000), t0 + 35 * kHour)), "APPROVED");
  EXPECT_EQ(*scorer->profiles["c"].approvals_last_hour, 0);
  // c itself counts for the next request.
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "d", 1), t0 + 35 * kHour)),
            decline_code::kAmountLimitExceeded);
  EXPECT_EQ(*scorer->profiles["d"].approvals_last_hour, 1);
}

TEST_F(RollingWindowTest, HotCustomerRecordStaysSmallAndOldApprovalsAreDeleted) {
  PaymentsConfig config;
  config.rate_limit_per_minute = 1'000'000;
  config.rate_limit_burst = 1'000'000;
  config.daily_amount_limit_minor = 1'000'000'000'000;
  Start(testing::AllowingGaps(config), std::make_shared<RecordingScorer>(false));
  const int64_t t0 = 3 * kDay;
  size_t size_after_100 = 0;
  // 3000 approvals one minute apart: 50 h of event time.
  for (int i = 0; i < 3000; ++i) {
    Pipe(MakePayment("hot", "k" + std::to_string(i), 100 + i % 7, i % 3 == 0 ? "USD" : "EUR",
                     "m" + std::to_string(i % 5)),
         t0 + i * 60'000);
    if (i == 99) size_after_100 = Record("hot").value_or("").size();
  }
  const auto out = ReadConfirmations();
  ASSERT_EQ(out.size(), 3000u);
  for (const auto& r : out) ASSERT_EQ(CodeOf(ParseConfirmation(r)), "APPROVED");
  const size_t size_after_3000 = Record("hot").value_or("").size();
  EXPECT_GT(size_after_100, 0u);
  EXPECT_LT(size_after_3000, 400u);
  EXPECT_LE(size_after_3000, size_after_100 + 32);  // some varints grow, nothing else
  // Approvals with at_ms > last - 24 h: minutes 1560..2999.
  EXPECT_EQ(StoredApprovals("hot"), 1440u);
  const internal::CustomerState state = State("hot");
  EXPECT_EQ(state.approved_payments(), 3000);
  EXPECT_EQ(state.next_approval_seq(), 3000);
  EXPECT_EQ(state.oldest_stored_seq(), 1560);
  EXPECT_EQ(state.window_start_seq(), 1560);
  EXPECT_EQ(state.hour_start_seq(), 2940);
  EXPECT_EQ(state.last_hour_count(), 60);  // minutes 2940..2999
  EXPECT_TRUE(state.recent().empty());
  int64_t in_window = 0;
  for (const auto& total : state.window_totals()) in_window += total.count();
  EXPECT_EQ(in_window, 1440);
  // Every deletion reached the changelog (a restore does not resurrect them).
  auto changelog = driver_->AllRecords(Changelog(kCustomersStoreName));
  const auto tombstones = std::count_if(changelog.begin(), changelog.end(),
                                        [](const auto& r) { return !r.value.has_value(); });
  EXPECT_EQ(tombstones, 1560);
  ASSERT_TRUE(driver_->SimulateCrash().ok());
  EXPECT_EQ(StoredApprovals("hot"), 1440u);
}

TEST_F(RollingWindowTest, MigratesARecordOfTheOldLayout) {
  auto scorer = std::make_shared<RecordingScorer>(true);
  PaymentsConfig config;
  config.daily_amount_limit_minor = 1000;
  Start(testing::AllowingGaps(config), scorer);
  const int64_t t = 20 * kDay;
  // A record as the previous version wrote it: the approvals of the last 24 h
  // in `recent` (two at the same time, merged per currency).
  internal::CustomerState legacy;
  legacy.set_last_event_ms(t);
  legacy.set_approved_payments(4);
  legacy.mutable_bucket()->set_milli_tokens(20'000);
  legacy.mutable_bucket()->set_last_refill_ms(t);
  auto add = [&legacy](int64_t at, const std::string& currency, int64_t amount, int64_t count) {
    auto* r = legacy.add_recent();
    r->set_at_ms(at);
    r->set_currency(currency);
    r->set_amount_minor(amount);
    r->set_count(count);
  };
  add(t - 23 * kHour, "EUR", 600, 1);
  add(t - 30 * 60'000, "EUR", 300, 2);
  add(t - 30 * 60'000, "USD", 100, 1);
  auto* stats = legacy.add_currency_stats();
  stats->set_currency("EUR");
  stats->set_approved_count(3);
  stats->set_approved_sum_minor(900);
  legacy.add_known_merchants("merchant-1");
  legacy.add_known_currencies("EUR");
  ASSERT_TRUE(Store(kCustomersStoreName)->Put("c1", legacy.SerializeAsString()).ok());
  ASSERT_TRUE(driver_->Commit().ok());

  // A late record is judged at t: 600 + 300 EUR in the window.
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "over", 101), t - 5 * kHour)),
            decline_code::kAmountLimitExceeded);
  const CustomerProfile& p = scorer->profiles["over"];
  EXPECT_EQ(p.now_ms, t);
  EXPECT_EQ(*p.approvals_last_hour, 3);
  EXPECT_EQ(Describe(p.recent_approvals), Describe({{t - 23 * kHour, "EUR", 600, 1},
                                                    {t - 30 * 60'000, "EUR", 300, 2},
                                                    {t - 30 * 60'000, "USD", 100, 1}}));
  // The migrated record was stored: new layout, approvals under their own keys.
  internal::CustomerState migrated = State("c1");
  EXPECT_EQ(migrated.layout(), internal::kCustomerStateLayout);
  EXPECT_TRUE(migrated.recent().empty());
  EXPECT_EQ(StoredApprovals("c1"), 3u);
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "fits", 100), t)), "APPROVED");
  // At t + 1 h the 600 left the window: 300 + 100 + 600 = 1000 fits exactly.
  EXPECT_EQ(CodeOf(Decide(MakePayment("c1", "later", 600), t + kHour)), "APPROVED");
  // "fits" at t is exactly 1 h old: outside the velocity window.
  EXPECT_EQ(*scorer->profiles["later"].approvals_last_hour, 0);
  EXPECT_EQ(StoredApprovals("c1"), 4u);  // the 600 at t - 23 h was deleted
}

TEST_F(RollingWindowTest, ApprovalKeysNeverEqualACustomerId) {
  Start(testing::AllowingGaps());
  // Approval keys start with 0xFF, which no UTF-8 string contains; a request
  // whose customer_id is not UTF-8 is not decodable (proto3) and is
  // dead-lettered, so it cannot address them.
  EXPECT_EQ(internal::ApprovalKeyPrefix("c1")[0], '\xff');
  auto r = MakePayment("\xff\xff", "k1", 100);
  ASSERT_TRUE(driver_
                  ->PipeInput(config_.requests_topic, std::string("\xff\xff"),
                              r.SerializePartialAsString(), streams::Timestamp(1))
                  .ok());
  EXPECT_TRUE(ReadConfirmations().empty());
  EXPECT_EQ(driver_->AllRecords("payments.requests.dlq").size(), 1u);
  EXPECT_TRUE(ScanStore(Store(kCustomersStoreName)).empty());
}

}  // namespace
}  // namespace payments
