#include "sink/payments_schema.h"

namespace payments_sink {

const std::vector<streams::connect::Migration>& SinkMigrations() {
  static const auto* migrations = new std::vector<streams::connect::Migration>{
      {1,
       "payments, merchant_balances, sink_offsets",
       {
           "CREATE TABLE IF NOT EXISTS payments ("
           " payment_id TEXT PRIMARY KEY,"
           " idempotency_key TEXT NOT NULL,"
           " customer_id TEXT NOT NULL,"
           " merchant_id TEXT NOT NULL,"
           " kind TEXT NOT NULL,"
           " amount_minor INT8 NOT NULL,"
           " currency TEXT NOT NULL,"
           " decision TEXT NOT NULL,"
           " decline_code TEXT NOT NULL,"
           " decline_message TEXT NOT NULL,"
           " fraud_score FLOAT8 NOT NULL,"
           " refund_of TEXT NOT NULL,"
           " refunded_amount_minor INT8 NOT NULL DEFAULT 0,"
           " status TEXT NOT NULL,"
           " decided_at_ms INT8 NOT NULL,"
           " source_topic TEXT NOT NULL,"
           " source_partition INT4 NOT NULL,"
           " source_offset INT8 NOT NULL,"
           " confirmation_partition INT4 NOT NULL,"
           " confirmation_offset INT8 NOT NULL,"
           " CONSTRAINT payments_payment_id_not_empty CHECK (payment_id <> ''),"
           " CONSTRAINT payments_decision_known CHECK (decision IN ('APPROVED', 'DECLINED')),"
           " CONSTRAINT payments_approved_amount_positive"
           "   CHECK (decision <> 'APPROVED' OR amount_minor > 0),"
           // A declined request may carry any amount (INVALID_AMOUNT declines
           // negative ones); only approved payments are ever refunded.
           " CONSTRAINT payments_refunded_within_amount CHECK (refunded_amount_minor >= 0 AND"
           "   refunded_amount_minor <= GREATEST(amount_minor, 0)))",
           "CREATE INDEX IF NOT EXISTS payments_customer_idempotency"
           " ON payments (customer_id, idempotency_key)",
           "CREATE TABLE IF NOT EXISTS merchant_balances ("
           " merchant_id TEXT NOT NULL,"
           " currency TEXT NOT NULL,"
           " balance_minor INT8 NOT NULL,"
           " PRIMARY KEY (merchant_id, currency))",
           "CREATE TABLE IF NOT EXISTS sink_offsets ("
           " sink_name TEXT NOT NULL, topic TEXT NOT NULL, kafka_partition INT NOT NULL,"
           " next_offset BIGINT NOT NULL,"
           " PRIMARY KEY (sink_name, topic, kafka_partition))",
       }},
      {2,
       "payments_outbox, webhook_endpoints",
       {
           // One row per change event, keyed by its coordinates: the
           // confirmation (sink topic partition and offset) that caused it
           // and seq (0: the new row, op c; 1: the refunded payment, op u).
           // It holds only what changed, so rows stay small: the relay
           // rebuilds the envelope from the payments row (whose other
           // columns never change) and the refunded amounts
           // (RowWithRefunded). refunded_before_minor is 0 for op c (the
           // envelope has no "before").
           "CREATE TABLE IF NOT EXISTS payments_outbox ("
           " kafka_partition INT4 NOT NULL,"
           " kafka_offset INT8 NOT NULL,"
           " seq INT4 NOT NULL,"
           " customer_id TEXT NOT NULL,"
           " payment_id TEXT NOT NULL,"
           " op TEXT NOT NULL,"
           " refunded_before_minor INT8 NOT NULL,"
           " refunded_after_minor INT8 NOT NULL,"
           " created_at_ms INT8 NOT NULL,"
           " kafka_state TEXT NOT NULL,"
           " webhook_state TEXT NOT NULL,"
           " webhook_attempts INT4 NOT NULL DEFAULT 0,"
           " webhook_next_attempt_ms INT8 NOT NULL DEFAULT 0,"
           " webhook_last_error TEXT NOT NULL DEFAULT '',"
           " done_at_ms INT8,"
           " PRIMARY KEY (kafka_partition, kafka_offset, seq))",
           "CREATE TABLE IF NOT EXISTS webhook_endpoints ("
           " url TEXT PRIMARY KEY, disabled_at_ms INT8 NOT NULL, reason TEXT NOT NULL)",
       }},
  };
  return *migrations;
}

}  // namespace payments_sink
