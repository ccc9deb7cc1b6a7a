#include "streams/runtime/streams_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace streams::runtime {
namespace {

using ::testing::HasSubstr;

class StreamsConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("streams_config_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  static StreamsConfig::Builder Minimal() {
    StreamsConfig::Builder b;
    b.Set("application.id", "app").Set("bootstrap.servers", "localhost:9092");
    return b;
  }

  std::filesystem::path dir_;
};

TEST_F(StreamsConfigTest, DefaultsUnderExactlyOnce) {
  auto config = Minimal().Build();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->application_id(), "app");
  EXPECT_EQ(config->bootstrap_servers(), "localhost:9092");
  EXPECT_EQ(config->processing_guarantee(), ProcessingGuarantee::kExactlyOnceV2);
  EXPECT_EQ(config->commit_interval(), std::chrono::milliseconds(100));
  EXPECT_FALSE(config->commit_max_records().has_value());
  EXPECT_EQ(config->num_stream_threads(), 1);
  EXPECT_EQ(config->state_dir(), "/tmp/kafka-streams");
  EXPECT_EQ(config->ApplicationStateDir(), "/tmp/kafka-streams/app");
  EXPECT_FALSE(config->instance_id().empty());
  // The default is stable for a state dir and differs between state dirs, so
  // two instances on one host never share transactional ids.
  auto same = Minimal().Build();
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->instance_id(), config->instance_id());
  auto other = Minimal().Set("state.dir", "/tmp/another-state-dir").Build();
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE(other->instance_id(), config->instance_id());
  EXPECT_EQ(config->dead_letter_topic(), "");
  EXPECT_EQ(config->auto_offset_reset(), OffsetReset::kEarliest);
  EXPECT_EQ(config->replication_factor(), 1);
  EXPECT_EQ(config->transaction_timeout(), std::chrono::milliseconds(10000));
  EXPECT_EQ(config->state_options().block_cache_bytes, 64u << 20);
  EXPECT_EQ(config->Origin("num.stream.threads"), "default");
}

TEST_F(StreamsConfigTest, CommitIntervalDefaultsTo30sUnderAtLeastOnce) {
  auto b = Minimal();
  b.Set("processing.guarantee", "at_least_once");
  auto config = b.Build();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->processing_guarantee(), ProcessingGuarantee::kAtLeastOnce);
  EXPECT_FALSE(config->exactly_once());
  EXPECT_EQ(config->commit_interval(), std::chrono::milliseconds(30000));
  EXPECT_EQ(config->GetRaw("commit.interval.ms"), "30000");
}

TEST_F(StreamsConfigTest, LoadsPropertiesFile) {
  std::string path = WriteFile("app.properties",
                               "# a comment\n"
                               "! another comment\n"
                               "\n"
                               "application.id = payments\n"
                               "bootstrap.servers: broker-1:9092,\\\n"
                               "    broker-2:9092\n"
                               "commit.interval.ms=250\r\n"
                               "statestore.cache.max.bytes=1048576\n"
                               "kafka.socket.timeout.ms=5000\n");
  StreamsConfig::Builder b;
  ASSERT_TRUE(b.LoadPropertiesFile(path).ok());
  auto config = b.Build();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->application_id(), "payments");
  EXPECT_EQ(config->bootstrap_servers(), "broker-1:9092,broker-2:9092");
  EXPECT_EQ(config->commit_interval(), std::chrono::milliseconds(250));
  EXPECT_EQ(config->state_options().block_cache_bytes, 1048576u);
  EXPECT_EQ(config->Origin("commit.interval.ms"), "file " + path + ":7");
  EXPECT_EQ(config->KafkaProperties(ClientKind::kConsumer).at("socket.timeout.ms"), "5000");
}

TEST_F(StreamsConfigTest, PropertiesErrorNamesFileAndLine) {
  std::string path = WriteFile("bad.properties", "application.id=a\n\nthis line is wrong\n");
  StreamsConfig::Builder b;
  Status status = b.LoadPropertiesFile(path);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(path + ":3"));

  Status missing = b.LoadPropertiesFile((dir_ / "nope.properties").string());
  EXPECT_EQ(missing.code(), StatusCode::kIoError);
  EXPECT_THAT(missing.message(), HasSubstr("nope.properties"));
}

TEST_F(StreamsConfigTest, EnvironmentMapping) {
  StreamsConfig::Builder b;
  b.LoadEnvironment("PAYMENTD_", {{"PAYMENTD_APPLICATION_ID", "pay"},
                                  {"PAYMENTD_BOOTSTRAP_SERVERS", "b:9092"},
                                  {"PAYMENTD_COMMIT_INTERVAL_MS", "42"},
                                  {"PAYMENTD_KAFKA_SASL_OAUTHBEARER__CLIENT__ID", "x"},
                                  {"OTHER_COMMIT_INTERVAL_MS", "7"}});
  auto config = b.Build();
  // sasl.oauthbearer_client_id is not a librdkafka property: the error names it.
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("kafka.sasl.oauthbearer_client_id"));
  EXPECT_THAT(config.status().message(),
              HasSubstr("env PAYMENTD_KAFKA_SASL_OAUTHBEARER__CLIENT__ID"));

  StreamsConfig::Builder ok;
  ok.LoadEnvironment("PAYMENTD_", {{"PAYMENTD_APPLICATION_ID", "pay"},
                                   {"PAYMENTD_BOOTSTRAP_SERVERS", "b:9092"},
                                   {"PAYMENTD_COMMIT_INTERVAL_MS", "42"},
                                   {"PAYMENTD_PRODUCER_LINGER_MS", "5"},
                                   {"OTHER_COMMIT_INTERVAL_MS", "7"}});
  auto built = ok.Build();
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->application_id(), "pay");
  EXPECT_EQ(built->commit_interval(), std::chrono::milliseconds(42));
  EXPECT_EQ(built->Origin("commit.interval.ms"), "env PAYMENTD_COMMIT_INTERVAL_MS");
  EXPECT_EQ(built->KafkaProperties(ClientKind::kProducer).at("linger.ms"), "5");
}

TEST_F(StreamsConfigTest, ReadsTheProcessEnvironment) {
  ::setenv("STREAMSCFGTEST_NUM_STREAM_THREADS", "3", 1);
  auto b = Minimal();
  b.LoadEnvironment("STREAMSCFGTEST_");
  ::unsetenv("STREAMSCFGTEST_NUM_STREAM_THREADS");
  auto config = b.Build();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->num_stream_threads(), 3);
}

TEST_F(StreamsConfigTest, PrecedenceFileThenEnvThenSet) {
  std::string path = WriteFile("p.properties",
                               "application.id=from-file\n"
                               "bootstrap.servers=file:1\n"
                               "commit.interval.ms=1\n"
                               "poll.ms=11\n"
                               "num.stream.threads=2\n");
  StreamsConfig::Builder b;
  // Order of calls does not matter: --set first, then env, then the file.
  ASSERT_TRUE(b.SetAssignment("commit.interval.ms=3").ok());
  b.LoadEnvironment("APP_", {{"APP_COMMIT_INTERVAL_MS", "2"}, {"APP_POLL_MS", "22"}});
  ASSERT_TRUE(b.LoadPropertiesFile(path).ok());
  auto config = b.Build();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->commit_interval(), std::chrono::milliseconds(3));  // --set wins
  EXPECT_EQ(config->Origin("commit.interval.ms"), "--set");
  EXPECT_EQ(config->poll_timeout(), std::chrono::milliseconds(22));  // env beats file
  EXPECT_EQ(config->num_stream_threads(), 2);                        // file only
  EXPECT_EQ(config->application_id(), "from-file");
}

TEST_F(StreamsConfigTest, ErrorsNameTheKey) {
  StreamsConfig::Builder b;
  b.Set("bootstrap.servers", "b:1")
      .Set("num.stream.threads", "two")
      .Set("commit.interval.ms", "-5")
      .Set("processing.guarantee", "exactly_twice")
      .Set("no.such.key", "1");
  auto config = b.Build();
  ASSERT_FALSE(config.ok());
  const std::string& m = config.status().message();
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(m, HasSubstr("missing required key 'application.id'"));
  EXPECT_THAT(m, HasSubstr("key 'num.stream.threads' (--set): bad integer 'two'"));
  EXPECT_THAT(m, HasSubstr("key 'commit.interval.ms' (--set): value -5 out of range"));
  EXPECT_THAT(m, HasSubstr("key 'processing.guarantee' (--set): bad value 'exactly_twice'"));
  EXPECT_THAT(m, HasSubstr("exactly_once_v2, at_least_once"));
  EXPECT_THAT(m, HasSubstr("unknown key 'no.such.key' (--set)"));
}

TEST_F(StreamsConfigTest, SetAssignmentNeedsEquals) {
  StreamsConfig::Builder b;
  EXPECT_EQ(b.SetAssignment("commit.interval.ms").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b.SetAssignment("=5").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(b.SetAssignment("kafka.client.rack = r1").ok());
}

TEST_F(StreamsConfigTest, PassThroughPrefixes) {
  auto b = Minimal();
  b.Set("kafka.security.protocol", "plaintext")
      .Set("kafka.socket.timeout.ms", "1000")
      .Set("consumer.socket.timeout.ms", "2000")
      .Set("producer.linger.ms", "7")
      .Set("admin.socket.timeout.ms", "3000")
      .Set("kafka.sasl.password", "hunter2");
  auto config = b.Build();
  ASSERT_TRUE(config.ok()) << config.status();
  auto consumer = config->KafkaProperties(ClientKind::kConsumer);
  EXPECT_EQ(consumer.at("security.protocol"), "plaintext");
  EXPECT_EQ(consumer.at("socket.timeout.ms"), "2000");  // consumer.* beats kafka.*
  EXPECT_EQ(consumer.at("bootstrap.servers"), "localhost:9092");
  EXPECT_EQ(consumer.count("linger.ms"), 0u);
  auto restore = config->KafkaProperties(ClientKind::kRestoreConsumer);
  EXPECT_EQ(restore.at("socket.timeout.ms"), "2000");
  auto producer = config->KafkaProperties(ClientKind::kProducer);
  EXPECT_EQ(producer.at("socket.timeout.ms"), "1000");
  EXPECT_EQ(producer.at("linger.ms"), "7");
  auto admin = config->KafkaProperties(ClientKind::kAdmin);
  EXPECT_EQ(admin.at("socket.timeout.ms"), "3000");
  // Secrets never appear in Describe().
  std::string described = config->Describe();
  EXPECT_THAT(described, HasSubstr("kafka.sasl.password = ***"));
  EXPECT_THAT(described, ::testing::Not(HasSubstr("hunter2")));
}

TEST_F(StreamsConfigTest, PassThroughErrors) {
  auto b = Minimal();
  b.Set("kafka.no.such.property", "1")
      .Set("consumer.group.id", "other")
      .Set("producer.transactional.id", "x")
      .Set("producer.linger.ms", "abc");
  auto config = b.Build();
  ASSERT_FALSE(config.ok());
  const std::string& m = config.status().message();
  EXPECT_THAT(m, HasSubstr("key 'kafka.no.such.property'"));
  EXPECT_THAT(m, HasSubstr("key 'consumer.group.id' (--set): 'group.id' is set by the runtime"));
  EXPECT_THAT(m, HasSubstr("key 'producer.transactional.id'"));
  EXPECT_THAT(m, HasSubstr("key 'producer.linger.ms'"));
}

TEST_F(StreamsConfigTest, ApplicationKeys) {
  auto b = Minimal();
  b.DefineInt("payments.max.amount.minor", 1000, 1, 1000000, "cap")
      .DefineString("payments.db.password", std::nullopt, "db password", /*secret=*/true)
      .DefineBool("payments.strict", false, "strict mode")
      .DefineEnum("payments.mode", std::string("live"), {"live", "dry-run"}, "mode")
      .DefinePrefix("payments.labels.", "free-form labels")
      .Set("payments.max.amount.minor", "500")
      .Set("payments.db.password", "s3cret")
      .Set("payments.labels.region", "eu");
  auto config = b.Build();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetInt("payments.max.amount.minor"), 500);
  EXPECT_EQ(*config->GetString("payments.db.password"), "s3cret");
  EXPECT_EQ(*config->GetBool("payments.strict"), false);
  EXPECT_EQ(*config->GetString("payments.mode"), "live");
  EXPECT_EQ(config->GetRaw("payments.labels.region"), "eu");
  EXPECT_EQ(config->GetInt("payments.strict").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config->GetInt("payments.unknown").status().code(), StatusCode::kNotFound);
  EXPECT_THAT(config->Describe(), ::testing::Not(HasSubstr("s3cret")));

  auto bad = Minimal();
  bad.DefineInt("payments.max.amount.minor", 1000, 1, 1000000, "cap")
      .DefineEnum("payments.mode", std::string("live"), {"live", "dry-run"}, "mode")
      .Set("payments.max.amount.minor", "0")
      .Set("payments.mode", "test");
  auto failed = bad.Build();
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr("key 'payments.max.amount.minor'"));
  EXPECT_THAT(failed.status().message(), HasSubstr("out of range [1, 1000000]"));
  EXPECT_THAT(failed.status().message(), HasSubstr("key 'payments.mode'"));
}

TEST_F(StreamsConfigTest, RequiredApplicationKeyAndBadDefinitions) {
  auto b = Minimal();
  b.DefineString("payments.db.url", std::nullopt, "url")
      .Require("payments.db.url")
      .DefineInt("commit.interval.ms", 1, 0, 10, "clashes with a built-in key")
      .DefineString("kafka.client.id", "x", "shadows a librdkafka property");
  auto config = b.Build();
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("missing required key 'payments.db.url'"));
  EXPECT_THAT(config.status().message(), HasSubstr("key 'commit.interval.ms' is defined twice"));
  EXPECT_THAT(config.status().message(),
              HasSubstr("'kafka.client.id' would shadow the librdkafka property 'client.id'"));
}

TEST_F(StreamsConfigTest, ApplicationKeyUnderPassThroughPrefixIsNotPassedThrough) {
  auto b = Minimal();
  b.DefineString("admin.listen", "127.0.0.1:8080", "admin HTTP address")
      .Set("admin.listen", "127.0.0.1:0")
      .Set("admin.request.timeout.ms", "5000");
  auto config = b.Build();
  ASSERT_TRUE(config.ok()) << config.status();
  auto listen = config->GetString("admin.listen");
  ASSERT_TRUE(listen.ok()) << listen.status();
  EXPECT_EQ(*listen, "127.0.0.1:0");
  auto admin = config->KafkaProperties(ClientKind::kAdmin);
  EXPECT_EQ(admin.count("listen"), 0u);
  EXPECT_EQ(admin.at("request.timeout.ms"), "5000");
}

TEST_F(StreamsConfigTest, ValidatesIdentifiers) {
  auto b = Minimal();
  b.Set("application.id", "bad id").Set("instance.id", "a/b");
  auto config = b.Build();
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("key 'application.id'"));
  EXPECT_THAT(config.status().message(), HasSubstr("key 'instance.id'"));
}

}  // namespace
}  // namespace streams::runtime
