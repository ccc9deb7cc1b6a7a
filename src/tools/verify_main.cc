// payments-verify: reads the requests and confirmations topics (read_committed,
// from the beginning up to the end offsets queried at start) and checks every
// invariant of paymentd's output (see verifier.h).
//
//   payments-verify --bootstrap-servers HOST:PORT [--config paymentd.properties]
//                   [--set key=value]... [--json] [--timeout-ms 60000]
//
// --config/--set take the same file and overrides as paymentd, so validation is
// re-run with the daemon's payments.* settings and topics.
//
// With --database-url, also checks payments-sink's database against the
// confirmations (rows, refunded amounts, merchant balances); with --cdc-topic,
// the CDC events it relayed (see sink_check.h). Run these once the sink has
// caught up (consumer lag 0, outbox backlog 0).
// Exit status: 0 no violation, 1 violations found, 2 usage, config or Kafka error.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "paymentd/paymentd_config.h"
#include "tools/kafka_util.h"
#if PAYMENTS_VERIFY_SINK
#include "tools/sink_check.h"
#endif
#include "tools/verifier.h"

int main(int argc, char** argv) {
  CLI::App app{"payments-verify: checks the invariants of paymentd's confirmations"};
  std::string bootstrap;
  std::optional<std::string> config_file;
  std::vector<std::string> overrides;
  std::string requests_topic;
  std::string confirmations_topic;
  std::vector<std::string> kafka_overrides;
  int64_t timeout_ms = 60000;
  size_t max_examples = 10;
  bool json = false;
  std::string database_url;
  std::string cdc_topic;
  app.add_option("--bootstrap-servers", bootstrap,
                 "Kafka bootstrap servers (default: bootstrap.servers of the config)");
  app.add_option("--config", config_file, "paymentd properties file");
  app.add_option("--set", overrides, "paymentd config override key=value (repeatable)");
  app.add_option("--requests-topic", requests_topic, "default: payments.requests.topic");
  app.add_option("--confirmations-topic", confirmations_topic,
                 "default: payments.confirmations.topic");
  app.add_option("--kafka", kafka_overrides, "librdkafka property key=value (repeatable)");
  app.add_option("--timeout-ms", timeout_ms, "Give up reading after this long")
      ->capture_default_str();
  app.add_option("--max-examples", max_examples, "Examples listed per violation kind")
      ->capture_default_str();
  app.add_flag("--json", json, "Print the report as JSON");
#if PAYMENTS_VERIFY_SINK
  app.add_option("--database-url", database_url,
                 "libpq URI of payments-sink's database: check its rows and balances");
  app.add_option("--cdc-topic", cdc_topic,
                 "payments-sink's CDC topic (e.g. payments.cdc): check its events");
#endif
  CLI11_PARSE(app, argc, argv);

  paymentd::ConfigSources sources;
  sources.properties_file = config_file;
  sources.overrides = overrides;
  if (!bootstrap.empty()) sources.overrides.push_back("bootstrap.servers=" + bootstrap);
  auto config = paymentd::LoadPaymentdConfig(sources);
  if (!config.ok()) {
    std::fprintf(stderr, "payments-verify: configuration: %s\n", config.status().message().c_str());
    return 2;
  }
  if (requests_topic.empty()) requests_topic = config->payments.requests_topic;
  if (confirmations_topic.empty()) confirmations_topic = config->payments.confirmations_topic;

  payments::tools::ReadOptions read;
  for (const auto& [key, value] :
       config->streams.KafkaProperties(streams::runtime::ClientKind::kConsumer)) {
    read.properties.emplace_back(key, value);
  }
  for (const auto& text : kafka_overrides) {
    auto kv = payments::tools::ParseKeyValue(text);
    if (!kv.ok()) {
      std::fprintf(stderr, "payments-verify: --kafka: %s\n", kv.status().message().c_str());
      return 2;
    }
    read.properties.push_back(*kv);
  }
  // Confirmations first: every confirmation inside its snapshot then names a
  // request inside the requests snapshot, which is taken just after.
  read.topics = {confirmations_topic, requests_topic};
  if (!cdc_topic.empty()) read.topics.push_back(cdc_topic);
  read.timeout = std::chrono::milliseconds(timeout_ms);
  auto start = std::chrono::steady_clock::now();
  auto records = payments::tools::ReadTopicsToEnd(read);
  if (!records.ok()) {
    std::fprintf(stderr, "payments-verify: reading: %s\n", records.status().ToString().c_str());
    return 2;
  }
  double read_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  payments::tools::VerifyOptions options;
  options.requests_topic = requests_topic;
  options.max_examples = max_examples;
  payments::tools::VerifyReport report = payments::tools::Verify(
      config->payments, (*records)[requests_topic], (*records)[confirmations_topic], options);
#if PAYMENTS_VERIFY_SINK
  payments::tools::SinkCheckReport sink;
  const bool check_sink = !database_url.empty() || !cdc_topic.empty();
  if (check_sink) {
    const payments_sink::Ledger expected =
        payments::tools::ExpectedLedgerOf((*records)[confirmations_topic]);
    payments::tools::SetExpectation(expected, sink);
    if (!database_url.empty()) {
      streams::Status status =
          payments::tools::CheckDatabase(expected, database_url, max_examples, sink);
      if (!status.ok()) {
        std::fprintf(stderr, "payments-verify: database: %s\n", status.ToString().c_str());
        return 2;
      }
    }
    if (!cdc_topic.empty()) {
      payments::tools::CheckCdc(expected, (*records)[cdc_topic], max_examples, sink);
    }
  }
#else
  struct {
    bool ok() const { return true; }
    std::string ToText() const { return ""; }
  } sink;
  const bool check_sink = false;
#endif
  if (json) {
    std::printf("%s\n", report.ToJson().c_str());
  } else {
    std::printf("payments-verify: read %zu requests (%s) and %zu confirmations (%s) in %.2f s\n",
                (*records)[requests_topic].size(), requests_topic.c_str(),
                (*records)[confirmations_topic].size(), confirmations_topic.c_str(), read_seconds);
    std::printf("%s", report.ToText().c_str());
  }
  // The sink's checks are text only (after the JSON document with --json: on stderr).
  if (check_sink) std::fprintf(json ? stderr : stdout, "%s", sink.ToText().c_str());
  std::fflush(stdout);
  return report.ok() && sink.ok() ? 0 : 1;
}
