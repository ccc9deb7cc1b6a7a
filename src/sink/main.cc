// payments-sink: exactly-once upserts of PaymentConfirmations into
// CockroachDB / PostgreSQL, and CDC of the changes to Kafka and a webhook.
//
//   payments-sink [--config payments-sink.properties] [--set key=value]...
//
// See src/sink/README.md. Exit status: 0 after a graceful stop (SIGTERM /
// SIGINT: the batch in hand is written and committed, then the group is
// left), 1 on a fatal consumer error, 2 for a configuration or startup error.
#include <prometheus/registry.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <memory>
#include <sstream>
#include <thread>

#include "paymentd/admin_server.h"
#include "paymentd/process_metrics.h"
#include "payments/pan.h"
#include "sink/outbox_relay.h"
#include "sink/payments_sink_task.h"
#include "sink/sink_config.h"
#include "streams/connect/connection_pool.h"
#include "streams/connect/sink_runner.h"
#include "streams/runtime/signals.h"

namespace {

using namespace payments_sink;

int Run(const paymentd::ConfigSources& sources) {
  auto config = LoadSinkConfig(sources);
  if (!config.ok()) {
    spdlog::error("configuration: {}", config.status().message());
    return 2;
  }
  spdlog::info("payments-sink {} ({}) starting", paymentd::BuildVersion(),
               paymentd::BuildRevision());
  std::istringstream described(DescribeSinkConfig(*config));
  for (std::string line; std::getline(described, line);) spdlog::info("config: {}", line);

  if (auto s = streams::runtime::InstallSignalHandlers(); !s.ok()) {
    spdlog::error("signals: {}", s.ToString());
    return 2;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  if (auto s = paymentd::RegisterBuildInfo(*registry, "payments_sink"); !s.ok()) {
    spdlog::error("metrics: {}", s.ToString());
    return 2;
  }
  streams::connect::SinkMetrics metrics(*registry, "payments_sink");
  streams::connect::ConnectionPool pool(config->database_url, config->database_pool_size);

  PaymentsSinkTaskOptions task_options;
  task_options.group_id = config->application_id;
  task_options.cdc_kafka = !config->cdc_kafka_topic.empty();
  task_options.cdc_webhook = !config->cdc_webhook_url.empty();
  task_options.full_batch_rows = static_cast<size_t>(config->batch_max_records);
  task_options.retry.max_attempts = config->retry_max_attempts;
  task_options.retry.initial_backoff = std::chrono::milliseconds(10);
  task_options.retry.max_backoff = config->retry_max;
  PaymentsSinkTask task(&pool, task_options, *registry, &metrics);

  streams::connect::SinkRunnerOptions options;
  options.connector_name = config->application_id;
  options.group_id = config->application_id;
  options.topics = {config->topic};
  options.consumer_properties = config->consumer_properties;
  options.producer_properties = config->producer_properties;
  options.dead_letter_topic = config->dlq_topic;
  options.batch_max_records = config->batch_max_records;
  options.batch_max_wait = config->batch_max_wait;
  options.retry_backoff = {config->retry_initial, config->retry_max, 0.5};
  options.breaker_open_after = config->circuit_open_after;
  options.start_from_earliest = config->start_from_earliest;
  options.commit_offsets_to_kafka = config->commit_offsets_to_kafka;
  options.redact = [](std::string_view text) { return payments::RedactPans(text); };
  auto runner = streams::connect::SinkRunner::Create(&task, options, &metrics);
  if (!runner.ok()) {
    spdlog::error("kafka: {}", runner.status().ToString());
    return 2;
  }
  streams::connect::SinkRunner* r = runner->get();

  std::atomic<bool> migrated{false};
  paymentd::AdminProbes probes;
  probes.unhealthy_reason = [r] { return r->unhealthy_reason(); };
  probes.ready = [r, &migrated] { return migrated.load() && r->ready(); };
  auto admin = paymentd::AdminServer::Start(config->admin_listen, registry, probes);
  if (!admin.ok()) {
    spdlog::error("admin: {}", admin.status().ToString());
    return 2;
  }
  spdlog::info("admin listening on {}", (*admin)->bound().ToString());

  // Migrations: wait for the database rather than fail (not ready meanwhile).
  streams::connect::CircuitBreaker breaker({config->retry_initial, config->retry_max, 0.5}, 1);
  while (!streams::runtime::ShutdownRequested()) {
    streams::Status s = task.Migrate();
    if (s.ok()) break;
    if (s.code() != streams::StatusCode::kUnavailable &&
        s.code() != streams::StatusCode::kTimedOut && s.code() != streams::StatusCode::kAborted) {
      spdlog::error("schema migration: {}", s.ToString());
      return 2;
    }
    auto delay = breaker.RecordFailure(std::chrono::steady_clock::now());
    spdlog::warn("schema migration: {} (retry in {} ms)", s.ToString(), delay.count());
    streams::runtime::WaitForShutdownSignal(delay);
  }
  if (streams::runtime::ShutdownRequested()) return 0;
  migrated = true;
  spdlog::info("schema up to date");

  std::unique_ptr<OutboxRelay> relay;
  if (task_options.cdc_kafka || task_options.cdc_webhook) {
    OutboxRelayOptions relay_options;
    relay_options.kafka_topic = config->cdc_kafka_topic;
    relay_options.producer_properties = config->producer_properties;
    relay_options.webhook_url = config->cdc_webhook_url;
    relay_options.webhook_keys = config->cdc_webhook_keys;
    relay_options.webhook_timeout = config->cdc_webhook_timeout;
    relay_options.webhook_max_attempts = config->cdc_webhook_max_attempts;
    relay_options.webhook_backoff = {config->cdc_webhook_retry_initial,
                                     config->cdc_webhook_retry_max, 0.5};
    relay_options.interval = config->cdc_relay_interval;
    relay_options.batch_max_events = config->cdc_relay_batch_max_events;
    relay_options.retention = config->cdc_outbox_retention;
    relay_options.source_topic = config->topic;
    relay_options.connector_name = config->application_id;
    const std::string topic = config->topic;
    relay_options.owned_partitions = [r, topic] {
      std::vector<int32_t> parts;
      for (const auto& tp : r->owned_partitions()) {
        if (tp.topic == topic) parts.push_back(tp.partition.value());
      }
      return parts;
    };
    auto created = OutboxRelay::Create(&pool, relay_options, *registry);
    if (!created.ok()) {
      spdlog::error("cdc: {}", created.status().ToString());
      return 2;
    }
    relay = std::move(*created);
    relay->Start();
    spdlog::info("cdc relay started (kafka: {}, webhook: {})",
                 task_options.cdc_kafka ? config->cdc_kafka_topic : "off",
                 task_options.cdc_webhook ? "on" : "off");
  }

  std::atomic<bool> stop{false};
  std::thread watcher([&stop] {
    while (!streams::runtime::WaitForShutdownSignal(std::chrono::milliseconds(200))) {
    }
    stop = true;
  });
  spdlog::info("payments-sink consuming {} as group {}", config->topic, config->application_id);
  streams::Status ran = r->Run(stop);
  if (auto signal = streams::runtime::ShutdownSignal()) {
    spdlog::info("received signal {}, stopped gracefully", *signal);
  }
  if (!ran.ok()) {
    streams::runtime::RequestShutdown();
  }
  watcher.join();
  if (relay) relay->Stop();
  auto stats = r->stats();
  spdlog::info("stopped: {} records written in {} batches, {} dead letters, {} fenced batches",
               stats.records_written, stats.batches_committed, stats.dead_letters, stats.fenced);
  (*admin)->Stop();
  if (!ran.ok()) {
    spdlog::error("consumer: {}", ran.ToString());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"payments-sink: exactly-once PaymentConfirmations into CockroachDB/PostgreSQL"};
  paymentd::ConfigSources sources;
  std::string log_level = "info";
  bool print_config = false;
  app.add_option("--config", sources.properties_file, "Properties file");
  app.add_option("--set", sources.overrides, "Override key=value (repeatable, highest precedence)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_flag("--print-config", print_config,
               "Print the effective configuration (secrets masked) and exit");
  CLI11_PARSE(app, argc, argv);

  auto logger = spdlog::stderr_color_mt("payments-sink");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::flush_on(spdlog::level::info);

  if (print_config) {
    auto config = LoadSinkConfig(sources);
    if (!config.ok()) {
      std::fprintf(stderr, "payments-sink: configuration: %s\n", config.status().message().c_str());
      return 2;
    }
    std::printf("%s", DescribeSinkConfig(*config).c_str());
    return 0;
  }
  return Run(sources);
}
