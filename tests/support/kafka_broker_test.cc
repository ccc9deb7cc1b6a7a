// Apache Kafka (tests/support/kafka_broker.h, ctest label `kafka`) with the
// system's librdkafka: the client features the engine relies on — CreateTopics,
// idempotent and transactional produce (init, commit, abort,
// send_offsets_to_transaction), read_committed consumption, consumer-group
// commits, ListOffsets and OffsetsForTimes — and what a hard broker bounce
// (SIGKILL, restart on the same data) keeps: committed records, committed
// offsets, and transactions open at the time of the kill.
//
// Skipped when the Kafka jars are not fetched (scripts/kafka/fetch.sh) unless
// PAYMENTS_REQUIRE_KAFKA is set. KAFKA_VERSION selects another fetched version;
// KAFKA_TEST_RDKAFKA_DEBUG sets librdkafka's `debug` (e.g. protocol).
#include "support/kafka_broker.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace streams::test_support {
namespace {

using namespace std::chrono_literals;
using Conf = std::vector<std::pair<std::string, std::string>>;
using SteadyClock = std::chrono::steady_clock;

constexpr int kTimeoutMs = 30000;

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const {
    if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER) rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

// Takes ownership of a transactional API error: "" for none, else its text.
std::string TxnError(rd_kafka_error_t* error) {
  if (error == nullptr) return "";
  std::string text = rd_kafka_error_name(error) + std::string(": ") + rd_kafka_error_string(error);
  if (rd_kafka_error_is_fatal(error)) text += " (fatal)";
  rd_kafka_error_destroy(error);
  return text;
}

#define ASSERT_TXN_OK(call) ASSERT_EQ(TxnError(call), "") << #call

// Counts delivery reports of one producer (set as its opaque).
struct Deliveries {
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::string last_error;  // Written by the poll thread (the test's thread).
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* deliveries = static_cast<Deliveries*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++deliveries->ok;
  } else {
    ++deliveries->failed;
    deliveries->last_error = rd_kafka_err2str(message->err);
  }
}

class KafkaBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KafkaBrokerOptions options;
    options.num_partitions = 2;
    START_KAFKA_BROKER_OR_SKIP(broker_, options);
    std::cerr << "kafka broker at " << broker_->bootstrap() << ", ready in "
              << broker_->last_start_duration().count() << " ms\n";
  }

  void TearDown() override {
    if (HasFailure() && broker_ != nullptr) {
      std::cerr << "--- " << (broker_->node_dir() / "server.log").string() << " (tail) ---\n"
                << broker_->LogTail(60);
    }
  }

  KafkaPtr Client(rd_kafka_type_t type, const Conf& conf, Deliveries* deliveries = nullptr) {
    rd_kafka_conf_t* c = rd_kafka_conf_new();
    char err[512];
    Conf all = {{"bootstrap.servers", broker_->bootstrap()}};
    if (const char* debug = std::getenv("KAFKA_TEST_RDKAFKA_DEBUG"))
      all.emplace_back("debug", debug);
    all.insert(all.end(), conf.begin(), conf.end());
    for (const auto& [key, value] : all) {
      if (rd_kafka_conf_set(c, key.c_str(), value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        ADD_FAILURE() << key << "=" << value << ": " << err;
      }
    }
    if (deliveries != nullptr) {
      rd_kafka_conf_set_opaque(c, deliveries);
      rd_kafka_conf_set_dr_msg_cb(c, OnDelivery);
    }
    rd_kafka_t* rk = rd_kafka_new(type, c, err, sizeof(err));
    EXPECT_NE(rk, nullptr) << err;
    if (rk == nullptr) rd_kafka_conf_destroy(c);
    return KafkaPtr(rk);
  }

  // A transactional producer (idempotent, lz4-compressed) with init_transactions done.
  KafkaPtr TransactionalProducer(const std::string& transactional_id, Deliveries* deliveries) {
    KafkaPtr producer = Client(RD_KAFKA_PRODUCER,
                               {{"transactional.id", transactional_id},
                                {"compression.type", "lz4"},
                                {"linger.ms", "5"},
                                {"transaction.timeout.ms", "60000"}},
                               deliveries);
    if (producer == nullptr) return nullptr;
    std::string error = TxnError(rd_kafka_init_transactions(producer.get(), kTimeoutMs));
    EXPECT_EQ(error, "") << "init_transactions(" << transactional_id << ")";
    return error.empty() ? std::move(producer) : nullptr;
  }

  void CreateTopic(const std::string& topic, int partitions) {
    KafkaPtr admin = Client(RD_KAFKA_PRODUCER, {});
    ASSERT_NE(admin, nullptr);
    char err[512];
    rd_kafka_NewTopic_t* new_topic =
        rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof(err));
    ASSERT_NE(new_topic, nullptr) << err;
    rd_kafka_queue_t* queue = rd_kafka_queue_new(admin.get());
    rd_kafka_CreateTopics(admin.get(), &new_topic, 1, nullptr, queue);
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue, kTimeoutMs);
    rd_kafka_NewTopic_destroy(new_topic);
    rd_kafka_queue_destroy(queue);
    ASSERT_NE(event, nullptr) << "CreateTopics timed out";
    std::string error;
    if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      error = rd_kafka_event_error_string(event);
    } else {
      size_t count = 0;
      const rd_kafka_topic_result_t** results =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
      if (count != 1) error = "expected one topic result, got " + std::to_string(count);
      if (count == 1 && rd_kafka_topic_result_error(results[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error = rd_kafka_topic_result_error_string(results[0]);
      }
    }
    rd_kafka_event_destroy(event);
    ASSERT_EQ(error, "") << "CreateTopics " << topic;
  }

  // Produces `values` to `partition` (-1: partitioner) with timestamps
  // `first_timestamp_ms` + 1000 * index.
  static void Produce(rd_kafka_t* producer, const std::string& topic, int32_t partition,
                      const std::vector<std::string>& values, int64_t first_timestamp_ms = 0) {
    for (size_t i = 0; i < values.size(); ++i) {
      int64_t timestamp = first_timestamp_ms == 0 ? 0 : first_timestamp_ms + 1000 * int64_t(i);
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
          RD_KAFKA_V_VALUE(const_cast<char*>(values[i].data()), values[i].size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(timestamp),
          RD_KAFKA_V_END);
      ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
    }
  }

  // AbortAfterDelivery: abort_transaction() right after the first records of a
  // transaction were enqueued can fail fatally with INVALID_TXN_STATE: librdkafka
  // (2.0.2 and later, librdkafka issue #4849) counts AddPartitionsToTxn as done
  // when it is sent, so its EndTxn(abort) may reach the coordinator while the
  // transaction is still Empty there. The tests abort only after a delivery (a
  // delivered record proves its partition was added).
  static void Flush(rd_kafka_t* producer, const Deliveries& deliveries, int expected_ok) {
    ASSERT_EQ(rd_kafka_flush(producer, kTimeoutMs), RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(deliveries.failed.load(), 0) << deliveries.last_error;
    EXPECT_EQ(deliveries.ok.load(), expected_ok);
  }

  // Every record of `topic` (partitions 0..partitions-1) up to the end (the
  // last stable offset for read_committed), as partition -> values.
  std::map<int32_t, std::vector<std::string>> ReadAll(const std::string& topic, int partitions,
                                                      const std::string& isolation) {
    std::map<int32_t, std::vector<std::string>> values;
    KafkaPtr consumer = Client(RD_KAFKA_CONSUMER, {{"group.id", "reader-unused"},
                                                   {"isolation.level", isolation},
                                                   {"enable.partition.eof", "true"},
                                                   {"enable.auto.commit", "false"}});
    if (consumer == nullptr) return values;
    PartitionList list(rd_kafka_topic_partition_list_new(partitions));
    for (int32_t p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    EXPECT_EQ(rd_kafka_assign(consumer.get(), list.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
    std::map<int32_t, bool> at_end;
    std::string errors;
    auto deadline = SteadyClock::now() + 30s;
    while (static_cast<int>(at_end.size()) < partitions && SteadyClock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 200);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        at_end[m->partition] = true;
      } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        NoteError(m, &errors);
      } else {
        values[m->partition].emplace_back(static_cast<const char*>(m->payload), m->len);
      }
      rd_kafka_message_destroy(m);
    }
    EXPECT_EQ(static_cast<int>(at_end.size()), partitions)
        << "did not reach the end of " << topic << " (" << isolation << ") in 30 s" << errors;
    return values;
  }

  // A consumer error event: fails the test when fatal, else (e.g. a transient
  // broker error librdkafka retries by itself) is kept for a later failure message.
  static void NoteError(const rd_kafka_message_t* m, std::string* errors) {
    std::string text = std::string(rd_kafka_err2name(m->err)) + ": " + rd_kafka_message_errstr(m);
    EXPECT_NE(m->err, RD_KAFKA_RESP_ERR__FATAL) << text;
    *errors += "\n  consumer error " + text;
  }

  static std::vector<std::string> Flatten(const std::map<int32_t, std::vector<std::string>>& m) {
    std::vector<std::string> all;
    for (const auto& [partition, values] : m) all.insert(all.end(), values.begin(), values.end());
    return all;
  }

  // A consumer in `group` subscribed to `topic`, polled until `count` records
  // arrived; returns their values.
  std::vector<std::string> ConsumeInGroup(rd_kafka_t* consumer, const std::string& topic,
                                          size_t count) {
    PartitionList topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
    EXPECT_EQ(rd_kafka_subscribe(consumer, topics.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
    std::vector<std::string> values;
    std::string errors;
    auto deadline = SteadyClock::now() + 60s;
    while (values.size() < count && SteadyClock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 200);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        values.emplace_back(static_cast<const char*>(m->payload), m->len);
      } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        NoteError(m, &errors);
      }
      rd_kafka_message_destroy(m);
    }
    EXPECT_EQ(values.size(), count) << "records of " << topic << " consumed in 60 s" << errors;
    return values;
  }

  // The committed offsets of `group` for partitions 0..partitions-1 of `topic`
  // (-1001 = none), read by a fresh consumer of that group. Coordinator errors
  // are retried: librdkafka 2.0.2's rd_kafka_committed() returns
  // NOT_COORDINATOR once when asked right after a broker restart.
  std::vector<int64_t> Committed(const std::string& group, const std::string& topic,
                                 int partitions) {
    std::vector<int64_t> offsets;
    KafkaPtr consumer = Client(RD_KAFKA_CONSUMER, {{"group.id", group}});
    if (consumer == nullptr) return offsets;
    PartitionList list;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    auto deadline = SteadyClock::now() + 30s;
    do {
      list.reset(rd_kafka_topic_partition_list_new(partitions));
      for (int32_t p = 0; p < partitions; ++p) {
        rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
      }
      err = rd_kafka_committed(consumer.get(), list.get(), kTimeoutMs);
      bool retriable = err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR ||
                       err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE ||
                       err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
      if (!retriable) break;
      std::this_thread::sleep_for(200ms);
    } while (SteadyClock::now() < deadline);
    EXPECT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
    for (int i = 0; i < list->cnt; ++i) {
      EXPECT_EQ(list->elems[i].err, RD_KAFKA_RESP_ERR_NO_ERROR);
      offsets.push_back(list->elems[i].offset);
    }
    return offsets;
  }

  std::unique_ptr<KafkaBroker> broker_;
};

std::vector<std::string> Names(const std::string& prefix, int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(prefix + std::to_string(i));
  return names;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// CreateTopics, idempotent produce, ListOffsets, OffsetsForTimes, a
// consume-transform-produce transaction with send_offsets_to_transaction, an
// aborted transaction, read_committed vs read_uncommitted, a group commit.
TEST_F(KafkaBrokerTest, ClientFeaturesOfTheEngineWork) {
  constexpr int kPartitions = 3;
  constexpr int kPerPartition = 10;
  CreateTopic("in", kPartitions);
  CreateTopic("out", kPartitions);

  // Idempotent, compressed produce with explicit timestamps.
  const int64_t t0 = NowMs() - 600000;
  {
    Deliveries deliveries;
    KafkaPtr producer =
        Client(RD_KAFKA_PRODUCER, {{"enable.idempotence", "true"}, {"compression.type", "lz4"}},
               &deliveries);
    ASSERT_NE(producer, nullptr);
    for (int32_t p = 0; p < kPartitions; ++p) {
      Produce(producer.get(), "in", p, Names("in-" + std::to_string(p) + "-", kPerPartition),
              t0 + p * 100000);
    }
    Flush(producer.get(), deliveries, kPartitions * kPerPartition);
  }

  // ListOffsets: watermarks; OffsetsForTimes: record 5 of partition 1 and past the end.
  KafkaPtr client = Client(RD_KAFKA_CONSUMER, {{"group.id", "offsets-unused"}});
  ASSERT_NE(client, nullptr);
  for (int32_t p = 0; p < kPartitions; ++p) {
    int64_t low = -1, high = -1;
    ASSERT_EQ(rd_kafka_query_watermark_offsets(client.get(), "in", p, &low, &high, kTimeoutMs),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(low, 0);
    EXPECT_EQ(high, kPerPartition);
  }
  {
    PartitionList times(rd_kafka_topic_partition_list_new(2));
    rd_kafka_topic_partition_list_add(times.get(), "in", 1)->offset = t0 + 100000 + 5000;
    rd_kafka_topic_partition_list_add(times.get(), "in", 2)->offset = NowMs() + 3600000;
    ASSERT_EQ(rd_kafka_offsets_for_times(client.get(), times.get(), kTimeoutMs),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(times->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(times->elems[0].offset, 5);
    EXPECT_EQ(times->elems[1].offset, RD_KAFKA_OFFSET_END);  // No record that late.
  }

  // Consume-transform-produce: the outputs and the input offsets in one
  // committed transaction, then an aborted one.
  {
    KafkaPtr consumer = Client(RD_KAFKA_CONSUMER, {{"group.id", "transformer"},
                                                   {"isolation.level", "read_committed"},
                                                   {"enable.auto.commit", "false"},
                                                   {"auto.offset.reset", "earliest"}});
    ASSERT_NE(consumer, nullptr);
    std::vector<std::string> inputs =
        ConsumeInGroup(consumer.get(), "in", kPartitions * kPerPartition);
    ASSERT_FALSE(HasFailure());
    Deliveries deliveries;
    KafkaPtr producer = TransactionalProducer("transformer-0", &deliveries);
    ASSERT_NE(producer, nullptr);
    ASSERT_TXN_OK(rd_kafka_begin_transaction(producer.get()));
    for (const std::string& input : inputs) Produce(producer.get(), "out", -1, {"out-" + input});
    rd_kafka_topic_partition_list_t* assignment = nullptr;
    ASSERT_EQ(rd_kafka_assignment(consumer.get(), &assignment), RD_KAFKA_RESP_ERR_NO_ERROR);
    PartitionList positions(assignment);
    ASSERT_EQ(rd_kafka_position(consumer.get(), positions.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_consumer_group_metadata_t* metadata = rd_kafka_consumer_group_metadata(consumer.get());
    std::string sent = TxnError(rd_kafka_send_offsets_to_transaction(
        producer.get(), positions.get(), metadata, kTimeoutMs));
    rd_kafka_consumer_group_metadata_destroy(metadata);
    ASSERT_EQ(sent, "") << "send_offsets_to_transaction";
    ASSERT_TXN_OK(rd_kafka_commit_transaction(producer.get(), kTimeoutMs));
    EXPECT_EQ(deliveries.ok.load(), kPartitions * kPerPartition);
    EXPECT_EQ(deliveries.failed.load(), 0) << deliveries.last_error;

    ASSERT_TXN_OK(rd_kafka_begin_transaction(producer.get()));
    Produce(producer.get(), "out", -1, Names("aborted-", 5));
    Flush(producer.get(), deliveries, kPartitions * kPerPartition + 5);  // See AbortAfterDelivery.
    ASSERT_TXN_OK(rd_kafka_abort_transaction(producer.get(), kTimeoutMs));
  }

  std::vector<std::string> committed = Flatten(ReadAll("out", kPartitions, "read_committed"));
  EXPECT_EQ(committed.size(), size_t{kPartitions * kPerPartition});
  for (const std::string& value : committed) EXPECT_EQ(value.rfind("out-in-", 0), 0u) << value;
  // read_uncommitted sees the aborted records too.
  std::vector<std::string> uncommitted = Flatten(ReadAll("out", kPartitions, "read_uncommitted"));
  EXPECT_EQ(uncommitted.size(), size_t{kPartitions * kPerPartition + 5});

  // send_offsets_to_transaction committed the positions after the last input.
  EXPECT_EQ(Committed("transformer", "in", kPartitions),
            std::vector<int64_t>(kPartitions, kPerPartition));

  // A plain group commit.
  {
    KafkaPtr consumer = Client(RD_KAFKA_CONSUMER, {{"group.id", "plain"},
                                                   {"enable.auto.commit", "false"},
                                                   {"auto.offset.reset", "earliest"}});
    ASSERT_NE(consumer, nullptr);
    ConsumeInGroup(consumer.get(), "in", kPartitions * kPerPartition);
    ASSERT_EQ(rd_kafka_commit(consumer.get(), nullptr, /*async=*/0), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  EXPECT_EQ(Committed("plain", "in", kPartitions),
            std::vector<int64_t>(kPartitions, kPerPartition));
}

// A hard bounce keeps committed records and offsets, resolves the transactions
// that were open at the kill (one committed after it by its surviving producer,
// one aborted by a new producer with its transactional.id), and new
// transactions work.
TEST_F(KafkaBrokerTest, HardBounceKeepsCommittedDataAndOffsets) {
  constexpr int kPartitions = 2;
  CreateTopic("data", kPartitions);

  Deliveries deliveries;
  KafkaPtr producer = TransactionalProducer("survivor", &deliveries);
  ASSERT_NE(producer, nullptr);
  ASSERT_TXN_OK(rd_kafka_begin_transaction(producer.get()));
  Produce(producer.get(), "data", 0, Names("committed-", 10));
  ASSERT_TXN_OK(rd_kafka_commit_transaction(producer.get(), kTimeoutMs));
  ASSERT_TXN_OK(rd_kafka_begin_transaction(producer.get()));
  Produce(producer.get(), "data", 0, Names("aborted-", 5));
  Flush(producer.get(), deliveries, 15);  // See AbortAfterDelivery.
  ASSERT_TXN_OK(rd_kafka_abort_transaction(producer.get(), kTimeoutMs));
  // Open at the kill: committed after the bounce by this producer.
  ASSERT_TXN_OK(rd_kafka_begin_transaction(producer.get()));
  Produce(producer.get(), "data", 1, Names("in-flight-", 5));
  ASSERT_EQ(rd_kafka_flush(producer.get(), kTimeoutMs), RD_KAFKA_RESP_ERR_NO_ERROR);

  // Open at the kill and never finished by its producer (as if it crashed too).
  Deliveries crashed_deliveries;
  KafkaPtr crashed = TransactionalProducer("crashed", &crashed_deliveries);
  ASSERT_NE(crashed, nullptr);
  ASSERT_TXN_OK(rd_kafka_begin_transaction(crashed.get()));
  Produce(crashed.get(), "data", 0, Names("crashed-", 3));
  ASSERT_EQ(rd_kafka_flush(crashed.get(), kTimeoutMs), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(crashed_deliveries.ok.load(), 3);

  // A group consumes the committed records and commits its positions.
  std::vector<int64_t> group_offsets;
  {
    KafkaPtr consumer = Client(RD_KAFKA_CONSUMER, {{"group.id", "survivors"},
                                                   {"isolation.level", "read_committed"},
                                                   {"enable.auto.commit", "false"},
                                                   {"auto.offset.reset", "earliest"}});
    ASSERT_NE(consumer, nullptr);
    EXPECT_EQ(ConsumeInGroup(consumer.get(), "data", 10), Names("committed-", 10));
    ASSERT_EQ(rd_kafka_commit(consumer.get(), nullptr, /*async=*/0), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  group_offsets = Committed("survivors", "data", kPartitions);
  ASSERT_EQ(group_offsets.size(), size_t{kPartitions});
  EXPECT_GE(group_offsets[0], 10);  // After the 10 records (or after their commit marker too).

  ASSERT_TRUE(broker_->HardBounce().ok()) << "hard bounce failed";
  std::cerr << "hard bounce: broker ready again in " << broker_->last_start_duration().count()
            << " ms\n";

  // Committed offsets and committed records survived; nothing open is visible.
  EXPECT_EQ(Committed("survivors", "data", kPartitions), group_offsets);
  auto values = ReadAll("data", kPartitions, "read_committed");
  EXPECT_EQ(values[0], Names("committed-", 10));
  EXPECT_TRUE(values[1].empty());

  // The surviving producer commits its open transaction and starts a new one.
  ASSERT_TXN_OK(rd_kafka_commit_transaction(producer.get(), kTimeoutMs));
  ASSERT_TXN_OK(rd_kafka_begin_transaction(producer.get()));
  Produce(producer.get(), "data", 1, Names("after-", 2));
  ASSERT_TXN_OK(rd_kafka_commit_transaction(producer.get(), kTimeoutMs));

  // A new producer with the crashed one's transactional.id aborts its open
  // transaction (init_transactions), which unblocks read_committed readers of
  // partition 0, and commits its own.
  Deliveries successor_deliveries;
  KafkaPtr successor = TransactionalProducer("crashed", &successor_deliveries);
  ASSERT_NE(successor, nullptr);
  ASSERT_TXN_OK(rd_kafka_begin_transaction(successor.get()));
  Produce(successor.get(), "data", 0, Names("successor-", 2));
  ASSERT_TXN_OK(rd_kafka_commit_transaction(successor.get(), kTimeoutMs));
  // The old instance is fenced: it cannot commit (or even begin) a transaction.
  if (TxnError(rd_kafka_begin_transaction(crashed.get())).empty()) {
    std::string zombie = "zombie";
    rd_kafka_producev(crashed.get(), RD_KAFKA_V_TOPIC("data"), RD_KAFKA_V_PARTITION(0),
                      RD_KAFKA_V_VALUE(zombie.data(), zombie.size()),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    EXPECT_NE(TxnError(rd_kafka_commit_transaction(crashed.get(), kTimeoutMs)), "")
        << "a fenced producer committed";
  }

  values = ReadAll("data", kPartitions, "read_committed");
  std::vector<std::string> expected0 = Names("committed-", 10);
  for (const auto& v : Names("successor-", 2)) expected0.push_back(v);
  EXPECT_EQ(values[0], expected0);
  std::vector<std::string> expected1 = Names("in-flight-", 5);
  for (const auto& v : Names("after-", 2)) expected1.push_back(v);
  EXPECT_EQ(values[1], expected1);

  // The group resumes from its committed offset.
  KafkaPtr consumer = Client(RD_KAFKA_CONSUMER, {{"group.id", "survivors"},
                                                 {"isolation.level", "read_committed"},
                                                 {"enable.auto.commit", "false"},
                                                 {"auto.offset.reset", "earliest"}});
  ASSERT_NE(consumer, nullptr);
  std::vector<std::string> resumed = ConsumeInGroup(consumer.get(), "data", 9);
  std::sort(resumed.begin(), resumed.end());
  std::vector<std::string> expected_resumed = Names("successor-", 2);
  for (const auto& v : expected1) expected_resumed.push_back(v);
  std::sort(expected_resumed.begin(), expected_resumed.end());
  EXPECT_EQ(resumed, expected_resumed);
}

}  // namespace
}  // namespace streams::test_support
