// Unit tests of PaymentsConfig parsing (no engine).
#include <gtest/gtest.h>

#include <set>

#include "payments/payments_config.h"

namespace payments {
namespace {

class PaymentsConfigTest : public ::testing::Test {};

TEST_F(PaymentsConfigTest, DefaultsMatchTheDocumentedTable) {
  auto config = PaymentsConfig::FromProperties({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, PaymentsConfig{});
  EXPECT_EQ(config->fraud_threshold_bp, 9500);
  EXPECT_EQ(config->refund_window.count(), 30LL * 24 * 3600 * 1000);
  EXPECT_EQ(config->max_clock_skew.count(), 3'600'000);
  EXPECT_EQ(config->customer_retention.count(), 30LL * 24 * 3600 * 1000);
  // Every documented default parses back into the default config.
  std::map<std::string, std::string> defaults;
  for (const auto& info : kPaymentsConfigKeys) {
    defaults.emplace(std::string(info.key), std::string(info.default_value));
  }
  auto from_table = PaymentsConfig::FromProperties(defaults);
  ASSERT_TRUE(from_table.ok()) << from_table.status();
  EXPECT_EQ(*from_table, PaymentsConfig{});
  EXPECT_EQ(PaymentsConfig{}.ToProperties(), defaults);
}

TEST_F(PaymentsConfigTest, ParsesEveryKey) {
  auto config = PaymentsConfig::FromProperties({
      {"payments.requests.topic", "in"},
      {"payments.confirmations.topic", "out"},
      {"payments.max.amount.minor", "500"},
      {"payments.idempotency.retention.ms", "1000"},
      {"payments.rate.limit.per.minute", "7"},
      {"payments.rate.limit.burst", "3"},
      {"payments.daily.amount.limit.minor", "900"},
      {"payments.fraud.threshold", "0.5"},
      {"payments.refund.window.ms", "2000"},
      {"payments.string.max.length", "16"},
      {"payments.metadata.max.entries", "0"},
      {"payments.max.clock.skew.ms", "5000"},
      {"payments.customer.retention.ms", "172800000"},
      {"streams.application.id", "ignored: not a payments.* key"},
  });
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->requests_topic, "in");
  EXPECT_EQ(config->confirmations_topic, "out");
  EXPECT_EQ(config->max_amount_minor, 500);
  EXPECT_EQ(config->idempotency_retention.count(), 1000);
  EXPECT_EQ(config->rate_limit_per_minute, 7);
  EXPECT_EQ(config->rate_limit_burst, 3);
  EXPECT_EQ(config->daily_amount_limit_minor, 900);
  EXPECT_EQ(config->fraud_threshold_bp, 5000);
  EXPECT_EQ(config->refund_window.count(), 2000);
  EXPECT_EQ(config->string_max_length, 16);
  EXPECT_EQ(config->metadata_max_entries, 0);
  EXPECT_EQ(config->max_clock_skew.count(), 5000);
  EXPECT_EQ(config->customer_retention.count(), 172'800'000);
  auto round_trip = PaymentsConfig::FromProperties(config->ToProperties());
  ASSERT_TRUE(round_trip.ok());
  EXPECT_EQ(*round_trip, *config);
}

TEST_F(PaymentsConfigTest, UnknownPaymentsKeyIsNamed) {
  auto config = PaymentsConfig::FromProperties({{"payments.max.amount", "5"}});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), streams::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("payments.max.amount"), std::string::npos);
}

TEST_F(PaymentsConfigTest, BadValuesAreNamed) {
  const std::map<std::string, std::string> bad = {
      {"payments.max.amount.minor", "0"},
      {"payments.max.amount.minor", "12x"},
      {"payments.idempotency.retention.ms", "-1"},
      {"payments.rate.limit.per.minute", "0"},
      {"payments.rate.limit.burst", ""},
      {"payments.daily.amount.limit.minor", "1.5"},
      {"payments.fraud.threshold", "1.01"},
      {"payments.refund.window.ms", "99999999999999999999"},
      {"payments.string.max.length", "0"},
      {"payments.metadata.max.entries", "-2"},
      {"payments.requests.topic", ""},
      {"payments.max.clock.skew.ms", "0"},
      {"payments.max.clock.skew.ms", "-5"},
      // Below twice the rolling 24 h window.
      {"payments.customer.retention.ms", "172799999"},
  };
  for (const auto& [key, value] : bad) {
    auto config = PaymentsConfig::FromProperties({{key, value}});
    ASSERT_FALSE(config.ok()) << key << "=" << value;
    EXPECT_EQ(config.status().code(), streams::StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find(key), std::string::npos) << config.status();
  }
}

TEST_F(PaymentsConfigTest, ValidateRejectsBadSkewAndRetention) {
  PaymentsConfig config;
  config.max_clock_skew = std::chrono::milliseconds(0);
  EXPECT_NE(config.Validate().message().find("payments.max.clock.skew.ms"), std::string::npos);
  config = PaymentsConfig{};
  config.customer_retention = std::chrono::milliseconds(kMinCustomerRetentionMs - 1);
  EXPECT_NE(config.Validate().message().find("payments.customer.retention.ms"), std::string::npos);
  config.customer_retention = std::chrono::milliseconds(kMinCustomerRetentionMs);
  EXPECT_TRUE(config.Validate().ok());
}

TEST_F(PaymentsConfigTest, SameTopicForInputAndOutputIsRejected) {
  auto config = PaymentsConfig::FromProperties(
      {{"payments.requests.topic", "t"}, {"payments.confirmations.topic", "t"}});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("payments.confirmations.topic"), std::string::npos);
}

TEST_F(PaymentsConfigTest, ThresholdParsesExactlyToBasisPoints) {
  const std::map<std::string, int32_t> good = {{"0.95", 9500},    {"0", 0},       {"1", 10000},
                                               {"1.0", 10000},    {"0.0001", 1},  {".5", 5000},
                                               {"0.95000", 9500}, {"00.3", 3000}, {"0.9999", 9999}};
  for (const auto& [text, bp] : good) {
    auto parsed = ParseBasisPoints(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(*parsed, bp) << text;
  }
  for (const char* text :
       {"0.95001", "1.0001", "-0.1", "abc", "", ".", "1.", "0,95", "1e-1", " 0.5", "0.5 ", "2"}) {
    EXPECT_FALSE(ParseBasisPoints(text).ok()) << text;
  }
}

TEST_F(PaymentsConfigTest, KeyTableHasUniqueKeysWithDescriptions) {
  std::set<std::string_view> keys;
  for (const auto& info : kPaymentsConfigKeys) {
    EXPECT_TRUE(keys.insert(info.key).second) << info.key;
    EXPECT_FALSE(info.description.empty()) << info.key;
    EXPECT_EQ(info.key.substr(0, 9), "payments.");
  }
}

}  // namespace
}  // namespace payments
