// PaymentsSinkTask against a real PostgreSQL (ctest fixture `postgres`):
// upsert and balance semantics, replays, refunds, deduplication within a
// batch, the position compare-and-set, constraint errors, 40001 retries forced
// by a concurrent transaction, concurrent migrations and the outbox events.
#include "sink/payments_sink_task.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "sink/payment_row.h"
#include "sink_test_util.h"
#include "streams/connect/connection_pool.h"

namespace payments_sink {
namespace {

using streams::Offset;
using streams::Partition;
using streams::StatusCode;
using streams::TopicPartition;
using streams::connect::PositionUpdate;
using namespace payments_sink::testing;

constexpr char kTopic[] = "payments.confirmations";

class PaymentsSinkTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* server = std::getenv("PG_TEST_URI");
    if (server == nullptr) GTEST_SKIP() << "PG_TEST_URI not set: run through ctest -L postgres";
    uri_ = FreshDatabase(server);
    pool_ = std::make_unique<streams::connect::ConnectionPool>(uri_, 2);
    metrics_ = std::make_unique<streams::connect::SinkMetrics>(registry_, "payments_sink");
    task_ = MakeTask();
    ASSERT_TRUE(task_->Migrate().ok());
  }

  std::unique_ptr<PaymentsSinkTask> MakeTask(bool webhook = false, size_t full_batch_rows = 500) {
    PaymentsSinkTaskOptions options;
    options.cdc_kafka = true;
    options.cdc_webhook = webhook;
    options.full_batch_rows = full_batch_rows;
    options.retry.initial_backoff = std::chrono::milliseconds(5);
    return std::make_unique<PaymentsSinkTask>(pool_.get(), options, registry_, metrics_.get());
  }

  // Puts `confirmations` as records of partition 0 from `first_offset` on,
  // moving the position from `expected` to after the last one.
  streams::Status PutAll(const std::vector<PaymentConfirmation>& confirmations,
                         int64_t first_offset, std::optional<int64_t> expected) {
    std::vector<streams::ConsumedRecord> records;
    for (size_t i = 0; i < confirmations.size(); ++i) {
      records.push_back(Record(confirmations[i], 0, first_offset + static_cast<int64_t>(i)));
    }
    std::vector<const streams::ConsumedRecord*> ptrs;
    for (const auto& r : records) ptrs.push_back(&r);
    std::optional<Offset> exp;
    if (expected) exp = Offset(*expected);
    return task_->Put(
        ptrs, {PositionUpdate{TopicPartition{kTopic, Partition(0)}, exp,
                              Offset(first_offset + static_cast<int64_t>(confirmations.size()))}});
  }

  double Metric(const std::string& name, const std::string& label_value = "") {
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      double total = 0;
      for (const auto& m : family.metric) {
        bool match = label_value.empty();
        for (const auto& l : m.label) match = match || l.value == label_value;
        if (match) total += m.counter.value;
      }
      return total;
    }
    return 0;
  }

  std::string uri_;
  prometheus::Registry registry_;
  std::unique_ptr<streams::connect::ConnectionPool> pool_;
  std::unique_ptr<streams::connect::SinkMetrics> metrics_;
  std::unique_ptr<PaymentsSinkTask> task_;
};

TEST_F(PaymentsSinkTaskTest, WritesRowsAndBalances) {
  std::vector<PaymentConfirmation> in = {Confirmation("pay_a", "c1", "m1", 1000),
                                         Confirmation("pay_b", "c2", "m1", 250),
                                         Confirmation("pay_c", "c1", "m2", 99, /*approved=*/false),
                                         Confirmation("pay_d", "c3", "m2", 5)};
  ASSERT_TRUE(PutAll(in, 0, std::nullopt).ok());
  EXPECT_EQ(Actual(uri_), Expect(in)) << Actual(uri_);
  EXPECT_EQ(
      ScalarQuery(uri_, "SELECT balance_minor FROM merchant_balances WHERE merchant_id = 'm1'"),
      1250);
  pqxx::connection conn(uri_);
  pqxx::nontransaction nt(conn);
  auto row = nt.exec(
      "SELECT kind, decision, decline_code, amount_minor, currency, confirmation_offset,"
      " source_topic, status FROM payments WHERE payment_id = 'pay_c'")[0];
  EXPECT_EQ(row[0].as<std::string>(), "PAYMENT");
  EXPECT_EQ(row[1].as<std::string>(), "DECLINED");
  EXPECT_EQ(row[2].as<std::string>(), "FRAUD_SUSPECTED");
  EXPECT_EQ(row[3].as<int64_t>(), 99);
  EXPECT_EQ(row[5].as<int64_t>(), 2);
  EXPECT_EQ(row[6].as<std::string>(), "payments.requests");
  EXPECT_EQ(row[7].as<std::string>(), "DECLINED");
  EXPECT_EQ(ScalarQuery(uri_, "SELECT next_offset FROM sink_offsets"), 4);
}

// paymentd declines a request with a zero or negative amount (INVALID_AMOUNT)
// and confirms it like any other: its row must be writable, not dead-lettered
// by a constraint meant for refunded payments (found by scripts/demo.sh).
TEST_F(PaymentsSinkTaskTest, DeclinedRequestsWithNonPositiveAmountsAreWritten) {
  PaymentConfirmation negative = Confirmation("pay_n", "c1", "m1", -7462, /*approved=*/false);
  negative.set_decline_code("INVALID_AMOUNT");
  PaymentConfirmation zero = Confirmation("pay_z", "c2", "m1", 0, /*approved=*/false);
  zero.set_decline_code("INVALID_AMOUNT");
  PaymentConfirmation refund = Refund("pay_r", negative, -5, /*approved=*/false);
  refund.set_decline_code("INVALID_AMOUNT");
  std::vector<PaymentConfirmation> in = {negative, zero, refund};
  ASSERT_TRUE(PutAll(in, 0, std::nullopt).ok());
  EXPECT_EQ(Actual(uri_), Expect(in)) << Actual(uri_);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT amount_minor FROM payments WHERE payment_id = 'pay_n'"),
            -7462);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM merchant_balances"), 0);
}

TEST_F(PaymentsSinkTaskTest, ReplaysAndLaterDecisionsOfAPaymentIdChangeNothing) {
  PaymentConfirmation original = Confirmation("pay_a", "c1", "m1", 1000);
  ASSERT_TRUE(PutAll({original}, 0, std::nullopt).ok());
  PaymentConfirmation replay = Replay(original);
  replay.set_amount_minor(5000);  // Even a replay that differs changes nothing.
  PaymentConfirmation reuse = Confirmation("pay_a", "c1", "m1", 7, /*approved=*/false);
  reuse.set_decline_code("IDEMPOTENCY_KEY_REUSED");
  ASSERT_TRUE(PutAll({replay, reuse, Replay(original)}, 1, 1).ok());
  EXPECT_EQ(Actual(uri_), Expect({original})) << Actual(uri_);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT amount_minor FROM payments WHERE payment_id = 'pay_a'"),
            1000);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox"), 1);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT next_offset FROM sink_offsets"), 4);
  EXPECT_EQ(Metric("payments_sink_replays_skipped_total"), 2);
  EXPECT_EQ(Metric("payments_sink_duplicate_decisions_total"), 1);
}

// A batch of which only some rows are new (the insert then lists the rows it
// inserted): only those move balances and get events, prepared (full batch)
// or not.
TEST_F(PaymentsSinkTaskTest, RowsOfABatchThatExistAlreadyAreSkipped) {
  task_ = MakeTask(/*webhook=*/false, /*full_batch_rows=*/3);
  PaymentConfirmation a = Confirmation("pay_a", "c1", "m1", 100);
  PaymentConfirmation b = Confirmation("pay_b", "c2", "m1", 20);
  ASSERT_TRUE(PutAll({a, b}, 0, std::nullopt).ok());
  PaymentConfirmation later_a = Confirmation("pay_a", "c1", "m1", 7, /*approved=*/false);
  later_a.set_decline_code("IDEMPOTENCY_KEY_REUSED");
  // Three rows: prepared; pay_a exists, the refund of it and pay_c are new.
  std::vector<PaymentConfirmation> second = {later_a, Refund("ref_a", a, 30),
                                             Confirmation("pay_c", "c3", "m2", 5)};
  ASSERT_TRUE(PutAll(second, 2, 2).ok());
  // Two rows: not prepared; pay_b exists, pay_d is new.
  std::vector<PaymentConfirmation> third = {b, Confirmation("pay_d", "c4", "m2", 6)};
  ASSERT_TRUE(PutAll(third, 5, 5).ok());
  std::vector<PaymentConfirmation> all = {a, b};
  all.insert(all.end(), second.begin(), second.end());
  all.insert(all.end(), third.begin(), third.end());
  EXPECT_EQ(Actual(uri_), Expect(all)) << Actual(uri_);
  EXPECT_EQ(
      ScalarQuery(uri_, "SELECT balance_minor FROM merchant_balances WHERE merchant_id = 'm1'"),
      90);
  EXPECT_EQ(
      ScalarQuery(uri_, "SELECT balance_minor FROM merchant_balances WHERE merchant_id = 'm2'"),
      11);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox WHERE op = 'c'"), 5);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox WHERE op = 'u'"), 1);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox WHERE payment_id = 'pay_b'"),
            1);
  EXPECT_EQ(Metric("payments_sink_duplicate_decisions_total"), 2);
  EXPECT_EQ(Metric("payments_sink_rows_upserted_total", "payments_outbox"), 6);
}

TEST_F(PaymentsSinkTaskTest, DuplicateKeysInOneBatchAreDeduplicated) {
  PaymentConfirmation a = Confirmation("pay_a", "c1", "m1", 100);
  PaymentConfirmation a2 = Confirmation("pay_a", "c1", "m1", 300, /*approved=*/false);
  // Many rows of the same merchant: one balance row, one upsert.
  std::vector<PaymentConfirmation> in = {a, a2, Confirmation("pay_b", "c2", "m1", 10),
                                         Confirmation("pay_c", "c3", "m1", 20)};
  ASSERT_TRUE(PutAll(in, 0, std::nullopt).ok());
  EXPECT_EQ(Actual(uri_), Expect(in)) << Actual(uri_);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT balance_minor FROM merchant_balances"), 130);
}

TEST_F(PaymentsSinkTaskTest, ABatchAppliedTwiceIsFencedAndChangesNothing) {
  std::vector<PaymentConfirmation> in = {Confirmation("pay_a", "c1", "m1", 100),
                                         Confirmation("pay_b", "c2", "m1", 10)};
  ASSERT_TRUE(PutAll(in, 0, std::nullopt).ok());
  // A zombie (or a retry after a commit whose outcome was unknown).
  streams::Status again = PutAll(in, 0, std::nullopt);
  EXPECT_EQ(again.code(), StatusCode::kFenced) << again;
  streams::Status stale = PutAll({Confirmation("pay_z", "c9", "m1", 1)}, 1, 1);
  EXPECT_EQ(stale.code(), StatusCode::kFenced) << stale;
  EXPECT_EQ(Actual(uri_), Expect(in)) << Actual(uri_);
  auto loaded = task_->LoadPositions(
      {TopicPartition{kTopic, Partition(0)}, TopicPartition{kTopic, Partition(1)}});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ(loaded->begin()->second, Offset(2));
}

TEST_F(PaymentsSinkTaskTest, RefundsMovePaymentAndBalanceAndEmitUpdateEvents) {
  PaymentConfirmation pay = Confirmation("pay_a", "c1", "m1", 1000);
  // Payment and two refunds in one batch, a third refund in the next one.
  std::vector<PaymentConfirmation> first = {pay, Refund("ref_1", pay, 100),
                                            Refund("ref_2", pay, 200),
                                            Refund("ref_x", pay, 50, /*approved=*/false)};
  ASSERT_TRUE(PutAll(first, 0, std::nullopt).ok());
  EXPECT_EQ(
      ScalarQuery(uri_, "SELECT refunded_amount_minor FROM payments WHERE payment_id = 'pay_a'"),
      300);
  std::vector<PaymentConfirmation> second = {Refund("ref_3", pay, 700),
                                             Replay(Refund("ref_1", pay, 100))};
  ASSERT_TRUE(PutAll(second, 4, 4).ok());
  std::vector<PaymentConfirmation> all = first;
  all.insert(all.end(), second.begin(), second.end());
  EXPECT_EQ(Actual(uri_), Expect(all)) << Actual(uri_);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT balance_minor FROM merchant_balances"), 0);

  // The outbox holds each event's coordinates and the refunded amounts; the
  // envelopes are rebuilt by the relay (outbox_relay_test checks them).
  pqxx::connection conn(uri_);
  pqxx::nontransaction nt(conn);
  auto events = nt.exec(
      "SELECT kafka_partition, kafka_offset, seq, op, customer_id, refunded_before_minor,"
      " refunded_after_minor, kafka_state, webhook_state FROM payments_outbox"
      " WHERE payment_id = 'pay_a' ORDER BY kafka_partition, kafka_offset, seq");
  ASSERT_EQ(events.size(), 4u);  // c, then u for each approved refund.
  std::vector<int64_t> offsets, before, after;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i][0].as<int>(), 0);
    offsets.push_back(events[i][1].as<int64_t>());
    EXPECT_EQ(events[i][2].as<int>(), i == 0 ? 0 : 1);
    EXPECT_EQ(events[i][3].as<std::string>(), i == 0 ? "c" : "u");
    EXPECT_EQ(events[i][4].as<std::string>(), "c1");
    EXPECT_EQ(events[i][7].as<std::string>(), "pending");
    EXPECT_EQ(events[i][8].as<std::string>(), "off");
    before.push_back(events[i][5].as<int64_t>());
    after.push_back(events[i][6].as<int64_t>());
  }
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 1, 2, 4}));  // The refunds' own coordinates.
  EXPECT_EQ(before, (std::vector<int64_t>{0, 0, 100, 300}));
  EXPECT_EQ(after, (std::vector<int64_t>{0, 100, 300, 1000}));
  // The refunds' own rows got their c events.
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox WHERE op = 'c'"), 5);
}

TEST_F(PaymentsSinkTaskTest, UnwritableRecordIsFailedPreconditionAndNothingIsWritten) {
  std::vector<PaymentConfirmation> in = {Confirmation("pay_a", "c1", "m1", 100),
                                         Confirmation("pay_bad", "c2", "m1", 0)};  // Approved 0.
  streams::Status s = PutAll(in, 0, std::nullopt);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments"), 0);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM sink_offsets"), 0);
  streams::ConsumedRecord garbage;
  garbage.topic = kTopic;
  garbage.value = std::string("\xff\xff\xff not protobuf", 17);
  EXPECT_EQ(task_->Validate(garbage).code(), StatusCode::kCorruption);
}

TEST_F(PaymentsSinkTaskTest, SerializationFailureFromAConcurrentTransactionIsRetried) {
  ASSERT_TRUE(PutAll({Confirmation("pay_a", "c1", "m1", 100)}, 0, std::nullopt).ok());
  {
    pqxx::connection admin(uri_);
    pqxx::nontransaction nt(admin);
    nt.exec("ALTER DATABASE " + uri_.substr(uri_.rfind('/') + 1) +
            " SET default_transaction_isolation = 'serializable'");
  }
  // New connections (as CockroachDB always does) run SERIALIZABLE. Batches
  // of one row are full: the retried statements are prepared ones.
  pool_ = std::make_unique<streams::connect::ConnectionPool>(uri_, 2);
  task_ = MakeTask(/*webhook=*/false, /*full_batch_rows=*/1);

  // Another transaction holds the balance row; the sink's upsert waits for it
  // and then fails with 40001 (its snapshot predates the other's commit).
  pqxx::connection other(uri_);
  pqxx::work txn(other);
  txn.exec(
      "UPDATE merchant_balances SET balance_minor = balance_minor + 1 WHERE merchant_id = 'm1'");
  std::thread committer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    txn.commit();
  });
  streams::Status s = PutAll({Confirmation("pay_b", "c2", "m1", 10)}, 1, 1);
  committer.join();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GE(Metric("payments_sink_database_retries_total", "40001"), 1);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT balance_minor FROM merchant_balances"), 111);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments"), 2);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT next_offset FROM sink_offsets"), 2);
}

// Inserts of full batches (full_batch_rows rows) go through prepared
// statements, other sizes through plain ones; the statement of balances,
// refunds and u events (arrays) is always prepared: the same rows, balances
// and events either way.
TEST_F(PaymentsSinkTaskTest, PreparedStatementsOfFullBatchesWriteTheSame) {
  pool_ = std::make_unique<streams::connect::ConnectionPool>(uri_, 1);
  task_ = MakeTask(/*webhook=*/false, /*full_batch_rows=*/2);
  PaymentConfirmation a = Confirmation("pay_a", "c1", "m1", 1000);
  PaymentConfirmation b = Confirmation("pay_b", "c2", "m2", 500);
  std::vector<std::vector<PaymentConfirmation>> batches = {
      {a, b},                                                           // Prepared insert.
      {Refund("ref_1", a, 100), Refund("ref_2", b, 500)},               // Prepared refunds too.
      {Refund("ref_3", a, 200), Confirmation("pay_c", "c3", "m1", 7)},  // Prepared again.
      {Confirmation("pay_d", "c4", "m1", 3)},                           // One row: plain insert.
      {Replay(a), Refund("ref_4", a, 700), Confirmation("pay_e", "c5", "m2", 9)}};
  std::vector<PaymentConfirmation> all;
  int64_t offset = 0;
  for (const auto& batch : batches) {
    std::optional<int64_t> expected;
    if (offset > 0) expected = offset;
    ASSERT_TRUE(PutAll(batch, offset, expected).ok());
    offset += static_cast<int64_t>(batch.size());
    all.insert(all.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(Actual(uri_), Expect(all)) << Actual(uri_);
  EXPECT_EQ(
      ScalarQuery(uri_, "SELECT refunded_amount_minor FROM payments WHERE payment_id = 'pay_a'"),
      1000);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox WHERE op = 'u'"), 4);
  EXPECT_EQ(ScalarQuery(uri_,
                        "SELECT refunded_after_minor FROM payments_outbox WHERE op = 'u'"
                        " AND kafka_offset = 8"),
            1000);
  auto lease = pool_->Acquire(std::chrono::seconds(1));
  ASSERT_TRUE(lease.ok()) << lease.status();
  pqxx::nontransaction nt(lease->connection());
  // The insert of two rows with its c events; balances, refunds and u events.
  EXPECT_EQ(nt.exec("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE"
                    " 'payments_sink_%'")[0][0]
                .as<int>(),
            2);
}

TEST_F(PaymentsSinkTaskTest, ConcurrentMigrationsApplyEachVersionOnce) {
  std::string fresh = FreshDatabase(std::getenv("PG_TEST_URI"), "s_concurrent_migrations");
  std::vector<std::thread> threads;
  std::vector<streams::Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      streams::connect::ConnectionPool pool(fresh, 1);
      prometheus::Registry registry;
      PaymentsSinkTask task(&pool, {}, registry, nullptr);
      results[i] = task.Migrate();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r;
  EXPECT_EQ(ScalarQuery(fresh, "SELECT count(*) FROM payments_sink_migrations"), 2);
  EXPECT_EQ(ScalarQuery(fresh, "SELECT count(*) FROM payments_outbox"), 0);
}

TEST_F(PaymentsSinkTaskTest, OutboxOffWritesNoEvents) {
  PaymentsSinkTaskOptions options;
  options.cdc_kafka = false;
  options.cdc_webhook = false;
  task_ = std::make_unique<PaymentsSinkTask>(pool_.get(), options, registry_, metrics_.get());
  ASSERT_TRUE(PutAll({Confirmation("pay_a", "c1", "m1", 100)}, 0, std::nullopt).ok());
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments_outbox"), 0);
  EXPECT_EQ(ScalarQuery(uri_, "SELECT count(*) FROM payments"), 1);
}

}  // namespace
}  // namespace payments_sink
