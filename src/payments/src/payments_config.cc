#include "payments/payments_config.h"

#include <charconv>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>

namespace payments {
namespace {

using streams::Result;
using streams::Status;

constexpr std::string_view kPrefix = "payments.";

Status BadValue(std::string_view key, std::string_view value, std::string_view expected) {
  return Status::InvalidArgument("invalid value '" + std::string(value) + "' for " +
                                 std::string(key) + ": expected " + std::string(expected));
}

// Parses a plain decimal integer (optional leading '-', digits only).
std::optional<int64_t> ParseInt64(std::string_view text) {
  int64_t value = 0;
  if (text.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

Status ParseRange(std::string_view key, std::string_view text, int64_t min, int64_t max,
                  int64_t& out) {
  auto value = ParseInt64(text);
  if (!value || *value < min || *value > max) {
    return BadValue(key, text,
                    "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  out = *value;
  return Status::Ok();
}

std::string FormatBasisPoints(int32_t bp) {
  std::string out = std::to_string(bp / 10000);
  int32_t frac = bp % 10000;
  if (frac == 0) return out;
  std::string digits = std::to_string(frac);
  digits.insert(0, 4 - digits.size(), '0');
  while (!digits.empty() && digits.back() == '0') digits.pop_back();
  return out + "." + digits;
}

Status CheckRange(std::string_view key, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    return Status::InvalidArgument(std::string(key) + " is " + std::to_string(value) +
                                   "; expected [" + std::to_string(min) + ", " +
                                   std::to_string(max) + "]");
  }
  return Status::Ok();
}

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
constexpr int64_t kMaxRate = 1'000'000;
constexpr int64_t kMaxStringLength = 1 << 20;
constexpr int64_t kMaxMetadataEntries = 10'000;
// Durations up to ~292 years keep "stream time + ttl" far from overflowing.
constexpr int64_t kMaxDurationMs = kMaxInt64 / 1000;

}  // namespace

Result<int32_t> ParseBasisPoints(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a decimal in [0, 1] with at most 4 decimals");
  };
  size_t dot = text.find('.');
  std::string_view int_part = text.substr(0, dot);
  std::string_view frac_part = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  if (int_part.empty() && frac_part.empty()) return bad();
  if (dot != std::string_view::npos && frac_part.empty()) return bad();
  for (char c : int_part) {
    if (c < '0' || c > '9') return bad();
  }
  for (char c : frac_part) {
    if (c < '0' || c > '9') return bad();
  }
  // Extra decimals are only allowed when they are zeros ("0.95000").
  while (frac_part.size() > 4 && frac_part.back() == '0') frac_part.remove_suffix(1);
  if (frac_part.size() > 4) return bad();
  // Strip leading zeros of the integer part to avoid overflow on "000...1".
  while (int_part.size() > 1 && int_part.front() == '0') int_part.remove_prefix(1);
  if (int_part.size() > 1) return bad();
  int32_t whole = int_part.empty() ? 0 : int_part[0] - '0';
  int32_t frac = 0;
  for (size_t i = 0; i < 4; ++i) frac = frac * 10 + (i < frac_part.size() ? frac_part[i] - '0' : 0);
  int32_t bp = whole * 10000 + frac;
  if (bp > 10000) return bad();
  return bp;
}

Result<PaymentsConfig> PaymentsConfig::FromProperties(
    const std::map<std::string, std::string>& properties) {
  PaymentsConfig config;
  for (const auto& [key, value] : properties) {
    if (key.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    int64_t n = 0;
    if (key == kRequestsTopicKey || key == kConfirmationsTopicKey) {
      if (value.empty()) return BadValue(key, value, "a topic name");
      (key == kRequestsTopicKey ? config.requests_topic : config.confirmations_topic) = value;
    } else if (key == kMaxAmountMinorKey) {
      STREAMS_RETURN_IF_ERROR(ParseRange(key, value, 1, kMaxInt64, n));
      config.max_amount_minor = n;
    } else if (key == kIdempotencyRetentionMsKey) {
      STREAMS_RETURN_IF_ERROR(ParseRange(key, value, 1, kMaxDurationMs, n));
      config.idempotency_retention = std::chrono::milliseconds(n);
    } else if (key == kRateLimitPerMinuteKey) {
      STREAMS_RETURN_IF_ERROR(ParseRange(key, value, 1, kMaxRate, n));
      config.rate_limit_per_minute = n;
    } else if (key == kRateLimitBurstKey) {
      STREAMS_RETURN_IF_ERROR(ParseRange(key, value, 1, kMaxRate, n));
      config.rate_limit_burst = n;
    } else if (key == kDailyAmountLimitMinorKey) {
      STREAMS_RETURN_IF_ERROR(ParseRange(key, value, 1, kMaxInt64, n));
      config.daily_amount_limit_minor = n;
    } else if (key == kFraudThresholdKey) {
      auto bp = ParseBasisPoints(value);
      if (!bp.ok()) return BadValue(key, value, "a decimal in [0, 1] with at most 4 decimals");
      config.fraud_threshold_bp = *bp;
    } else if (key == kRefundWindowMsKey) {
      STREAMS_RETURN_IF_ERROR(ParseRange(key, value, 1, kMaxDurationMs, n));
      config.refund_window = std::chrono::milliseconds(n);
    } else if (key == kStringMaxLengthKey) {
      STREAMS_RETURN_IF_ERROR(ParseRange(key, value, 1, kMaxStringLength, n));
      config.string_max_length = n;
    } else if (key == kMetadataMaxEntriesKey) {
      STREAMS_RETURN_IF_ERROR(ParseRange(key, value, 0, kMaxMetadataEntries, n));
      config.metadata_max_entries = n;
    } else if (key == kMaxClockSkewMsKey) {
      STREAMS_RETURN_IF_ERROR(ParseRange(key, value, 1, kMaxDurationMs, n));
      config.max_clock_skew = std::chrono::milliseconds(n);
    } else if (key == kCustomerRetentionMsKey) {
      STREAMS_RETURN_IF_ERROR(ParseRange(key, value, kMinCustomerRetentionMs, kMaxDurationMs, n));
      config.customer_retention = std::chrono::milliseconds(n);
    } else {
      return Status::InvalidArgument("unknown configuration key " + key);
    }
  }
  STREAMS_RETURN_IF_ERROR(config.Validate());
  return config;
}

Status PaymentsConfig::Validate() const {
  if (requests_topic.empty()) {
    return Status::InvalidArgument(std::string(kRequestsTopicKey) + " is empty");
  }
  if (confirmations_topic.empty()) {
    return Status::InvalidArgument(std::string(kConfirmationsTopicKey) + " is empty");
  }
  if (requests_topic == confirmations_topic) {
    return Status::InvalidArgument(std::string(kConfirmationsTopicKey) + " must differ from " +
                                   std::string(kRequestsTopicKey));
  }
  STREAMS_RETURN_IF_ERROR(CheckRange(kMaxAmountMinorKey, max_amount_minor, 1, kMaxInt64));
  STREAMS_RETURN_IF_ERROR(
      CheckRange(kIdempotencyRetentionMsKey, idempotency_retention.count(), 1, kMaxDurationMs));
  STREAMS_RETURN_IF_ERROR(CheckRange(kRateLimitPerMinuteKey, rate_limit_per_minute, 1, kMaxRate));
  STREAMS_RETURN_IF_ERROR(CheckRange(kRateLimitBurstKey, rate_limit_burst, 1, kMaxRate));
  STREAMS_RETURN_IF_ERROR(
      CheckRange(kDailyAmountLimitMinorKey, daily_amount_limit_minor, 1, kMaxInt64));
  STREAMS_RETURN_IF_ERROR(CheckRange(kFraudThresholdKey, fraud_threshold_bp, 0, 10000));
  STREAMS_RETURN_IF_ERROR(CheckRange(kRefundWindowMsKey, refund_window.count(), 1, kMaxDurationMs));
  STREAMS_RETURN_IF_ERROR(CheckRange(kStringMaxLengthKey, string_max_length, 1, kMaxStringLength));
  STREAMS_RETURN_IF_ERROR(
      CheckRange(kMetadataMaxEntriesKey, metadata_max_entries, 0, kMaxMetadataEntries));
  STREAMS_RETURN_IF_ERROR(
      CheckRange(kMaxClockSkewMsKey, max_clock_skew.count(), 1, kMaxDurationMs));
  STREAMS_RETURN_IF_ERROR(CheckRange(kCustomerRetentionMsKey, customer_retention.count(),
                                     kMinCustomerRetentionMs, kMaxDurationMs));
  return Status::Ok();
}

std::map<std::string, std::string> PaymentsConfig::ToProperties() const {
  return {
      {std::string(kRequestsTopicKey), requests_topic},
      {std::string(kConfirmationsTopicKey), confirmations_topic},
      {std::string(kMaxAmountMinorKey), std::to_string(max_amount_minor)},
      {std::string(kIdempotencyRetentionMsKey), std::to_string(idempotency_retention.count())},
      {std::string(kRateLimitPerMinuteKey), std::to_string(rate_limit_per_minute)},
      {std::string(kRateLimitBurstKey), std::to_string(rate_limit_burst)},
      {std::string(kDailyAmountLimitMinorKey), std::to_string(daily_amount_limit_minor)},
      {std::string(kFraudThresholdKey), FormatBasisPoints(fraud_threshold_bp)},
      {std::string(kRefundWindowMsKey), std::to_string(refund_window.count())},
      {std::string(kStringMaxLengthKey), std::to_string(string_max_length)},
      {std::string(kMetadataMaxEntriesKey), std::to_string(metadata_max_entries)},
      {std::string(kMaxClockSkewMsKey), std::to_string(max_clock_skew.count())},
      {std::string(kCustomerRetentionMsKey), std::to_string(customer_retention.count())},
  };
}

}  // namespace payments
