// Plain and idempotent produce/consume through real librdkafka clients.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <map>
#include <thread>

#include "conformance.h"
#include "test_util.h"

namespace devbroker::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

class ProduceFetchTest : public BrokerTest {};

TEST_P(ProduceFetchTest, RoundTripPlainProducerAndConsumer) {
  const std::string topic = UniqueName("plain");
  ASSERT_TRUE(broker_->CreateTopic(topic, 2).ok());

  KafkaPtr producer =
      MakeProducer(broker_->bootstrap(), {{"enable.idempotence", "false"}, {"acks", "1"}});
  for (int i = 0; i < 10; ++i) Produce(producer.get(), topic, i % 2, "v" + std::to_string(i));
  ASSERT_EQ(rd_kafka_flush(producer.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(broker_->HighWatermark(topic, 0), 5);
  EXPECT_EQ(broker_->HighWatermark(topic, 1), 5);

  KafkaPtr consumer = MakeConsumer(broker_->bootstrap());
  AssignFromBeginning(consumer.get(), topic, 2);
  bool end = false;
  std::vector<Record> got = ConsumeToEnd(consumer.get(), 2, seconds(15), &end);
  ASSERT_TRUE(end);
  ASSERT_EQ(got.size(), 10u);
  std::map<int32_t, std::vector<int64_t>> offsets;
  for (const Record& r : got) offsets[r.partition].push_back(r.offset);
  EXPECT_EQ(offsets[0], (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(offsets[1], (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

// devbroker-only: its default_partitions option, and the suite's shared Kafka
// broker runs with auto.create.topics.enable=false (Kafka's own default is
// true with num.partitions=1).
TEST(ProduceFetchDevbrokerOnlyTest, AutoCreatesTopicOnProduceWithDefaultPartitions) {
  BrokerOptions options;
  options.default_partitions = 3;
  auto broker = StartBroker(options);
  ASSERT_NE(broker, nullptr);
  const std::string topic = UniqueName("auto");
  KafkaPtr producer = MakeProducer(broker->bootstrap_servers());
  ProduceSync(producer.get(), topic, 2, "hello");
  EXPECT_EQ(broker->HighWatermark(topic, 2), 1);
  EXPECT_EQ(broker->HighWatermark(topic, 3), -1);  // only 3 partitions
}

TEST_P(ProduceFetchTest, WatermarksAndCreateTopicsAdminApi) {
  KafkaPtr producer = MakeProducer(broker_->bootstrap());
  const std::string topic = UniqueName("admin");

  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), 3, 1, nullptr, 0);
  rd_kafka_queue_t* q = rd_kafka_queue_new(producer.get());
  for (int attempt = 0; attempt < 2; ++attempt) {
    rd_kafka_CreateTopics(producer.get(), &nt, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 10000);
    ASSERT_NE(ev, nullptr);
    const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
    ASSERT_NE(res, nullptr);
    size_t n = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(rd_kafka_topic_result_error(results[0]),
              attempt == 0 ? RD_KAFKA_RESP_ERR_NO_ERROR : RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS);
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);

  for (int i = 0; i < 4; ++i) Produce(producer.get(), topic, 1, "x");
  ASSERT_EQ(rd_kafka_flush(producer.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  int64_t low = -5, high = -5;
  ASSERT_EQ(rd_kafka_query_watermark_offsets(producer.get(), topic.c_str(), 1, &low, &high, 5000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(low, 0);
  EXPECT_EQ(high, 4);

  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer.get(), topic.c_str(), nullptr);
  ASSERT_EQ(rd_kafka_metadata(producer.get(), 0, rkt, &md, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(md->topic_cnt, 1);
  EXPECT_EQ(md->topics[0].partition_cnt, 3);
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
}

TEST_P(ProduceFetchTest, IdempotentProducerKeepsOrderWithoutDuplicates) {
  const std::string topic = UniqueName("idem");
  ASSERT_TRUE(broker_->CreateTopic(topic, 4).ok());
  KafkaPtr producer = MakeProducer(broker_->bootstrap(), {{"enable.idempotence", "true"},
                                                          {"max.in.flight", "5"},
                                                          {"batch.num.messages", "50"},
                                                          {"linger.ms", "0"}});
  constexpr int kCount = 5000;
  for (int i = 0; i < kCount; ++i) {
    Produce(producer.get(), topic, i % 4, std::to_string(i));
    if (i % 500 == 0) rd_kafka_poll(producer.get(), 0);
  }
  ASSERT_EQ(rd_kafka_flush(producer.get(), 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
  char errstr[256];
  EXPECT_EQ(rd_kafka_fatal_error(producer.get(), errstr, sizeof(errstr)),
            RD_KAFKA_RESP_ERR_NO_ERROR);

  KafkaPtr consumer = MakeConsumer(broker_->bootstrap());
  AssignFromBeginning(consumer.get(), topic, 4);
  bool end = false;
  std::vector<Record> got = ConsumeToEnd(consumer.get(), 4, seconds(20), &end);
  ASSERT_TRUE(end);
  ASSERT_EQ(got.size(), static_cast<size_t>(kCount));
  std::map<int32_t, int> last;
  for (const Record& r : got) {
    int v = std::stoi(r.value);
    EXPECT_EQ(v % 4, r.partition);
    auto it = last.find(r.partition);
    if (it != last.end()) {
      EXPECT_EQ(v, it->second + 4) << "partition " << r.partition;
    }
    last[r.partition] = v;
  }
}

TEST_P(ProduceFetchTest, LongPollFetchDoesNotBlockOtherClients) {
  const std::string topic = UniqueName("longpoll");
  ASSERT_TRUE(broker_->CreateTopic(topic, 1).ok());
  // A consumer whose fetches wait up to 10 s for data.
  KafkaPtr consumer = MakeConsumer(
      broker_->bootstrap(), {{"fetch.wait.max.ms", "10000"}, {"enable.partition.eof", "false"}});
  AssignFromBeginning(consumer.get(), topic, 1);
  // Let the consumer start its long poll.
  rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 500);
  if (m != nullptr) rd_kafka_message_destroy(m);

  KafkaPtr producer = MakeProducer(broker_->bootstrap());
  auto t0 = Clock::now();
  ProduceSync(producer.get(), topic, 0, "wake-up");
  auto produce_ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  EXPECT_LT(produce_ms, 3000) << "produce was blocked by a long-poll fetch";

  std::vector<Record> got = ConsumeN(consumer.get(), 1, seconds(8));
  auto total_ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "wake-up");
  // The waiting fetch is completed by the new data, not by its 10 s timeout.
  EXPECT_LT(total_ms, 5000);
}

TEST_P(ProduceFetchTest, SubscribedConsumerCommitsAndResumes) {
  const std::string topic = UniqueName("commit");
  const std::string group = UniqueName("g");
  ASSERT_TRUE(broker_->CreateTopic(topic, 1).ok());
  KafkaPtr producer = MakeProducer(broker_->bootstrap());
  for (int i = 0; i < 6; ++i) Produce(producer.get(), topic, 0, std::to_string(i));
  ASSERT_EQ(rd_kafka_flush(producer.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

  {
    KafkaPtr c = MakeConsumer(broker_->bootstrap(), {{"group.id", group}});
    rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic.c_str(), RD_KAFKA_PARTITION_UA);
    ASSERT_EQ(rd_kafka_subscribe(c.get(), sub), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(sub);
    std::vector<Record> got = ConsumeN(c.get(), 3, seconds(15));
    ASSERT_EQ(got.size(), 3u);
    rd_kafka_topic_partition_list_t* offs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offs, topic.c_str(), 0)->offset = 3;
    ASSERT_EQ(rd_kafka_commit(c.get(), offs, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(offs);
  }
  KafkaPtr c2 = MakeConsumer(broker_->bootstrap(), {{"group.id", group}});
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, topic.c_str(), RD_KAFKA_PARTITION_UA);
  ASSERT_EQ(rd_kafka_subscribe(c2.get(), sub), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(sub);
  std::vector<Record> got = ConsumeN(c2.get(), 3, seconds(15));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].offset, 3);
  EXPECT_EQ(got[0].value, "3");
}

INSTANTIATE_FOR_BOTH_BROKERS(ProduceFetchTest);

}  // namespace
}  // namespace devbroker::testing
