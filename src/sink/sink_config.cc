#include "sink/sink_config.h"

#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "sink/webhook.h"

namespace payments_sink {

using streams::Result;
using streams::Status;
using streams::runtime::ClientKind;
using streams::runtime::StreamsConfig;

namespace {

// Kafka Streams keys of the runtime's builder that mean nothing to the sink.
constexpr std::string_view kStreamsOnlyKeys[] = {"processing.guarantee",
                                                 "commit.interval.ms",
                                                 "commit.max.records",
                                                 "commit.adaptive",
                                                 "num.stream.threads",
                                                 "num.standby.replicas",
                                                 "state.dir",
                                                 "instance.id",
                                                 "static.membership",
                                                 "rebalance.protocol",
                                                 "dead.letter.topic",
                                                 "replication.factor",
                                                 "statestore.cache.max.bytes",
                                                 "state.write.buffer.bytes",
                                                 "transaction.timeout.ms",
                                                 "poll.ms",
                                                 "restore.batch.records",
                                                 "max.poll.records",
                                                 "offsets.lookup.timeout.ms",
                                                 "processing.exception.handler"};

bool IsStreamsOnly(std::string_view key) {
  for (std::string_view k : kStreamsOnlyKeys) {
    if (k == key) return true;
  }
  return false;
}

bool IsBuiltin(std::string_view key) {
  return key == "bootstrap.servers" || key == "application.id" || key == "auto.offset.reset";
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos ||
        entry.substr(0, kEnvironmentPrefix.size()) != kEnvironmentPrefix) {
      continue;
    }
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::string RedactUri(const std::string& uri) {
  static const std::regex kKeyValue(R"(password\s*=\s*[^\s&]+)", std::regex::icase);
  static const std::regex kUserInfo(R"(://([^:/@]+):[^@/]*@)");
  return std::regex_replace(std::regex_replace(uri, kKeyValue, "password=***"), kUserInfo,
                            "://$1:***@");
}

}  // namespace

Result<SinkConfig> LoadSinkConfig(const paymentd::ConfigSources& sources) {
  StreamsConfig::Builder builder;
  for (const SinkConfigKey& info : kSinkConfigKeys) {
    if (IsBuiltin(info.key)) continue;
    std::optional<std::string> def;
    if (!info.required) def = std::string(info.default_value);
    switch (info.type) {
      case KeyType::kInt:
        builder.DefineInt(std::string(info.key),
                          def ? std::optional<int64_t>(std::stoll(*def)) : std::nullopt, info.min,
                          info.max, std::string(info.description));
        break;
      case KeyType::kBool:
        builder.DefineBool(std::string(info.key),
                           def ? std::optional<bool>(*def == "true") : std::nullopt,
                           std::string(info.description));
        break;
      default:
        builder.DefineString(std::string(info.key), def, std::string(info.description),
                             info.secret);
        break;
    }
    if (info.required) builder.Require(std::string(info.key));
  }
  STREAMS_RETURN_IF_ERROR(
      builder.LoadPropertiesText("application.id=payments-sink\n", "payments-sink defaults"));
  if (sources.properties_file) {
    std::ifstream in(*sources.properties_file, std::ios::in | std::ios::binary);
    if (!in) {
      return Status::IoError("cannot read properties file '" + *sources.properties_file + "'");
    }
    std::stringstream text;
    text << in.rdbuf();
    STREAMS_RETURN_IF_ERROR(builder.LoadPropertiesText(text.str(), *sources.properties_file));
  }
  builder.LoadEnvironment(kEnvironmentPrefix,
                          sources.environment ? *sources.environment : ProcessEnvironment());
  for (const auto& assignment : sources.overrides) {
    STREAMS_RETURN_IF_ERROR(builder.SetAssignment(assignment).WithContext("--set"));
  }
  STREAMS_ASSIGN_OR_RETURN(StreamsConfig raw, builder.Build());

  std::vector<std::string> problems;
  for (std::string_view key : kStreamsOnlyKeys) {
    auto origin = raw.Origin(key);
    if (origin && *origin != "default") {
      problems.push_back("key '" + std::string(key) + "' (" + *origin +
                         "): not a payments-sink setting");
    }
  }
  auto origin_of = [&](std::string_view key) { return raw.Origin(key).value_or("default"); };
  SinkConfig c{std::move(raw)};
  const StreamsConfig& r = c.raw;
  auto str = [&](std::string_view key) { return r.GetRaw(key).value_or(""); };
  auto num = [&](std::string_view key) { return r.GetInt(key).ok() ? *r.GetInt(key) : 0; };
  c.bootstrap_servers = r.bootstrap_servers();
  c.application_id = r.application_id();
  c.start_from_earliest = r.auto_offset_reset() == streams::runtime::OffsetReset::kEarliest;
  c.topic = str("sink.topic");
  c.dlq_topic = str("sink.dlq.topic");
  c.database_url = str("sink.database.url");
  c.database_pool_size = static_cast<int>(num("sink.database.pool.size"));
  c.batch_max_records = static_cast<int>(num("sink.batch.max.records"));
  c.batch_max_wait = std::chrono::milliseconds(num("sink.batch.max.wait.ms"));
  c.retry_initial = std::chrono::milliseconds(num("sink.retry.initial.ms"));
  c.retry_max = std::chrono::milliseconds(num("sink.retry.max.ms"));
  c.retry_max_attempts = static_cast<int>(num("sink.retry.max.attempts"));
  c.circuit_open_after = static_cast<int>(num("sink.circuit.open.after"));
  c.commit_offsets_to_kafka =
      r.GetBool("sink.kafka.commit.offsets").ok() && *r.GetBool("sink.kafka.commit.offsets");
  c.cdc_kafka_topic = str("cdc.kafka.topic");
  c.cdc_webhook_url = str("cdc.webhook.url");
  c.cdc_webhook_timeout = std::chrono::milliseconds(num("cdc.webhook.timeout.ms"));
  c.cdc_webhook_max_attempts = static_cast<int>(num("cdc.webhook.max.attempts"));
  c.cdc_webhook_retry_initial = std::chrono::milliseconds(num("cdc.webhook.retry.initial.ms"));
  c.cdc_webhook_retry_max = std::chrono::milliseconds(num("cdc.webhook.retry.max.ms"));
  c.cdc_relay_interval = std::chrono::milliseconds(num("cdc.relay.interval.ms"));
  c.cdc_relay_batch_max_events = static_cast<int>(num("cdc.relay.batch.max.events"));
  c.cdc_outbox_retention = std::chrono::milliseconds(num("cdc.outbox.retention.ms"));

  auto bad = [&](std::string_view key, const std::string& why) {
    problems.push_back("key '" + std::string(key) + "' (" + origin_of(key) + "): " + why);
  };
  if (c.topic.empty()) bad("sink.topic", "must not be empty");
  if (c.dlq_topic.empty()) bad("sink.dlq.topic", "must not be empty");
  if (c.dlq_topic == c.topic && !c.topic.empty())
    bad("sink.dlq.topic", "must differ from sink.topic");
  if (c.database_url.empty()) bad("sink.database.url", "must not be empty");
  if (c.retry_max < c.retry_initial) bad("sink.retry.max.ms", "must be >= sink.retry.initial.ms");
  if (!c.cdc_webhook_url.empty()) {
    if (c.cdc_webhook_url.rfind("http://", 0) != 0 && c.cdc_webhook_url.rfind("https://", 0) != 0) {
      bad("cdc.webhook.url", "must start with http:// or https://");
    }
    auto keys = ParseWebhookSecrets(str("cdc.webhook.secret"));
    if (!keys.ok()) {
      bad("cdc.webhook.secret", keys.status().message() + " (required with cdc.webhook.url)");
    } else {
      c.cdc_webhook_keys = std::move(*keys);
    }
  } else if (!str("cdc.webhook.secret").empty()) {
    auto keys = ParseWebhookSecrets(str("cdc.webhook.secret"));
    if (!keys.ok()) bad("cdc.webhook.secret", keys.status().message());
  }
  auto listen = paymentd::ParseListenAddress(str("admin.listen"));
  if (!listen.ok()) {
    bad("admin.listen", listen.status().message());
  } else {
    c.admin_listen = *listen;
  }
  if (!problems.empty()) {
    std::string message;
    for (const auto& p : problems) message += (message.empty() ? "" : "; ") + p;
    return Status::InvalidArgument(message);
  }
  c.consumer_properties = r.KafkaProperties(ClientKind::kConsumer);
  c.producer_properties = r.KafkaProperties(ClientKind::kProducer);
  return c;
}

std::string DescribeSinkConfig(const SinkConfig& config) {
  std::string text = paymentd::DescribeConfigMasked(config.raw);
  // The URL is a secret key (masked by Describe); show it with only the password hidden.
  std::string out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    // The runtime's keys that payments-sink refuses are not its settings.
    if (IsStreamsOnly(line.substr(0, line.find(" = ")))) continue;
    if (line.rfind("sink.database.url = ", 0) == 0) {
      line = "sink.database.url = " + RedactUri(config.database_url) + " (" +
             config.raw.Origin("sink.database.url").value_or("default") + ")";
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace payments_sink
