// PaymentsSinkTask: the SinkTask of payments-sink. Each Put is one database
// transaction (retried whole on 40001 with backoff and jitter) that:
//   1. inserts one `payments` row per new payment_id (non-replay
//      confirmations, deduplicated within the statement; an existing row is
//      never changed: the first decision for a payment_id wins);
//   2. for each newly inserted APPROVED REFUND, adds its amount to the
//      refunded PAYMENT's refunded_amount_minor and sets its status
//      (PARTIALLY_REFUNDED / REFUNDED), found by (customer_id,
//      idempotency_key = refund_of);
//   3. adds to merchant_balances, per (merchant_id, currency), the newly
//      inserted APPROVED PAYMENTs minus APPROVED REFUNDs (one upsert, keys
//      deduplicated); so balance = sum over the rows, and a replay or a
//      second delivery never moves it;
//   4. when CDC is on, adds one outbox row per change (op c for an insert,
//      written by the statement of step 1; u for a refunded payment), keyed
//      by the confirmation's coordinates (partition, offset, seq: the stable
//      event id) and holding only what changed (the refunded amount before
//      and after); the relay rebuilds the envelope from the payments row;
//   5. moves the positions in sink_offsets with a compare-and-set.
// Replay confirmations (replay = true) are skipped: they only move positions.
//
// Thread safety: not thread-safe; used by the SinkRunner thread (or one
// benchmark thread). The pool is shared and thread-safe.
#pragma once

#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "streams/connect/connection_pool.h"
#include "streams/connect/sink_metrics.h"
#include "streams/connect/sink_offset_store.h"
#include "streams/connect/sink_task.h"
#include "streams/connect/sql_transaction.h"

namespace payments_sink {

struct PaymentsSinkTaskOptions {
  // The consumer group: names this sink's rows in sink_offsets.
  std::string group_id = "payments-sink";
  // Outbox rows get kafka_state / webhook_state 'pending' for the enabled
  // targets ('off' otherwise); with both off no outbox row is written.
  bool cdc_kafka = true;
  bool cdc_webhook = false;
  // Statements of exactly this many rows (at most 1000, the most rows of one
  // statement) are prepared once per connection, so that the server parses
  // and plans them once instead of per batch. main passes
  // sink.batch.max.records: a full batch's insert, most of a batch's cost,
  // is prepared. Other sizes are sent unprepared, so the server keeps at most
  // one prepared statement per kind and connection. 0: nothing is prepared.
  size_t full_batch_rows = 500;
  streams::connect::RetryPolicy retry;
  std::chrono::milliseconds acquire_timeout{2000};
};

class PaymentsSinkTask final : public streams::connect::SinkTask {
 public:
  // `pool` and `metrics` are borrowed. Task metrics are registered in
  // `registry`: payments_sink_rows_upserted_total{table},
  // payments_sink_replays_skipped_total, payments_sink_duplicate_decisions_total,
  // payments_sink_refunds_without_payment_total.
  PaymentsSinkTask(streams::connect::ConnectionPool* pool, PaymentsSinkTaskOptions options,
                   prometheus::Registry& registry, streams::connect::SinkMetrics* metrics);

  // Applies the schema migrations (safe with concurrent instances). Errors:
  // as ApplyMigrations, Unavailable when the database cannot be reached.
  streams::Status Migrate();

  streams::Result<std::map<streams::TopicPartition, streams::Offset>> LoadPositions(
      const std::vector<streams::TopicPartition>& partitions) override;
  streams::Status Validate(const streams::ConsumedRecord& record) override;
  streams::Status Put(const std::vector<const streams::ConsumedRecord*>& records,
                      const std::vector<streams::connect::PositionUpdate>& positions) override;

 private:
  enum class SqlKind {
    kInsertPayments,
    kInsertPaymentsAndEvents,  // With the c events in the outbox.
    kRefundPayments,
    kBalances,
    kInsertUpdateEvents,  // The u events.
  };
  // The SQL text of the `kind` statement of Put for `rows` rows.
  static std::string BuildSql(SqlKind kind, size_t rows);
  // BuildSql, kept for the next batches (a few texts at most).
  const std::string& Sql(SqlKind kind, size_t rows);
  // Runs the `kind` statement for `rows` rows with `params` in `txn`,
  // prepared on the connection when `rows` is a full batch.
  template <typename... Params>
  pqxx::result Exec(pqxx::work& txn, SqlKind kind, size_t rows, Params&&... params);

  streams::connect::ConnectionPool* pool_;
  PaymentsSinkTaskOptions options_;
  streams::connect::SinkMetrics* metrics_;
  streams::connect::SinkOffsetStore offsets_;
  prometheus::Family<prometheus::Counter>& rows_upserted_;
  prometheus::Counter& replays_skipped_;
  prometheus::Counter& duplicate_decisions_;
  prometheus::Counter& refunds_without_payment_;
  std::map<std::pair<SqlKind, size_t>, std::string> sql_;
};

}  // namespace payments_sink
