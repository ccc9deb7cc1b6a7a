// payments-loadgen: sends a deterministic mix of PaymentRequests to Kafka.
//
//   payments-loadgen --bootstrap-servers HOST:PORT --count 20000 --customers 500
//       --duplicates 0.05 --key-reuse 0.02 --invalid 0.05 --refunds 0.08 --bursts 0.05
//
// Records: key = customer_id (except the key-mismatch invalid kind), value = the
// PaymentRequest, timestamp = created_at_ms (event time start + i * step).
// Idempotent producer with the murmur2_random partitioner (the Java client's
// default), so the engine and the producer agree on partitions.
//
// With --await-confirmations, a read_committed consumer of the confirmations
// topic matches each acknowledged request to its confirmation (by source
// partition and offset) and the summary adds the end-to-end latency: wall time
// from handing the request to the producer until its confirmation was readable
// (p50, p90, p99, p99.9, max). With --rate, a "schedule" line says whether the
// offered rate was held: the achieved send rate and how far sends fell behind
// their due times (p99, max); a generator that falls behind would hide latency
// (coordinated omission).
//
// Output: a progress line per second on stderr; "key=value" summary lines on
// stdout. Exit status: 0 OK, 1 some delivery failed, 2 bad usage or setup
// error, 3 not every request got a confirmation within --await-timeout-ms.
#include <librdkafka/rdkafka.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "payments/v1/payments.pb.h"
#include "tools/kafka_util.h"
#include "tools/request_generator.h"

namespace {

using Clock = std::chrono::steady_clock;
using payments::tools::KafkaHandle;
using payments::tools::KafkaProperties;

// What the delivery-report callback records (called from rd_kafka_poll on the
// main thread only).
struct DeliveryState {
  std::vector<int32_t> partition;  // Per request index; -1 until acked.
  std::vector<int64_t> offset;
  uint64_t acked = 0;
  uint64_t failed = 0;
  std::map<std::string, uint64_t> errors;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* state = static_cast<DeliveryState*>(opaque);
  auto index = reinterpret_cast<uintptr_t>(message->_private);
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++state->failed;
    ++state->errors[rd_kafka_err2str(message->err)];
    return;
  }
  ++state->acked;
  if (index < state->partition.size()) {
    state->partition[index] = message->partition;
    state->offset[index] = message->offset;
  }
}

uint64_t PackCoordinates(int32_t partition, int64_t offset) {
  return (static_cast<uint64_t>(partition) << 44) ^ static_cast<uint64_t>(offset);
}

// Reads confirmations (read_committed) from the end offsets at Start() on, and
// records when each one for `requests_topic` became readable.
// Thread safety: Drain() may be called from any thread while the reader runs.
class ConfirmationWatcher {
 public:
  struct Seen {
    int32_t partition;
    int64_t offset;
    Clock::time_point at;
  };

  ConfirmationWatcher(std::string requests_topic, std::string confirmations_topic)
      : requests_topic_(std::move(requests_topic)),
        confirmations_topic_(std::move(confirmations_topic)) {}
  ~ConfirmationWatcher() { Stop(); }

  streams::Status Start(const KafkaProperties& client_properties) {
    KafkaProperties properties = {
        {"isolation.level", "read_committed"},
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "false"},
        {"fetch.wait.max.ms", "10"},
        {"group.id",
         "payments-loadgen-watch-" + std::to_string(Clock::now().time_since_epoch().count())}};
    properties.insert(properties.end(), client_properties.begin(), client_properties.end());
    STREAMS_ASSIGN_OR_RETURN(auto conf, payments::tools::MakeConf(properties));
    STREAMS_ASSIGN_OR_RETURN(consumer_,
                             payments::tools::CreateClient(RD_KAFKA_CONSUMER, std::move(conf)));
    STREAMS_ASSIGN_OR_RETURN(auto ends,
                             payments::tools::QueryEndOffsets(consumer_.get(), confirmations_topic_,
                                                              std::chrono::seconds(30)));
    payments::tools::PartitionList assignment(
        rd_kafka_topic_partition_list_new(static_cast<int>(ends.size())));
    for (const auto& [partition, end] : ends) {
      rd_kafka_topic_partition_list_add(assignment.get(), confirmations_topic_.c_str(),
                                        partition.value())
          ->offset = end.value();
    }
    if (auto err = rd_kafka_assign(consumer_.get(), assignment.get()); err) {
      return streams::Status::Internal(std::string("assign: ") + rd_kafka_err2str(err));
    }
    thread_ = std::thread([this] { Run(); });
    return streams::Status::Ok();
  }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (consumer_) {
      rd_kafka_consumer_close(consumer_.get());
      consumer_.reset();
    }
  }

  std::vector<Seen> Drain() {
    std::lock_guard lock(mu_);
    return std::exchange(seen_, {});
  }

 private:
  void Run() {
    payments::v1::PaymentConfirmation confirmation;
    while (!stop_) {
      payments::tools::KafkaMessage message(rd_kafka_consumer_poll(consumer_.get(), 100));
      if (!message || message->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      auto now = Clock::now();
      if (message->payload == nullptr ||
          !confirmation.ParseFromArray(message->payload, static_cast<int>(message->len)) ||
          confirmation.source_topic() != requests_topic_) {
        continue;
      }
      std::lock_guard lock(mu_);
      seen_.push_back({confirmation.source_partition(), confirmation.source_offset(), now});
    }
  }

  std::string requests_topic_;
  std::string confirmations_topic_;
  KafkaHandle consumer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Seen> seen_;
};

double Percentile(std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"payments-loadgen: sends a deterministic mix of PaymentRequests to Kafka"};
  std::string bootstrap;
  std::string topic = "payments.requests";
  std::string confirmations_topic = "payments.confirmations";
  payments::tools::GeneratorOptions gen;
  gen.count = 10000;
  gen.customers = 100;
  double rate = 0;
  int partitions = 0;
  std::vector<std::string> kafka_overrides;
  bool await_confirmations = false;
  int64_t await_timeout_ms = 120000;
  int64_t flush_timeout_ms = 60000;
  bool quiet = false;

  app.add_option("--bootstrap-servers", bootstrap, "Kafka bootstrap servers")->required();
  app.add_option("--topic", topic, "Requests topic")->capture_default_str();
  app.add_option("--count", gen.count, "Number of requests to send")->capture_default_str();
  app.add_option("--rate", rate, "Requests per second (0 = as fast as possible)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--customers", gen.customers, "Number of distinct customers")
      ->capture_default_str();
  app.add_option("--partitions", partitions,
                 "Expected partition count of the topic (informational: a mismatch is "
                 "reported)");
  app.add_option("--duplicates", gen.shares.duplicates, "Share of exact resends")
      ->capture_default_str();
  app.add_option("--key-reuse", gen.shares.key_reuse,
                 "Share of reused idempotency keys with a changed amount")
      ->capture_default_str();
  app.add_option("--invalid", gen.shares.invalid, "Share of invalid requests")
      ->capture_default_str();
  app.add_option("--refunds", gen.shares.refunds, "Share of refunds")->capture_default_str();
  app.add_option("--bursts", gen.shares.bursts,
                 "Share of requests sent in per-customer bursts over the rate limit")
      ->capture_default_str();
  app.add_option("--burst-size", gen.burst_size, "Requests per burst")->capture_default_str();
  app.add_option("--seed", gen.seed, "Seed of the deterministic generator")->capture_default_str();
  app.add_option("--start-time-ms", gen.start_time_ms, "Event time of the first request")
      ->capture_default_str();
  app.add_option("--time-step-ms", gen.time_step_ms, "Event time between two requests")
      ->capture_default_str();
  app.add_option("--kafka", kafka_overrides, "librdkafka property key=value (repeatable)");
  app.add_flag("--await-confirmations", await_confirmations,
               "Wait for every request's confirmation and report end-to-end latency");
  app.add_option("--confirmations-topic", confirmations_topic,
                 "Confirmations topic (with --await-confirmations)")
      ->capture_default_str();
  app.add_option("--await-timeout-ms", await_timeout_ms,
                 "How long to wait for confirmations after the last ack")
      ->capture_default_str();
  app.add_option("--flush-timeout-ms", flush_timeout_ms, "How long to wait for acks at the end")
      ->capture_default_str();
  app.add_flag("--quiet", quiet, "No progress lines");
  CLI11_PARSE(app, argc, argv);

  auto generator = payments::tools::RequestGenerator::Create(gen);
  if (!generator.ok()) {
    std::fprintf(stderr, "payments-loadgen: %s\n", generator.status().message().c_str());
    return 2;
  }

  KafkaProperties client = {{"bootstrap.servers", bootstrap}};
  for (const auto& text : kafka_overrides) {
    auto kv = payments::tools::ParseKeyValue(text);
    if (!kv.ok()) {
      std::fprintf(stderr, "payments-loadgen: --kafka: %s\n", kv.status().message().c_str());
      return 2;
    }
    client.push_back(*kv);
  }
  KafkaProperties producer_properties = {{"client.id", "payments-loadgen"},
                                         {"enable.idempotence", "true"},
                                         {"partitioner", "murmur2_random"},
                                         {"linger.ms", "5"},
                                         {"queue.buffering.max.messages", "200000"}};
  producer_properties.insert(producer_properties.end(), client.begin(), client.end());

  DeliveryState delivery;
  delivery.partition.assign(gen.count, -1);
  delivery.offset.assign(gen.count, -1);
  auto conf = payments::tools::MakeConf(producer_properties);
  if (!conf.ok()) {
    std::fprintf(stderr, "payments-loadgen: %s\n", conf.status().message().c_str());
    return 2;
  }
  rd_kafka_conf_set_dr_msg_cb(conf->get(), OnDelivery);
  rd_kafka_conf_set_opaque(conf->get(), &delivery);
  auto producer = payments::tools::CreateClient(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!producer.ok()) {
    std::fprintf(stderr, "payments-loadgen: %s\n", producer.status().message().c_str());
    return 2;
  }
  rd_kafka_t* rk = producer->get();

  auto actual_partitions = payments::tools::PartitionCount(rk, topic, std::chrono::seconds(30));
  if (!actual_partitions.ok()) {
    std::fprintf(stderr, "payments-loadgen: %s\n", actual_partitions.status().ToString().c_str());
    return 2;
  }
  if (partitions > 0 && partitions != *actual_partitions) {
    std::fprintf(stderr, "payments-loadgen: warning: topic %s has %d partitions, expected %d\n",
                 topic.c_str(), *actual_partitions, partitions);
  }

  std::optional<ConfirmationWatcher> watcher;
  if (await_confirmations) {
    watcher.emplace(topic, confirmations_topic);
    if (auto status = watcher->Start(client); !status.ok()) {
      std::fprintf(stderr, "payments-loadgen: confirmations: %s\n", status.ToString().c_str());
      return 2;
    }
  }

  std::vector<Clock::time_point> sent_at(gen.count);
  std::array<uint64_t, payments::tools::kCategoryCount> by_category{};
  uint64_t sent = 0;
  uint64_t produce_errors = 0;
  const auto start = Clock::now();
  auto next_progress = start + std::chrono::seconds(1);
  auto progress = [&](const char* phase) {
    if (quiet) return;
    double elapsed = Seconds(Clock::now() - start);
    std::fprintf(stderr, "payments-loadgen: %s sent=%llu acked=%llu failed=%llu %.0f/s\n", phase,
                 static_cast<unsigned long long>(sent),
                 static_cast<unsigned long long>(delivery.acked),
                 static_cast<unsigned long long>(delivery.failed + produce_errors),
                 elapsed > 0 ? static_cast<double>(delivery.acked) / elapsed : 0.0);
  };

  std::string value;
  std::vector<double> send_lag_ms;  // With --rate: send time - due time, per request.
  if (rate > 0) send_lag_ms.reserve(gen.count);
  Clock::time_point last_send = start;
  while (!generator->Done()) {
    uint64_t i = generator->generated();
    Clock::time_point due{};
    if (rate > 0) {
      due = start + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(i) / rate));
      while (Clock::now() < due) {
        rd_kafka_poll(rk, 0);
        auto left = due - Clock::now();
        std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(5)));
      }
    }
    payments::tools::GeneratedRequest next = generator->Next();
    ++by_category[static_cast<size_t>(next.category)];
    value = payments::tools::SerializeRequest(next.request);
    while (true) {
      sent_at[i] = Clock::now();
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()),
          RD_KAFKA_V_KEY(next.record_key.data(), next.record_key.size()),
          RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_TIMESTAMP(next.timestamp_ms),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(i))), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 10);
        continue;
      }
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++produce_errors;
        ++delivery.errors[rd_kafka_err2str(err)];
      } else {
        ++sent;
        last_send = sent_at[i];
        if (rate > 0) {
          send_lag_ms.push_back(
              std::chrono::duration<double, std::milli>(sent_at[i] - due).count());
        }
      }
      break;
    }
    rd_kafka_poll(rk, 0);
    if (Clock::now() >= next_progress) {
      progress("sending");
      next_progress += std::chrono::seconds(1);
    }
  }

  auto flush_deadline = Clock::now() + std::chrono::milliseconds(flush_timeout_ms);
  while (rd_kafka_outq_len(rk) > 0 && Clock::now() < flush_deadline) {
    rd_kafka_flush(rk, 100);
    if (Clock::now() >= next_progress) {
      progress("flushing");
      next_progress += std::chrono::seconds(1);
    }
  }
  rd_kafka_poll(rk, 0);
  const auto acked_at = Clock::now();
  uint64_t unacked = sent - delivery.acked - delivery.failed;
  uint64_t failed = delivery.failed + produce_errors + unacked;
  double send_seconds = Seconds(acked_at - start);

  std::printf("sent=%llu acked=%llu failed=%llu elapsed_s=%.3f records_per_s=%.1f\n",
              static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(delivery.acked),
              static_cast<unsigned long long>(failed), send_seconds,
              send_seconds > 0 ? static_cast<double>(delivery.acked) / send_seconds : 0.0);
  std::printf("categories:");
  for (int c = 0; c < payments::tools::kCategoryCount; ++c) {
    std::printf(
        " %s=%llu",
        std::string(payments::tools::CategoryName(static_cast<payments::tools::RequestCategory>(c)))
            .c_str(),
        static_cast<unsigned long long>(by_category[c]));
  }
  std::printf("\n");
  std::map<int32_t, uint64_t> per_partition;
  for (auto p : delivery.partition) {
    if (p >= 0) ++per_partition[p];
  }
  std::printf("partitions=%d per_partition:", *actual_partitions);
  for (const auto& [p, n] : per_partition) {
    std::printf(" %d=%llu", p, static_cast<unsigned long long>(n));
  }
  std::printf("\n");
  for (const auto& [error, n] : delivery.errors) {
    std::printf("delivery_error=\"%s\" count=%llu\n", error.c_str(),
                static_cast<unsigned long long>(n));
  }
  if (unacked > 0) {
    std::printf("unacknowledged=%llu (flush timed out)\n",
                static_cast<unsigned long long>(unacked));
  }
  if (rate > 0) {
    std::sort(send_lag_ms.begin(), send_lag_ms.end());
    double send_span = Seconds(last_send - start);
    std::printf("schedule offered_per_s=%.1f sent_per_s=%.1f lag_p99_ms=%.1f lag_max_ms=%.1f\n",
                rate,
                send_span > 0 ? static_cast<double>(sent > 0 ? sent - 1 : 0) / send_span : 0.0,
                Percentile(send_lag_ms, 0.99), send_lag_ms.empty() ? 0.0 : send_lag_ms.back());
  }
  std::fflush(stdout);

  int exit_code = failed > 0 ? 1 : 0;
  if (watcher) {
    std::unordered_map<uint64_t, uint64_t> index_of;
    index_of.reserve(gen.count);
    for (uint64_t i = 0; i < gen.count; ++i) {
      if (delivery.partition[i] >= 0) {
        index_of.emplace(PackCoordinates(delivery.partition[i], delivery.offset[i]), i);
      }
    }
    std::vector<std::optional<Clock::time_point>> confirmed_at(gen.count);
    uint64_t confirmed = 0;
    auto await_deadline = Clock::now() + std::chrono::milliseconds(await_timeout_ms);
    while (confirmed < delivery.acked && Clock::now() < await_deadline) {
      for (const auto& seen : watcher->Drain()) {
        auto it = index_of.find(PackCoordinates(seen.partition, seen.offset));
        if (it == index_of.end()) continue;
        const uint64_t target = it->second;  // every confirmation names its request
        if (confirmed_at[target]) continue;
        confirmed_at[target] = seen.at;
        ++confirmed;
      }
      if (confirmed < delivery.acked) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (!quiet && Clock::now() >= next_progress) {
        std::fprintf(stderr, "payments-loadgen: awaiting confirmations %llu/%llu\n",
                     static_cast<unsigned long long>(confirmed),
                     static_cast<unsigned long long>(delivery.acked));
        next_progress += std::chrono::seconds(1);
      }
    }
    watcher->Stop();
    std::vector<double> latencies_ms;
    latencies_ms.reserve(confirmed);
    Clock::time_point last = start;
    for (uint64_t i = 0; i < gen.count; ++i) {
      if (!confirmed_at[i]) continue;
      latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(*confirmed_at[i] - sent_at[i]).count());
      last = std::max(last, *confirmed_at[i]);
    }
    std::sort(latencies_ms.begin(), latencies_ms.end());
    double e2e_seconds = Seconds(last - start);
    std::printf(
        "e2e confirmed=%llu expected=%llu elapsed_s=%.3f throughput_per_s=%.1f p50_ms=%.1f "
        "p90_ms=%.1f p99_ms=%.1f p999_ms=%.1f max_ms=%.1f\n",
        static_cast<unsigned long long>(confirmed), static_cast<unsigned long long>(delivery.acked),
        e2e_seconds, e2e_seconds > 0 ? static_cast<double>(confirmed) / e2e_seconds : 0.0,
        Percentile(latencies_ms, 0.50), Percentile(latencies_ms, 0.90),
        Percentile(latencies_ms, 0.99), Percentile(latencies_ms, 0.999),
        latencies_ms.empty() ? 0.0 : latencies_ms.back());
    std::fflush(stdout);
    if (confirmed < delivery.acked && exit_code == 0) exit_code = 3;
  }
  return exit_code;
}
