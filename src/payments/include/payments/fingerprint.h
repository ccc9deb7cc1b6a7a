// Deterministic identities of requests: the idempotency fingerprint and the
// payment id.
//
// Thread safety: pure functions; safe to call from any thread.
#pragma once

#include <string>
#include <string_view>

#include "payments/v1/payments.pb.h"

namespace payments {

// SHA-256 (32 raw bytes) of a canonical encoding of the request's parameters:
// a version tag, then merchant_id, kind, amount_minor, currency, refund_of,
// payment_method_token and the metadata entries sorted by key, every string
// length-prefixed (8-byte big-endian) so no two different requests share an
// encoding. customer_id and idempotency_key are not part of it (they are the
// idempotency key itself); created_at_ms is excluded on purpose: a client
// retry re-stamps the request with a new creation time but asks for the same
// thing, and must be replayed rather than declined as IDEMPOTENCY_KEY_REUSED.
std::string RequestFingerprint(const payments::v1::PaymentRequest& request);

// The unambiguous encoding of a (customer_id, idempotency_key) pair: byte
// 0xFE (the layout version; never the first byte of a UTF-8 string, so it never
// equals a key of the previous layout, customer_id '\0' idempotency_key), then
// customer_id and idempotency_key, each after its length as 4 bytes big-endian.
// The key of the idempotency and payments stores, and the input of PaymentIdFor.
std::string DecisionKey(std::string_view customer_id, std::string_view idempotency_key);

// "pay_" + the first 96 bits of SHA-256(DecisionKey(customer_id,
// idempotency_key)) as 24 letters 'a'..'p' (4 bits each). Deterministic: the
// same pair always gets the same id, and different pairs get different
// inputs. Digit-free, so an id never looks like a card number.
std::string PaymentIdFor(std::string_view customer_id, std::string_view idempotency_key);

// Lower-case hex of SHA-256(data).
std::string Sha256Hex(std::string_view data);

}  // namespace payments
