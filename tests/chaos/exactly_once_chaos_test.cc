// Exactly-once chaos test, in the spirit of Apache Kafka's transactions system
// test: the decisions paymentd commits while its instances are repeatedly
// SIGKILLed must be exactly those of an undisturbed run.
//
// Everything runs as real processes (tests/support/subprocess.h), against a
// devbroker, which has real transaction semantics (read_committed hides aborted
// records, and transactional offsets are stored only on commit):
//
//  1. BASELINE. Start a devbroker (port 0, 4 partitions for auto-created
//     topics), create payments.requests and payments.confirmations through the
//     broker's auto-creation, and produce N requests (default 50,000) with
//     payments-loadgen as fast as it can (fixed --seed, every share nonzero:
//     duplicates, key reuse, invalid, refunds, bursts). Then run ONE paymentd
//     until its consumer group has committed every request (lag 0). Stop it
//     (SIGTERM), read both topics with a read_committed librdkafka consumer from
//     the beginning to the end offsets, check the invariants below, and run
//     payments-verify (exit code 0 expected).
//  2. CHAOS. Fresh devbroker and state. Start TWO paymentd instances (same
//     application.id, instance.id "a"/"b", own state.dir, commit.interval.ms
//     100, otherwise default settings: static membership, eager
//     rebalancing, librdkafka's 45 s session timeout; the paused-zombie test
//     alone shortens the session to 2 s), then run the same payments-loadgen
//     command, rate-limited (--rate, default 2,500/s) so that input keeps
//     arriving while the chaos loop runs. The loop, driven by a seeded RNG (the
//     seed is printed; set CHAOS_SEED to replay a schedule), SIGKILLs one
//     instance every 1.5-4 s until all input is committed (at least
//     CHAOS_MIN_KILLS = 5 kills, at most 30), and restarts it with the same
//     instance.id (so the same transactional.id: the restart fences the zombie
//     and aborts its open transaction) and state.dir, wiping the state dir first
//     with probability 0.3 (a full restore from the changelogs). Restarts come
//     after 0-1.5 s, or with probability 0.25 after 2.5-5 s; a restarted static
//     member takes its own tasks back without a rebalance. (With the paused
//     zombies' 2 s session, a late restart finds its tasks moved to the
//     survivor while its transaction is still open.)
//     A third instance (c) joins when a third of the requests is committed
//     and leaves (SIGTERM) at two thirds. (The standby variant runs every
//     instance with num.standby.replicas=1.) When every request is committed,
//     stop both (SIGTERM), read both topics, check the invariants and run
//     payments-verify.
//  3. COMPARE. The requests of both runs are identical at identical (partition,
//     offset) (same seed, murmur2 partitioning, idempotent in-order producer).
//     Each request's decision (payment_id, decision, decline_code, fraud_score,
//     replay, amount_minor, currency) and its confirmation bytes in the chaos run
//     equal those of the baseline.
//
// On Apache Kafka (ExactlyOnceChaosKafkaTest, label kafka): the same three
// phases, each run on a fresh single-node Apache Kafka broker
// (tests/support/kafka_broker.h, 4 partitions for auto-created topics) whose
// requests, confirmations and dead-letter topics are created with the Admin API
// (CreateTopics) and waited for until every partition has a leader and answers
// offset queries; paymentd creates its changelog topics itself. The chaos run
// also hard-bounces the broker CHAOS_BROKER_BOUNCES times (default 2): SIGKILL
// and a restart on the same data and port, as Apache Kafka's own transactions
// system test bounces its brokers. With bounces the chaos run's input is sent
// as fast as possible (no --rate) right after the instances start: across a
// hard bounce payments-loadgen's idempotent (non-transactional) librdkafka
// 2.0.2 producer was seen writing a batch twice (2 extra requests), and the
// comparison needs identical input. Bounce i comes once the group has committed
// a seeded share of the requests in the middle half of the i-th of
// CHAOS_BROKER_BOUNCES + 1 equal slices of the progress, so while both
// instances process and have transactions open. The main loop waits for the
// broker to answer again (about 7 s), then goes on with the instance kills;
// the run ends only after every bounce.
//
// Invariants checked on each run's committed confirmations (violation kinds):
//  - every request is answered by exactly one confirmation
//    [missing_confirmation, duplicate_confirmation]. A confirmation, replay or
//    not, answers the request named by its source_partition/source_offset
//    (src/payments/README.md); a confirmation naming no request is
//    [orphan_confirmation]; one that does not decode [undecodable_confirmation];
//  - at most one non-replay decision per (customer_id, idempotency_key) that is
//    not a decline that is never stored (card number, identity, key reuse,
//    rejected timestamp, rate limit: answered anew for every repeat, by design)
//    [duplicate_decision_for_key];
//  - every replay is identical to the key's first decision in payment_id,
//    decision, decline_code, fraud_score, amount_minor and currency
//    [replay_mismatch, replay_without_original].
//
// Reported (stdout and RecordProperty): the seed, requests, confirmations,
// kills (and how many wiped the state), changelog records restored, violations,
// durations and throughput.
//
// Knobs (environment): CHAOS_SEED, CHAOS_REQUESTS (default 50000), CHAOS_RATE
// (requests/s of the chaos run's producer, default 2500), CHAOS_MIN_KILLS
// (default 5), CHAOS_BROKER_BOUNCES (Apache Kafka only, default 2),
// CHAOS_KEEP_DIR=1 (keep the temporary directory with all logs),
// and two opt-in experiments:
//  - CHAOS_PAUSE_PERCENT=N: N% of the chaos actions SIGSTOP an instance for
//    3-8 s (past its session timeout, within transaction.timeout.ms) and then
//    SIGCONT it: a zombie whose tasks moved on. devbroker fences it through the
//    group (KIP-447): TxnOffsetCommit v3 carries the member's generation and
//    member id, a stale one is rejected and the zombie's transaction aborted,
//    and OffsetFetch v7 (require_stable) makes the new owner wait for offsets
//    the zombie sent before the takeover. Off by default in the first test;
//    PausedZombieInstancesAreFencedAsTheBaseline runs it at 35%.
//  - CHAOS_PROCESSING_GUARANTEE=at_least_once: a negative control; the kills
//    must then produce duplicates, which the checks above report (the test fails).
//
// Run: ctest --test-dir build-<name> -L chaos --output-on-failure (-L kafka: the
// Apache Kafka case only; it skips when the jars are not fetched, unless
// PAYMENTS_REQUIRE_KAFKA is set)
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "payments/v1/payments.pb.h"
#include "streams/result.h"
#include "streams/status.h"
#include "support/kafka_broker.h"
#include "support/subprocess.h"
#include "tools/kafka_util.h"

namespace {

using namespace std::chrono_literals;
using streams::Result;
using streams::Status;
using streams::test_support::Command;
using streams::test_support::ExitStatus;
using streams::test_support::KafkaBroker;
using streams::test_support::KafkaBrokerOptions;
using streams::test_support::LastLines;
using streams::test_support::OutputStream;
using streams::test_support::Subprocess;
using SteadyClock = std::chrono::steady_clock;

constexpr int kPartitions = 4;
constexpr char kRequestsTopic[] = "payments.requests";
constexpr char kConfirmationsTopic[] = "payments.confirmations";
constexpr char kDeadLetterTopic[] = "payments.requests.dlq";
constexpr char kApplicationId[] = "chaos-payments";
constexpr uint64_t kLoadgenSeed = 20240611;
constexpr int kMaxKills = 30;
constexpr double kWipeProbability = 0.3;
// Restarts are quick (0-1.5 s, before the dead member's session expires), or with
// this probability late (2.5-5 s): then the surviving instance takes over the
// dead one's tasks while its transaction is still open, until the restart's
// InitProducerId (same transactional.id) or the transaction timeout aborts it.
constexpr double kLateRestartProbability = 0.25;
constexpr int kSessionTimeoutMs = 2000;

// Budgets: generous for a loaded 2-core machine, but bounded.
constexpr auto kStartTimeout = 30s;
constexpr auto kLoadgenTimeout = 180s;
constexpr auto kBaselineTimeout = 180s;
constexpr auto kChaosTimeout = 300s;
constexpr auto kStopTimeout = 30s;
constexpr auto kReadTimeout = 60s;
constexpr auto kVerifyTimeout = 120s;

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  long long parsed = std::strtoll(value, &end, 10);
  return end != nullptr && *end == '\0' ? parsed : fallback;
}

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

void Say(const std::string& line) {
  std::printf("[chaos] %s\n", line.c_str());
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// librdkafka: just enough to create topics, read committed offsets and read
// topics to their end. Every error becomes a Status.

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
  void operator()(rd_kafka_topic_t* topic) const { rd_kafka_topic_destroy(topic); }
  void operator()(const rd_kafka_metadata_t* md) const { rd_kafka_metadata_destroy(md); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, RdKafkaDeleter>;
using KafkaMessage = std::unique_ptr<rd_kafka_message_t, RdKafkaDeleter>;
using KafkaTopic = std::unique_ptr<rd_kafka_topic_t, RdKafkaDeleter>;
using KafkaMetadata = std::unique_ptr<const rd_kafka_metadata_t, RdKafkaDeleter>;

using Properties = std::vector<std::pair<std::string, std::string>>;

Result<KafkaHandle> NewClient(rd_kafka_type_t type, const Properties& properties) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument(key + ": " + error);
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, error, sizeof(error));  // Owns conf on success.
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::Internal(std::string("rd_kafka_new: ") + error);
  }
  if (type == RD_KAFKA_CONSUMER) rd_kafka_poll_set_consumer(rk);
  return KafkaHandle(rk);
}

// Makes the broker auto-create `topic` (Metadata request allowing it) and waits
// until it has `partitions` partitions. Errors: FailedPrecondition (another
// partition count), TimedOut.
Status EnsureTopic(const std::string& bootstrap, const std::string& topic, int partitions) {
  STREAMS_ASSIGN_OR_RETURN(KafkaHandle rk,
                           NewClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap},
                                                         {"allow.auto.create.topics", "true"},
                                                         {"log_level", "3"}}));
  KafkaTopic rkt(rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr));
  auto deadline = SteadyClock::now() + kStartTimeout;
  std::string last = "no answer";
  while (SteadyClock::now() < deadline) {
    const rd_kafka_metadata_t* raw = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk.get(), 0, rkt.get(), &raw, 2000);
    KafkaMetadata md(raw);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->topic_cnt == 1) {
      const auto& t = md->topics[0];
      if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR && t.partition_cnt > 0) {
        if (t.partition_cnt != partitions) {
          return Status::FailedPrecondition(topic + " has " + std::to_string(t.partition_cnt) +
                                            " partitions, want " + std::to_string(partitions));
        }
        // Every partition led (Apache Kafka: a new partition may have no leader yet).
        bool led = true;
        for (int p = 0; p < t.partition_cnt; ++p) {
          if (t.partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR || t.partitions[p].leader < 0) {
            led = false;
            last = std::string("partition ") + std::to_string(p) +
                   " without a leader: " + rd_kafka_err2str(t.partitions[p].err);
          }
        }
        if (led) return Status::Ok();
      } else {
        last = rd_kafka_err2str(t.err);
      }
    } else {
      last = rd_kafka_err2str(err);
    }
    std::this_thread::sleep_for(100ms);
  }
  return Status::TimedOut("topic " + topic + " not created: " + last);
}

// End offsets (high watermark; last stable offset for a read_committed client).
Result<std::vector<int64_t>> QueryEnds(rd_kafka_t* rk, const std::string& topic) {
  std::vector<int64_t> ends(kPartitions, 0);
  for (int p = 0; p < kPartitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (int attempt = 0; attempt < 5 && err != RD_KAFKA_RESP_ERR_NO_ERROR; ++attempt) {
      err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, 5000);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Unavailable("end offset of " + topic + "-" + std::to_string(p) + ": " +
                                 rd_kafka_err2str(err));
    }
    ends[p] = high;
  }
  return ends;
}

// Reads the offsets committed by a consumer group, without joining it.
class CommittedOffsetsProbe {
 public:
  static Result<std::unique_ptr<CommittedOffsetsProbe>> Create(const std::string& bootstrap,
                                                               const std::string& group) {
    STREAMS_ASSIGN_OR_RETURN(KafkaHandle rk,
                             NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                                           {"group.id", group},
                                                           {"enable.auto.commit", "false"},
                                                           {"log_level", "3"}}));
    return std::unique_ptr<CommittedOffsetsProbe>(new CommittedOffsetsProbe(std::move(rk)));
  }

  // The committed offset of each partition of `topic` (0 when none yet).
  Result<std::vector<int64_t>> Committed(const std::string& topic) {
    PartitionList list(rd_kafka_topic_partition_list_new(kPartitions));
    for (int p = 0; p < kPartitions; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
    }
    rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), list.get(), 5000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Unavailable(std::string("committed offsets: ") + rd_kafka_err2str(err));
    }
    std::vector<int64_t> offsets(kPartitions, 0);
    for (int i = 0; i < list->cnt; ++i) {
      const auto& tp = list->elems[i];
      if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return Status::Unavailable(std::string("committed offset: ") + rd_kafka_err2str(tp.err));
      }
      if (tp.offset >= 0) offsets[tp.partition] = tp.offset;
    }
    return offsets;
  }

 private:
  explicit CommittedOffsetsProbe(KafkaHandle rk) : rk_(std::move(rk)) {}
  KafkaHandle rk_;
};

struct RawRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp = 0;
  std::string key;
  std::string value;
};

// Reads every committed record of `topic` (read_committed) from the beginning
// to the end offsets queried at the start, in (partition, offset) order.
Result<std::vector<RawRecord>> ReadTopic(const std::string& bootstrap, const std::string& topic) {
  static int reader_id = 0;
  STREAMS_ASSIGN_OR_RETURN(
      KafkaHandle rk,
      NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                    {"group.id", "chaos-reader-" + std::to_string(getpid()) + "-" +
                                                     std::to_string(++reader_id)},
                                    {"isolation.level", "read_committed"},
                                    {"enable.auto.commit", "false"},
                                    {"enable.partition.eof", "true"},
                                    {"auto.offset.reset", "earliest"},
                                    {"fetch.wait.max.ms", "20"},
                                    {"log_level", "3"}}));
  STREAMS_ASSIGN_OR_RETURN(std::vector<int64_t> ends, QueryEnds(rk.get(), topic));
  PartitionList assignment(rd_kafka_topic_partition_list_new(kPartitions));
  for (int p = 0; p < kPartitions; ++p) {
    rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  if (auto err = rd_kafka_assign(rk.get(), assignment.get()); err) {
    return Status::Internal(std::string("assign: ") + rd_kafka_err2str(err));
  }
  std::vector<int64_t> next(kPartitions, 0);  // Next offset to read, per partition.
  std::vector<RawRecord> records;
  std::string last_error;
  auto deadline = SteadyClock::now() + kReadTimeout;
  auto done = [&] {
    for (int p = 0; p < kPartitions; ++p) {
      if (next[p] < ends[p]) return false;
    }
    return true;
  };
  while (!done()) {
    if (SteadyClock::now() > deadline) {
      std::string lagging;
      for (int p = 0; p < kPartitions; ++p) {
        if (next[p] < ends[p]) {
          lagging += " " + topic + "-" + std::to_string(p) + " at " + std::to_string(next[p]) +
                     " of " + std::to_string(ends[p]);
        }
      }
      rd_kafka_consumer_close(rk.get());
      return Status::TimedOut("reading " + topic + ":" + lagging + " (last error: " + last_error +
                              ")");
    }
    KafkaMessage message(rd_kafka_consumer_poll(rk.get(), 200));
    if (!message) continue;
    if (message->partition < 0 || message->partition >= kPartitions) continue;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      next[message->partition] = std::max(next[message->partition], message->offset);
      continue;
    }
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      last_error = rd_kafka_message_errstr(message.get());
      continue;
    }
    RawRecord record;
    record.partition = message->partition;
    record.offset = message->offset;
    rd_kafka_timestamp_type_t type;
    record.timestamp = rd_kafka_message_timestamp(message.get(), &type);
    if (message->key != nullptr) {
      record.key.assign(static_cast<const char*>(message->key), message->key_len);
    }
    if (message->payload != nullptr) {
      record.value.assign(static_cast<const char*>(message->payload), message->len);
    }
    next[record.partition] = std::max(next[record.partition], record.offset + 1);
    if (record.offset < ends[record.partition]) records.push_back(std::move(record));
  }
  rd_kafka_consumer_close(rk.get());
  std::sort(records.begin(), records.end(), [](const RawRecord& a, const RawRecord& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  return records;
}

// ---------------------------------------------------------------------------
// The exactly-once analysis.

using Coordinates = std::pair<int32_t, int64_t>;  // (partition, offset) of a request.

std::string ToString(const Coordinates& c) {
  return std::string(kRequestsTopic) + "-" + std::to_string(c.first) + "@" +
         std::to_string(c.second);
}

struct Decision {
  std::string payment_id;
  int decision = 0;
  std::string decline_code;
  double fraud_score = 0;
  bool replay = false;
  int64_t amount_minor = 0;
  std::string currency;

  static Decision Of(const payments::v1::PaymentConfirmation& c) {
    return {c.payment_id(),   static_cast<int>(c.decision()),
            c.decline_code(), c.fraud_score(),
            c.replay(),       c.amount_minor(),
            c.currency()};
  }
  friend bool operator==(const Decision&, const Decision&) = default;
  std::string ToString() const {
    char score[32];
    std::snprintf(score, sizeof(score), "%.4f", fraud_score);
    return "{" + payment_id + " " + payments::v1::Decision_Name(decision) +
           (decline_code.empty() ? "" : " " + decline_code) + " score=" + score +
           (replay ? " replay" : "") + " " + std::to_string(amount_minor) + " " + currency + "}";
  }
};

struct ViolationList {
  uint64_t count = 0;
  std::vector<std::string> examples;
};

struct RunData {
  std::vector<RawRecord> requests;
  std::vector<RawRecord> confirmations;
};

struct Analysis {
  uint64_t requests = 0;
  uint64_t undecodable_requests = 0;
  uint64_t confirmations = 0;
  uint64_t replays = 0;
  // Per answered request (exactly one confirmation): its decision and the
  // confirmation's bytes.
  std::map<Coordinates, Decision> decisions;
  std::map<Coordinates, std::string> confirmation_bytes;
  std::map<std::string, ViolationList> violations;

  void Violation(const std::string& kind, const std::string& example) {
    auto& list = violations[kind];
    ++list.count;
    if (list.examples.size() < 5) list.examples.push_back(example);
  }
  uint64_t violation_count() const {
    uint64_t total = 0;
    for (const auto& [kind, list] : violations) total += list.count;
    return total;
  }
  std::string Describe() const {
    std::string out;
    for (const auto& [kind, list] : violations) {
      out += "  " + kind + ": " + std::to_string(list.count) + "\n";
      for (const auto& example : list.examples) out += "    " + example + "\n";
    }
    return out.empty() ? "  none\n" : out;
  }
};

// Declines that are decided anew for each repeat of a key, never replayed:
// validation declines (re-run before the idempotency lookup), key reuse, PANs.
// Declines that are never stored, so every repeat of the request is decided
// anew (src/payments/README.md, "Order of checks"): card numbers, identity
// declines (an empty or unusable customer_id/idempotency_key, a key mismatch),
// key reuse, rejected timestamps and the rate limit. Every other decision is
// stored and its repeats are replays.
bool IsRepeatableDecline(const payments::v1::PaymentConfirmation& c) {
  static const std::set<std::string> kCodes = {"PAN_NOT_ALLOWED",    "KEY_MISMATCH",
                                               "INVALID_IDENTIFIER", "IDEMPOTENCY_KEY_REUSED",
                                               "TIMESTAMP_INVALID",  "TIMESTAMP_TOO_FAR_AHEAD",
                                               "RATE_LIMITED"};
  if (c.decision() != payments::v1::DECLINED) return false;
  if (c.decline_code() == "MISSING_FIELD") {
    return c.customer_id().empty() || c.idempotency_key().empty();
  }
  return kCodes.count(c.decline_code()) > 0;
}

Analysis Analyze(const RunData& run) {
  Analysis a;
  struct Request {
    payments::v1::PaymentRequest message;
    bool decodable = false;
  };
  std::map<Coordinates, Request> requests;
  // (partition, customer_id, idempotency_key) -> request offsets, ascending.
  for (const auto& record : run.requests) {
    Request r;
    r.decodable = r.message.ParseFromString(record.value);
    Coordinates at{record.partition, record.offset};
    ++a.requests;
    if (!r.decodable) ++a.undecodable_requests;
    requests.emplace(at, std::move(r));
  }

  struct Answer {
    const RawRecord* record;
    payments::v1::PaymentConfirmation message;
  };
  std::vector<Answer> confirmations;
  for (const auto& record : run.confirmations) {
    Answer answer{&record, {}};
    ++a.confirmations;
    if (!answer.message.ParseFromString(record.value)) {
      a.Violation("undecodable_confirmation", "confirmations-" + std::to_string(record.partition) +
                                                  "@" + std::to_string(record.offset));
      continue;
    }
    confirmations.push_back(std::move(answer));
  }

  std::map<Coordinates, std::vector<const Answer*>> answers;
  auto where = [](const Answer& c) {
    return "confirmations-" + std::to_string(c.record->partition) + "@" +
           std::to_string(c.record->offset) + " naming " + c.message.source_topic() + "-" +
           std::to_string(c.message.source_partition()) + "@" +
           std::to_string(c.message.source_offset());
  };
  // Every confirmation (replays included) answers the request it names.
  std::map<std::pair<std::string, std::string>, std::vector<const Answer*>> decisions_by_key;
  for (const Answer& c : confirmations) {
    Coordinates source{c.message.source_partition(), c.message.source_offset()};
    if (c.message.source_topic() != kRequestsTopic || requests.count(source) == 0) {
      a.Violation("orphan_confirmation", where(c));
      continue;
    }
    answers[source].push_back(&c);
    if (c.message.replay()) {
      ++a.replays;
    } else if (!IsRepeatableDecline(c.message)) {
      decisions_by_key[{c.message.customer_id(), c.message.idempotency_key()}].push_back(&c);
    }
  }
  // Every replay is identical to the first decision of its key.
  for (const Answer& c : confirmations) {
    if (!c.message.replay()) continue;
    auto first = decisions_by_key.find({c.message.customer_id(), c.message.idempotency_key()});
    if (first == decisions_by_key.end() || first->second.empty()) {
      a.Violation("replay_without_original", where(c));
      continue;
    }
    Decision want = Decision::Of(first->second.front()->message);
    Decision got = Decision::Of(c.message);
    want.replay = got.replay = false;
    if (!(want == got)) {
      a.Violation("replay_mismatch",
                  where(c) + ": replay " + got.ToString() + " vs first " + want.ToString());
    }
  }
  for (const auto& [key, list] : decisions_by_key) {
    if (list.size() > 1) {
      std::string example = "customer " + key.first + " key " + key.second + ":";
      for (const Answer* c : list)
        example += " " + where(*c) + " " + Decision::Of(c->message).ToString();
      a.Violation("duplicate_decision_for_key", example);
    }
  }
  for (const auto& [at, request] : requests) {
    if (!request.decodable) continue;  // Dead-lettered, no confirmation expected.
    auto it = answers.find(at);
    size_t n = it == answers.end() ? 0 : it->second.size();
    if (n == 0) {
      a.Violation("missing_confirmation", ToString(at));
    } else if (n > 1) {
      std::string example = ToString(at) + " answered " + std::to_string(n) + " times:";
      for (const Answer* c : it->second) {
        example += " " + where(*c) + " " + Decision::Of(c->message).ToString();
      }
      a.Violation("duplicate_confirmation", example);
    } else {
      a.decisions[at] = Decision::Of(it->second.front()->message);
      a.confirmation_bytes[at] = it->second.front()->record->value;
    }
  }
  return a;
}

// ---------------------------------------------------------------------------

struct KillEvent {
  double at_s = 0;
  std::string instance;
  bool wiped = false;
  int64_t committed = 0;  // Requests committed by the group when the kill happened.
};

// A hard bounce of the Apache Kafka broker (SIGKILL, restart on the same data).
struct BounceEvent {
  double at_s = 0;
  std::chrono::milliseconds took{0};  // Until the restarted broker answered.
  int64_t committed = 0;
};

class ExactlyOnceChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = streams::test_support::MakeTempDir("exactly_once_chaos-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    if (const char* env = std::getenv("CHAOS_SEED"); env != nullptr && *env != '\0') {
      seed_ = std::strtoull(env, nullptr, 10);
    } else {
      seed_ = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
    }
    requests_ = EnvInt("CHAOS_REQUESTS", 50000);
    rate_ = EnvInt("CHAOS_RATE", 2500);
    min_kills_ = static_cast<int>(EnvInt("CHAOS_MIN_KILLS", 5));
    pause_probability_ =
        static_cast<double>(EnvInt("CHAOS_PAUSE_PERCENT", 0)) / 100.0;  // Opt-in, see top.
    if (const char* env = std::getenv("CHAOS_PROCESSING_GUARANTEE"); env != nullptr && *env) {
      guarantee_ = env;  // at_least_once: a negative control, the checks must fail.
    }
    Say("seed " + std::to_string(seed_) +
        " (replay the kill schedule with CHAOS_SEED=" + std::to_string(seed_) + "), " +
        std::to_string(requests_) + " requests, " + guarantee_ + ", " +
        (kafka_ ? "Apache Kafka, " + std::to_string(broker_bounces_) + " broker bounces"
                : std::string("devbroker")) +
        ", logs in " + dir_.string());
    RecordProperty("chaos_seed", std::to_string(seed_));
  }

  void TearDown() override {
    probe_.reset();  // Before the broker goes away.
    // Kill every child (SIGKILL + reap) before removing their directories.
    for (auto& instance : instances_) instance.process.reset();
    loadgen_.reset();
    broker_.reset();
    kafka_broker_.reset();
    const char* keep = std::getenv("CHAOS_KEEP_DIR");
    if (keep != nullptr && std::string(keep) == "1") {
      Say("kept " + dir_.string());
    } else if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // A paymentd instance of the current run.
  struct Instance {
    std::string id;
    std::filesystem::path state_dir;
    int generation = 0;
    std::unique_ptr<Subprocess> process;
  };

  Status StartBroker(const std::string& run) {
    if (kafka_) return StartKafka(run);
    STREAMS_ASSIGN_OR_RETURN(
        broker_, Subprocess::Start(Command(
                     {DEVBROKER_BIN, "--listen", "127.0.0.1:0", "--default-partitions",
                      std::to_string(kPartitions), "--auto-create", "true", "--log-level", "warn"},
                     "devbroker", dir_ / run)));
    STREAMS_ASSIGN_OR_RETURN(
        auto line,
        broker_->WaitForLine(OutputStream::kStdout,
                             std::regex("devbroker listening on (\\S+:[0-9]+)"), kStartTimeout));
    bootstrap_ = line.groups[1];
    Say(run + ": devbroker listening on " + bootstrap_);
    for (const char* topic : {kRequestsTopic, kConfirmationsTopic}) {
      STREAMS_RETURN_IF_ERROR(EnsureTopic(bootstrap_, topic, kPartitions));
    }
    return Status::Ok();
  }

  // Apache Kafka (tests/support/kafka_broker.h): a fresh single-node broker with
  // its data in <run>/kafka; the topics are created with the Admin API
  // (CreateTopics), paymentd creates its changelog topics itself. Returns once
  // every partition of the requests and confirmations topics has a leader and
  // answers offset queries (a new partition can answer NOT_LEADER_OR_FOLLOWER
  // for a moment). Errors: as KafkaBroker::Start (NotFound: jars not fetched).
  Status StartKafka(const std::string& run) {
    KafkaBrokerOptions options;
    options.dir = dir_ / run / "kafka";
    options.num_partitions = kPartitions;
    STREAMS_ASSIGN_OR_RETURN(kafka_broker_, KafkaBroker::Start(options));
    bootstrap_ = kafka_broker_->bootstrap();
    Say(run + ": Apache Kafka listening on " + bootstrap_ + " (started in " +
        std::to_string(kafka_broker_->last_start_duration().count()) + " ms)");
    std::vector<payments::tools::TopicSpec> specs;
    for (const char* topic : {kRequestsTopic, kConfirmationsTopic, kDeadLetterTopic}) {
      specs.push_back({topic, kPartitions, 1});
    }
    STREAMS_ASSIGN_OR_RETURN(
        auto created,
        payments::tools::CreateTopics({{"bootstrap.servers", bootstrap_}}, specs, kStartTimeout));
    (void)created;
    for (const char* topic : {kRequestsTopic, kConfirmationsTopic}) {
      STREAMS_RETURN_IF_ERROR(EnsureTopic(bootstrap_, topic, kPartitions));
    }
    STREAMS_ASSIGN_OR_RETURN(KafkaHandle rk,
                             NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap_},
                                                           {"group.id", "chaos-ends"},
                                                           {"log_level", "3"}}));
    auto deadline = SteadyClock::now() + kStartTimeout;
    for (const char* topic : {kRequestsTopic, kConfirmationsTopic}) {
      while (true) {
        auto ends = QueryEnds(rk.get(), topic);
        if (ends.ok()) break;
        if (SteadyClock::now() > deadline) return ends.status();
        std::this_thread::sleep_for(200ms);
      }
    }
    return Status::Ok();
  }

  // Ends the current run's broker (its data stays in the run's directory).
  void StopBroker() {
    if (broker_) broker_->Stop(SIGTERM, 10s);
    broker_.reset();
    kafka_broker_.reset();  // SIGKILL: nothing of it is needed any more.
  }

  // The same requests in both runs: only the pace (`rate`, 0 = as fast as
  // possible) differs.
  std::vector<std::string> LoadgenArgv(int64_t rate) const {
    const std::vector<std::pair<std::string, std::string>> options = {
        {"--bootstrap-servers", bootstrap_},
        {"--topic", kRequestsTopic},
        {"--count", std::to_string(requests_)},
        {"--customers", "500"},
        {"--duplicates", "0.05"},
        {"--key-reuse", "0.03"},
        {"--invalid", "0.05"},
        {"--refunds", "0.08"},
        {"--bursts", "0.05"},
        {"--seed", std::to_string(kLoadgenSeed)},
        {"--partitions", std::to_string(kPartitions)},
        {"--rate", std::to_string(rate)}};
    std::vector<std::string> argv = {LOADGEN_BIN, "--quiet"};
    for (const auto& [flag, value] : options) {
      argv.push_back(flag);
      argv.push_back(value);
    }
    return argv;
  }

  // Checks how payments-loadgen ended: exit 0 and every request acknowledged.
  Status CheckLoadgen(const ExitStatus& exit) {
    std::string out = loadgen_->ReadOutput(OutputStream::kStdout);
    if (!exit.Succeeded()) {
      return Status::Internal("payments-loadgen failed: " + exit.ToString() + "\n" +
                              loadgen_->Describe());
    }
    std::smatch m;
    if (!std::regex_search(out, m, std::regex("sent=([0-9]+) acked=([0-9]+) failed=([0-9]+)")) ||
        std::stoll(m[2]) != requests_ || std::stoll(m[3]) != 0) {
      return Status::Internal("payments-loadgen did not get every request acknowledged:\n" + out);
    }
    return Status::Ok();
  }

  Status StartInstance(Instance& instance, const std::string& run) {
    ++instance.generation;
    std::vector<std::string> argv = {PAYMENTD_BIN, "--log-level", "info"};
    for (const std::string& setting :
         {"bootstrap.servers=" + bootstrap_, std::string("application.id=") + kApplicationId,
          "instance.id=" + instance.id, "state.dir=" + instance.state_dir.string(),
          std::string("num.stream.threads=1"), std::string("commit.interval.ms=100"),
          std::string("admin.listen=127.0.0.1:0"), "processing.guarantee=" + guarantee_}) {
      argv.push_back("--set");
      argv.push_back(setting);
    }
    if (standby_replicas_ > 0) {
      argv.push_back("--set");
      argv.push_back("num.standby.replicas=" + std::to_string(standby_replicas_));
    }
    if (session_timeout_ms_ > 0) {
      // The zombie scenario: a paused member must lose its tasks quickly.
      for (const std::string& setting :
           {"consumer.session.timeout.ms=" + std::to_string(session_timeout_ms_),
            std::string("consumer.heartbeat.interval.ms=300")}) {
        argv.push_back("--set");
        argv.push_back(setting);
      }
    }
    STREAMS_ASSIGN_OR_RETURN(
        instance.process,
        Subprocess::Start(
            Command(argv, "paymentd-" + instance.id + "-" + std::to_string(instance.generation),
                    dir_ / run)));
    auto started = instance.process->WaitForLine(
        OutputStream::kStderr, std::regex("admin listening on (\\S+)"), kStartTimeout);
    return started.ok() ? Status::Ok() : started.status();
  }

  // End offsets of the requests topic.
  Result<std::vector<int64_t>> RequestEnds() {
    STREAMS_ASSIGN_OR_RETURN(KafkaHandle rk,
                             NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap_},
                                                           {"group.id", "chaos-ends"},
                                                           {"log_level", "3"}}));
    return QueryEnds(rk.get(), kRequestsTopic);
  }

  // Changelog records restored by all paymentd processes of `run` (from their logs).
  int64_t RestoredRecords(const std::string& run) const {
    int64_t total = 0;
    std::regex restored("task \\S+: restored ([0-9]+) changelog records");
    for (const auto& entry : std::filesystem::directory_iterator(dir_ / run)) {
      std::string name = entry.path().filename().string();
      if (name.rfind("paymentd-", 0) != 0 || entry.path().extension() != ".stderr") continue;
      std::string log = streams::test_support::ReadFileOrEmpty(entry.path());
      for (std::sregex_iterator it(log.begin(), log.end(), restored), end; it != end; ++it) {
        total += std::stoll((*it)[1]);
      }
    }
    return total;
  }

  // The group's progress: committed offsets and their sum.
  Result<std::vector<int64_t>> Committed() { return probe_->Committed(kRequestsTopic); }

  static int64_t Sum(const std::vector<int64_t>& v) {
    int64_t total = 0;
    for (int64_t x : v) total += x;
    return total;
  }

  static bool Reached(const std::vector<int64_t>& committed, const std::vector<int64_t>& ends) {
    for (int p = 0; p < kPartitions; ++p) {
      if (committed[p] < ends[p]) return false;
    }
    return true;
  }

  std::string ProgressText(const std::vector<int64_t>& committed,
                           const std::vector<int64_t>& ends) const {
    std::string out;
    for (int p = 0; p < kPartitions; ++p) {
      out += " p" + std::to_string(p) + "=" +
             std::to_string(committed.size() > size_t(p) ? committed[p] : -1) + "/" +
             std::to_string(ends.size() > size_t(p) ? ends[p] : -1);
    }
    return out;
  }

  std::string DescribeProcesses() const {
    std::string out;
    for (const auto& instance : instances_) {
      if (instance.process) out += instance.process->Describe(40);
    }
    if (broker_) out += broker_->Describe(20);
    if (kafka_broker_) out += "Apache Kafka server.log:\n" + kafka_broker_->LogTail(20);
    return out;
  }

  // Stops every paymentd gracefully; a failed graceful stop is reported.
  void StopInstances() {
    for (auto& instance : instances_) {
      if (!instance.process) continue;
      ExitStatus exit = instance.process->Stop(SIGTERM, kStopTimeout);
      EXPECT_TRUE(exit.Succeeded())
          << "paymentd " << instance.id
          << " did not stop gracefully on SIGTERM: " << exit.ToString() << "\n"
          << instance.process->Describe(40);
    }
  }

  // Reads both topics of the current broker.
  Status ReadRun(RunData* data) {
    STREAMS_ASSIGN_OR_RETURN(data->requests, ReadTopic(bootstrap_, kRequestsTopic));
    STREAMS_ASSIGN_OR_RETURN(data->confirmations, ReadTopic(bootstrap_, kConfirmationsTopic));
    return Status::Ok();
  }

  struct VerifyOutcome {
    ExitStatus exit;
    nlohmann::json report;  // Discarded (is_discarded()) when stdout was not JSON.
    std::string details;    // stdout and the tail of stderr, for failure messages.
  };

  // Runs payments-verify (read_committed) against the current broker. Errors:
  // it could not be started or did not finish within kVerifyTimeout.
  Result<VerifyOutcome> RunVerify(const std::string& run) {
    STREAMS_ASSIGN_OR_RETURN(
        auto verify, Subprocess::Start(Command({VERIFY_BIN, "--bootstrap-servers", bootstrap_,
                                                "--json", "--timeout-ms", "60000"},
                                               "payments-verify", dir_ / run)));
    auto exit = verify->Wait(kVerifyTimeout);
    if (!exit.ok()) return Status::TimedOut(exit.status().message() + "\n" + verify->Describe());
    std::string out = verify->ReadOutput(OutputStream::kStdout);
    VerifyOutcome outcome{*exit, nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false),
                          ""};
    outcome.details = "payments-verify " + exit->ToString() + "\n" +
                      (outcome.report.is_discarded() ? out : outcome.report.dump(2)) + "\n" +
                      verify->Tail(OutputStream::kStderr, 20);
    return outcome;
  }

  void CheckRun(const std::string& run, const Analysis& analysis, const VerifyOutcome& verify) {
    const nlohmann::json& report = verify.report;
    auto number = [&](const char* key) -> int64_t {
      return report.is_object() && report.contains(key) && report[key].is_number()
                 ? report[key].get<int64_t>()
                 : -1;
    };
    Say(run + ": " + std::to_string(analysis.requests) + " requests, " +
        std::to_string(analysis.confirmations) + " confirmations (" +
        std::to_string(analysis.replays) + " replays), " +
        std::to_string(analysis.violation_count()) + " violations; payments-verify " +
        verify.exit.ToString() + ": " + std::to_string(number("requests")) + " requests, " +
        std::to_string(number("confirmations")) + " confirmations, " +
        std::to_string(number("violation_count")) + " violations");
    EXPECT_EQ(analysis.requests, static_cast<uint64_t>(requests_)) << run;
    EXPECT_EQ(analysis.violation_count(), 0u) << run << ": exactly-once violations:\n"
                                              << analysis.Describe();
    EXPECT_EQ(analysis.confirmations, analysis.requests - analysis.undecodable_requests) << run;
    EXPECT_EQ(verify.exit.exit_code, 0) << run << ": " << verify.details;
    EXPECT_EQ(number("violation_count"), 0) << run << ": " << verify.details;
    EXPECT_EQ(number("requests"), requests_) << run;
    EXPECT_EQ(number("confirmations"), static_cast<int64_t>(analysis.confirmations)) << run;
  }

  // Runs the baseline, then the chaos run, then compares them (see the top).
  void RunBaselineThenChaosAndCompare() {
    const auto test_start = SteadyClock::now();

    // ---- 1. Baseline: one undisturbed instance. ----
    RunData baseline;
    double baseline_processing_s = 0;
    {
      const std::string run = "baseline";
      const auto start = SteadyClock::now();
      Status broker = StartBroker(run);
      if (kafka_ && !broker.ok() && KafkaBroker::ShouldSkip(broker)) {
        GTEST_SKIP() << broker.message() << " (with PAYMENTS_REQUIRE_KAFKA=1 this fails)";
      }
      ASSERT_TRUE(broker.ok()) << broker;
      auto loadgen =
          Subprocess::Start(Command(LoadgenArgv(/*rate=*/0), "payments-loadgen", dir_ / run));
      ASSERT_TRUE(loadgen.ok()) << loadgen.status();
      loadgen_ = std::move(*loadgen);
      auto produced = loadgen_->Wait(kLoadgenTimeout);
      ASSERT_TRUE(produced.ok()) << produced.status() << "\n" << loadgen_->Describe();
      Status loadgen_status = CheckLoadgen(*produced);
      ASSERT_TRUE(loadgen_status.ok()) << loadgen_status;
      Say(run + ": payments-loadgen: " + LastLines(loadgen_->ReadOutput(OutputStream::kStdout), 3));

      auto probe = CommittedOffsetsProbe::Create(bootstrap_, kApplicationId);
      ASSERT_TRUE(probe.ok()) << probe.status();
      probe_ = std::move(*probe);
      auto ends = RequestEnds();
      ASSERT_TRUE(ends.ok()) << ends.status();
      ASSERT_EQ(Sum(*ends), requests_);

      const auto processing_start = SteadyClock::now();
      instances_.push_back({"solo", dir_ / run / "state-solo", 0, nullptr});
      Status started = StartInstance(instances_[0], run);
      ASSERT_TRUE(started.ok()) << started;
      std::vector<int64_t> committed(kPartitions, 0);
      while (true) {
        if (auto c = Committed(); c.ok()) committed = *c;
        if (Reached(committed, *ends)) break;
        ASSERT_TRUE(instances_[0].process->IsRunning()) << "the baseline paymentd exited\n"
                                                        << DescribeProcesses();
        ASSERT_LT(SecondsSince(processing_start),
                  std::chrono::duration<double>(kBaselineTimeout).count())
            << "baseline: not every request committed in time:" << ProgressText(committed, *ends)
            << "\n"
            << DescribeProcesses();
        std::this_thread::sleep_for(100ms);
      }
      baseline_processing_s = SecondsSince(processing_start);
      Say(run + ": every request committed after " + std::to_string(baseline_processing_s) +
          " s (" + std::to_string(static_cast<int64_t>(requests_ / baseline_processing_s)) +
          " requests/s)");
      StopInstances();
      Status read = ReadRun(&baseline);
      ASSERT_TRUE(read.ok()) << read;
      Analysis analysis = Analyze(baseline);
      auto verify = RunVerify(run);
      ASSERT_TRUE(verify.ok()) << verify.status();
      CheckRun(run, analysis, *verify);
      ASSERT_FALSE(HasFailure()) << "the baseline run itself is wrong; no chaos run";

      // Tear the baseline down completely.
      probe_.reset();
      instances_.clear();
      loadgen_.reset();
      StopBroker();
      std::filesystem::remove_all(dir_ / run / "state-solo");
      RecordProperty("baseline_seconds", std::to_string(SecondsSince(start)));
      RecordProperty("baseline_processing_seconds", std::to_string(baseline_processing_s));
      RecordProperty("baseline_throughput_per_s",
                     std::to_string(static_cast<int64_t>(requests_ / baseline_processing_s)));
      RecordProperty("confirmations_baseline", std::to_string(analysis.confirmations));
    }

    // ---- 2. Chaos: two instances, SIGKILLed and restarted at random moments. ----
    RunData chaos;
    std::vector<KillEvent> kills;
    double chaos_s = 0;
    {
      const std::string run = "chaos";
      const auto start = SteadyClock::now();
      Status broker = StartBroker(run);
      ASSERT_TRUE(broker.ok()) << broker;
      auto probe = CommittedOffsetsProbe::Create(bootstrap_, kApplicationId);
      ASSERT_TRUE(probe.ok()) << probe.status();
      probe_ = std::move(*probe);

      instances_.push_back({"a", dir_ / run / "state-a", 0, nullptr});
      instances_.push_back({"b", dir_ / run / "state-b", 0, nullptr});
      for (auto& instance : instances_) {
        Status started = StartInstance(instance, run);
        ASSERT_TRUE(started.ok()) << started;
      }
      // With broker bounces the input is sent as fast as possible (before the
      // first bounce): payments-loadgen's idempotent, non-transactional
      // producer wrote a batch twice across a hard bounce (librdkafka 2.0.2),
      // and the comparison needs identical input at identical offsets.
      const int64_t chaos_rate = kafka_ && broker_bounces_ > 0 ? 0 : rate_;
      auto loadgen =
          Subprocess::Start(Command(LoadgenArgv(chaos_rate), "payments-loadgen", dir_ / run));
      ASSERT_TRUE(loadgen.ok()) << loadgen.status();
      loadgen_ = std::move(*loadgen);

      std::mt19937_64 rng(seed_);
      auto uniform_ms = [&rng](int lo, int hi) {
        return std::chrono::milliseconds(std::uniform_int_distribution<int>(lo, hi)(rng));
      };
      std::optional<std::vector<int64_t>> ends;  // Known once payments-loadgen is done.
      std::vector<int64_t> committed(kPartitions, 0);
      std::vector<std::optional<SteadyClock::time_point>> restart_at(instances_.size());
      std::vector<bool> wipe_on_restart(instances_.size(), false);
      std::vector<std::optional<SteadyClock::time_point>> resume_at(instances_.size());
      int pauses = 0;
      auto busy = [&] {
        for (size_t i = 0; i < instances_.size(); ++i) {
          if (restart_at[i] || resume_at[i]) return true;
        }
        return false;
      };
      auto next_kill = SteadyClock::now() + uniform_ms(1500, 4000);
      int unexpected_exits = 0;
      // Apache Kafka only: hard bounces of the broker itself while the
      // instances process, once every request is in the topic: bounce i comes
      // when the group has committed a seeded share of the requests, in the
      // middle half of the i-th of broker_bounces_ + 1 equal slices of the
      // progress (so with open transactions, never after the end). Drawn from
      // their own RNG so that the kill schedule of a seed stays as on devbroker.
      std::vector<int64_t> bounce_at_committed;
      std::vector<BounceEvent> bounces;
      if (kafka_ && broker_bounces_ > 0) {
        std::mt19937_64 bounce_rng(seed_ ^ 0x9e3779b97f4a7c15ull);
        double slice = static_cast<double>(requests_) / (broker_bounces_ + 1);
        for (int i = 0; i < broker_bounces_; ++i) {
          bounce_at_committed.push_back(static_cast<int64_t>(std::uniform_real_distribution<double>(
              slice * (i + 0.75), slice * (i + 1.25))(bounce_rng)));
        }
      }
      // A third instance joins at a third of the progress and leaves
      // (SIGTERM) at two thirds: rebalances in the middle of the
      // kills. It is never killed itself.
      Instance joiner{"c", dir_ / run / "state-c", 0, nullptr};
      bool joined = false;
      bool left = false;
      while (true) {
        if (!ends && !loadgen_->IsRunning()) {
          Status loadgen_status = CheckLoadgen(*loadgen_->exit_status());
          ASSERT_TRUE(loadgen_status.ok()) << loadgen_status;
          auto queried = RequestEnds();
          ASSERT_TRUE(queried.ok()) << queried.status();
          ASSERT_EQ(Sum(*queried), requests_);
          ends = *queried;
          Say(run + ": payments-loadgen done after " + std::to_string(SecondsSince(start)) +
              " s, " + std::to_string(kills.size()) + " kills so far");
        }
        if (auto c = Committed(); c.ok()) committed = *c;
        bool consumed = ends && Reached(committed, *ends);
        bool pending_restart = busy();
        bool bounced = bounces.size() >= bounce_at_committed.size();
        if (consumed && !pending_restart && bounced && left &&
            static_cast<int>(kills.size()) >= min_kills_) {
          break;
        }
        if (!joined && Sum(committed) >= requests_ / 3) {
          joined = true;
          Say(run + ": t=" + std::to_string(SecondsSince(start)) +
              " s a third instance (c) joins, committed " + std::to_string(Sum(committed)) + "/" +
              std::to_string(requests_));
          Status started = StartInstance(joiner, run);
          ASSERT_TRUE(started.ok()) << started;
          continue;
        }
        if (joined && !left && (Sum(committed) >= 2 * requests_ / 3 || consumed)) {
          left = true;
          Say(run + ": t=" + std::to_string(SecondsSince(start)) +
              " s the third instance (c) leaves (SIGTERM), committed " +
              std::to_string(Sum(committed)) + "/" + std::to_string(requests_));
          ExitStatus exit = joiner.process->Stop(SIGTERM, kStopTimeout);
          EXPECT_TRUE(exit.Succeeded())
              << "paymentd c did not stop gracefully: " << exit.ToString() << "\n"
              << joiner.process->Describe(40);
          continue;
        }
        ASSERT_LT(SecondsSince(start), std::chrono::duration<double>(kChaosTimeout).count())
            << "chaos: not every request committed in time (" << kills.size()
            << " kills):" << ProgressText(committed, ends.value_or(std::vector<int64_t>())) << "\n"
            << DescribeProcesses();

        if (!bounced && ends && Sum(committed) >= bounce_at_committed[bounces.size()]) {
          // SIGKILL the broker and restart it on the same data and port, with
          // whatever the instances have open (transactions, fetches, joins).
          BounceEvent bounce{SecondsSince(start), 0ms, Sum(committed)};
          Say(run + ": t=" + std::to_string(bounce.at_s) + " s broker bounce #" +
              std::to_string(bounces.size() + 1) + ": SIGKILL Apache Kafka, committed " +
              std::to_string(Sum(committed)) + "/" + std::to_string(requests_));
          Status restarted = kafka_broker_->HardBounce();
          ASSERT_TRUE(restarted.ok()) << restarted << "\n" << kafka_broker_->LogTail(40);
          bounce.took = kafka_broker_->last_start_duration();
          bounces.push_back(bounce);
          Say(run + ": t=" + std::to_string(SecondsSince(start)) + " s broker bounce #" +
              std::to_string(bounces.size()) + ": Apache Kafka answers again after " +
              std::to_string(bounce.took.count()) + " ms");
          continue;
        }

        auto now = SteadyClock::now();
        for (size_t i = 0; i < instances_.size(); ++i) {
          Instance& instance = instances_[i];
          if (resume_at[i]) {
            if (now < *resume_at[i]) continue;
            resume_at[i].reset();
            ASSERT_TRUE(instance.process->Kill(SIGCONT).ok()) << instance.process->Describe();
            Say(run + ": t=" + std::to_string(SecondsSince(start)) + " s SIGCONT paymentd " +
                instance.id);
            continue;
          }
          if (restart_at[i]) {
            if (now < *restart_at[i]) continue;
            if (wipe_on_restart[i]) std::filesystem::remove_all(instance.state_dir);
            restart_at[i].reset();
            Status started = StartInstance(instance, run);
            ASSERT_TRUE(started.ok()) << started;
            continue;
          }
          if (!instance.process->IsRunning()) {
            ++unexpected_exits;
            ADD_FAILURE() << "paymentd " << instance.id << " exited on its own ("
                          << instance.process->exit_status()->ToString() << "); restarting it\n"
                          << instance.process->Describe(60);
            Status started = StartInstance(instance, run);
            ASSERT_TRUE(started.ok()) << started;
          }
        }
        bool can_act = !busy();
        if (can_act && now >= next_kill && pause_probability_ > 0 &&
            static_cast<int>(kills.size()) < kMaxKills &&
            std::bernoulli_distribution(pause_probability_)(rng)) {
          // A zombie: stopped past its session timeout (its tasks move to the other
          // instance) but within the transaction timeout, then resumed.
          size_t victim = std::uniform_int_distribution<size_t>(0, instances_.size() - 1)(rng);
          auto pause = uniform_ms(kSessionTimeoutMs + 1000, 8000);
          ASSERT_TRUE(instances_[victim].process->Kill(SIGSTOP).ok());
          ++pauses;
          Say(run + ": t=" + std::to_string(SecondsSince(start)) + " s SIGSTOP paymentd " +
              instances_[victim].id + " for " + std::to_string(pause.count()) + " ms, committed " +
              std::to_string(Sum(committed)) + "/" + std::to_string(requests_));
          resume_at[victim] = SteadyClock::now() + pause;
          next_kill = SteadyClock::now() + pause + uniform_ms(1500, 4000);
          can_act = false;
        }
        if (can_act && now >= next_kill && static_cast<int>(kills.size()) < kMaxKills) {
          size_t victim = std::uniform_int_distribution<size_t>(0, instances_.size() - 1)(rng);
          bool wipe = std::bernoulli_distribution(kWipeProbability)(rng);
          auto delay = std::bernoulli_distribution(kLateRestartProbability)(rng)
                           ? uniform_ms(kSessionTimeoutMs + 500, 5000)
                           : uniform_ms(0, 1500);
          Instance& instance = instances_[victim];
          ASSERT_TRUE(instance.process->Kill(SIGKILL).ok()) << instance.process->Describe();
          auto exit = instance.process->Wait(10s);
          ASSERT_TRUE(exit.ok()) << exit.status();
          EXPECT_EQ(exit->signal, SIGKILL) << instance.process->Describe();
          kills.push_back({SecondsSince(start), instance.id, wipe, Sum(committed)});
          Say(run + ": t=" + std::to_string(kills.back().at_s) + " s kill #" +
              std::to_string(kills.size()) + ": SIGKILL paymentd " + instance.id + " (generation " +
              std::to_string(instance.generation) + "), committed " +
              std::to_string(Sum(committed)) + "/" + std::to_string(requests_) + ", restart in " +
              std::to_string(delay.count()) + " ms" + (wipe ? " with its state dir wiped" : ""));
          restart_at[victim] = SteadyClock::now() + delay;
          wipe_on_restart[victim] = wipe;
          next_kill = SteadyClock::now() + uniform_ms(1500, 4000);
        }
        std::this_thread::sleep_for(50ms);
      }
      chaos_s = SecondsSince(start);
      Say(run + ": every request committed after " + std::to_string(chaos_s) + " s with " +
          std::to_string(kills.size()) + " kills" +
          (kafka_ ? " and " + std::to_string(bounces.size()) + " broker bounces" : ""));
      StopInstances();
      Status read = ReadRun(&chaos);
      ASSERT_TRUE(read.ok()) << read;
      Analysis analysis = Analyze(chaos);
      auto verify = RunVerify(run);
      ASSERT_TRUE(verify.ok()) << verify.status();
      CheckRun(run, analysis, *verify);
      EXPECT_EQ(unexpected_exits, 0);

      int wiped = static_cast<int>(
          std::count_if(kills.begin(), kills.end(), [](const KillEvent& k) { return k.wiped; }));
      int during_processing = static_cast<int>(std::count_if(
          kills.begin(), kills.end(), [&](const KillEvent& k) { return k.committed < requests_; }));
      EXPECT_GE(static_cast<int>(kills.size()), min_kills_);
      RecordProperty("kills", static_cast<int>(kills.size()));
      RecordProperty("kills_with_wiped_state", wiped);
      RecordProperty("pauses", pauses);
      if (kafka_) {
        RecordProperty("broker_bounces", static_cast<int>(bounces.size()));
        int64_t bounce_ms = 0;
        int during = 0;
        for (const BounceEvent& b : bounces) {
          bounce_ms += b.took.count();
          if (b.committed < requests_) ++during;
        }
        RecordProperty("broker_bounce_ms_total", std::to_string(bounce_ms));
        RecordProperty("broker_bounces_before_all_committed", during);
        EXPECT_EQ(static_cast<int>(bounces.size()), broker_bounces_);
      }
      RecordProperty("kills_before_all_committed", during_processing);
      int64_t restored = RestoredRecords(run);
      RecordProperty("changelog_records_restored", std::to_string(restored));
      RecordProperty("chaos_seconds", std::to_string(chaos_s));
      RecordProperty("confirmations_chaos", std::to_string(analysis.confirmations));
      RecordProperty("violations", std::to_string(analysis.violation_count()));
      Say(run + ": " + std::to_string(kills.size()) + " kills (" + std::to_string(wiped) +
          " with wiped state, " + std::to_string(during_processing) +
          " before every request was committed); " + std::to_string(restored) +
          " changelog records restored");
    }

    // ---- 3. Compare the runs. ----
    ASSERT_EQ(baseline.requests.size(), chaos.requests.size());
    uint64_t request_differences = 0;
    for (size_t i = 0; i < baseline.requests.size(); ++i) {
      const RawRecord& b = baseline.requests[i];
      const RawRecord& c = chaos.requests[i];
      if (std::tie(b.partition, b.offset, b.key, b.value, b.timestamp) !=
          std::tie(c.partition, c.offset, c.key, c.value, c.timestamp)) {
        if (++request_differences <= 5) {
          ADD_FAILURE() << "request " << i << " differs: baseline "
                        << ToString({b.partition, b.offset}) << " vs chaos "
                        << ToString({c.partition, c.offset});
        }
      }
    }
    EXPECT_EQ(request_differences, 0u) << "the two runs did not get identical input";

    Analysis base = Analyze(baseline);
    Analysis after = Analyze(chaos);
    uint64_t decision_mismatches = 0;
    uint64_t byte_mismatches = 0;
    std::string examples;
    std::set<Coordinates> all;
    for (const auto& [at, d] : base.decisions) all.insert(at);
    for (const auto& [at, d] : after.decisions) all.insert(at);
    for (const Coordinates& at : all) {
      auto b = base.decisions.find(at);
      auto c = after.decisions.find(at);
      if (b == base.decisions.end() || c == after.decisions.end() || !(b->second == c->second)) {
        if (++decision_mismatches <= 10) {
          examples += "  " + ToString(at) + ": baseline " +
                      (b == base.decisions.end() ? "none" : b->second.ToString()) + ", chaos " +
                      (c == after.decisions.end() ? "none" : c->second.ToString()) + "\n";
        }
      } else if (base.confirmation_bytes[at] != after.confirmation_bytes[at]) {
        ++byte_mismatches;
      }
    }
    EXPECT_EQ(decision_mismatches, 0u) << "decisions differ from the baseline:\n" << examples;
    EXPECT_EQ(byte_mismatches, 0u) << "confirmations with equal decisions but different bytes";
    RecordProperty("requests", std::to_string(requests_));
    RecordProperty("decision_mismatches", std::to_string(decision_mismatches));
    RecordProperty("total_seconds", std::to_string(SecondsSince(test_start)));
    Say("compare: " + std::to_string(all.size()) + " decisions, " +
        std::to_string(decision_mismatches) + " differ from the baseline, " +
        std::to_string(byte_mismatches) + " byte-level differences; total " +
        std::to_string(SecondsSince(test_start)) + " s");
  }

  std::filesystem::path dir_;
  uint64_t seed_ = 0;
  int64_t requests_ = 0;
  int64_t rate_ = 0;
  int min_kills_ = 5;
  std::string guarantee_ = "exactly_once_v2";
  // consumer.session.timeout.ms of the instances; 0: the default a user gets
  // (librdkafka's 45 s, with static membership).
  int session_timeout_ms_ = 0;
  double pause_probability_ = 0;
  // num.standby.replicas of the instances (0: the default).
  int standby_replicas_ = 0;
  // Apache Kafka (KafkaBroker) instead of devbroker, and how many hard bounces
  // of it the chaos run gets (CHAOS_BROKER_BOUNCES, default 2).
  bool kafka_ = false;
  int broker_bounces_ = 0;
  std::string bootstrap_;
  std::unique_ptr<Subprocess> broker_;         // devbroker
  std::unique_ptr<KafkaBroker> kafka_broker_;  // Apache Kafka
  std::unique_ptr<Subprocess> loadgen_;
  std::unique_ptr<CommittedOffsetsProbe> probe_;
  std::vector<Instance> instances_;
};

TEST_F(ExactlyOnceChaosTest, KilledInstancesDecideEveryRequestExactlyOnceAsTheBaseline) {
  RunBaselineThenChaosAndCompare();
}

// The same with a standby replica of every task (num.standby.replicas=1):
// takeovers start from warm copies kept by tailing changelogs; decisions must
// still equal the fault-free run's.
TEST_F(ExactlyOnceChaosTest, KilledInstancesWithStandbyReplicasDecideExactlyOnceAsTheBaseline) {
  standby_replicas_ = 1;
  RunBaselineThenChaosAndCompare();
}

// The zombie scenario (see CHAOS_PAUSE_PERCENT at the top). Run it alone with
//   chaos_test --gtest_filter='*Paused*'
TEST_F(ExactlyOnceChaosTest, PausedZombieInstancesAreFencedAsTheBaseline) {
  if (pause_probability_ == 0) pause_probability_ = 0.35;
  session_timeout_ms_ = kSessionTimeoutMs;
  RunBaselineThenChaosAndCompare();
}

// The same runs against Apache Kafka (tests/support/kafka_broker.h; label
// kafka), with CHAOS_BROKER_BOUNCES (default 2) hard bounces of the broker
// during the chaos run besides the instance kills, as Apache Kafka's own
// transactions system test bounces its brokers. Skipped when the Kafka jars are
// not fetched, unless PAYMENTS_REQUIRE_KAFKA is set.
class ExactlyOnceChaosKafkaTest : public ExactlyOnceChaosTest {
 protected:
  void SetUp() override {
    kafka_ = true;
    broker_bounces_ = static_cast<int>(EnvInt("CHAOS_BROKER_BOUNCES", 2));
    ExactlyOnceChaosTest::SetUp();
  }
};

TEST_F(ExactlyOnceChaosKafkaTest, KilledInstancesAndBrokerBouncesDecideExactlyOnceAsTheBaseline) {
  RunBaselineThenChaosAndCompare();
}

}  // namespace
