// Decline codes: the stable, machine-readable reasons a payment request is
// declined (PaymentConfirmation.decline_code). Codes are part of the public
// contract: a code is never renamed or reused; new codes may be added.
//
// Thread safety: compile-time constants; safe to use from any thread.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace payments {

namespace decline_code {
// A required field is empty; the decline message names the field.
inline constexpr std::string_view kMissingField = "MISSING_FIELD";
// kind is PAYMENT_KIND_UNSPECIFIED or a value this version does not know.
inline constexpr std::string_view kInvalidKind = "INVALID_KIND";
// amount_minor <= 0.
inline constexpr std::string_view kInvalidAmount = "INVALID_AMOUNT";
// amount_minor > payments.max.amount.minor.
inline constexpr std::string_view kAmountTooLarge = "AMOUNT_TOO_LARGE";
// currency is not an active ISO 4217 alphabetic code.
inline constexpr std::string_view kUnknownCurrency = "UNKNOWN_CURRENCY";
// A string field, metadata key or value is too long, or there are too many metadata entries.
inline constexpr std::string_view kFieldTooLong = "FIELD_TOO_LONG";
// A REFUND without refund_of.
inline constexpr std::string_view kRefundOfRequired = "REFUND_OF_REQUIRED";
// The record key differs from customer_id.
inline constexpr std::string_view kKeyMismatch = "KEY_MISMATCH";
// Something that looks like a card number (PAN) was found in the request or its key.
inline constexpr std::string_view kPanNotAllowed = "PAN_NOT_ALLOWED";
// The idempotency key was already used for a request with different parameters.
inline constexpr std::string_view kIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED";
// customer_id, idempotency_key, merchant_id or refund_of holds a control character.
inline constexpr std::string_view kInvalidIdentifier = "INVALID_IDENTIFIER";
// The record timestamp is negative (none set) or after 9999-12-31.
inline constexpr std::string_view kTimestampInvalid = "TIMESTAMP_INVALID";
// The record timestamp is more than payments.max.clock.skew.ms ahead of stream time and clock.
inline constexpr std::string_view kTimestampTooFarAhead = "TIMESTAMP_TOO_FAR_AHEAD";
// The customer's token bucket is empty.
inline constexpr std::string_view kRateLimited = "RATE_LIMITED";
// The rolling 24 h approved amount of the customer in this currency would exceed the limit.
inline constexpr std::string_view kAmountLimitExceeded = "AMOUNT_LIMIT_EXCEEDED";
// The fraud score is above payments.fraud.threshold.
inline constexpr std::string_view kFraudSuspected = "FRAUD_SUSPECTED";
// A REFUND of a payment that does not exist for this customer (or is no longer refundable).
inline constexpr std::string_view kUnknownPayment = "UNKNOWN_PAYMENT";
// A REFUND of a payment that was declined.
inline constexpr std::string_view kPaymentNotApproved = "PAYMENT_NOT_APPROVED";
// A REFUND in a currency other than the payment's.
inline constexpr std::string_view kRefundCurrencyMismatch = "REFUND_CURRENCY_MISMATCH";
// A REFUND that would make the refunded total exceed the payment's amount.
inline constexpr std::string_view kRefundExceedsPayment = "REFUND_EXCEEDS_PAYMENT";
}  // namespace decline_code

struct DeclineCodeInfo {
  std::string_view code;
  std::string_view description;
};

// Every decline code with its meaning, in the order the checks run (used to
// generate the README table and by tools that list codes).
inline constexpr std::array<DeclineCodeInfo, 20> kDeclineCodes = {{
    {decline_code::kPanNotAllowed,
     "A card number (13-19 digits passing the Luhn check; groups of digits may be separated by "
     "up to 3 spaces, tabs, dashes, dots, slashes or underscores, and a card number of a major "
     "network may be glued to an expiry (MMYY) or CVV) was found in a string field, a metadata "
     "key or value, or the record key. The confirmation is redacted and nothing is stored."},
    {decline_code::kMissingField,
     "A required field is empty (idempotency_key, customer_id, merchant_id, currency; "
     "payment_method_token for a PAYMENT). The message names the field."},
    {decline_code::kInvalidIdentifier,
     "customer_id, idempotency_key, merchant_id or refund_of contains a control character "
     "(U+0000-U+001F, U+007F-U+009F). The message names the field."},
    {decline_code::kKeyMismatch,
     "The record key is not the customer_id: the customer's state would be split across "
     "partitions."},
    {decline_code::kIdempotencyKeyReused,
     "The (customer_id, idempotency_key) pair is in use: its stored decision was made for a "
     "request with different parameters, or it names an approved PAYMENT that is still "
     "refundable. The original decision is unchanged."},
    {decline_code::kTimestampInvalid,
     "The record timestamp is negative (the producer set none) or after 9999-12-31 (e.g. "
     "microseconds). Nothing is stored; the confirmation carries the partition's stream time."},
    {decline_code::kTimestampTooFarAhead,
     "The record timestamp is more than payments.max.clock.skew.ms ahead of both the "
     "partition's stream time and the processing host's clock. Stream time does not move, "
     "nothing is stored; the confirmation carries the stream time."},
    {decline_code::kFieldTooLong,
     "A string field, metadata key or metadata value is longer than "
     "payments.string.max.length bytes, or there are more than payments.metadata.max.entries "
     "metadata entries."},
    {decline_code::kInvalidKind, "kind is PAYMENT_KIND_UNSPECIFIED or unknown."},
    {decline_code::kRefundOfRequired, "A REFUND without refund_of."},
    {decline_code::kInvalidAmount, "amount_minor is zero or negative."},
    {decline_code::kAmountTooLarge, "amount_minor is above payments.max.amount.minor."},
    {decline_code::kUnknownCurrency, "currency is not an active ISO 4217 alphabetic code."},
    {decline_code::kUnknownPayment,
     "REFUND: no payment with idempotency key refund_of exists for this customer, or it is "
     "older than payments.refund.window.ms."},
    {decline_code::kPaymentNotApproved, "REFUND: the refunded payment was declined."},
    {decline_code::kRefundCurrencyMismatch,
     "REFUND: the currency differs from the refunded payment's currency."},
    {decline_code::kRefundExceedsPayment,
     "REFUND: the already refunded amount plus this amount exceeds the payment's amount."},
    {decline_code::kRateLimited,
     "PAYMENT: the customer's token bucket (payments.rate.limit.per.minute, "
     "payments.rate.limit.burst, on event time) is empty. Not stored: a retry is decided "
     "again."},
    {decline_code::kAmountLimitExceeded,
     "PAYMENT: the customer's approved amount in this currency over the last 24 h of event "
     "time plus this amount would exceed payments.daily.amount.limit.minor."},
    {decline_code::kFraudSuspected, "PAYMENT: the fraud score is above payments.fraud.threshold."},
}};

// Returns the description of `code`, or std::nullopt for an unknown code.
std::optional<std::string_view> DescribeDeclineCode(std::string_view code);

}  // namespace payments
