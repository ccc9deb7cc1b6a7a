// devbroker throughput benchmark: produces N records with an idempotent
// librdkafka producer, then consumes them back (read_committed), and prints
// records/s and MB/s for both phases.
//
//   devbroker_bench [--records N] [--size BYTES] [--partitions P]
//                   [--bootstrap host:port]
//
// Without --bootstrap an in-process devbroker on an ephemeral port is used.

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "devbroker/broker.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

bool Set(rd_kafka_conf_t* conf, const char* k, const std::string& v) {
  char err[512];
  if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof(err)) !=
      RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "config %s: %s\n", k, err);
    return false;
  }
  return true;
}

int g_delivery_errors = 0;

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err) ++g_delivery_errors;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"devbroker throughput benchmark"};
  int64_t records = 200000;
  int size = 100;
  int partitions = 4;
  std::string bootstrap;
  app.add_option("--records", records, "records to produce")->capture_default_str();
  app.add_option("--size", size, "value size in bytes")->capture_default_str();
  app.add_option("--partitions", partitions, "topic partitions")
      ->capture_default_str();
  app.add_option("--bootstrap", bootstrap,
                 "external broker (default: in-process devbroker)");
  CLI11_PARSE(app, argc, argv);

  std::unique_ptr<devbroker::Broker> broker;
  if (bootstrap.empty()) {
    devbroker::BrokerOptions options;
    options.log_level = "warn";
    options.default_partitions = partitions;
    broker = std::make_unique<devbroker::Broker>(options);
    devbroker::Status s = broker->Start();
    if (!s.ok()) {
      std::fprintf(stderr, "broker start failed: %s\n", s.message().c_str());
      return 1;
    }
    bootstrap = broker->bootstrap_servers();
  }
  const std::string topic =
      "bench-" + std::to_string(Clock::now().time_since_epoch().count());

  // --- produce ---
  char err[512];
  rd_kafka_conf_t* pconf = rd_kafka_conf_new();
  Set(pconf, "bootstrap.servers", bootstrap);
  Set(pconf, "enable.idempotence", "true");
  Set(pconf, "linger.ms", "5");
  Set(pconf, "batch.num.messages", "10000");
  Set(pconf, "queue.buffering.max.messages", "1000000");
  rd_kafka_conf_set_dr_msg_cb(pconf, OnDelivery);
  rd_kafka_t* producer =
      rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
  if (producer == nullptr) {
    std::fprintf(stderr, "producer: %s\n", err);
    return 1;
  }
  std::string value(static_cast<size_t>(size), 'x');
  auto t0 = Clock::now();
  for (int64_t i = 0; i < records; ++i) {
    std::string key = std::to_string(i);
    while (true) {
      rd_kafka_resp_err_t e = rd_kafka_producev(
          producer, RD_KAFKA_V_TOPIC(topic.c_str()),
          RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(value.data(), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(producer, 10);
        continue;
      }
      if (e) {
        std::fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
        return 1;
      }
      break;
    }
    if ((i & 1023) == 0) rd_kafka_poll(producer, 0);
  }
  rd_kafka_flush(producer, 120000);
  auto t1 = Clock::now();
  rd_kafka_destroy(producer);
  if (g_delivery_errors > 0) {
    std::fprintf(stderr, "%d delivery errors\n", g_delivery_errors);
    return 1;
  }

  // --- consume ---
  rd_kafka_conf_t* cconf = rd_kafka_conf_new();
  Set(cconf, "bootstrap.servers", bootstrap);
  Set(cconf, "group.id", "bench-group");
  Set(cconf, "isolation.level", "read_committed");
  Set(cconf, "enable.auto.commit", "false");
  Set(cconf, "fetch.wait.max.ms", "100");
  rd_kafka_t* consumer =
      rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof(err));
  if (consumer == nullptr) {
    std::fprintf(stderr, "consumer: %s\n", err);
    return 1;
  }
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* parts =
      rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(consumer, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  int64_t consumed = 0;
  int64_t bytes = 0;
  auto t2 = Clock::now();
  auto deadline = t2 + std::chrono::seconds(120);
  while (consumed < records && Clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (m == nullptr) continue;
    if (!m->err) {
      ++consumed;
      bytes += static_cast<int64_t>(m->len + m->key_len);
    }
    rd_kafka_message_destroy(m);
  }
  auto t3 = Clock::now();
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);

  double produce_s = Seconds(t0, t1);
  double consume_s = Seconds(t2, t3);
  double payload_mb = static_cast<double>(records) * size / 1e6;
  std::printf("records=%lld value_size=%d partitions=%d broker=%s\n",
              static_cast<long long>(records), size, partitions,
              broker ? "in-process" : bootstrap.c_str());
  std::printf("produce (idempotent, acks=all): %.2f s, %.0f records/s, %.2f MB/s\n",
              produce_s, records / produce_s, payload_mb / produce_s);
  std::printf("consume (read_committed):       %.2f s, %.0f records/s, %.2f MB/s "
              "(%lld records, %lld payload bytes)\n",
              consume_s, consumed / consume_s,
              static_cast<double>(bytes) / 1e6 / consume_s,
              static_cast<long long>(consumed), static_cast<long long>(bytes));
  if (broker) broker->Stop();
  return consumed == records ? 0 : 1;
}
