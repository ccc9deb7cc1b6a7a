// Transactions through real librdkafka clients: commit/abort visibility,
// transactional consumer offsets, zombie fencing and transaction timeouts.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <thread>

#include "conformance.h"
#include "test_util.h"

namespace devbroker::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Asserts that a transactional API call succeeded.
#define ASSERT_TXN_OK(expr)                                 \
  do {                                                      \
    rd_kafka_error_t* txn_err__ = (expr);                   \
    if (txn_err__ != nullptr) {                             \
      std::string msg__ = rd_kafka_error_string(txn_err__); \
      rd_kafka_error_destroy(txn_err__);                    \
      FAIL() << #expr << " failed: " << msg__;              \
    }                                                       \
  } while (0)

KafkaPtr MakeTxnProducer(const TestBroker& broker, const std::string& txn_id,
                         const ConfList& extra = {}) {
  ConfList conf = {{"transactional.id", txn_id}};
  conf.insert(conf.end(), extra.begin(), extra.end());
  return MakeProducer(broker.bootstrap(), conf);
}

std::vector<std::string> ReadAll(const TestBroker& broker, const std::string& topic, int partitions,
                                 const char* isolation) {
  KafkaPtr c = MakeConsumer(broker.bootstrap(), {{"isolation.level", isolation}});
  AssignFromBeginning(c.get(), topic, partitions);
  bool end = false;
  std::vector<Record> got = ConsumeToEnd(c.get(), partitions, seconds(10), &end);
  EXPECT_TRUE(end) << "did not reach end of " << topic << " (" << isolation << ")";
  return Values(got);
}

rd_kafka_topic_partition_list_t* OneOffset(const std::string& topic, int32_t partition,
                                           int64_t offset) {
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic.c_str(), partition)->offset = offset;
  return l;
}

// Committed offset of the group for topic/partition as seen by OffsetFetch.
// read_uncommitted: without require_stable (a read_committed consumer waits
// while the partition has a pending transactional offset, KIP-447).
int64_t CommittedOffset(const TestBroker& broker, const std::string& group,
                        const std::string& topic, int32_t partition) {
  KafkaPtr c = MakeConsumer(broker.bootstrap(),
                            {{"group.id", group}, {"isolation.level", "read_uncommitted"}});
  rd_kafka_topic_partition_list_t* l = OneOffset(topic, partition, -1);
  rd_kafka_resp_err_t e = rd_kafka_committed(c.get(), l, 10000);
  int64_t off = e == RD_KAFKA_RESP_ERR_NO_ERROR ? l->elems[0].offset : -999;
  EXPECT_EQ(e, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(e);
  rd_kafka_topic_partition_list_destroy(l);
  return off;
}

class TxnTest : public BrokerTest {};

TEST_P(TxnTest, CommittedAndAbortedVisibility) {
  const std::string topic = UniqueName("txvis");
  ASSERT_TRUE(broker_->CreateTopic(topic, 2).ok());
  KafkaPtr p = MakeTxnProducer(*broker_, UniqueName("tx"));
  ASSERT_TXN_OK(rd_kafka_init_transactions(p.get(), 10000));

  ASSERT_TXN_OK(rd_kafka_begin_transaction(p.get()));
  Produce(p.get(), topic, 0, "c1");
  Produce(p.get(), topic, 1, "c2");
  ASSERT_TXN_OK(rd_kafka_commit_transaction(p.get(), 10000));

  ASSERT_TXN_OK(rd_kafka_begin_transaction(p.get()));
  Produce(p.get(), topic, 0, "a1");
  Produce(p.get(), topic, 1, "a2");
  ASSERT_EQ(rd_kafka_flush(p.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TXN_OK(rd_kafka_abort_transaction(p.get(), 10000));

  ASSERT_TXN_OK(rd_kafka_begin_transaction(p.get()));
  Produce(p.get(), topic, 0, "c3");
  ASSERT_TXN_OK(rd_kafka_commit_transaction(p.get(), 10000));

  // An open transaction: its record is written but not yet stable.
  ASSERT_TXN_OK(rd_kafka_begin_transaction(p.get()));
  Produce(p.get(), topic, 0, "open");
  ASSERT_EQ(rd_kafka_flush(p.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  // Partition 0: c1, marker, a1, marker, c3, marker, open.
  EXPECT_EQ(broker_->HighWatermark(topic, 0), 7);
  EXPECT_EQ(broker_->LastStableOffset(topic, 0), 6);

  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(ReadAll(*broker_, topic, 2, "read_committed")),
            (std::vector<std::string>{"c1", "c2", "c3"}));
  EXPECT_EQ(sorted(ReadAll(*broker_, topic, 2, "read_uncommitted")),
            (std::vector<std::string>{"a1", "a2", "c1", "c2", "c3", "open"}));

  ASSERT_TXN_OK(rd_kafka_commit_transaction(p.get(), 10000));
  // Apache Kafka answers EndTxn before its markers are written (devbroker
  // after): the last stable offset reaches the end soon after the commit.
  EXPECT_TRUE(PollUntil(
      [&] { return broker_->LastStableOffset(topic, 0) == broker_->HighWatermark(topic, 0); },
      [] { std::this_thread::sleep_for(milliseconds(20)); }, seconds(10)))
      << "LSO " << broker_->LastStableOffset(topic, 0) << ", end "
      << broker_->HighWatermark(topic, 0);
  EXPECT_EQ(sorted(ReadAll(*broker_, topic, 2, "read_committed")),
            (std::vector<std::string>{"c1", "c2", "c3", "open"}));
}

TEST_P(TxnTest, ReadCommittedConsumerWaitsForCommit) {
  const std::string topic = UniqueName("txwait");
  ASSERT_TRUE(broker_->CreateTopic(topic, 1).ok());
  KafkaPtr consumer = MakeConsumer(broker_->bootstrap(), {{"isolation.level", "read_committed"},
                                                          {"enable.partition.eof", "false"}});
  AssignFromBeginning(consumer.get(), topic, 1);
  KafkaPtr p = MakeTxnProducer(*broker_, UniqueName("tx"));
  ASSERT_TXN_OK(rd_kafka_init_transactions(p.get(), 10000));
  ASSERT_TXN_OK(rd_kafka_begin_transaction(p.get()));
  Produce(p.get(), topic, 0, "late");
  ASSERT_EQ(rd_kafka_flush(p.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_TRUE(ConsumeN(consumer.get(), 1, milliseconds(1500)).empty());
  ASSERT_TXN_OK(rd_kafka_commit_transaction(p.get(), 10000));
  std::vector<Record> got = ConsumeN(consumer.get(), 1, seconds(10));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "late");
}

TEST_P(TxnTest, TransactionalOffsetsVisibleOnlyAfterCommit) {
  const std::string in = UniqueName("in");
  const std::string out = UniqueName("out");
  const std::string group = UniqueName("eos-group");
  ASSERT_TRUE(broker_->CreateTopic(in, 1).ok());
  ASSERT_TRUE(broker_->CreateTopic(out, 1).ok());
  KafkaPtr plain = MakeProducer(broker_->bootstrap());
  for (int i = 0; i < 10; ++i) Produce(plain.get(), in, 0, "in" + std::to_string(i));
  ASSERT_EQ(rd_kafka_flush(plain.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

  KafkaPtr p = MakeTxnProducer(*broker_, UniqueName("tx"));
  ASSERT_TXN_OK(rd_kafka_init_transactions(p.get(), 10000));
  rd_kafka_consumer_group_metadata_t* cgmd = rd_kafka_consumer_group_metadata_new(group.c_str());

  // Aborted: offsets are discarded.
  ASSERT_TXN_OK(rd_kafka_begin_transaction(p.get()));
  Produce(p.get(), out, 0, "aborted-output");
  rd_kafka_topic_partition_list_t* offs = OneOffset(in, 0, 7);
  ASSERT_TXN_OK(rd_kafka_send_offsets_to_transaction(p.get(), offs, cgmd, 10000));
  rd_kafka_topic_partition_list_destroy(offs);
  EXPECT_LT(CommittedOffset(*broker_, group, in, 0), 0);
  ASSERT_TXN_OK(rd_kafka_abort_transaction(p.get(), 10000));
  EXPECT_LT(CommittedOffset(*broker_, group, in, 0), 0);

  // Committed: offsets become visible with the commit.
  ASSERT_TXN_OK(rd_kafka_begin_transaction(p.get()));
  Produce(p.get(), out, 0, "committed-output");
  offs = OneOffset(in, 0, 5);
  ASSERT_TXN_OK(rd_kafka_send_offsets_to_transaction(p.get(), offs, cgmd, 10000));
  rd_kafka_topic_partition_list_destroy(offs);
  EXPECT_LT(CommittedOffset(*broker_, group, in, 0), 0) << "visible before commit";
  // A read_committed consumer asks for stable offsets (OffsetFetch v7): the
  // broker answers UNSTABLE_OFFSET_COMMIT, which librdkafka retries until the
  // transaction ends, so this lookup times out.
  KafkaPtr stable = MakeConsumer(broker_->bootstrap(),
                                 {{"group.id", group}, {"isolation.level", "read_committed"}});
  offs = OneOffset(in, 0, -1);
  EXPECT_EQ(rd_kafka_committed(stable.get(), offs, 1500), RD_KAFKA_RESP_ERR__TIMED_OUT);
  rd_kafka_topic_partition_list_destroy(offs);
  ASSERT_TXN_OK(rd_kafka_commit_transaction(p.get(), 10000));
  EXPECT_EQ(CommittedOffset(*broker_, group, in, 0), 5);
  offs = OneOffset(in, 0, -1);
  EXPECT_EQ(rd_kafka_committed(stable.get(), offs, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(offs->elems[0].offset, 5);
  rd_kafka_topic_partition_list_destroy(offs);
  rd_kafka_consumer_group_metadata_destroy(cgmd);

  // A new member of the group resumes at the transactionally committed offset.
  KafkaPtr c =
      MakeConsumer(broker_->bootstrap(), {{"group.id", group}, {"enable.partition.eof", "false"}});
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, in.c_str(), RD_KAFKA_PARTITION_UA);
  ASSERT_EQ(rd_kafka_subscribe(c.get(), sub), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(sub);
  std::vector<Record> got = ConsumeN(c.get(), 1, seconds(15));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset, 5);
  EXPECT_EQ(got[0].value, "in5");

  EXPECT_EQ(ReadAll(*broker_, out, 1, "read_committed"),
            (std::vector<std::string>{"committed-output"}));
}

TEST_P(TxnTest, ZombieProducerIsFenced) {
  const std::string topic = UniqueName("zombie");
  const std::string txn_id = UniqueName("tx-zombie");
  ASSERT_TRUE(broker_->CreateTopic(topic, 1).ok());

  KafkaPtr zombie = MakeTxnProducer(*broker_, txn_id);
  ASSERT_TXN_OK(rd_kafka_init_transactions(zombie.get(), 10000));
  ASSERT_TXN_OK(rd_kafka_begin_transaction(zombie.get()));
  Produce(zombie.get(), topic, 0, "from-zombie");
  ASSERT_EQ(rd_kafka_flush(zombie.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(broker_->LastStableOffset(topic, 0), 0);

  // A new instance with the same transactional.id fences the old one and
  // aborts its open transaction.
  KafkaPtr fresh = MakeTxnProducer(*broker_, txn_id);
  ASSERT_TXN_OK(rd_kafka_init_transactions(fresh.get(), 10000));
  EXPECT_EQ(broker_->LastStableOffset(topic, 0), broker_->HighWatermark(topic, 0));

  rd_kafka_error_t* err = rd_kafka_commit_transaction(zombie.get(), 10000);
  ASSERT_NE(err, nullptr) << "zombie commit must fail";
  EXPECT_TRUE(rd_kafka_error_is_fatal(err)) << rd_kafka_error_string(err);
  rd_kafka_error_destroy(err);
  char errstr[512];
  EXPECT_EQ(rd_kafka_fatal_error(zombie.get(), errstr, sizeof(errstr)), RD_KAFKA_RESP_ERR__FENCED)
      << errstr;

  ASSERT_TXN_OK(rd_kafka_begin_transaction(fresh.get()));
  Produce(fresh.get(), topic, 0, "from-fresh");
  ASSERT_TXN_OK(rd_kafka_commit_transaction(fresh.get(), 10000));
  EXPECT_EQ(ReadAll(*broker_, topic, 1, "read_committed"),
            (std::vector<std::string>{"from-fresh"}));
}

TEST_P(TxnTest, ZombieProduceAfterFencingFails) {
  const std::string topic = UniqueName("zombie2");
  const std::string txn_id = UniqueName("tx-zombie2");
  ASSERT_TRUE(broker_->CreateTopic(topic, 1).ok());
  KafkaPtr zombie = MakeTxnProducer(*broker_, txn_id);
  ASSERT_TXN_OK(rd_kafka_init_transactions(zombie.get(), 10000));
  ASSERT_TXN_OK(rd_kafka_begin_transaction(zombie.get()));
  ProduceSync(zombie.get(), topic, 0, "first");

  KafkaPtr fresh = MakeTxnProducer(*broker_, txn_id);
  ASSERT_TXN_OK(rd_kafka_init_transactions(fresh.get(), 10000));

  // The zombie's next write is rejected with a fencing error.
  Produce(zombie.get(), topic, 0, "second");
  rd_kafka_flush(zombie.get(), 10000);
  char errstr[512];
  rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(zombie.get(), errstr, sizeof(errstr));
  EXPECT_EQ(fatal, RD_KAFKA_RESP_ERR__FENCED) << errstr;
  EXPECT_TRUE(ReadAll(*broker_, topic, 1, "read_committed").empty());
}

TEST_P(TxnTest, TransactionTimeoutAbortsAndFences) {
  const std::string topic = UniqueName("txtimeout");
  ASSERT_TRUE(broker_->CreateTopic(topic, 1).ok());
  KafkaPtr p = MakeTxnProducer(*broker_, UniqueName("tx"), {{"transaction.timeout.ms", "1500"}});
  ASSERT_TXN_OK(rd_kafka_init_transactions(p.get(), 10000));
  ASSERT_TXN_OK(rd_kafka_begin_transaction(p.get()));
  ProduceSync(p.get(), topic, 0, "never-committed");
  EXPECT_EQ(broker_->LastStableOffset(topic, 0), 0);
  bool aborted = PollUntil(
      [&] {
        return broker_->LastStableOffset(topic, 0) == 2 && broker_->HighWatermark(topic, 0) == 2;
      },
      [&] { rd_kafka_poll(p.get(), 50); }, seconds(10));
  ASSERT_TRUE(aborted) << "broker did not abort the timed-out transaction";

  rd_kafka_error_t* err = rd_kafka_commit_transaction(p.get(), 10000);
  ASSERT_NE(err, nullptr) << "commit after timeout must fail";
  rd_kafka_error_destroy(err);
  EXPECT_TRUE(ReadAll(*broker_, topic, 1, "read_committed").empty());
  EXPECT_EQ(ReadAll(*broker_, topic, 1, "read_uncommitted"),
            (std::vector<std::string>{"never-committed"}));
}

// Both brokers' default transaction.max.timeout.ms is 900000 (15 min): a
// larger transaction.timeout.ms is refused by InitProducerId
// (INVALID_TRANSACTION_TIMEOUT).
TEST_P(TxnTest, InitRejectsTooLargeTransactionTimeout) {
  KafkaPtr p = MakeTxnProducer(*broker_, UniqueName("tx"), {{"transaction.timeout.ms", "900001"}});
  rd_kafka_error_t* err = rd_kafka_init_transactions(p.get(), 5000);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(rd_kafka_error_code(err), RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT)
      << rd_kafka_error_string(err);
  rd_kafka_error_destroy(err);
}

INSTANTIATE_FOR_BOTH_BROKERS(TxnTest);

// devbroker's --transaction-timeout-max-ms (Kafka: transaction.max.timeout.ms,
// a broker setting the shared Kafka broker of the suite keeps at its default).
TEST(TxnDevbrokerOnlyTest, InitRejectsTransactionTimeoutAboveTheConfiguredMax) {
  BrokerOptions options;
  options.transaction_timeout_max_ms = 5000;
  auto broker = StartBroker(options);
  ASSERT_NE(broker, nullptr);
  KafkaPtr p = MakeProducer(broker->bootstrap_servers(), {{"transactional.id", UniqueName("tx")},
                                                          {"transaction.timeout.ms", "60000"}});
  rd_kafka_error_t* err = rd_kafka_init_transactions(p.get(), 5000);
  ASSERT_NE(err, nullptr);
  rd_kafka_error_destroy(err);
}

}  // namespace
}  // namespace devbroker::testing
