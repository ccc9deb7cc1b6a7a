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
//   -- identity (ValidateIdentity; the topology runs these before the idempotency lookup):
//   2. MISSING_FIELD       idempotency_key, customer_id empty
//   3. INVALID_IDENTIFIER  customer_id, idempotency_key hold a control character
//   4. KEY_MISMATCH        record_key != customer_id
//   -- fields (the topology runs these after the idempotency lookup):
//   5. FIELD_TOO_LONG      any string field / metadata key or value longer than
//                          string_max_length bytes; more than metadata_max_entries entries
//   6. INVALID_IDENTIFIER  merchant_id, refund_of hold a control character
//   7. INVALID_KIND        kind not PAYMENT or REFUND
//   8. MISSING_FIELD       merchant_id, currency empty; payment_method_token empty for a PAYMENT
//   9. REFUND_OF_REQUIRED  REFUND with an empty refund_of
//  10. INVALID_AMOUNT      amount_minor <= 0
//  11. AMOUNT_TOO_LARGE    amount_minor > max_amount_minor
//  12. UNKNOWN_CURRENCY    not an active ISO 4217 alphabetic code
// Returns std::nullopt when the request passes them all.
std::optional<Decline> ValidateRequest(const payments::v1::PaymentRequest& request,
                                       std::string_view record_key, const PaymentsConfig& config);

// Checks 2-4 of ValidateRequest: whether customer_id and idempotency_key can
// name the request's stored decision. std::nullopt when they can. Does not
// look for PANs (callers check FindPanField first).
std::optional<Decline> ValidateIdentity(const payments::v1::PaymentRequest& request,
                                        std::string_view record_key);

// True when `text` holds a control character: U+0000-U+001F, U+007F, or
// U+0080-U+009F (UTF-8 0xC2 0x80-0x9F).
bool HasControlCharacter(std::string_view text);

// True when `code` is an active ISO 4217 alphabetic currency code (upper case,
// e.g. "EUR"; funds codes such as "XAU" or "USN" included, withdrawn ones such as "DEM" not).
bool IsActiveCurrency(std::string_view code);

}  // namespace payments
