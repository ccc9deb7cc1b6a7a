// Unit tests of payments-sink without a database or broker: configuration,
// Standard Webhooks signing, rows and envelopes, backoff and the circuit
// breaker, and the README tables against the code.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "sink/payment_row.h"
#include "sink/sink_config.h"
#include "sink/webhook.h"
#include "sink_test_util.h"
#include "streams/connect/backoff.h"

namespace payments_sink {
namespace {

using streams::StatusCode;

paymentd::ConfigSources Sources(std::vector<std::string> sets,
                                std::map<std::string, std::string> env = {}) {
  paymentd::ConfigSources s;
  s.overrides = std::move(sets);
  s.environment = std::move(env);
  return s;
}

const std::vector<std::string> kRequired = {"bootstrap.servers=localhost:9092",
                                            "sink.database.url=postgresql://u:pw@db/x"};

std::vector<std::string> With(std::vector<std::string> more) {
  std::vector<std::string> all = kRequired;
  all.insert(all.end(), more.begin(), more.end());
  return all;
}

TEST(SinkConfigTest, DefaultsMatchTheIssue) {
  auto c = LoadSinkConfig(Sources(kRequired));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->application_id, "payments-sink");
  EXPECT_EQ(c->topic, "payments.confirmations");
  EXPECT_EQ(c->cdc_kafka_topic, "payments.cdc");
  EXPECT_EQ(c->cdc_webhook_url, "");
  EXPECT_EQ(c->batch_max_records, 500);
  EXPECT_EQ(c->admin_listen.port, 8081);
  EXPECT_TRUE(c->start_from_earliest);
  EXPECT_EQ(c->consumer_properties.at("bootstrap.servers"), "localhost:9092");
}

TEST(SinkConfigTest, EnvironmentAndSetInIncreasingPrecedence) {
  auto c = LoadSinkConfig(Sources(With({"sink.batch.max.records=7"}),
                                  {{"PAYMENTS_SINK_SINK_BATCH_MAX_RECORDS", "9"},
                                   {"PAYMENTS_SINK_APPLICATION_ID", "sink-b"},
                                   {"PAYMENTS_SINK_KAFKA_SOCKET_TIMEOUT_MS", "1234"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->batch_max_records, 7);
  EXPECT_EQ(c->application_id, "sink-b");
  EXPECT_EQ(c->consumer_properties.at("socket.timeout.ms"), "1234");
}

TEST(SinkConfigTest, UnknownKeyOrBadValueFailsNamingTheKey) {
  auto unknown = LoadSinkConfig(Sources(With({"sink.batch.max.recrods=7"})));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("sink.batch.max.recrods"), std::string::npos);
  auto bad = LoadSinkConfig(Sources(With({"sink.batch.max.records=0"})));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("sink.batch.max.records"), std::string::npos);
  auto streams_key = LoadSinkConfig(Sources(With({"state.dir=/tmp/x"})));
  ASSERT_FALSE(streams_key.ok());
  EXPECT_NE(streams_key.status().message().find("state.dir"), std::string::npos);
  auto missing = LoadSinkConfig(Sources({"bootstrap.servers=x:1"}));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("sink.database.url"), std::string::npos);
  auto env_bad = LoadSinkConfig(Sources(kRequired, {{"PAYMENTS_SINK_ADMIN_LISTEN", "nope"}}));
  ASSERT_FALSE(env_bad.ok());
  EXPECT_NE(env_bad.status().message().find("admin.listen"), std::string::npos);
}

TEST(SinkConfigTest, WebhookNeedsAValidSecretThatIsNeverPrinted) {
  auto none = LoadSinkConfig(Sources(With({"cdc.webhook.url=http://crm/hook"})));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("cdc.webhook.secret"), std::string::npos);
  auto bad = LoadSinkConfig(
      Sources(With({"cdc.webhook.url=http://crm/hook", "cdc.webhook.secret=whsec_%%%%"})));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("%%%%"), std::string::npos);
  auto ok = LoadSinkConfig(Sources(With({"cdc.webhook.url=http://crm/hook",
                                         "cdc.webhook.secret=whsec_c2VjcmV0 whsec_b2xk"})));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->cdc_webhook_keys, (std::vector<std::string>{"secret", "old"}));
  std::string described = DescribeSinkConfig(*ok);
  EXPECT_EQ(described.find("c2VjcmV0"), std::string::npos) << described;
  EXPECT_EQ(described.find(":pw@"), std::string::npos) << described;
  EXPECT_NE(described.find("sink.database.url = postgresql://u:***@db/x"), std::string::npos)
      << described;
}

TEST(WebhookTest, StandardWebhooksTestVector) {
  // The example of the Standard Webhooks specification.
  auto keys = ParseWebhookSecrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(keys.ok()) << keys.status();
  std::string sig = SignWebhook(*keys, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                R"({"test": 2432232314})");
  EXPECT_EQ(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_TRUE(VerifyWebhook((*keys)[0], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                            R"({"test": 2432232314})", "v1,bogus " + sig));
  EXPECT_FALSE(VerifyWebhook((*keys)[0], "msg_other", 1614265330, R"({"test": 2432232314})", sig));
}

TEST(WebhookTest, RotationSignsWithEverySecretAndOutcomes) {
  std::vector<std::string> keys = {"new-key", "old-key"};
  std::string sig = SignWebhook(keys, "id1", 10, "{}");
  EXPECT_EQ(std::count(sig.begin(), sig.end(), ' '), 1);
  EXPECT_TRUE(VerifyWebhook("old-key", "id1", 10, "{}", sig));
  EXPECT_TRUE(VerifyWebhook("new-key", "id1", 10, "{}", sig));
  EXPECT_EQ(ClassifyWebhook({204, "", std::nullopt}), WebhookOutcome::kDelivered);
  EXPECT_EQ(ClassifyWebhook({410, "", std::nullopt}), WebhookOutcome::kGone);
  EXPECT_EQ(ClassifyWebhook({429, "", std::nullopt}), WebhookOutcome::kRetry);
  EXPECT_EQ(ClassifyWebhook({0, "timeout", std::nullopt}), WebhookOutcome::kRetry);
  EXPECT_FALSE(ParseWebhookSecrets("c2VjcmV0").ok());
  EXPECT_FALSE(Base64Decode("abc").ok());
  EXPECT_EQ(*Base64Decode(Base64Encode("any bytes\x01")), "any bytes\x01");
}

TEST(PaymentRowTest, NamesAndEnvelope) {
  auto c = testing::Confirmation("pay_a", "c1", "m1", 100);
  auto record = testing::Record(c, 3, 42);
  auto decoded = DecodeConfirmation(record);
  ASSERT_TRUE(decoded.ok());
  PaymentRow row = RowFromConfirmation(*decoded, record);
  EXPECT_EQ(row.kind, "PAYMENT");
  EXPECT_EQ(row.decision, "APPROVED");
  EXPECT_EQ(row.confirmation_partition, 3);
  EXPECT_EQ(KindName(payments::v1::REFUND), "REFUND");
  EXPECT_EQ(KindName(0), "UNSPECIFIED");
  ChangeSource src{"payments-sink", "payments.confirmations", 3, 42};
  EXPECT_EQ(EventId(src, 1), "payments.confirmations-3-42-1");
  auto json = nlohmann::json::parse(ChangeEnvelope(std::nullopt, row, src, 5));
  EXPECT_EQ(json["op"], "c");
  EXPECT_EQ(json["after"]["amount_minor"], 100);
  EXPECT_EQ(json["source"]["offset"], 42);
  EXPECT_EQ(json["ts_ms"], 5);
  c.clear_payment_id();
  EXPECT_FALSE(DecodeConfirmation(testing::Record(c, 0, 0)).ok());
  EXPECT_EQ(RefundStatus(5, 10), "PARTIALLY_REFUNDED");
  EXPECT_EQ(RefundStatus(10, 10), "REFUNDED");
}

TEST(BackoffTest, ExponentialCappedWithJitterAndBreaker) {
  std::mt19937_64 rng(1);
  streams::connect::BackoffPolicy policy{std::chrono::milliseconds(100),
                                         std::chrono::milliseconds(1000), 0.5};
  for (int retry = 1; retry <= 10; ++retry) {
    int64_t expected = std::min<int64_t>(1000, 100LL << (retry - 1));
    auto d = streams::connect::BackoffDelay(policy, retry, rng).count();
    EXPECT_LE(d, expected);
    EXPECT_GE(d, expected / 2);
  }
  streams::connect::CircuitBreaker breaker(policy, 2, 7);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(breaker.AllowAttempt(t0));
  breaker.RecordFailure(t0);
  EXPECT_EQ(breaker.state(t0), streams::connect::CircuitBreaker::State::kClosed);
  EXPECT_FALSE(breaker.AllowAttempt(t0));
  breaker.RecordFailure(t0);
  EXPECT_EQ(breaker.state(t0), streams::connect::CircuitBreaker::State::kOpen);
  EXPECT_EQ(breaker.state(t0 + std::chrono::seconds(2)),
            streams::connect::CircuitBreaker::State::kHalfOpen);
  breaker.RecordSuccess();
  EXPECT_TRUE(breaker.AllowAttempt(t0));
  EXPECT_EQ(breaker.state(t0), streams::connect::CircuitBreaker::State::kClosed);
}

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(SinkReadmeTest, ListsEveryConfigKeyWithDefaultAndDescription) {
  std::string readme = ReadFile(SINK_README_PATH);
  ASSERT_FALSE(readme.empty());
  for (const auto& info : kSinkConfigKeys) {
    std::string def = info.default_value.empty() ? (info.required ? "required" : "empty")
                                                 : "`" + std::string(info.default_value) + "`";
    std::string row = "| `" + std::string(info.key) + "` | " + def + " | " +
                      std::string(info.description) + " |";
    EXPECT_NE(readme.find(row), std::string::npos) << "missing row: " << row;
  }
}

}  // namespace
}  // namespace payments_sink

#include <prometheus/registry.h>

#include "sink/outbox_relay.h"
#include "sink/payments_sink_task.h"
#include "streams/connect/connection_pool.h"
#include "streams/connect/sink_metrics.h"

namespace payments_sink {
namespace {

TEST(SinkReadmeTest, ListsEveryMetric) {
  prometheus::Registry registry;
  streams::connect::SinkMetrics metrics(registry, "payments_sink");
  streams::connect::ConnectionPool pool("postgresql://nowhere/x", 1);
  PaymentsSinkTask task(&pool, {}, registry, &metrics);
  OutboxRelayOptions options;
  options.owned_partitions = [] { return std::vector<int32_t>{}; };
  auto relay = OutboxRelay::Create(&pool, options, registry);
  ASSERT_TRUE(relay.ok()) << relay.status();
  std::string readme = ReadFile(SINK_README_PATH);
  // Labelled families appear once they have a child.
  metrics.CountDatabaseRetry("40001");
  metrics.batches.Add({{"result", "committed"}});
  metrics.dead_letters.Add({{"stage", "TASK_PUT"}});
  std::set<std::string> names;
  for (const auto& family : registry.Collect()) {
    EXPECT_NE(readme.find("| `" + family.name), std::string::npos)
        << "metric missing from the README table: " << family.name;
    names.insert(family.name);
  }
  EXPECT_GE(names.size(), 15u);
  // Every unlabelled metric of the README table exists.
  std::regex row(R"(\| `(payments_sink_[a-z_]+)` \| (counter|gauge|histogram) \|)");
  for (std::sregex_iterator it(readme.begin(), readme.end(), row), end; it != end; ++it) {
    EXPECT_EQ(names.count((*it)[1].str()), 1u) << "README names an unknown metric: " << (*it)[1];
  }
}

}  // namespace
}  // namespace payments_sink
