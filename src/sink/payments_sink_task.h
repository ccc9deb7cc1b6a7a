// PaymentsSinkTask: the SinkTask of payments-sink. Each Put is one database
// transaction (retried whole on 40001 with backoff and jitter) of three
// statements (the second once per 1000 new rows):
//   1. moves the positions in sink_offsets with a compare-and-set, first, so
//      that a transaction that is not the current writer of its partitions
//      (a zombie, or a retry after a commit whose outcome was unknown) ends
//      Fenced before it writes anything;
//   2. inserts one `payments` row per new payment_id (non-replay
//      confirmations, deduplicated within the statement; an existing row is
//      never changed: the first decision for a payment_id wins) and, when
//      CDC is on, the op c outbox row of each inserted row;
//   3. adds to merchant_balances, per (merchant_id, currency), the newly
//      inserted APPROVED PAYMENTs minus APPROVED REFUNDs (keys
//      deduplicated), so balance = sum over the rows, and a replay or a
//      second delivery never moves it; for the newly inserted APPROVED
//      REFUNDs, adds their amounts to the refunded PAYMENT's
//      refunded_amount_minor and sets its status (PARTIALLY_REFUNDED /
//      REFUNDED), found by (customer_id, idempotency_key = refund_of), one
//      update per payment; and, when CDC is on, writes the op u outbox row of
//      each refund (skipped when there is neither a balance change nor a
//      refund).
// Outbox rows are keyed by the confirmation's coordinates (partition, offset,
// seq: the stable event id) and hold only what changed (the refunded amount
// before and after); the relay rebuilds the envelope from the payments row.
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
  // Inserts of exactly this many rows (at most 1000, the most rows of one
  // statement) are prepared once per connection, so that the server parses
  // and plans them once instead of per batch. main passes
  // sink.batch.max.records: a full batch's insert, most of a batch's cost,
  // is prepared. Inserts of other sizes are sent unprepared, so the server
  // keeps at most one prepared insert per kind and connection. The statement
  // of balances and refunds takes arrays, one text for every size: it is
  // always prepared. 0: nothing is prepared.
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
    kInsertPaymentsAndEvents,  // With the c events.
    kApply,                    // Balances and refunded payments.
    kApplyAndEvents,           // With the u events.
  };
  // The SQL text of the `kind` statement of Put for `rows` rows (inserts;
  // the apply statements take arrays and ignore `rows`).
  static std::string BuildSql(SqlKind kind, size_t rows);
  // BuildSql, kept for the next batches (a few texts at most).
  const std::string& Sql(SqlKind kind, size_t rows);
  // Runs the `kind` statement for `rows` rows with `params` in `txn`,
  // prepared on the connection when it is an apply statement or `rows` is a
  // full batch (see PaymentsSinkTaskOptions::full_batch_rows).
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
