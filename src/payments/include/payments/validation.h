// Validation of a PaymentRequest: the checks that depend only on the request,
// its record key and the configuration (no state). Used by the topology and by
// payments-verify to re-check declines.
//
// Thread safety: pure functions; safe to call from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "payments/payments_config.h"
#include "payments/v1/payments.pb.h"

namespace payments {

// Why a request is declined.
struct Decline {
  // One of decline_code::k* (static storage).
  std::string_view code;
  // Human-readable reason; never contains a card number.
  std::string message;
  friend bool operator==(const Decline&, const Decline&) = default;
};

// Where a PAN was found: "record key", "metadata key", "metadata value of '<key>'"
// (the key is only named when it holds no PAN) or the field name ("customer_id", ...);
// std::nullopt when there is none. Order: record key, then the request's string
// fields in field-number order, then metadata entries sorted by key.
std::optional<std::string> FindPanField(const payments::v1::PaymentRequest& request,
                                        std::string_view record_key);

// The stateless checks, in this order (the first failing one is returned):
//   1. PAN_NOT_ALLOWED     a PAN anywhere (FindPanField)
//   2. MISSING_FIELD       idempotency_key, customer_id empty
//   3. KEY_MISMATCH        record_key != customer_id
//   4. FIELD_TOO_LONG      any string field / metadata key or value longer than
//                          string_max_length bytes; more than metadata_max_entries entries
//   5. INVALID_KIND        kind not PAYMENT or REFUND
//   6. MISSING_FIELD       merchant_id, currency empty; payment_method_token empty for a PAYMENT
//   7. REFUND_OF_REQUIRED  REFUND with an empty refund_of
//   8. INVALID_AMOUNT      amount_minor <= 0
//   9. AMOUNT_TOO_LARGE    amount_minor > max_amount_minor
//  10. UNKNOWN_CURRENCY    not an active ISO 4217 alphabetic code
// Returns std::nullopt when the request passes them all.
std::optional<Decline> ValidateRequest(const payments::v1::PaymentRequest& request,
                                       std::string_view record_key, const PaymentsConfig& config);

// True when `code` is an active ISO 4217 alphabetic currency code (upper case,
// e.g. "EUR"; funds codes such as "XAU" or "USN" included, withdrawn ones such as "DEM" not).
bool IsActiveCurrency(std::string_view code);

}  // namespace payments
