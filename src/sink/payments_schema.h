// The payments-sink schema (PostgreSQL and CockroachDB), as versioned
// migrations applied at start by streams::connect::ApplyMigrations:
//
//   payments           one row per decided request, keyed by payment_id
//   merchant_balances  approved payments minus approved refunds per
//                      (merchant_id, currency)
//   sink_offsets       the sink's Kafka positions (SinkOffsetStore)
//   payments_outbox    CDC events (transactional outbox)
//   webhook_endpoints  webhook URLs disabled by a 410 answer
//
// Thread safety: constant data.
#pragma once

#include <string_view>
#include <vector>

#include "streams/connect/migrations.h"

namespace payments_sink {

inline constexpr std::string_view kMigrationsTable = "payments_sink_migrations";
inline constexpr std::string_view kOffsetsTable = "sink_offsets";
inline constexpr std::string_view kOutboxTable = "payments_outbox";

// The columns of `payments`, in the order of PaymentRow's fields and of
// every SELECT / RETURNING list of the sink.
inline constexpr std::string_view kPaymentColumns =
    "payment_id, idempotency_key, customer_id, merchant_id, kind, amount_minor, currency, "
    "decision, decline_code, decline_message, fraud_score, refund_of, refunded_amount_minor, "
    "status, decided_at_ms, source_topic, source_partition, source_offset, "
    "confirmation_partition, confirmation_offset";
inline constexpr int kPaymentColumnCount = 20;

// Every migration, oldest first.
const std::vector<streams::connect::Migration>& SinkMigrations();

}  // namespace payments_sink
