// Zombie fencing through the consumer group (KIP-447): a member whose
// partitions moved to another member must not commit its stale transaction.
// TxnOffsetCommit v3 carries the member's group metadata and devbroker
// rejects a stale generation or a member it no longer knows; librdkafka then
// makes the transaction abortable, so the zombie's outputs are never
// visible to read_committed consumers. (A stale plain OffsetCommit is
// checked at the wire level in devbroker_protocol_test.cc.)

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <algorithm>
#include <map>
#include <set>

#include "conformance.h"
#include "test_util.h"

namespace devbroker::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kPartitions = 2;
constexpr int kPerPartition = 10;

// Returns "" for nullptr (success), else the error's text (consumes it).
std::string TxnErrorString(rd_kafka_error_t* error) {
  if (error == nullptr) return "";
  std::string s = rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  return s;
}

#define ASSERT_TXN_OK(expr)                                       \
  do {                                                            \
    std::string txn_err__ = TxnErrorString(expr);                 \
    ASSERT_TRUE(txn_err__.empty()) << #expr << ": " << txn_err__; \
  } while (0)

class ZombieFencingTest : public BrokerTest {
 protected:
  void SetUp() override {
    BrokerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    in_ = UniqueName("zin");
    out_ = UniqueName("zout");
    group_ = UniqueName("zgroup");
    ASSERT_TRUE(broker_->CreateTopic(in_, kPartitions).ok());
    ASSERT_TRUE(broker_->CreateTopic(out_, kPartitions).ok());
    KafkaPtr plain = MakeProducer(broker_->bootstrap());
    for (int p = 0; p < kPartitions; ++p) {
      for (int i = 0; i < kPerPartition; ++i) {
        std::string value = "p" + std::to_string(p) + "-" + std::to_string(i);
        Produce(plain.get(), in_, p, value);
        inputs_.push_back(value);
      }
    }
    ASSERT_EQ(rd_kafka_flush(plain.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    std::sort(inputs_.begin(), inputs_.end());
  }

  KafkaPtr Member(const ConfList& extra = {}) {
    ConfList conf = {{"group.id", group_},
                     {"isolation.level", "read_committed"},
                     {"enable.partition.eof", "true"}};
    conf.insert(conf.end(), extra.begin(), extra.end());
    KafkaPtr c = MakeConsumer(broker_->bootstrap(), conf);
    rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, in_.c_str(), RD_KAFKA_PARTITION_UA);
    EXPECT_EQ(rd_kafka_subscribe(c.get(), sub), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(sub);
    return c;
  }

  KafkaPtr TxnProducer(const std::string& txn_id) {
    KafkaPtr p = MakeProducer(broker_->bootstrap(),
                              {{"transactional.id", txn_id}, {"transaction.timeout.ms", "60000"}});
    rd_kafka_error_t* e = rd_kafka_init_transactions(p.get(), 10000);
    EXPECT_EQ(e, nullptr) << TxnErrorString(e);
    return p;
  }

  // Processes records of `consumer` (polling it) until every assigned
  // partition is at its end: each value is produced unchanged to out_ inside
  // the producer's open transaction. Returns the next offsets to commit.
  rd_kafka_topic_partition_list_t* ProcessToEnd(rd_kafka_t* consumer, rd_kafka_t* producer) {
    std::set<int32_t> at_end;
    std::map<int32_t, int64_t> next;
    auto deadline = std::chrono::steady_clock::now() + seconds(15);
    while (static_cast<int>(at_end.size()) < AssignedCount(consumer) &&
           std::chrono::steady_clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        at_end.insert(m->partition);
      } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        Produce(producer, out_, m->partition,
                std::string(static_cast<const char*>(m->payload), m->len));
        next[m->partition] = m->offset + 1;
      }
      rd_kafka_message_destroy(m);
    }
    EXPECT_EQ(static_cast<int>(at_end.size()), AssignedCount(consumer))
        << "did not reach the end of every assigned partition";
    EXPECT_EQ(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(2);
    for (const auto& [partition, offset] : next) {
      rd_kafka_topic_partition_list_add(offsets, in_.c_str(), partition)->offset = offset;
    }
    return offsets;
  }

  static int AssignedCount(rd_kafka_t* consumer) {
    rd_kafka_topic_partition_list_t* a = nullptr;
    int n = 0;
    if (rd_kafka_assignment(consumer, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      n = a->cnt;
      rd_kafka_topic_partition_list_destroy(a);
    }
    return n;
  }

  static void PollOnce(rd_kafka_t* consumer) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 50);
    if (m != nullptr) rd_kafka_message_destroy(m);
  }

  // Sorted values of out_ as a read_committed consumer sees them.
  std::vector<std::string> CommittedOutputs() {
    KafkaPtr c = MakeConsumer(broker_->bootstrap(), {{"isolation.level", "read_committed"}});
    AssignFromBeginning(c.get(), out_, kPartitions);
    bool end = false;
    std::vector<std::string> values = Values(ConsumeToEnd(c.get(), kPartitions, seconds(10), &end));
    EXPECT_TRUE(end) << "did not reach the end of " << out_;
    std::sort(values.begin(), values.end());
    return values;
  }

  // The group's committed offsets (read_uncommitted: no wait for pending
  // transactional offsets), -1 where none.
  std::vector<int64_t> CommittedOffsets() {
    KafkaPtr c = MakeConsumer(broker_->bootstrap(),
                              {{"group.id", group_}, {"isolation.level", "read_uncommitted"}});
    rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(kPartitions);
    for (int p = 0; p < kPartitions; ++p) rd_kafka_topic_partition_list_add(l, in_.c_str(), p);
    rd_kafka_resp_err_t e = rd_kafka_committed(c.get(), l, 10000);
    EXPECT_EQ(e, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(e);
    std::vector<int64_t> out(kPartitions, -1);
    for (int i = 0; i < l->cnt; ++i) {
      if (l->elems[i].offset >= 0) out[l->elems[i].partition] = l->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return out;
  }

  std::string in_, out_, group_;
  std::vector<std::string> inputs_;  // Sorted.
};

// The chaos test's zombie, reproduced: member A (its own process) processes
// its partitions in an open transaction and is SIGSTOPped; its session
// expires and B takes over and reprocesses from the committed offsets. After
// SIGCONT, A sends its offsets (with the group metadata its client still
// has) and commits: the broker must reject the offsets, so A's transaction
// is aborted and every input is answered exactly once, by B.
TEST_P(ZombieFencingTest, PausedMemberCannotCommitItsTransactionAfterTakeover) {
  auto zombie = ChildProcess::Spawn({DEVBROKER_TEST_EOS_MEMBER_BIN, broker_->bootstrap(), group_,
                                     in_, out_, UniqueName("tx-zombie"), "2000"},
                                    /*capture_stdout=*/true, /*pipe_stdin=*/true);
  ASSERT_NE(zombie, nullptr);
  std::string line;
  ASSERT_TRUE(zombie->ReadLine(&line, seconds(30)));
  ASSERT_EQ(line, "assigned " + std::to_string(kPartitions));
  ASSERT_TRUE(zombie->WriteLine("process"));
  ASSERT_TRUE(zombie->ReadLine(&line, seconds(30)));
  ASSERT_EQ(line, "processed " + std::to_string(kPartitions * kPerPartition));

  zombie->Kill(SIGSTOP);
  // B joins; the group waits for A until A's 2 s session expires.
  KafkaPtr b = Member();
  KafkaPtr b_producer = TxnProducer(UniqueName("tx-b"));
  ASSERT_TRUE(PollUntil([&] { return AssignedCount(b.get()) == kPartitions; },
                        [&] { PollOnce(b.get()); }, seconds(30)))
      << "B never took over A's partitions";
  ASSERT_TXN_OK(rd_kafka_begin_transaction(b_producer.get()));
  rd_kafka_topic_partition_list_t* offsets = ProcessToEnd(b.get(), b_producer.get());
  rd_kafka_consumer_group_metadata_t* metadata = rd_kafka_consumer_group_metadata(b.get());
  ASSERT_TXN_OK(rd_kafka_send_offsets_to_transaction(b_producer.get(), offsets, metadata, 10000));
  rd_kafka_consumer_group_metadata_destroy(metadata);
  rd_kafka_topic_partition_list_destroy(offsets);
  ASSERT_TXN_OK(rd_kafka_commit_transaction(b_producer.get(), 10000));

  zombie->Kill(SIGCONT);
  ASSERT_TRUE(zombie->WriteLine("commit"));
  ASSERT_TRUE(zombie->ReadLine(&line, seconds(40)));
  EXPECT_TRUE(line == "failed abortable UNKNOWN_MEMBER_ID" ||
              line == "failed abortable ILLEGAL_GENERATION")
      << "the zombie's commit: " << line;
  if (line.rfind("failed abortable", 0) == 0) {
    ASSERT_TRUE(zombie->ReadLine(&line, seconds(40)));
    EXPECT_EQ(line, "aborted");
  }
  ASSERT_TRUE(zombie->WriteLine("exit"));
  EXPECT_EQ(zombie->Wait(seconds(20)), 0);

  EXPECT_EQ(CommittedOutputs(), inputs_) << "every input must be answered exactly once";
  EXPECT_EQ(CommittedOffsets(), std::vector<int64_t>(kPartitions, kPerPartition));
}

// The same check without a pause: A keeps its membership through a
// rebalance but sends the group metadata of the generation it processed in.
// The stale generation fails the transaction (abortable); with the current
// metadata the retry commits.
TEST_P(ZombieFencingTest, StaleGenerationMetadataMakesTheTransactionAbortable) {
  KafkaPtr a = Member();
  KafkaPtr a_producer = TxnProducer(UniqueName("tx-a"));
  ASSERT_TRUE(PollUntil([&] { return AssignedCount(a.get()) == kPartitions; },
                        [&] { PollOnce(a.get()); }, seconds(30)));
  ASSERT_TXN_OK(rd_kafka_begin_transaction(a_producer.get()));
  rd_kafka_topic_partition_list_t* offsets = ProcessToEnd(a.get(), a_producer.get());
  rd_kafka_consumer_group_metadata_t* stale = rd_kafka_consumer_group_metadata(a.get());

  // B joins: a new generation in which A and B own one partition each.
  KafkaPtr b = Member();
  ASSERT_TRUE(PollUntil([&] { return AssignedCount(a.get()) == 1 && AssignedCount(b.get()) == 1; },
                        [&] {
                          PollOnce(a.get());
                          PollOnce(b.get());
                        },
                        seconds(30)))
      << "the group did not rebalance to one partition each";

  rd_kafka_error_t* error =
      rd_kafka_send_offsets_to_transaction(a_producer.get(), offsets, stale, 10000);
  rd_kafka_consumer_group_metadata_destroy(stale);
  rd_kafka_topic_partition_list_destroy(offsets);
  ASSERT_NE(error, nullptr) << "offsets of a stale generation were accepted";
  EXPECT_TRUE(rd_kafka_error_txn_requires_abort(error)) << rd_kafka_error_string(error);
  EXPECT_EQ(rd_kafka_error_code(error), RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
      << rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  ASSERT_TXN_OK(rd_kafka_abort_transaction(a_producer.get(), 10000));
  EXPECT_TRUE(CommittedOutputs().empty());
  EXPECT_EQ(CommittedOffsets(), std::vector<int64_t>(kPartitions, -1));

  // With its current metadata A commits the partition it still owns.
  rd_kafka_topic_partition_list_t* owned = nullptr;
  ASSERT_EQ(rd_kafka_assignment(a.get(), &owned), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(owned->cnt, 1);
  const int32_t partition = owned->elems[0].partition;
  rd_kafka_topic_partition_list_destroy(owned);
  ASSERT_TXN_OK(rd_kafka_begin_transaction(a_producer.get()));
  Produce(a_producer.get(), out_, partition, "fresh");
  rd_kafka_topic_partition_list_t* fresh_offsets = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(fresh_offsets, in_.c_str(), partition)->offset = 3;
  rd_kafka_consumer_group_metadata_t* current = rd_kafka_consumer_group_metadata(a.get());
  ASSERT_TXN_OK(
      rd_kafka_send_offsets_to_transaction(a_producer.get(), fresh_offsets, current, 10000));
  rd_kafka_consumer_group_metadata_destroy(current);
  rd_kafka_topic_partition_list_destroy(fresh_offsets);
  ASSERT_TXN_OK(rd_kafka_commit_transaction(a_producer.get(), 10000));
  EXPECT_EQ(CommittedOutputs(), std::vector<std::string>{"fresh"});
  EXPECT_EQ(CommittedOffsets()[partition], 3);
}

// Offsets sent with the metadata of a member that has left the group (its
// partitions now belong to B) are rejected with UNKNOWN_MEMBER_ID, and B's
// committed offsets stay.
TEST_P(ZombieFencingTest, DepartedMembersMetadataCannotCommitOffsets) {
  KafkaPtr a = Member();
  ASSERT_TRUE(PollUntil([&] { return AssignedCount(a.get()) == kPartitions; },
                        [&] { PollOnce(a.get()); }, seconds(30)));
  rd_kafka_consumer_group_metadata_t* a_metadata = rd_kafka_consumer_group_metadata(a.get());
  ASSERT_NE(a_metadata, nullptr);
  KafkaPtr b = Member();
  a.reset();  // A leaves the group (LeaveGroup): B takes everything over.
  ASSERT_TRUE(PollUntil([&] { return AssignedCount(b.get()) == kPartitions; },
                        [&] { PollOnce(b.get()); }, seconds(30)));
  rd_kafka_topic_partition_list_t* b_offsets = rd_kafka_topic_partition_list_new(kPartitions);
  for (int p = 0; p < kPartitions; ++p) {
    rd_kafka_topic_partition_list_add(b_offsets, in_.c_str(), p)->offset = 7;
  }
  ASSERT_EQ(rd_kafka_commit(b.get(), b_offsets, /*async=*/0), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(b_offsets);
  EXPECT_EQ(CommittedOffsets(), std::vector<int64_t>(kPartitions, 7));

  KafkaPtr zombie_producer = TxnProducer(UniqueName("tx-zombie"));
  ASSERT_TXN_OK(rd_kafka_begin_transaction(zombie_producer.get()));
  Produce(zombie_producer.get(), out_, 0, "zombie");
  rd_kafka_topic_partition_list_t* zombie_offsets = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(zombie_offsets, in_.c_str(), 0)->offset = 2;
  rd_kafka_error_t* error = rd_kafka_send_offsets_to_transaction(zombie_producer.get(),
                                                                 zombie_offsets, a_metadata, 10000);
  rd_kafka_topic_partition_list_destroy(zombie_offsets);
  rd_kafka_consumer_group_metadata_destroy(a_metadata);
  ASSERT_NE(error, nullptr) << "offsets of a departed member were accepted";
  EXPECT_TRUE(rd_kafka_error_txn_requires_abort(error)) << rd_kafka_error_string(error);
  EXPECT_EQ(rd_kafka_error_code(error), RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID)
      << rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  ASSERT_TXN_OK(rd_kafka_abort_transaction(zombie_producer.get(), 10000));
  EXPECT_EQ(CommittedOffsets(), std::vector<int64_t>(kPartitions, 7));
  EXPECT_TRUE(CommittedOutputs().empty());
}

INSTANTIATE_FOR_BOTH_BROKERS(ZombieFencingTest);

}  // namespace
}  // namespace devbroker::testing
