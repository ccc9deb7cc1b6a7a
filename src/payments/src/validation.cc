#include "payments/validation.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "payments/decline_codes.h"
#include "payments/pan.h"
#include "validation_internal.h"

namespace payments {
namespace {

using payments::v1::PaymentRequest;

// A prefix of `s` of at most `max_bytes` that does not split a UTF-8 character.
std::string TruncateUtf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

// Metadata entries sorted by key (protobuf maps have no defined order).
std::vector<std::pair<std::string_view, std::string_view>> SortedMetadata(
    const PaymentRequest& request) {
  std::vector<std::pair<std::string_view, std::string_view>> entries;
  entries.reserve(request.metadata().size());
  for (const auto& [k, v] : request.metadata()) entries.emplace_back(k, v);
  std::sort(entries.begin(), entries.end());
  return entries;
}

Decline Make(std::string_view code, std::string message) {
  return Decline{code, std::move(message)};
}

}  // namespace

std::optional<std::string> FindPanField(const PaymentRequest& request,
                                        std::string_view record_key) {
  if (ContainsPan(record_key)) return std::string("record key");
  const std::pair<std::string_view, const std::string*> fields[] = {
      {"idempotency_key", &request.idempotency_key()},
      {"customer_id", &request.customer_id()},
      {"merchant_id", &request.merchant_id()},
      {"currency", &request.currency()},
      {"refund_of", &request.refund_of()},
      {"payment_method_token", &request.payment_method_token()},
  };
  for (const auto& [name, value] : fields) {
    if (ContainsPan(*value)) return std::string(name);
  }
  for (const auto& [key, value] : SortedMetadata(request)) {
    if (ContainsPan(key)) return std::string("metadata key");
    if (ContainsPan(value)) return "metadata value of '" + TruncateUtf8(key, 64) + "'";
  }
  return std::nullopt;
}

std::optional<Decline> ValidateRequest(const PaymentRequest& request, std::string_view record_key,
                                       const PaymentsConfig& config) {
  if (auto field = FindPanField(request, record_key)) {
    return Make(decline_code::kPanNotAllowed, "a card number was found in the " + *field +
                                                  "; send a payment_method_token instead");
  }
  if (auto decline = ValidateIdentity(request, record_key)) return decline;
  return internal::ValidateFields(request, config);
}

bool HasControlCharacter(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) return true;
    if (c == 0xC2 && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + 1]);
      if (next >= 0x80 && next <= 0x9F) return true;
    }
  }
  return false;
}

std::optional<Decline> ValidateIdentity(const PaymentRequest& request,
                                        std::string_view record_key) {
  if (request.idempotency_key().empty()) {
    return Make(decline_code::kMissingField, "idempotency_key is required");
  }
  if (request.customer_id().empty()) {
    return Make(decline_code::kMissingField, "customer_id is required");
  }
  if (HasControlCharacter(request.customer_id())) {
    return Make(decline_code::kInvalidIdentifier, "customer_id contains a control character");
  }
  if (HasControlCharacter(request.idempotency_key())) {
    return Make(decline_code::kInvalidIdentifier, "idempotency_key contains a control character");
  }
  if (record_key != request.customer_id()) {
    return Make(decline_code::kKeyMismatch,
                "the record key must equal customer_id (requests are partitioned by customer)");
  }
  return std::nullopt;
}

namespace internal {

std::optional<Decline> ValidateFields(const PaymentRequest& request,
                                      const PaymentsConfig& config) {
  const auto limit = static_cast<size_t>(config.string_max_length);
  const std::pair<std::string_view, const std::string*> fields[] = {
      {"idempotency_key", &request.idempotency_key()},
      {"customer_id", &request.customer_id()},
      {"merchant_id", &request.merchant_id()},
      {"currency", &request.currency()},
      {"refund_of", &request.refund_of()},
      {"payment_method_token", &request.payment_method_token()},
  };
  for (const auto& [name, value] : fields) {
    if (value->size() > limit) {
      return Make(decline_code::kFieldTooLong,
                  std::string(name) + " is " + std::to_string(value->size()) +
                      " bytes long; the limit is " + std::to_string(limit));
    }
  }
  if (static_cast<int64_t>(request.metadata().size()) > config.metadata_max_entries) {
    return Make(decline_code::kFieldTooLong,
                "metadata has " + std::to_string(request.metadata().size()) +
                    " entries; the limit is " + std::to_string(config.metadata_max_entries));
  }
  for (const auto& [key, value] : SortedMetadata(request)) {
    if (key.size() > limit) {
      return Make(decline_code::kFieldTooLong, "a metadata key is " + std::to_string(key.size()) +
                                                   " bytes long; the limit is " +
                                                   std::to_string(limit));
    }
    if (value.size() > limit) {
      return Make(decline_code::kFieldTooLong, "metadata value of '" + std::string(key) + "' is " +
                                                   std::to_string(value.size()) +
                                                   " bytes long; the limit is " +
                                                   std::to_string(limit));
    }
  }

  if (HasControlCharacter(request.merchant_id())) {
    return Make(decline_code::kInvalidIdentifier, "merchant_id contains a control character");
  }
  if (HasControlCharacter(request.refund_of())) {
    return Make(decline_code::kInvalidIdentifier, "refund_of contains a control character");
  }

  const bool is_payment = request.kind() == payments::v1::PAYMENT;
  const bool is_refund = request.kind() == payments::v1::REFUND;
  if (!is_payment && !is_refund) {
    return Make(decline_code::kInvalidKind,
                "kind must be PAYMENT or REFUND, got " + std::to_string(request.kind()));
  }
  if (request.merchant_id().empty()) {
    return Make(decline_code::kMissingField, "merchant_id is required");
  }
  if (request.currency().empty()) {
    return Make(decline_code::kMissingField, "currency is required");
  }
  if (is_payment && request.payment_method_token().empty()) {
    return Make(decline_code::kMissingField, "payment_method_token is required for a PAYMENT");
  }
  if (is_refund && request.refund_of().empty()) {
    return Make(decline_code::kRefundOfRequired,
                "a REFUND must name the refunded payment's idempotency key in refund_of");
  }
  if (request.amount_minor() <= 0) {
    return Make(decline_code::kInvalidAmount,
                "amount_minor must be positive, got " + std::to_string(request.amount_minor()));
  }
  if (request.amount_minor() > config.max_amount_minor) {
    return Make(decline_code::kAmountTooLarge,
                "amount_minor " + std::to_string(request.amount_minor()) +
                    " is above the maximum of " + std::to_string(config.max_amount_minor));
  }
  if (!IsActiveCurrency(request.currency())) {
    return Make(decline_code::kUnknownCurrency,
                "currency '" + request.currency() +
                    "' is not an active ISO 4217 code (upper-case, e.g. EUR)");
  }
  return std::nullopt;
}

}  // namespace internal
}  // namespace payments
