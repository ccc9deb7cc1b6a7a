#include "sink/payment_row.h"

#include <charconv>

namespace payments_sink {

std::string KindName(int kind) {
  switch (kind) {
    case payments::v1::PAYMENT:
      return "PAYMENT";
    case payments::v1::REFUND:
      return "REFUND";
    case payments::v1::PAYMENT_KIND_UNSPECIFIED:
      return "UNSPECIFIED";
    default:
      return "UNKNOWN";
  }
}

std::string DecisionName(int decision) {
  switch (decision) {
    case payments::v1::APPROVED:
      return "APPROVED";
    case payments::v1::DECLINED:
      return "DECLINED";
    default:
      return "";
  }
}

streams::Result<payments::v1::PaymentConfirmation> DecodeConfirmation(
    const streams::ConsumedRecord& record) {
  if (!record.value) return streams::Status::InvalidArgument("record has no value (tombstone)");
  payments::v1::PaymentConfirmation c;
  if (!c.ParseFromString(*record.value)) {
    return streams::Status::Corruption("value is not a payments.v1.PaymentConfirmation (" +
                                       std::to_string(record.value->size()) + " bytes)");
  }
  if (c.payment_id().empty()) {
    return streams::Status::InvalidArgument("confirmation without payment_id");
  }
  if (DecisionName(c.decision()).empty()) {
    return streams::Status::InvalidArgument("confirmation " + c.payment_id() +
                                            " has no known decision (" +
                                            std::to_string(c.decision()) + ")");
  }
  return c;
}

PaymentRow RowFromConfirmation(const payments::v1::PaymentConfirmation& c,
                               const streams::ConsumedRecord& record) {
  PaymentRow row;
  row.payment_id = c.payment_id();
  row.idempotency_key = c.idempotency_key();
  row.customer_id = c.customer_id();
  row.merchant_id = c.merchant_id();
  row.kind = KindName(c.kind());
  row.amount_minor = c.amount_minor();
  row.currency = c.currency();
  row.decision = DecisionName(c.decision());
  row.decline_code = c.decline_code();
  row.decline_message = c.decline_message();
  row.fraud_score = c.fraud_score();
  row.refund_of = c.refund_of();
  row.refunded_amount_minor = 0;
  row.status = row.decision;
  row.decided_at_ms = c.decided_at_ms();
  row.source_topic = c.source_topic();
  row.source_partition = c.source_partition();
  row.source_offset = c.source_offset();
  row.confirmation_partition = record.partition.value();
  row.confirmation_offset = record.offset.value();
  return row;
}

namespace {

std::string DoubleText(double v) {
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, ptr) : std::to_string(v);
}

}  // namespace

std::vector<std::string> RowParams(const PaymentRow& r) {
  return {r.payment_id,
          r.idempotency_key,
          r.customer_id,
          r.merchant_id,
          r.kind,
          std::to_string(r.amount_minor),
          r.currency,
          r.decision,
          r.decline_code,
          r.decline_message,
          DoubleText(r.fraud_score),
          r.refund_of,
          std::to_string(r.refunded_amount_minor),
          r.status,
          std::to_string(r.decided_at_ms),
          r.source_topic,
          std::to_string(r.source_partition),
          std::to_string(r.source_offset),
          std::to_string(r.confirmation_partition),
          std::to_string(r.confirmation_offset)};
}

nlohmann::json RowJson(const PaymentRow& r) {
  return nlohmann::json{{"payment_id", r.payment_id},
                        {"idempotency_key", r.idempotency_key},
                        {"customer_id", r.customer_id},
                        {"merchant_id", r.merchant_id},
                        {"kind", r.kind},
                        {"amount_minor", r.amount_minor},
                        {"currency", r.currency},
                        {"decision", r.decision},
                        {"decline_code", r.decline_code},
                        {"decline_message", r.decline_message},
                        {"fraud_score", r.fraud_score},
                        {"refund_of", r.refund_of},
                        {"refunded_amount_minor", r.refunded_amount_minor},
                        {"status", r.status},
                        {"decided_at_ms", r.decided_at_ms},
                        {"source_topic", r.source_topic},
                        {"source_partition", r.source_partition},
                        {"source_offset", r.source_offset},
                        {"confirmation_partition", r.confirmation_partition},
                        {"confirmation_offset", r.confirmation_offset}};
}

PaymentRow RowFromFields(const pqxx::row& r, int first) {
  PaymentRow row;
  auto f = [&](int i) { return r[first + i]; };
  row.payment_id = f(0).as<std::string>();
  row.idempotency_key = f(1).as<std::string>();
  row.customer_id = f(2).as<std::string>();
  row.merchant_id = f(3).as<std::string>();
  row.kind = f(4).as<std::string>();
  row.amount_minor = f(5).as<int64_t>();
  row.currency = f(6).as<std::string>();
  row.decision = f(7).as<std::string>();
  row.decline_code = f(8).as<std::string>();
  row.decline_message = f(9).as<std::string>();
  row.fraud_score = f(10).as<double>();
  row.refund_of = f(11).as<std::string>();
  row.refunded_amount_minor = f(12).as<int64_t>();
  row.status = f(13).as<std::string>();
  row.decided_at_ms = f(14).as<int64_t>();
  row.source_topic = f(15).as<std::string>();
  row.source_partition = f(16).as<int32_t>();
  row.source_offset = f(17).as<int64_t>();
  row.confirmation_partition = f(18).as<int32_t>();
  row.confirmation_offset = f(19).as<int64_t>();
  return row;
}

PaymentRow RowWithRefunded(PaymentRow row, int64_t refunded) {
  row.refunded_amount_minor = refunded;
  row.status = refunded > 0 ? RefundStatus(refunded, row.amount_minor) : row.decision;
  return row;
}

std::string ChangeEnvelope(const std::optional<PaymentRow>& before, const PaymentRow& after,
                           const ChangeSource& source, int64_t ts_ms) {
  nlohmann::json envelope{{"before", before ? RowJson(*before) : nlohmann::json(nullptr)},
                          {"after", RowJson(after)},
                          {"op", before ? "u" : "c"},
                          {"source",
                           {{"connector", "payments-sink"},
                            {"name", source.connector_name},
                            {"table", "payments"},
                            {"topic", source.topic},
                            {"partition", source.partition},
                            {"offset", source.offset}}},
                          {"ts_ms", ts_ms}};
  return envelope.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string EventId(const ChangeSource& source, int seq) {
  return source.topic + "-" + std::to_string(source.partition) + "-" +
         std::to_string(source.offset) + "-" + std::to_string(seq);
}

std::string RefundStatus(int64_t refunded, int64_t amount) {
  if (refunded <= 0) return "APPROVED";
  return refunded >= amount ? "REFUNDED" : "PARTIALLY_REFUNDED";
}

}  // namespace payments_sink
