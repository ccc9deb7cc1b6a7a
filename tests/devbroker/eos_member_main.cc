// devbroker_test_eos_member: a consumer-group member running a transactional
// consume-process-produce loop step by step, in its own process, so that a
// test can SIGSTOP it in the middle of a transaction (a zombie whose session
// expires while its transaction stays open) and SIGCONT it later.
//
//   devbroker_test_eos_member BOOTSTRAP GROUP IN_TOPIC OUT_TOPIC
//                             TRANSACTIONAL_ID SESSION_TIMEOUT_MS
//
// Answers on stdout, one line each; commands on stdin, one per line:
//   (start)  "assigned N" once the first assignment arrived ("error ..." if
//            none came within 30 s).
//   process  begins a transaction, consumes every record up to the end of
//            each assigned partition, produces each value unchanged to
//            OUT_TOPIC (same partition) and flushes: "processed N".
//   commit   send_offsets_to_transaction(next offsets, the consumer's
//            current group metadata), then commit_transaction: "committed",
//            or "failed <abortable|fatal|retriable|other> <ERROR_NAME>";
//            after an abortable failure it aborts: "aborted" or
//            "abort-failed <ERROR_NAME>".
//   exit     closes the clients and exits 0.
// The consumer is only polled while waiting for the assignment and in
// `process`; max.poll.interval.ms is large so the client never leaves the
// group by itself. Exits by itself after 120 s or at the end of stdin.

#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

rd_kafka_t* NewClient(rd_kafka_type_t type,
                      const std::vector<std::pair<std::string, std::string>>& kv) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : kv) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "%s: %s\n", k.c_str(), err);
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof(err));
  if (rk == nullptr) {
    std::fprintf(stderr, "rd_kafka_new: %s\n", err);
    rd_kafka_conf_destroy(conf);
  }
  return rk;
}

// "failed <kind> <NAME>" for a transactional API error (consumes it).
std::string Describe(rd_kafka_error_t* error) {
  const char* kind = rd_kafka_error_is_fatal(error)             ? "fatal"
                     : rd_kafka_error_txn_requires_abort(error) ? "abortable"
                     : rd_kafka_error_is_retriable(error)       ? "retriable"
                                                                : "other";
  std::string out = std::string("failed ") + kind + " " + rd_kafka_error_name(error);
  std::fprintf(stderr, "transactional call failed: %s\n", rd_kafka_error_string(error));
  return out;
}

int Assigned(rd_kafka_t* consumer) {
  rd_kafka_topic_partition_list_t* a = nullptr;
  int n = 0;
  if (rd_kafka_assignment(consumer, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    n = a->cnt;
    rd_kafka_topic_partition_list_destroy(a);
  }
  return n;
}

// Reads one line from stdin, waiting at most until `deadline`.
bool ReadCommand(std::string* line, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    if (std::cin.rdbuf()->in_avail() > 0) break;  // Already buffered.
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    if (::poll(&pfd, 1, 200) > 0) break;
  }
  if (Clock::now() >= deadline) return false;
  return static_cast<bool>(std::getline(std::cin, *line));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr,
                 "usage: %s BOOTSTRAP GROUP IN_TOPIC OUT_TOPIC TRANSACTIONAL_ID "
                 "SESSION_TIMEOUT_MS\n",
                 argv[0]);
    return 2;
  }
  const std::string bootstrap = argv[1], group = argv[2], in = argv[3], out = argv[4];
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  rd_kafka_t* consumer = NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                                       {"group.id", group},
                                                       {"session.timeout.ms", argv[6]},
                                                       {"heartbeat.interval.ms", "300"},
                                                       {"max.poll.interval.ms", "300000"},
                                                       {"isolation.level", "read_committed"},
                                                       {"auto.offset.reset", "earliest"},
                                                       {"enable.auto.commit", "false"},
                                                       {"enable.partition.eof", "true"},
                                                       {"fetch.wait.max.ms", "100"}});
  rd_kafka_t* producer = NewClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap},
                                                       {"transactional.id", argv[5]},
                                                       {"transaction.timeout.ms", "60000"},
                                                       {"linger.ms", "1"}});
  if (consumer == nullptr || producer == nullptr) return 1;
  rd_kafka_poll_set_consumer(consumer);
  if (rd_kafka_error_t* e = rd_kafka_init_transactions(producer, 30000)) {
    Say("error init_transactions " + Describe(e));
    rd_kafka_error_destroy(e);
    return 1;
  }
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, in.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(consumer, sub);
  rd_kafka_topic_partition_list_destroy(sub);

  const auto assign_deadline = Clock::now() + std::chrono::seconds(30);
  while (Assigned(consumer) == 0 && Clock::now() < assign_deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (m != nullptr) rd_kafka_message_destroy(m);
  }
  int assigned = Assigned(consumer);
  if (assigned == 0) {
    Say("error no assignment");
    return 1;
  }
  Say("assigned " + std::to_string(assigned));

  std::map<std::pair<std::string, int32_t>, int64_t> next;  // Offsets to commit.
  std::string command;
  while (ReadCommand(&command, deadline)) {
    if (command == "process") {
      if (rd_kafka_error_t* e = rd_kafka_begin_transaction(producer)) {
        Say("error begin_transaction " + Describe(e));
        rd_kafka_error_destroy(e);
        continue;
      }
      std::set<int32_t> at_end;
      int processed = 0;
      const auto until = Clock::now() + std::chrono::seconds(15);
      while (static_cast<int>(at_end.size()) < Assigned(consumer) && Clock::now() < until) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
        if (m == nullptr) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          at_end.insert(m->partition);
        } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(out.c_str()),
                            RD_KAFKA_V_PARTITION(m->partition),
                            RD_KAFKA_V_VALUE(m->payload, m->len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
          next[{rd_kafka_topic_name(m->rkt), m->partition}] = m->offset + 1;
          ++processed;
        }
        rd_kafka_message_destroy(m);
      }
      rd_kafka_flush(producer, 10000);
      Say("processed " + std::to_string(processed));
    } else if (command == "commit") {
      rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(4);
      for (const auto& [tp, offset] : next) {
        rd_kafka_topic_partition_list_add(offsets, tp.first.c_str(), tp.second)->offset = offset;
      }
      rd_kafka_consumer_group_metadata_t* metadata = rd_kafka_consumer_group_metadata(consumer);
      rd_kafka_error_t* e =
          rd_kafka_send_offsets_to_transaction(producer, offsets, metadata, 30000);
      rd_kafka_consumer_group_metadata_destroy(metadata);
      rd_kafka_topic_partition_list_destroy(offsets);
      if (e == nullptr) e = rd_kafka_commit_transaction(producer, 30000);
      if (e == nullptr) {
        Say("committed");
        continue;
      }
      const bool abortable = rd_kafka_error_txn_requires_abort(e);
      Say(Describe(e));
      rd_kafka_error_destroy(e);
      if (abortable) {
        rd_kafka_error_t* a = rd_kafka_abort_transaction(producer, 30000);
        Say(a == nullptr ? std::string("aborted")
                         : std::string("abort-failed ") + rd_kafka_error_name(a));
        if (a != nullptr) rd_kafka_error_destroy(a);
      }
    } else if (command == "exit") {
      break;
    }
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  rd_kafka_destroy(producer);
  return 0;
}
