// eos_copy: the floor of the throughput benchmark (bench/README.md) and two
// measuring helpers, on librdkafka only (no engine code).
//
//   eos_copy copy --bootstrap-servers H:P --input T --output T1 [--output T2 ...]
//                 --fanout F [--group G] [--transactional-id ID] [--commit-interval-ms 100]
//                 [--expected N]
//     An identity transactional copy, exactly once: a consumer (group G,
//     read_committed, no auto commit) and a transactional producer; every input
//     record is written F times (F may be fractional: the copies are spread so
//     that inputs x F outputs are written in total), same key and value bytes,
//     to the same partition number, copy k to output topic k % (number of
//     outputs); every --commit-interval-ms the consumed positions are sent to
//     the transaction and it is committed (the consume-transform-produce loop
//     of KIP-98, as in librdkafka's examples/transactions.c). Stops on
//     SIGTERM/SIGINT, or once N inputs are committed. Any error ends the
//     process with status 1 (a floor needs no recovery).
//
//   eos_copy timer --bootstrap-servers H:P --topic T --expected N [--timeout-s S]
//     Reads T from the beginning with read_committed and prints the time from
//     the first to the N-th record becoming readable. Prints "timer: ready" on
//     stderr once assigned (start it before the producer of T).
//
//   eos_copy count --bootstrap-servers H:P --topic T [--topic T2 ...]
//     Counts the committed records of each topic (read_committed, from the
//     beginning to the last stable offset; control records and aborted records
//     are not counted).
//
// Output: "key=value" lines on stdout. Exit status: 0 OK, 1 Kafka error or
// timeout, 2 bad usage.
#include <librdkafka/rdkafka.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tools/kafka_util.h"

namespace {

using Clock = std::chrono::steady_clock;
using payments::tools::KafkaHandle;
using payments::tools::KafkaProperties;
using payments::tools::PartitionList;

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int Fail(const char* what, const std::string& message) {
  std::fprintf(stderr, "eos_copy: %s: %s\n", what, message.c_str());
  return 1;
}

// Takes ownership of `error`; returns its description.
std::string TakeError(rd_kafka_error_t* error) {
  std::string text = rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  return text;
}

streams::Result<KafkaHandle> Client(rd_kafka_type_t type, const KafkaProperties& properties) {
  STREAMS_ASSIGN_OR_RETURN(auto conf, payments::tools::MakeConf(properties));
  return payments::tools::CreateClient(type, std::move(conf));
}

// Assigns every partition of `topics` to `consumer` from the beginning.
streams::Status AssignFromBeginning(rd_kafka_t* consumer, const std::vector<std::string>& topics) {
  PartitionList list(rd_kafka_topic_partition_list_new(8));
  for (const auto& topic : topics) {
    STREAMS_ASSIGN_OR_RETURN(
        int32_t n, payments::tools::PartitionCount(consumer, topic, std::chrono::seconds(30)));
    for (int32_t p = 0; p < n; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
  }
  if (auto err = rd_kafka_assign(consumer, list.get()); err) {
    return streams::Status::Internal(std::string("assign: ") + rd_kafka_err2str(err));
  }
  return streams::Status::Ok();
}

KafkaProperties ReaderProperties(const std::string& bootstrap) {
  return {
      {"bootstrap.servers", bootstrap},
      {"group.id", "eos-copy-reader-" + std::to_string(Clock::now().time_since_epoch().count())},
      {"isolation.level", "read_committed"},
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", "false"},
      {"fetch.wait.max.ms", "10"}};
}

int RunCopy(const std::string& bootstrap, const std::string& input,
            const std::vector<std::string>& outputs, double fanout, const std::string& group,
            const std::string& transactional_id, int commit_interval_ms, uint64_t expected) {
  auto consumer = Client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                             {"group.id", group},
                                             {"isolation.level", "read_committed"},
                                             {"enable.auto.commit", "false"},
                                             {"auto.offset.reset", "earliest"}});
  if (!consumer.ok()) return Fail("consumer", consumer.status().ToString());
  auto producer = Client(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap},
                                             {"transactional.id", transactional_id}});
  if (!producer.ok()) return Fail("producer", producer.status().ToString());
  rd_kafka_t* c = consumer->get();
  rd_kafka_t* p = producer->get();
  if (auto* error = rd_kafka_init_transactions(p, 30000)) {
    return Fail("init_transactions", TakeError(error));
  }
  {
    PartitionList topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), input.c_str(), RD_KAFKA_PARTITION_UA);
    if (auto err = rd_kafka_subscribe(c, topics.get()); err) {
      return Fail("subscribe", rd_kafka_err2str(err));
    }
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(c);
  if (auto* error = rd_kafka_begin_transaction(p)) return Fail("begin", TakeError(error));

  std::map<int32_t, int64_t> positions;  // partition -> next offset, this transaction
  uint64_t consumed = 0, committed_inputs = 0, produced = 0, transactions = 0;
  uint64_t in_transaction = 0;
  double carry = 0;
  std::vector<rd_kafka_message_t*> batch(500);
  auto started = Clock::now();
  auto txn_started = Clock::now();
  std::fprintf(stderr, "eos_copy: copying %s -> %zu topic(s), fan-out %.4f\n", input.c_str(),
               outputs.size(), fanout);

  auto commit = [&]() -> int {
    PartitionList offsets(rd_kafka_topic_partition_list_new(static_cast<int>(positions.size())));
    for (const auto& [partition, next] : positions) {
      rd_kafka_topic_partition_list_add(offsets.get(), input.c_str(), partition)->offset = next;
    }
    rd_kafka_consumer_group_metadata_t* metadata = rd_kafka_consumer_group_metadata(c);
    rd_kafka_error_t* error = rd_kafka_send_offsets_to_transaction(p, offsets.get(), metadata, -1);
    rd_kafka_consumer_group_metadata_destroy(metadata);
    if (error) return Fail("send_offsets_to_transaction", TakeError(error));
    if (auto* e = rd_kafka_commit_transaction(p, -1)) return Fail("commit", TakeError(e));
    ++transactions;
    committed_inputs += in_transaction;
    in_transaction = 0;
    positions.clear();
    if (auto* e = rd_kafka_begin_transaction(p)) return Fail("begin", TakeError(e));
    txn_started = Clock::now();
    return 0;
  };

  while (!g_stop && (expected == 0 || committed_inputs < expected)) {
    ssize_t n = rd_kafka_consume_batch_queue(queue, 10, batch.data(), batch.size());
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = batch[i];
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          std::fprintf(stderr, "eos_copy: consumer: %s\n", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        continue;
      }
      carry += fanout;
      int copies = static_cast<int>(carry);
      carry -= copies;
      for (int k = 0; k < copies; ++k) {
        const std::string& topic = outputs[static_cast<size_t>(k) % outputs.size()];
        while (true) {
          rd_kafka_resp_err_t err = rd_kafka_producev(
              p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(m->partition),
              RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
          if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p, 10);
            continue;
          }
          if (err) {
            rd_kafka_message_destroy(m);
            return Fail("produce", rd_kafka_err2str(err));
          }
          ++produced;
          break;
        }
      }
      positions[m->partition] = m->offset + 1;
      ++consumed;
      ++in_transaction;
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(p, 0);
    if (in_transaction > 0 &&
        Clock::now() - txn_started >= std::chrono::milliseconds(commit_interval_ms)) {
      if (int rc = commit(); rc != 0) return rc;
    }
  }
  if (in_transaction > 0) {
    if (int rc = commit(); rc != 0) return rc;
  } else if (auto* e = rd_kafka_abort_transaction(p, 30000)) {
    TakeError(e);  // An empty transaction: nothing to keep.
  }
  double elapsed = Seconds(Clock::now() - started);
  std::printf(
      "copy consumed=%llu committed_inputs=%llu produced=%llu transactions=%llu elapsed_s=%.3f "
      "cpu_s=%.3f\n",
      static_cast<unsigned long long>(consumed), static_cast<unsigned long long>(committed_inputs),
      static_cast<unsigned long long>(produced), static_cast<unsigned long long>(transactions),
      elapsed, CpuSeconds());
  std::fflush(stdout);
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(c);
  return 0;
}

int RunTimer(const std::string& bootstrap, const std::string& topic, uint64_t expected,
             int timeout_s) {
  auto consumer = Client(RD_KAFKA_CONSUMER, ReaderProperties(bootstrap));
  if (!consumer.ok()) return Fail("consumer", consumer.status().ToString());
  rd_kafka_t* c = consumer->get();
  if (auto status = AssignFromBeginning(c, {topic}); !status.ok()) {
    return Fail("assign", status.ToString());
  }
  std::fprintf(stderr, "timer: ready topic=%s expected=%llu\n", topic.c_str(),
               static_cast<unsigned long long>(expected));
  uint64_t seen = 0;
  Clock::time_point first{}, last{};
  auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  while (seen < expected && !g_stop && Clock::now() < deadline) {
    payments::tools::KafkaMessage m(rd_kafka_consumer_poll(c, 100));
    if (!m || m->err) continue;
    auto now = Clock::now();
    if (seen == 0) first = now;
    last = now;
    ++seen;
  }
  double span = seen > 1 ? Seconds(last - first) : 0;
  std::printf("timer topic=%s seen=%llu expected=%llu first_to_last_s=%.3f per_s=%.1f\n",
              topic.c_str(), static_cast<unsigned long long>(seen),
              static_cast<unsigned long long>(expected), span,
              span > 0 ? static_cast<double>(seen) / span : 0.0);
  std::fflush(stdout);
  rd_kafka_consumer_close(c);
  return seen >= expected ? 0 : 1;
}

int RunCount(const std::string& bootstrap, const std::vector<std::string>& topics) {
  KafkaProperties properties = ReaderProperties(bootstrap);
  properties.emplace_back("enable.partition.eof", "true");
  auto consumer = Client(RD_KAFKA_CONSUMER, properties);
  if (!consumer.ok()) return Fail("consumer", consumer.status().ToString());
  rd_kafka_t* c = consumer->get();
  uint64_t total = 0;
  for (const auto& topic : topics) {
    auto partitions = payments::tools::PartitionCount(c, topic, std::chrono::seconds(30));
    if (!partitions.ok()) return Fail("metadata", partitions.status().ToString());
    if (auto status = AssignFromBeginning(c, {topic}); !status.ok()) {
      return Fail("assign", status.ToString());
    }
    // A partition is done at its first end-of-partition event: the consumer
    // reached the last stable offset (read_committed), past any trailing
    // transaction marker.
    std::vector<bool> at_end(static_cast<size_t>(*partitions), false);
    int32_t ended = 0;
    uint64_t count = 0;
    auto deadline = Clock::now() + std::chrono::seconds(300);
    while (ended < *partitions) {
      if (Clock::now() > deadline || g_stop) return Fail("count", "timed out reading " + topic);
      payments::tools::KafkaMessage m(rd_kafka_consumer_poll(c, 100));
      if (!m) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        auto p = static_cast<size_t>(m->partition);
        if (p < at_end.size() && !at_end[p]) {
          at_end[p] = true;
          ++ended;
        }
      } else if (m->err) {
        std::fprintf(stderr, "eos_copy: count %s: %s\n", topic.c_str(),
                     rd_kafka_message_errstr(m.get()));
      } else {
        ++count;
      }
    }
    std::printf("count topic=%s records=%llu\n", topic.c_str(),
                static_cast<unsigned long long>(count));
    total += count;
  }
  std::printf("count total=%llu\n", static_cast<unsigned long long>(total));
  rd_kafka_consumer_close(c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eos_copy: exactly-once identity copy (throughput floor) and read_committed timers"};
  app.require_subcommand(1);
  std::string bootstrap;
  app.add_option("--bootstrap-servers", bootstrap, "Kafka bootstrap servers")->required();

  auto* copy = app.add_subcommand("copy", "transactional identity copy with fan-out");
  std::string input;
  std::vector<std::string> outputs;
  double fanout = 1;
  std::string group = "eos-copy";
  std::string transactional_id = "eos-copy-0";
  int commit_interval_ms = 100;
  uint64_t expected = 0;
  copy->add_option("--input", input)->required();
  copy->add_option("--output", outputs, "output topic (repeatable)")->required();
  copy->add_option("--fanout", fanout, "output records per input")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  copy->add_option("--group", group)->capture_default_str();
  copy->add_option("--transactional-id", transactional_id)->capture_default_str();
  copy->add_option("--commit-interval-ms", commit_interval_ms)->capture_default_str();
  copy->add_option("--expected", expected, "stop after this many inputs (0 = until SIGTERM)");

  auto* timer = app.add_subcommand("timer", "first-to-last read_committed time of N records");
  std::string timer_topic;
  uint64_t timer_expected = 0;
  int timeout_s = 1800;
  timer->add_option("--topic", timer_topic)->required();
  timer->add_option("--expected", timer_expected)->required();
  timer->add_option("--timeout-s", timeout_s)->capture_default_str();

  auto* count = app.add_subcommand("count", "committed records per topic");
  std::vector<std::string> count_topics;
  count->add_option("--topic", count_topics)->required();
  CLI11_PARSE(app, argc, argv);

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  if (*copy) {
    return RunCopy(bootstrap, input, outputs, fanout, group, transactional_id, commit_interval_ms,
                   expected);
  }
  if (*timer) return RunTimer(bootstrap, timer_topic, timer_expected, timeout_s);
  return RunCount(bootstrap, count_topics);
}
