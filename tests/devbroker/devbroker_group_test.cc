// Consumer groups through real librdkafka consumers: partition split,
// rebalance on a clean leave, and on a member that dies (session timeout).

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <set>

#include "conformance.h"
#include "test_util.h"

namespace devbroker::testing {
namespace {

using std::chrono::seconds;

KafkaPtr Subscribe(const TestBroker& broker, const std::string& group, const std::string& topic,
                   const std::string& session_ms) {
  KafkaPtr c = MakeConsumer(
      broker.bootstrap(),
      {{"group.id", group}, {"session.timeout.ms", session_ms}, {"enable.partition.eof", "false"}});
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, topic.c_str(), RD_KAFKA_PARTITION_UA);
  EXPECT_EQ(rd_kafka_subscribe(c.get(), sub), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(sub);
  return c;
}

std::vector<int32_t> Assignment(rd_kafka_t* c) {
  std::vector<int32_t> out;
  rd_kafka_topic_partition_list_t* a = nullptr;
  if (rd_kafka_assignment(c, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < a->cnt; ++i) out.push_back(a->elems[i].partition);
    rd_kafka_topic_partition_list_destroy(a);
  }
  return out;
}

void PollAll(const std::vector<rd_kafka_t*>& consumers) {
  for (rd_kafka_t* c : consumers) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 20);
    if (m != nullptr) rd_kafka_message_destroy(m);
  }
}

// True if the consumers' assignments are disjoint, cover [0, partitions)
// and each member holds `per_member` partitions.
bool SplitEvenly(const std::vector<rd_kafka_t*>& consumers, int partitions, int per_member) {
  std::set<int32_t> all;
  size_t total = 0;
  for (rd_kafka_t* c : consumers) {
    std::vector<int32_t> a = Assignment(c);
    if (static_cast<int>(a.size()) != per_member) return false;
    total += a.size();
    all.insert(a.begin(), a.end());
  }
  return static_cast<int>(all.size()) == partitions && static_cast<int>(total) == partitions;
}

class GroupTest : public BrokerTest {};

TEST_P(GroupTest, ThreeMembersSplitAndRebalanceWhenOneLeaves) {
  const std::string topic = UniqueName("grp-topic");
  const std::string group = UniqueName("grp");
  ASSERT_TRUE(broker_->CreateTopic(topic, 6).ok());

  KafkaPtr c1 = Subscribe(*broker_, group, topic, "6000");
  KafkaPtr c2 = Subscribe(*broker_, group, topic, "6000");
  KafkaPtr c3 = Subscribe(*broker_, group, topic, "6000");
  std::vector<rd_kafka_t*> all = {c1.get(), c2.get(), c3.get()};
  ASSERT_TRUE(PollUntil([&] { return SplitEvenly(all, 6, 2); }, [&] { PollAll(all); }, seconds(20)))
      << "3 members never split 6 partitions 2/2/2";

  // Produce one record per partition: each is consumed by exactly one member.
  KafkaPtr producer = MakeProducer(broker_->bootstrap());
  for (int p = 0; p < 6; ++p) Produce(producer.get(), topic, p, "r" + std::to_string(p));
  ASSERT_EQ(rd_kafka_flush(producer.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  std::multiset<int32_t> seen;
  ASSERT_TRUE(PollUntil([&] { return seen.size() >= 6; },
                        [&] {
                          for (rd_kafka_t* c : all) {
                            rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 20);
                            if (m == nullptr) continue;
                            if (!m->err) seen.insert(m->partition);
                            rd_kafka_message_destroy(m);
                          }
                        },
                        seconds(15)));
  EXPECT_EQ(seen, (std::multiset<int32_t>{0, 1, 2, 3, 4, 5}));

  // c3 leaves cleanly: the other two take over all partitions.
  c3.reset();  // consumer_close sends LeaveGroup
  std::vector<rd_kafka_t*> rest = {c1.get(), c2.get()};
  ASSERT_TRUE(
      PollUntil([&] { return SplitEvenly(rest, 6, 3); }, [&] { PollAll(rest); }, seconds(20)))
      << "remaining members did not take over after a LeaveGroup";
}

TEST_P(GroupTest, DeadMemberIsExpiredBySessionTimeout) {
  const std::string topic = UniqueName("grp-dead");
  const std::string group = UniqueName("grp");
  ASSERT_TRUE(broker_->CreateTopic(topic, 6).ok());

  KafkaPtr c1 = Subscribe(*broker_, group, topic, "3000");
  KafkaPtr c2 = Subscribe(*broker_, group, topic, "3000");
  auto member =
      ChildProcess::Spawn({DEVBROKER_TEST_MEMBER_BIN, broker_->bootstrap(), group, topic, "3000"},
                          /*capture_stdout=*/true);
  ASSERT_NE(member, nullptr);
  std::vector<rd_kafka_t*> local = {c1.get(), c2.get()};
  // Wait until the three members share the 6 partitions 2/2/2.
  ASSERT_TRUE(PollUntil(
      [&] {
        std::vector<int32_t> a1 = Assignment(c1.get());
        std::vector<int32_t> a2 = Assignment(c2.get());
        return a1.size() == 2 && a2.size() == 2;
      },
      [&] { PollAll(local); }, seconds(20)))
      << "helper member never joined";

  // The helper dies without leaving the group.
  member->Kill(SIGKILL);
  ASSERT_GE(member->Wait(seconds(5)), 0);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      PollUntil([&] { return SplitEvenly(local, 6, 3); }, [&] { PollAll(local); }, seconds(20)))
      << "dead member was not expired";
  auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  // Not before the 3 s session timeout, and not much later.
  EXPECT_GE(took, 2500);
  EXPECT_LT(took, 15000);
}

INSTANTIATE_FOR_BOTH_BROKERS(GroupTest);

}  // namespace
}  // namespace devbroker::testing
