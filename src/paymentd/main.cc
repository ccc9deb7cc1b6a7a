// paymentd: the exactly-once payments decision daemon.
//
//   paymentd [--config paymentd.properties] [--set key=value]...
//
// Reads PaymentRequests from payments.requests.topic, decides each one with
// the payments topology (src/payments) on the Kafka Streams-style runtime, and
// writes exactly one PaymentConfirmation per request to
// payments.confirmations.topic. Serves /metrics, /healthz and /readyz on
// admin.listen. SIGTERM/SIGINT stop it gracefully (the current cycle is
// committed, tasks closed cleanly); a second signal forces exit.
//
// Exit status: 0 after a graceful stop, 1 when the runtime failed, 2 for a
// configuration or startup error.
#include <prometheus/registry.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "paymentd/admin_server.h"
#include "paymentd/decision_metrics.h"
#include "paymentd/paymentd_config.h"
#include "paymentd/process_metrics.h"
#include "payments/payments_topology.h"
#include "streams/runtime/kafka_streams.h"
#include "streams/runtime/signals.h"

namespace {

using streams::runtime::KafkaStreams;

std::string JoinTasks(const std::vector<streams::TaskId>& tasks) {
  std::string out;
  for (const auto& task : tasks) {
    if (!out.empty()) out += ", ";
    out += task.ToString();
  }
  return "[" + out + "]";
}

// Logs what changed in the runtime's counters since the last call: restores,
// aborted cycles (commit failures), fenced producers, delivery errors.
class StatsReporter {
 public:
  void Report(const streams::runtime::KafkaStreamsStats& now) {
    if (now.records_restored > last_.records_restored) {
      spdlog::info("restore: {} changelog records applied ({} in total)",
                   now.records_restored - last_.records_restored, now.records_restored);
    }
    if (now.transactions_aborted > last_.transactions_aborted) {
      spdlog::warn("commit failures: {} cycles aborted and retried ({} in total)",
                   now.transactions_aborted - last_.transactions_aborted, now.transactions_aborted);
    }
    if (now.producer_fenced > last_.producer_fenced) {
      spdlog::error("producer fenced or failed {} times ({} in total): tasks re-created",
                    now.producer_fenced - last_.producer_fenced, now.producer_fenced);
    }
    if (now.delivery_errors > last_.delivery_errors) {
      spdlog::warn("delivery errors: {} ({} in total)", now.delivery_errors - last_.delivery_errors,
                   now.delivery_errors);
    }
    if (now.dead_letter_records > last_.dead_letter_records) {
      spdlog::warn("dead letters: {} undecodable records ({} in total)",
                   now.dead_letter_records - last_.dead_letter_records, now.dead_letter_records);
    }
    last_ = now;
  }

 private:
  streams::runtime::KafkaStreamsStats last_;
};

int Run(const paymentd::ConfigSources& sources) {
  auto config = paymentd::LoadPaymentdConfig(sources);
  if (!config.ok()) {
    spdlog::error("configuration: {}", config.status().message());
    return 2;
  }
  spdlog::info(
      "paymentd {} ({}) starting: application.id={} bootstrap.servers={} requests={} "
      "confirmations={} guarantee={} threads={}",
      paymentd::BuildVersion(), paymentd::BuildRevision(), config->streams.application_id(),
      config->streams.bootstrap_servers(), config->payments.requests_topic,
      config->payments.confirmations_topic,
      streams::runtime::ProcessingGuaranteeName(config->streams.processing_guarantee()),
      config->streams.num_stream_threads());
  for (const auto& line : [&] {
         std::vector<std::string> lines;
         std::string text = paymentd::DescribeConfigMasked(*config);
         size_t start = 0;
         while (start < text.size()) {
           size_t end = text.find('\n', start);
           if (end == std::string::npos) end = text.size();
           lines.push_back(text.substr(start, end - start));
           start = end + 1;
         }
         return lines;
       }()) {
    spdlog::info("config: {}", line);
  }

  auto registry = std::make_shared<prometheus::Registry>();
  if (auto status = paymentd::RegisterBuildInfo(*registry, "paymentd"); !status.ok()) {
    spdlog::error("metrics: {}", status.ToString());
    return 2;
  }
  paymentd::DecisionMetrics decisions(*registry);
  auto topology = payments::BuildPaymentsTopology(config->payments, nullptr, &decisions);
  if (!topology.ok()) {
    spdlog::error("topology: {}", topology.status().ToString());
    return 2;
  }
  spdlog::info("topology:\n{}", (*topology)->Describe());

  auto streams = KafkaStreams::Create(**topology, config->streams, registry);
  if (!streams.ok()) {
    spdlog::error("runtime: {}", streams.status().ToString());
    return 2;
  }
  // (The runtime logs its own state transitions, assignments and restores.)
  KafkaStreams* runtime = streams->get();

  if (auto status = streams::runtime::InstallSignalHandlers(); !status.ok()) {
    spdlog::error("signals: {}", status.ToString());
    return 2;
  }

  paymentd::AdminProbes probes;
  probes.unhealthy_reason = [runtime]() -> std::string {
    if (runtime->state() != KafkaStreams::State::kError) return "";
    return runtime->error().ToString();
  };
  probes.ready = [runtime] { return runtime->IsReady(); };
  auto admin = paymentd::AdminServer::Start(config->admin_listen, registry, probes);
  if (!admin.ok()) {
    spdlog::error("admin: {}", admin.status().ToString());
    return 2;
  }
  spdlog::info("admin listening on {}", (*admin)->bound().ToString());

  if (auto status = runtime->Start(); !status.ok()) {
    spdlog::error("start: {}", status.ToString());
    (*admin)->Stop();
    return 2;
  }

  StatsReporter reporter;
  std::vector<streams::TaskId> tasks;
  bool was_ready = false;
  int exit_code = 0;
  while (!streams::runtime::WaitForShutdownSignal(std::chrono::milliseconds(500))) {
    if (runtime->state() == KafkaStreams::State::kError) {
      spdlog::error("runtime failed: {}", runtime->error().ToString());
      exit_code = 1;
      break;
    }
    auto now_tasks = runtime->assigned_tasks();
    if (now_tasks != tasks) {
      spdlog::info("assignment: {} tasks {}", now_tasks.size(), JoinTasks(now_tasks));
      tasks = std::move(now_tasks);
    }
    bool ready = runtime->IsReady();
    if (ready != was_ready) {
      spdlog::info(ready ? "ready: every assigned task is restored and processing" : "not ready");
      was_ready = ready;
    }
    reporter.Report(runtime->stats());
  }
  if (auto signal = streams::runtime::ShutdownSignal()) {
    spdlog::info("received signal {}, stopping gracefully (send it again to force exit)", *signal);
  }
  streams::Status stopped = runtime->Stop();
  reporter.Report(runtime->stats());
  if (!stopped.ok()) {
    spdlog::error("stop: {}", stopped.ToString());
    if (exit_code == 0) exit_code = 1;
  }
  auto stats = runtime->stats();
  spdlog::info("stopped: {} records processed, {} transactions committed, {} aborted",
               stats.records_processed, stats.transactions_committed, stats.transactions_aborted);
  (*admin)->Stop();
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"paymentd: exactly-once payment decisions on Kafka"};
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

  auto logger = spdlog::stderr_color_mt("paymentd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  if (print_config) {
    auto config = paymentd::LoadPaymentdConfig(sources);
    if (!config.ok()) {
      std::fprintf(stderr, "paymentd: configuration: %s\n", config.status().message().c_str());
      return 2;
    }
    std::printf("%s", paymentd::DescribeConfigMasked(*config).c_str());
    return 0;
  }
  return Run(sources);
}
