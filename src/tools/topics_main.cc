// payments-topics: creates Kafka topics with the Admin API (CreateTopics) if
// they do not exist yet; used by scripts/demo.sh against devbroker or a real
// cluster (librdkafka's mock cluster does not implement CreateTopics: use
// kafka-mock --topic there).
//
//   payments-topics --bootstrap-servers HOST:PORT --topic payments.requests:4 ...
//
// Prints "created <topic>" or "exists <topic>" per topic. Exit status: 0 when
// every topic exists afterwards, 1 on a broker error, 2 on bad usage.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/kafka_util.h"

int main(int argc, char** argv) {
  CLI::App app{"payments-topics: creates Kafka topics that do not exist yet"};
  std::string bootstrap;
  std::vector<std::string> topic_args;
  int default_partitions = 4;
  int replication_factor = 1;
  std::vector<std::string> kafka_overrides;
  int64_t timeout_ms = 30000;
  app.add_option("--bootstrap-servers", bootstrap, "Kafka bootstrap servers")->required();
  app.add_option("--topic", topic_args, "name[:partitions] (repeatable)")->required();
  app.add_option("--partitions", default_partitions, "Partitions when not given per topic")
      ->capture_default_str();
  app.add_option("--replication-factor", replication_factor)->capture_default_str();
  app.add_option("--kafka", kafka_overrides, "librdkafka property key=value (repeatable)");
  app.add_option("--timeout-ms", timeout_ms)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<payments::tools::TopicSpec> specs;
  for (const auto& arg : topic_args) {
    payments::tools::TopicSpec spec;
    spec.partitions = default_partitions;
    spec.replication_factor = replication_factor;
    auto colon = arg.rfind(':');
    spec.name = arg.substr(0, colon);
    if (colon != std::string::npos) {
      const char* end = arg.data() + arg.size();
      auto [ptr, ec] = std::from_chars(arg.data() + colon + 1, end, spec.partitions);
      if (ec != std::errc() || ptr != end || spec.partitions < 1) {
        std::fprintf(stderr, "payments-topics: --topic '%s': expected name:partitions\n",
                     arg.c_str());
        return 2;
      }
    }
    specs.push_back(spec);
  }
  payments::tools::KafkaProperties properties = {{"bootstrap.servers", bootstrap}};
  for (const auto& text : kafka_overrides) {
    auto kv = payments::tools::ParseKeyValue(text);
    if (!kv.ok()) {
      std::fprintf(stderr, "payments-topics: --kafka: %s\n", kv.status().message().c_str());
      return 2;
    }
    properties.push_back(*kv);
  }
  auto outcomes =
      payments::tools::CreateTopics(properties, specs, std::chrono::milliseconds(timeout_ms));
  if (!outcomes.ok()) {
    std::fprintf(stderr, "payments-topics: %s\n", outcomes.status().ToString().c_str());
    return 1;
  }
  for (const auto& [name, outcome] : *outcomes) {
    std::printf("%s %s\n",
                outcome == payments::tools::TopicOutcome::kCreated ? "created" : "exists",
                name.c_str());
  }
  return 0;
}
