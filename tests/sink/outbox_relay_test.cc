// The CDC relay's webhook target against an in-process receiver that verifies
// Standard Webhooks signatures and fails on purpose: 500s, 429 with
// Retry-After, timeouts, 410, an event that never succeeds (dead); order per
// customer; envelopes rebuilt from the payments rows byte for byte as the
// sink would have built them from the confirmations; an event whose payments
// row is gone is dead; delivered rows pruned after the retention.
#include "sink/outbox_relay.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "sink/payment_row.h"
#include "sink/payments_sink_task.h"
#include "sink_test_util.h"
#include "webhook_receiver.h"

namespace payments_sink {
namespace {

using namespace std::chrono_literals;
using namespace payments_sink::testing;
using streams::Offset;
using streams::Partition;
using streams::TopicPartition;

class OutboxRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* server = std::getenv("PG_TEST_URI");
    if (server == nullptr) GTEST_SKIP() << "PG_TEST_URI not set: run through ctest -L postgres";
    uri_ = FreshDatabase(server);
    pool_ = std::make_unique<streams::connect::ConnectionPool>(uri_, 2);
    PaymentsSinkTaskOptions options;
    options.cdc_kafka = false;
    options.cdc_webhook = true;
    task_ = std::make_unique<PaymentsSinkTask>(pool_.get(), options, registry_, nullptr);
    ASSERT_TRUE(task_->Migrate().ok());
  }

  // Writes the confirmations of each partition in order.
  void Write(int32_t partition, const std::vector<PaymentConfirmation>& in) {
    std::vector<streams::ConsumedRecord> records;
    int64_t& next = next_[partition];
    for (const auto& c : in) records.push_back(Record(c, partition, next++));
    std::vector<const streams::ConsumedRecord*> ptrs;
    for (const auto& r : records) ptrs.push_back(&r);
    std::optional<Offset> expected;
    if (next - static_cast<int64_t>(in.size()) > 0) {
      expected = Offset(next - static_cast<int64_t>(in.size()));
    }
    ASSERT_TRUE(task_
                    ->Put(ptrs, {{TopicPartition{"payments.confirmations", Partition(partition)},
                                  expected, Offset(next)}})
                    .ok());
  }

  std::unique_ptr<OutboxRelay> MakeRelay(const std::string& url, int max_attempts = 10,
                                         std::chrono::milliseconds retention = 3600s) {
    OutboxRelayOptions options;
    options.webhook_url = url;
    // Rotation: signed with the new and the old secret; the receiver knows the old one.
    options.webhook_keys = {"new-secret-key", "old-secret-key"};
    options.webhook_timeout = 300ms;
    options.webhook_max_attempts = max_attempts;
    options.webhook_backoff = {20ms, 100ms, 0.5};
    options.retention = retention;
    options.owned_partitions = [] { return std::vector<int32_t>{0, 1}; };
    auto relay = OutboxRelay::Create(pool_.get(), options, registry_);
    EXPECT_TRUE(relay.ok()) << relay.status();
    return relay.ok() ? std::move(*relay) : nullptr;
  }

  // Runs rounds until `done` or the deadline.
  void RunUntil(OutboxRelay& relay, const std::function<bool()>& done,
                std::chrono::milliseconds timeout = 15s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      auto round = relay.RunOnce();
      ASSERT_TRUE(round.ok()) << round.status();
      std::this_thread::sleep_for(10ms);
    }
  }

  int64_t Pending() {
    return ScalarQuery(uri_,
                       "SELECT count(*) FROM payments_outbox WHERE webhook_state = 'pending'");
  }

  double Counter(const std::string& name) {
    for (const auto& f : registry_.Collect()) {
      if (f.name != name) continue;
      double total = 0;
      for (const auto& m : f.metric) total += m.counter.value;
      return total;
    }
    return 0;
  }

  std::string uri_;
  prometheus::Registry registry_;
  std::unique_ptr<streams::connect::ConnectionPool> pool_;
  std::unique_ptr<PaymentsSinkTask> task_;
  std::map<int32_t, int64_t> next_;
};

TEST_F(OutboxRelayTest, DeliversInOrderPerCustomerThroughFailures) {
  WebhookReceiver receiver("old-secret-key");
  // 500, 429 with Retry-After 1 s, a stall past the client's timeout, then 2xx.
  receiver.Script({{500, -1, 0ms}, {429, 1, 0ms}, {200, -1, 600ms}});
  PaymentConfirmation p1 = Confirmation("pay_a", "cust_a", "m1", 1000);
  PaymentConfirmation p2 = Confirmation("pay_b", "cust_b", "m1", 500);
  Write(0, {p1, Confirmation("pay_c", "cust_a", "m1", 10), Refund("ref_a", p1, 100)});
  Write(1, {p2, Refund("ref_b", p2, 500)});
  Write(0, {Refund("ref_c", p1, 900), Replay(p1)});
  const int64_t events = ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox");
  ASSERT_EQ(events, 9);  // 6 inserts (c) + 3 refunds (u); the replay adds nothing.

  auto relay = MakeRelay(receiver.url());
  ASSERT_NE(relay, nullptr);
  RunUntil(*relay, [&] { return Pending() == 0; });
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(receiver.bad_signatures(), 0);
  auto accepted = receiver.accepted();
  EXPECT_EQ(static_cast<int64_t>(accepted.size()), events);

  // Order per customer: the outbox order of that customer's events.
  pqxx::connection conn(uri_);
  pqxx::nontransaction nt(conn);
  std::map<std::string, std::vector<std::string>> want, got;
  for (const auto& r : nt.exec("SELECT customer_id, 'payments.confirmations-' || kafka_partition"
                               " || '-' || kafka_offset || '-' || seq FROM payments_outbox"
                               " ORDER BY kafka_partition, kafka_offset, seq")) {
    want[r[0].as<std::string>()].push_back(r[1].as<std::string>());
  }
  for (const auto& d : accepted) got[d.customer_id].push_back(d.id);
  EXPECT_EQ(got, want);

  // Retry-After was honoured: the retry of the 429'd event came >= 1 s later.
  auto requests = receiver.requests();
  for (size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].status != 429) continue;
    for (size_t j = i + 1; j < requests.size(); ++j) {
      if (requests[j].id == requests[i].id) {
        EXPECT_GE(requests[j].at - requests[i].at, 950ms);
        break;
      }
    }
  }
  EXPECT_GE(Counter("payments_sink_cdc_deliveries_total"), events + 3);
}

TEST_F(OutboxRelayTest, EventFailingEveryTimeIsDeadAndOthersProceed) {
  WebhookReceiver receiver("old-secret-key");
  receiver.AlwaysFor("cust_dead", {503, -1, 0ms});
  Write(0,
        {Confirmation("pay_a", "cust_dead", "m1", 10), Confirmation("pay_b", "cust_dead", "m1", 20),
         Confirmation("pay_c", "cust_ok", "m1", 30)});
  auto relay = MakeRelay(receiver.url(), /*max_attempts=*/3);
  ASSERT_NE(relay, nullptr);
  RunUntil(*relay, [&] { return Pending() == 0; });
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox WHERE webhook_state = 'dead'"),
            2);
  EXPECT_EQ(
      ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox WHERE webhook_state = 'delivered'"),
      1);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT max(webhook_attempts) FROM payments_outbox"), 3);
  EXPECT_EQ(Counter("payments_sink_cdc_dead_events_total"), 2);
  // The second event of cust_dead was only tried after the first was dead.
  auto requests = receiver.requests();
  size_t first_b = requests.size(), last_a = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].id == "payments.confirmations-0-0-0") last_a = i;
    if (requests[i].id == "payments.confirmations-0-1-0" && first_b == requests.size()) first_b = i;
  }
  EXPECT_LT(last_a, first_b);
}

TEST_F(OutboxRelayTest, GoneDisablesTheEndpoint) {
  WebhookReceiver receiver("old-secret-key");
  receiver.SetFallback({410, -1, 0ms});
  Write(0, {Confirmation("pay_a", "cust_a", "m1", 10), Confirmation("pay_b", "cust_b", "m1", 20)});
  auto relay = MakeRelay(receiver.url());
  ASSERT_NE(relay, nullptr);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(relay->RunOnce().ok());
  EXPECT_EQ(receiver.requests().size(), 1u);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM webhook_endpoints"), 1);
  EXPECT_EQ(Pending(), 2);  // Kept for when the endpoint is enabled again.
  // Deleting the row enables it again.
  ScalarQuery(uri_, "WITH d AS (DELETE FROM webhook_endpoints RETURNING 1) SELECT count(*) FROM d");
  receiver.SetFallback({204, -1, 0ms});
  RunUntil(*relay, [&] { return Pending() == 0; });
  EXPECT_EQ(Pending(), 0);
}

// The envelope the sink built from the confirmations when it wrote the events
// (before the outbox stored only coordinates): the relay must deliver the
// same bytes.
TEST_F(OutboxRelayTest, EnvelopesAreTheSinksByteForByte) {
  PaymentConfirmation p1 = Confirmation("pay_a", "cust_a", "m1", 1000);
  p1.set_fraud_score(0.1 + 0.2);  // 0.30000000000000004: must survive FLOAT8.
  p1.set_decline_message("quote \" backslash \\ tab \t \xc3\xbc \xe2\x82\xac");
  PaymentConfirmation p2 = Confirmation("pay_b", "cust_b", "m2", 500, /*approved=*/false);
  p2.set_fraud_score(1.0 / 3);
  PaymentConfirmation r1 = Refund("ref_a", p1, 100);
  PaymentConfirmation r2 = Refund("ref_b", p1, 250);
  PaymentConfirmation r3 = Refund("ref_c", p1, 650);
  // Two refunds of p1 in the batch that writes p1, the last in a later one.
  Write(0, {p1, r1, p2, r2});
  Write(0, {Replay(r1), r3});

  // Expected: c per new row, u per applied refund, with the ts_ms stored.
  std::map<std::string, int64_t> created;
  pqxx::connection conn(uri_);
  pqxx::nontransaction nt(conn);
  for (const auto& r : nt.exec("SELECT kafka_offset, seq, created_at_ms FROM payments_outbox")) {
    created[EventId({"payments-sink", "payments.confirmations", 0, r[0].as<int64_t>()},
                    r[1].as<int>())] = r[2].as<int64_t>();
  }
  ASSERT_EQ(created.size(), 8u);  // 5 rows + 3 refunds.
  std::map<std::string, std::string> want;
  auto c_event = [&](const PaymentConfirmation& c, int64_t offset) {
    ChangeSource src{"payments-sink", "payments.confirmations", 0, offset};
    const std::string id = EventId(src, 0);
    want[id] = ChangeEnvelope(std::nullopt, RowFromConfirmation(c, Record(c, 0, offset)), src,
                              created.at(id));
  };
  const PaymentRow payment = RowFromConfirmation(p1, Record(p1, 0, 0));
  auto u_event = [&](int64_t offset, int64_t before, int64_t after) {
    ChangeSource src{"payments-sink", "payments.confirmations", 0, offset};
    const std::string id = EventId(src, 1);
    PaymentRow b = payment, a = payment;
    b.refunded_amount_minor = before;
    b.status = RefundStatus(before, payment.amount_minor);
    a.refunded_amount_minor = after;
    a.status = RefundStatus(after, payment.amount_minor);
    want[id] = ChangeEnvelope(b, a, src, created.at(id));
  };
  c_event(p1, 0);
  c_event(r1, 1);
  u_event(1, 0, 100);
  c_event(p2, 2);
  c_event(r2, 3);
  u_event(3, 100, 350);
  c_event(r3, 5);
  u_event(5, 350, 1000);

  WebhookReceiver receiver("old-secret-key");
  auto relay = MakeRelay(receiver.url());
  ASSERT_NE(relay, nullptr);
  RunUntil(*relay, [&] { return Pending() == 0; });
  std::map<std::string, std::string> got;
  for (const auto& d : receiver.accepted()) got[d.id] = d.body;
  EXPECT_EQ(got, want);
  EXPECT_EQ(nlohmann::json::parse(got.at("payments.confirmations-0-5-1"))["after"]["status"],
            "REFUNDED");
  EXPECT_EQ(nlohmann::json::parse(got.at("payments.confirmations-0-0-0"))["after"]["fraud_score"],
            0.1 + 0.2);
}

TEST_F(OutboxRelayTest, EventWhosePaymentRowIsGoneIsDeadAndOthersProceed) {
  WebhookReceiver receiver("old-secret-key");
  Write(0, {Confirmation("pay_a", "cust_a", "m1", 10), Confirmation("pay_b", "cust_a", "m1", 20)});
  ScalarQuery(uri_,
              "WITH d AS (DELETE FROM payments WHERE payment_id = 'pay_a' RETURNING 1)"
              " SELECT count(*) FROM d");
  auto relay = MakeRelay(receiver.url());
  ASSERT_NE(relay, nullptr);
  RunUntil(*relay, [&] { return Pending() == 0; });
  EXPECT_EQ(ScalarQuery(uri_,
                        "SELECT count(*) FROM payments_outbox WHERE webhook_state = 'dead'"
                        " AND payment_id = 'pay_a' AND webhook_last_error <> ''"),
            1);
  auto accepted = receiver.accepted();
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0].id, "payments.confirmations-0-1-0");
  EXPECT_EQ(Counter("payments_sink_cdc_dead_events_total"), 1);
}

TEST_F(OutboxRelayTest, DeliveredRowsArePrunedAfterTheRetention) {
  WebhookReceiver receiver("old-secret-key");
  Write(0, {Confirmation("pay_a", "cust_a", "m1", 10)});
  auto relay = MakeRelay(receiver.url(), 10, /*retention=*/0ms);
  ASSERT_NE(relay, nullptr);
  RunUntil(*relay, [&] { return ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox") == 0; });
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox"), 0);
  EXPECT_EQ(receiver.accepted().size(), 1u);
}

}  // namespace
}  // namespace payments_sink
