// kafka-mock: runs librdkafka's mock Kafka cluster until SIGTERM/SIGINT.
//
//   kafka-mock [--brokers 3] [--topic payments.requests:4]...
//
// Prints "bootstrap.servers=<host:port,...>" on stdout (flushed) once the
// cluster is up and the topics exist. See mock_cluster.h for the limitations of
// the mock (no aborted-record filtering, no stored transactional offsets, logs
// trimmed at ~100k records).
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/mock_cluster.h"

namespace {

struct TopicArg {
  std::string name;
  int partitions = 4;
};

streams::Result<TopicArg> ParseTopicArg(const std::string& text) {
  TopicArg arg;
  auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    arg.name = text;
  } else {
    arg.name = text.substr(0, colon);
    const char* begin = text.data() + colon + 1;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(begin, end, arg.partitions);
    if (ec != std::errc() || ptr != end || arg.partitions < 1) {
      return streams::Status::InvalidArgument("--topic '" + text +
                                              "': expected name:partitions with partitions >= 1");
    }
  }
  if (arg.name.empty()) {
    return streams::Status::InvalidArgument("--topic '" + text + "': empty topic name");
  }
  return arg;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kafka-mock: librdkafka's in-process mock Kafka cluster, for demos and tests"};
  int brokers = 3;
  std::vector<std::string> topics;
  app.add_option("--brokers", brokers, "Number of mock brokers")->check(CLI::Range(1, 16));
  app.add_option("--topic", topics, "Topic to create, as name[:partitions] (default 4 partitions)")
      ->take_all();
  CLI11_PARSE(app, argc, argv);

  auto logger = spdlog::stderr_color_mt("kafka-mock");
  spdlog::set_default_logger(logger);

  // Block the stop signals in every thread (librdkafka's threads inherit the
  // mask), then wait for them synchronously below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::vector<TopicArg> parsed;
  for (const auto& text : topics) {
    auto arg = ParseTopicArg(text);
    if (!arg.ok()) {
      spdlog::error("{}", arg.status().message());
      return 2;
    }
    parsed.push_back(*arg);
  }

  auto cluster = payments::tools::MockCluster::Create(brokers);
  if (!cluster.ok()) {
    spdlog::error("cannot start the mock cluster: {}", cluster.status().ToString());
    return 1;
  }
  for (const auto& topic : parsed) {
    if (auto status = (*cluster)->CreateTopic(topic.name, topic.partitions); !status.ok()) {
      spdlog::error("{}", status.ToString());
      return 1;
    }
    spdlog::info("created topic {} with {} partitions", topic.name, topic.partitions);
  }
  std::printf("bootstrap.servers=%s\n", (*cluster)->bootstrap_servers().c_str());
  std::fflush(stdout);
  spdlog::info("mock cluster with {} brokers at {}; stop with SIGTERM or SIGINT", brokers,
               (*cluster)->bootstrap_servers());

  int received = 0;
  sigwait(&stop_signals, &received);
  spdlog::info("received signal {}, stopping", received);
  cluster->reset();
  return 0;
}
