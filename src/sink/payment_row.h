// PaymentRow: a row of the `payments` table, made from a PaymentConfirmation
// (proto/payments/v1/payments.proto), and the Debezium-style CDC envelope of
// a change to it.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

#include "payments/v1/payments.pb.h"
#include "streams/record.h"
#include "streams/result.h"

namespace payments_sink {

struct PaymentRow {
  std::string payment_id;
  std::string idempotency_key;
  std::string customer_id;
  std::string merchant_id;
  std::string kind;  // PAYMENT, REFUND, UNSPECIFIED or UNKNOWN.
  int64_t amount_minor = 0;
  std::string currency;
  std::string decision;  // APPROVED or DECLINED.
  std::string decline_code;
  std::string decline_message;
  double fraud_score = 0;
  std::string refund_of;
  int64_t refunded_amount_minor = 0;
  // APPROVED, DECLINED; for a refunded PAYMENT PARTIALLY_REFUNDED or REFUNDED.
  std::string status;
  int64_t decided_at_ms = 0;
  std::string source_topic;  // Where paymentd read the request.
  int32_t source_partition = 0;
  int64_t source_offset = 0;
  int32_t confirmation_partition = 0;  // Where the sink read the confirmation.
  int64_t confirmation_offset = 0;
  friend bool operator==(const PaymentRow&, const PaymentRow&) = default;
};

// "PAYMENT", "REFUND", "UNSPECIFIED" (0), "UNKNOWN" (any other number).
std::string KindName(int kind);
// "APPROVED", "DECLINED", "" for anything else.
std::string DecisionName(int decision);

// Decodes a confirmation record. Errors: InvalidArgument (no value, empty
// payment_id, unknown decision), Corruption (not a PaymentConfirmation).
streams::Result<payments::v1::PaymentConfirmation> DecodeConfirmation(
    const streams::ConsumedRecord& record);

// The row of a (non-replay) confirmation read at `record`.
PaymentRow RowFromConfirmation(const payments::v1::PaymentConfirmation& c,
                               const streams::ConsumedRecord& record);

// The row as the column values of kPaymentColumns, as text parameters.
std::vector<std::string> RowParams(const PaymentRow& row);

// The row as a JSON object with the column names as keys.
nlohmann::json RowJson(const PaymentRow& row);

// The row read from the kPaymentColumnCount fields of `r` starting at field
// `first`, in the order of kPaymentColumns. Throws as pqxx::field::as (a NULL
// or unconvertible field).
PaymentRow RowFromFields(const pqxx::row& r, int first = 0);

// The row as it was (or is) when `refunded` of its amount had been refunded.
// The sink only ever changes refunded_amount_minor and status of a row (an
// approved REFUND of it), and status follows from the refunded amount: the
// decision while nothing is refunded, else RefundStatus. Every other column
// is written once with the row and never changed, so any later read of the
// row and a refunded amount give the row of that moment.
PaymentRow RowWithRefunded(PaymentRow row, int64_t refunded);

// Where a change event comes from (Debezium's "source" block).
struct ChangeSource {
  std::string connector_name;  // application.id.
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};

// The Debezium-style envelope {"before", "after", "op", "source", "ts_ms"}:
// op "c" (before null) or "u"; source {"connector", "name", "table":
// "payments", "topic", "partition", "offset"}.
std::string ChangeEnvelope(const std::optional<PaymentRow>& before, const PaymentRow& after,
                           const ChangeSource& source, int64_t ts_ms);

// The stable id of the `seq`-th change caused by the record at `source`:
// "<topic>-<partition>-<offset>-<seq>".
std::string EventId(const ChangeSource& source, int seq);

// Status of a PAYMENT after `refunded` of `amount` was refunded.
std::string RefundStatus(int64_t refunded, int64_t amount);

}  // namespace payments_sink
