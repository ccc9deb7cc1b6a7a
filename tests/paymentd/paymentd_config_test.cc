#include "paymentd/paymentd_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace paymentd {
namespace {

class PaymentdConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("paymentd_config_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    sources_.environment = std::map<std::string, std::string>{};  // Hermetic.
    sources_.overrides = {"bootstrap.servers=broker:9092"};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteFile(const std::string& text) {
    auto path = dir_ / "paymentd.properties";
    std::ofstream(path) << text;
    return path.string();
  }

  std::filesystem::path dir_;
  ConfigSources sources_;
};

TEST_F(PaymentdConfigTest, AppliesPaymentdDefaults) {
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->streams.application_id(), "paymentd");
  EXPECT_EQ(config->streams.bootstrap_servers(), "broker:9092");
  EXPECT_EQ(config->streams.auto_offset_reset(), streams::runtime::OffsetReset::kEarliest);
  EXPECT_EQ(config->streams.dead_letter_topic(), "payments.requests.dlq");
  EXPECT_EQ(config->payments.requests_topic, "payments.requests");
  EXPECT_EQ(config->payments.confirmations_topic, "payments.confirmations");
  EXPECT_EQ(config->payments, payments::PaymentsConfig());
  EXPECT_EQ(config->admin_listen, (ListenAddress{"127.0.0.1", 8080}));
}

TEST_F(PaymentdConfigTest, FileOverridesDefaultsAndSetOverridesFile) {
  sources_.properties_file = WriteFile(
      "# paymentd\n"
      "application.id = payments-eu\n"
      "payments.rate.limit.burst: 5\n"
      "payments.fraud.threshold=0.8\n"
      "admin.listen=0.0.0.0:9100\n"
      "auto.offset.reset=latest\n");
  sources_.overrides.push_back("payments.rate.limit.burst=7");
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->streams.application_id(), "payments-eu");
  EXPECT_EQ(config->streams.auto_offset_reset(), streams::runtime::OffsetReset::kLatest);
  EXPECT_EQ(config->payments.rate_limit_burst, 7);
  EXPECT_EQ(config->payments.fraud_threshold_bp, 8000);
  EXPECT_EQ(config->admin_listen, (ListenAddress{"0.0.0.0", 9100}));
  EXPECT_EQ(config->streams.Origin("payments.rate.limit.burst"), "--set");
}

TEST_F(PaymentdConfigTest, EnvironmentSitsBetweenFileAndSet) {
  sources_.properties_file =
      WriteFile("payments.rate.limit.burst=5\npayments.max.amount.minor=10\n");
  sources_.environment =
      std::map<std::string, std::string>{{"PAYMENTD_PAYMENTS_RATE_LIMIT_BURST", "9"},
                                         {"PAYMENTD_PAYMENTS_MAX_AMOUNT_MINOR", "11"},
                                         {"OTHER_VARIABLE", "ignored"}};
  sources_.overrides.push_back("payments.max.amount.minor=12");
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->payments.rate_limit_burst, 9);
  EXPECT_EQ(config->payments.max_amount_minor, 12);
}

TEST_F(PaymentdConfigTest, DeadLetterTopicFollowsRequestsTopicUnlessSet) {
  sources_.overrides.push_back("payments.requests.topic=eu.requests");
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->payments.requests_topic, "eu.requests");
  EXPECT_EQ(config->streams.dead_letter_topic(), "eu.requests.dlq");

  sources_.overrides.push_back("dead.letter.topic=poison");
  config = LoadPaymentdConfig(sources_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->streams.dead_letter_topic(), "poison");
}

TEST_F(PaymentdConfigTest, UnknownKeysAreNamed) {
  sources_.overrides.push_back("payments.rate.limit.brust=3");
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), streams::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("payments.rate.limit.brust"), std::string::npos)
      << config.status();

  sources_.overrides = {"bootstrap.servers=b:1"};
  sources_.properties_file = WriteFile("admin.port=8080\n");
  config = LoadPaymentdConfig(sources_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("admin.port"), std::string::npos) << config.status();
}

TEST_F(PaymentdConfigTest, BadPaymentsValuesAreNamed) {
  sources_.overrides.push_back("payments.fraud.threshold=1.5");
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("payments.fraud.threshold"), std::string::npos)
      << config.status();

  sources_.overrides = {"bootstrap.servers=b:1", "payments.rate.limit.burst=zero"};
  config = LoadPaymentdConfig(sources_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("payments.rate.limit.burst"), std::string::npos)
      << config.status();
}

TEST_F(PaymentdConfigTest, AdminListenComesFromFileEnvironmentAndSet) {
  sources_.properties_file = WriteFile("# admin\nadmin.listen : 0.0.0.0:9000\n");
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->admin_listen, (ListenAddress{"0.0.0.0", 9000}));
  EXPECT_EQ(config->admin_listen_origin, "file " + *sources_.properties_file + ":2");

  sources_.environment =
      std::map<std::string, std::string>{{"PAYMENTD_ADMIN_LISTEN", "127.0.0.1:9001"}};
  config = LoadPaymentdConfig(sources_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->admin_listen.port, 9001);
  EXPECT_EQ(config->admin_listen_origin, "env PAYMENTD_ADMIN_LISTEN");

  sources_.overrides.push_back("admin.listen=127.0.0.1:0");
  config = LoadPaymentdConfig(sources_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->admin_listen, (ListenAddress{"127.0.0.1", 0}));
  EXPECT_EQ(config->admin_listen_origin, "--set");
  EXPECT_NE(DescribeConfigMasked(*config).find("admin.listen = 127.0.0.1:0 (--set)"),
            std::string::npos);
}

TEST_F(PaymentdConfigTest, AdminListenLinesKeepLineNumbersOfLaterErrors) {
  sources_.properties_file = WriteFile(
      "admin.listen = 127.0.0.1:\\\n"
      "    9002\n"
      "no.such.key=1\n");
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("no.such.key"), std::string::npos) << config.status();
  EXPECT_NE(config.status().message().find(":3"), std::string::npos) << config.status();

  sources_.properties_file = WriteFile(
      "admin.listen = 127.0.0.1:\\\n"
      "    9002\n");
  config = LoadPaymentdConfig(sources_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->admin_listen, (ListenAddress{"127.0.0.1", 9002}));
}

TEST_F(PaymentdConfigTest, BadAdminListenIsNamed) {
  sources_.overrides.push_back("admin.listen=8080");
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("admin.listen"), std::string::npos) << config.status();
}

TEST_F(PaymentdConfigTest, MissingBootstrapServersFails) {
  sources_.overrides.clear();
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("bootstrap.servers"), std::string::npos)
      << config.status();
}

TEST_F(PaymentdConfigTest, MissingFileIsAnIoError) {
  sources_.properties_file = (dir_ / "absent.properties").string();
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), streams::StatusCode::kIoError);
  EXPECT_NE(config.status().message().find("absent.properties"), std::string::npos);
}

TEST_F(PaymentdConfigTest, ParsesListenAddresses) {
  EXPECT_EQ(*ParseListenAddress("127.0.0.1:0"), (ListenAddress{"127.0.0.1", 0}));
  EXPECT_EQ(*ParseListenAddress("localhost:65535"), (ListenAddress{"localhost", 65535}));
  EXPECT_EQ(*ParseListenAddress("[::1]:8080"), (ListenAddress{"::1", 8080}));
  EXPECT_EQ(ParseListenAddress("[::1]:8080")->ToString(), "[::1]:8080");
  for (const char* bad :
       {"", "8080", ":8080", "host:", "host:65536", "host:-1", "host:80x", "::1:80", "[::1]8080"}) {
    EXPECT_FALSE(ParseListenAddress(bad).ok()) << bad;
  }
}

TEST_F(PaymentdConfigTest, MasksSecretsInTheSummary) {
  EXPECT_TRUE(IsSensitiveKey("kafka.sasl.password"));
  EXPECT_TRUE(IsSensitiveKey("kafka.ssl.key.pem"));
  EXPECT_TRUE(IsSensitiveKey("producer.sasl.oauthbearer.token.endpoint.url"));
  EXPECT_TRUE(IsSensitiveKey("kafka.ssl.keystore.password"));
  EXPECT_TRUE(IsSensitiveKey("kafka.API_KEY"));
  EXPECT_FALSE(IsSensitiveKey("kafka.ssl.keystore.location"));
  EXPECT_FALSE(IsSensitiveKey("kafka.sasl.username"));
  EXPECT_FALSE(IsSensitiveKey("payments.idempotency.retention.ms"));
  EXPECT_FALSE(IsSensitiveKey("bootstrap.servers"));

  sources_.overrides.push_back("kafka.sasl.password=hunter2-secret-value");
  sources_.overrides.push_back("kafka.sasl.username=alice");
  sources_.overrides.push_back("kafka.ssl.keystore.location=/etc/kafka/keystore.p12");
  auto config = LoadPaymentdConfig(sources_);
  ASSERT_TRUE(config.ok()) << config.status();
  std::string summary = DescribeConfigMasked(config->streams);
  EXPECT_EQ(summary.find("hunter2"), std::string::npos) << summary;
  EXPECT_NE(summary.find("kafka.sasl.password = ***"), std::string::npos) << summary;
  EXPECT_NE(summary.find("alice"), std::string::npos) << summary;
  // (The runtime's own Describe() masks every "ssl.key*" key, locations included.)
  EXPECT_NE(summary.find("payments.rate.limit.burst = 20"), std::string::npos) << summary;
}

}  // namespace
}  // namespace paymentd
