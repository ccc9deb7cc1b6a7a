// PaymentsConfig: the settings of the payment decision topology, read from
// "payments.*" properties.
//
// Thread safety: a plain value; a const PaymentsConfig may be shared.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "streams/result.h"
#include "streams/status.h"

namespace payments {

// Property names.
inline constexpr std::string_view kRequestsTopicKey = "payments.requests.topic";
inline constexpr std::string_view kConfirmationsTopicKey = "payments.confirmations.topic";
inline constexpr std::string_view kMaxAmountMinorKey = "payments.max.amount.minor";
inline constexpr std::string_view kIdempotencyRetentionMsKey = "payments.idempotency.retention.ms";
inline constexpr std::string_view kRateLimitPerMinuteKey = "payments.rate.limit.per.minute";
inline constexpr std::string_view kRateLimitBurstKey = "payments.rate.limit.burst";
inline constexpr std::string_view kDailyAmountLimitMinorKey = "payments.daily.amount.limit.minor";
inline constexpr std::string_view kFraudThresholdKey = "payments.fraud.threshold";
inline constexpr std::string_view kRefundWindowMsKey = "payments.refund.window.ms";
inline constexpr std::string_view kStringMaxLengthKey = "payments.string.max.length";
inline constexpr std::string_view kMetadataMaxEntriesKey = "payments.metadata.max.entries";
inline constexpr std::string_view kMaxClockSkewMsKey = "payments.max.clock.skew.ms";
inline constexpr std::string_view kCustomerRetentionMsKey = "payments.customer.retention.ms";

// Smallest payments.customer.retention.ms: twice the rolling 24 h window.
inline constexpr int64_t kMinCustomerRetentionMs = 2LL * 24 * 60 * 60 * 1000;

// Every property PaymentsConfig reads, with its default (as a property string)
// and a description; for the daemon's config registration and the README.
struct PaymentsConfigKeyInfo {
  std::string_view key;
  std::string_view default_value;
  std::string_view description;
};
inline constexpr std::array<PaymentsConfigKeyInfo, 13> kPaymentsConfigKeys = {{
    {kRequestsTopicKey, "payments.requests",
     "Topic of PaymentRequest records (key = customer_id)."},
    {kConfirmationsTopicKey, "payments.confirmations",
     "Topic the PaymentConfirmation records are written to (key = customer_id)."},
    {kMaxAmountMinorKey, "100000000",
     "Largest amount_minor accepted in one request (> 0); above it: AMOUNT_TOO_LARGE."},
    {kIdempotencyRetentionMsKey, "86400000",
     "How long (event time) a decision is kept for idempotent replay (> 0)."},
    {kRateLimitPerMinuteKey, "60",
     "Token bucket refill rate per customer, tokens per minute of event time (1..1000000)."},
    {kRateLimitBurstKey, "20", "Token bucket capacity per customer (1..1000000)."},
    {kDailyAmountLimitMinorKey, "5000000",
     "Largest approved amount per customer and currency over a rolling 24 h of event time "
     "(> 0)."},
    {kFraudThresholdKey, "0.95",
     "Fraud score in [0, 1] (at most 4 decimals) above which a payment is declined "
     "(score > threshold)."},
    {kRefundWindowMsKey, "2592000000",
     "How long (event time) an approved payment stays refundable (> 0)."},
    {kStringMaxLengthKey, "128",
     "Largest length in bytes of any string field, metadata key or value (1..1048576)."},
    {kMetadataMaxEntriesKey, "20", "Largest number of metadata entries (0..10000)."},
    {kMaxClockSkewMsKey, "3600000",
     "How far (ms) a record timestamp may be ahead of the later of the partition's stream "
     "time and the host's clock (> 0); beyond it: TIMESTAMP_TOO_FAR_AHEAD."},
    {kCustomerRetentionMsKey, "2592000000",
     "How long (event time) a customer's limit and fraud history is kept after its last "
     "write (>= 172800000); an idle customer then starts over."},
}};

struct PaymentsConfig {
  std::string requests_topic = "payments.requests";
  std::string confirmations_topic = "payments.confirmations";
  int64_t max_amount_minor = 100'000'000;
  std::chrono::milliseconds idempotency_retention{86'400'000};
  int64_t rate_limit_per_minute = 60;
  int64_t rate_limit_burst = 20;
  int64_t daily_amount_limit_minor = 5'000'000;
  // Fraud threshold in basis points (0..10000); 0.95 is 9500. Declined when score > threshold.
  int32_t fraud_threshold_bp = 9500;
  std::chrono::milliseconds refund_window{30LL * 24 * 60 * 60 * 1000};
  int64_t string_max_length = 128;
  int64_t metadata_max_entries = 20;
  // Largest lead of a record timestamp over stream time (TimestampPolicy::max_lead).
  std::chrono::milliseconds max_clock_skew{3'600'000};
  // TTL of the customers store.
  std::chrono::milliseconds customer_retention{30LL * 24 * 60 * 60 * 1000};

  // Builds a config from properties: defaults for absent keys; keys not
  // starting with "payments." are ignored (the daemon passes all its
  // properties). Errors: InvalidArgument naming the key for an unknown
  // "payments.*" key or a value that does not parse or is out of range.
  static streams::Result<PaymentsConfig> FromProperties(
      const std::map<std::string, std::string>& properties);

  // OK when every field is in range (see kPaymentsConfigKeys); otherwise
  // InvalidArgument naming the property of the first bad field.
  [[nodiscard]] streams::Status Validate() const;

  // The config as properties (FromProperties(ToProperties()) == *this).
  std::map<std::string, std::string> ToProperties() const;

  friend bool operator==(const PaymentsConfig&, const PaymentsConfig&) = default;
};

// Parses a decimal fraction in [0, 1] with at most 4 significant decimals
// ("0.95", "1", "0.0001", ".5", "0.950") exactly into basis points (9500).
// Errors: InvalidArgument (not a plain decimal, more precision, out of range).
streams::Result<int32_t> ParseBasisPoints(std::string_view text);

}  // namespace payments
