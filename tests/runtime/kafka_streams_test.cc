// Integration tests of KafkaStreams against librdkafka's mock cluster.
//
// Mock limitations taken into account (see runtime/README.md): the mock does
// not hide aborted records from read_committed readers and does not store
// offsets sent in a transaction. So the assertions are on the committed local
// STATE (read through the state library after Stop) and on the largest count
// per key in the output, never on exact output multiplicity after aborts or on
// transactional offsets.
#include "streams/runtime/kafka_streams.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "runtime_test_util.h"
#include "streams/stream_task.h"

namespace streams::runtime {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using testing::MetricValue;
using testing::MockCluster;
using testing::Processed;
using testing::ReadCounts;
using testing::SeriesCount;
using testing::TempDir;
using testing::WaitFor;

constexpr int kPartitions = 4;
constexpr char kApp[] = "count-app";
constexpr int32_t kOutputBroker = 2;
constexpr int16_t kApiOffsetFetch = 9;
constexpr int16_t kApiHeartbeat = 12;

class KafkaStreamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<MockCluster>(3);
    cluster_->CreateTopic("input", kPartitions);
    cluster_->CreateTopic("output", kPartitions);
    cluster_->CreateTopic("input.dlq", kPartitions);
    // The mock has no CreateTopics API: the changelog topic is created here.
    cluster_->CreateTopic(Topology::ChangelogTopic(kApp, "counts"), kPartitions);
    // Input partitions are led by broker 1, everything the runtime writes by
    // broker 2, so errors injected on broker 2 hit the runtime's produce
    // requests only (never the test's own producer).
    for (int p = 0; p < kPartitions; ++p) {
      rd_kafka_mock_partition_set_leader(cluster_->mock(), "input", p, 1);
      for (const std::string& topic : std::vector<std::string>{
               "output", "input.dlq", Topology::ChangelogTopic(kApp, "counts")}) {
        rd_kafka_mock_partition_set_leader(cluster_->mock(), topic.c_str(), p, kOutputBroker);
      }
    }
    topology_ = testing::BuildCountTopology("input", "output");
    ASSERT_NE(topology_, nullptr);
  }

  StreamsConfig Config(const std::string& state_dir, const std::string& instance,
                       ProcessingGuarantee guarantee,
                       const std::map<std::string, std::string>& extra = {}) {
    return testing::TestConfig(kApp, cluster_->bootstraps(), state_dir, instance, guarantee, extra);
  }

  // `n` records over `keys` keys; adds them to the expected counts.
  testing::KeyValues Input(int n, int keys) { return input_.Next(n, keys); }

  std::unique_ptr<KafkaStreams> MakeStreams(StreamsConfig config,
                                            std::shared_ptr<prometheus::Registry> registry = {}) {
    return testing::MakeStreams(*topology_, std::move(config), std::move(registry));
  }

  std::unique_ptr<MockCluster> cluster_;
  std::unique_ptr<Topology> topology_;
  testing::CountInput input_;
  const std::map<std::string, int64_t>& expected_ = input_.expected;
};

TEST_F(KafkaStreamsTest, ProcessesEndToEndUnderExactlyOnce) {
  TempDir dir;
  const int n = 2000;
  cluster_->Produce("input", Input(n, 50));
  auto registry = std::make_shared<prometheus::Registry>();
  StreamsConfig config = Config(dir.path(), "i1", ProcessingGuarantee::kExactlyOnceV2);
  auto streams = MakeStreams(config, registry);
  EXPECT_EQ(streams->state(), KafkaStreams::State::kCreated);
  ASSERT_TRUE(streams->Start().ok());
  ASSERT_TRUE(streams->AwaitReady(seconds(30)).ok()) << StateName(streams->state());
  EXPECT_EQ(streams->assigned_tasks().size(), static_cast<size_t>(kPartitions));
  // State metrics while ready: the instance, its one thread and every task run.
  EXPECT_EQ(MetricValue(*registry, "streams_instance_state", {{"state", "RUNNING"}}), 1);
  EXPECT_EQ(MetricValue(*registry, "streams_instance_state"), 1);
  EXPECT_EQ(MetricValue(*registry, "streams_thread_state", {{"state", "RUNNING"}}), 1);
  EXPECT_EQ(MetricValue(*registry, "streams_thread_state"), 1);
  EXPECT_EQ(MetricValue(*registry, "streams_task_state", {{"state", "RUNNING"}}), kPartitions);
  EXPECT_EQ(MetricValue(*registry, "streams_task_state", {{"state", "RESTORING"}}), 0);
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= n; }, seconds(30)))
      << streams->stats().records_processed;
  ASSERT_TRUE(streams->Stop().ok());
  EXPECT_EQ(streams->state(), KafkaStreams::State::kNotRunning);
  EXPECT_TRUE(streams->AwaitTermination(milliseconds(10)).ok());
  EXPECT_EQ(MetricValue(*registry, "streams_instance_state", {{"state", "NOT_RUNNING"}}), 1);
  EXPECT_EQ(MetricValue(*registry, "streams_thread_state", {{"state", "DEAD"}}), 1);
  EXPECT_EQ(SeriesCount(*registry, "streams_task_state"), 0u);  // Closed tasks have none.

  KafkaStreamsStats stats = streams->stats();
  EXPECT_EQ(stats.records_processed, static_cast<uint64_t>(n));
  EXPECT_GT(stats.transactions_committed, 0u);
  EXPECT_EQ(stats.transactions_aborted, 0u);

  // Local state (committed) equals the expected counts.
  EXPECT_EQ(ReadCounts(config, *topology_, kPartitions), expected_);
  // Outputs: one per input, the last count per key is the expected one.
  auto outputs = cluster_->ReadAll("output");
  EXPECT_EQ(outputs.size(), static_cast<size_t>(n));
  EXPECT_EQ(testing::MaxCountPerKey(outputs), expected_);
  // Changelog: the latest value per key is the count.
  auto changelog = cluster_->ReadAll(Topology::ChangelogTopic(kApp, "counts"));
  EXPECT_EQ(testing::MaxCountPerKey(changelog), expected_);
  for (const auto& r : changelog) {
    // Task N writes partition N of the changelog; keys are co-partitioned with the input.
    EXPECT_EQ(r.partition, DefaultPartitionForKey(*r.key, kPartitions));
  }

  // Metrics.
  EXPECT_EQ(MetricValue(*registry, "streams_records_processed_total"), n);
  EXPECT_GT(MetricValue(*registry, "streams_transactions_total", {{"result", "committed"}}), 0);
  EXPECT_EQ(MetricValue(*registry, "streams_end_to_end_latency_seconds"), n);
  EXPECT_GT(MetricValue(*registry, "streams_commit_duration_seconds"), 0);
  EXPECT_EQ(MetricValue(*registry, "streams_tasks_assigned"), 0);  // All closed.
}

TEST_F(KafkaStreamsTest, TwoStreamThreadsShareTheTasks) {
  TempDir dir;
  StreamsConfig config =
      Config(dir.path(), "i1", ProcessingGuarantee::kExactlyOnceV2, {{"num.stream.threads", "2"}});
  auto streams = MakeStreams(config);
  ASSERT_TRUE(streams->Start().ok());
  ASSERT_TRUE(streams->AwaitReady(seconds(30)).ok()) << StateName(streams->state());
  // Each thread is a group member: together they own the 4 tasks once.
  ASSERT_TRUE(
      WaitFor([&] { return streams->assigned_tasks().size() == kPartitions; }, seconds(30)));
  cluster_->Produce("input", Input(800, 40));
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 800; }, seconds(30)))
      << streams->stats().records_processed;
  ASSERT_TRUE(streams->Stop().ok());
  EXPECT_EQ(streams->stats().records_processed, 800u);
  EXPECT_GE(streams->stats().rebalances, 2u);  // One assignment per thread at least.
  EXPECT_EQ(ReadCounts(config, *topology_, kPartitions), expected_);
}

TEST_F(KafkaStreamsTest, CleanRestartRestoresNothingAndResumes) {
  TempDir dir;
  cluster_->Produce("input", Input(600, 20));
  StreamsConfig config = Config(dir.path(), "i1", ProcessingGuarantee::kAtLeastOnce);
  {
    auto streams = MakeStreams(config);
    ASSERT_TRUE(streams->Start().ok());
    ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 600; }, seconds(30)));
    ASSERT_TRUE(streams->Stop().ok());
  }
  EXPECT_EQ(ReadCounts(config, *topology_, kPartitions), expected_);

  cluster_->Produce("input", Input(400, 20));
  auto registry = std::make_shared<prometheus::Registry>();
  auto streams = MakeStreams(config, registry);
  ASSERT_TRUE(streams->Start().ok());
  ASSERT_TRUE(streams->AwaitReady(seconds(30)).ok());
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 400; }, seconds(30)));
  ASSERT_TRUE(streams->Stop().ok());
  // The checkpoint equals the changelog end: nothing restored, nothing reprocessed.
  EXPECT_EQ(streams->stats().records_restored, 0u);
  EXPECT_EQ(streams->stats().records_processed, 400u);
  EXPECT_EQ(MetricValue(*registry, "streams_restore_records_total"), 0);
  EXPECT_EQ(ReadCounts(config, *topology_, kPartitions), expected_);
}

TEST_F(KafkaStreamsTest, TwoInstancesSplitPartitionsAndTakeOverWithRestoredState) {
  TempDir dir_a;
  TempDir dir_b;
  StreamsConfig config_a = Config(dir_a.path(), "a", ProcessingGuarantee::kAtLeastOnce);
  StreamsConfig config_b = Config(dir_b.path(), "b", ProcessingGuarantee::kAtLeastOnce);
  auto registry_b = std::make_shared<prometheus::Registry>();
  auto a = MakeStreams(config_a);
  auto b = MakeStreams(config_b, registry_b);
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  // Both get a share of the 4 tasks. (Input is produced once the group is
  // stable: the mock rejects offset commits while a member is joining, where
  // a broker accepts them, which would turn the rebalance into duplicates
  // under at_least_once.)
  ASSERT_TRUE(WaitFor(
      [&] {
        return a->IsReady() && b->IsReady() && !a->assigned_tasks().empty() &&
               !b->assigned_tasks().empty() &&
               a->assigned_tasks().size() + b->assigned_tasks().size() == kPartitions;
      },
      seconds(45)))
      << a->assigned_tasks().size() << " + " << b->assigned_tasks().size();
  cluster_->Produce("input", Input(1000, 40));
  ASSERT_TRUE(WaitFor([&] { return Processed({a.get(), b.get()}) >= 1000; }, seconds(30)));
  std::vector<TaskId> a_tasks = a->assigned_tasks();

  // A leaves: B takes over every task, restoring A's stores from the changelog.
  ASSERT_TRUE(a->Stop().ok());
  ASSERT_TRUE(WaitFor([&] { return b->IsReady() && b->assigned_tasks().size() == kPartitions; },
                      seconds(45)));
  EXPECT_GT(b->stats().records_restored, 0u);
  EXPECT_EQ(MetricValue(*registry_b, "streams_restore_records_total"),
            static_cast<double>(b->stats().records_restored));
  EXPECT_EQ(MetricValue(*registry_b, "streams_restore_remaining_records"), 0);
  EXPECT_EQ(MetricValue(*registry_b, "streams_tasks_assigned"), kPartitions);
  cluster_->Produce("input", Input(500, 40));
  ASSERT_TRUE(WaitFor(
      [&] {
        return Processed({a.get(), b.get()}) >= 1500;
      },
      seconds(30)))
      << Processed({a.get(), b.get()});
  // Lag is exported per input partition (0 once everything is processed).
  EXPECT_TRUE(WaitFor(
      [&] {
        return SeriesCount(*registry_b, "streams_consumer_lag") == kPartitions &&
               MetricValue(*registry_b, "streams_consumer_lag", {{"topic", "input"}}) == 0 &&
               MetricValue(*registry_b, "streams_state_store_entries", {{"store", "counts"}}) > 0 &&
               MetricValue(*registry_b, "streams_state_store_bytes") > 0;
      },
      seconds(10)));
  ASSERT_TRUE(b->Stop().ok());

  // B's state covers all keys with the exact counts (A's part restored).
  EXPECT_EQ(ReadCounts(config_b, *topology_, kPartitions), expected_);
  EXPECT_EQ(testing::MaxCountPerKey(cluster_->ReadAll("output")), expected_);
  EXPECT_EQ(Processed({a.get(), b.get()}), 1500u);
  EXPECT_FALSE(a_tasks.empty());
}

TEST_F(KafkaStreamsTest, CommitMaxRecordsCommitsBeforeTheInterval) {
  TempDir dir;
  // A commit interval far beyond the test: only commit.max.records can commit.
  StreamsConfig config = Config(dir.path(), "i1", ProcessingGuarantee::kExactlyOnceV2,
                                {{"commit.interval.ms", "3600000"}, {"commit.max.records", "50"}});
  auto streams = MakeStreams(config);
  ASSERT_TRUE(streams->Start().ok());
  cluster_->Produce("input", Input(500, 10));
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 500; }, seconds(30)))
      << streams->stats().records_processed;
  EXPECT_GE(streams->stats().transactions_committed, 10u);
  ASSERT_TRUE(streams->Stop().ok());
  EXPECT_EQ(ReadCounts(config, *topology_, kPartitions), expected_);
}

TEST_F(KafkaStreamsTest, InjectedErrorsAbortAndRetryWithoutLosingInput) {
  TempDir dir;
  StreamsConfig config = Config(dir.path(), "i1", ProcessingGuarantee::kExactlyOnceV2);
  auto streams = MakeStreams(config);
  ASSERT_TRUE(streams->Start().ok());
  ASSERT_TRUE(streams->AwaitReady(seconds(30)).ok());
  cluster_->Produce("input", Input(300, 30));
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 300; }, seconds(30)));

  // Retriable errors: librdkafka retries them inside the transaction.
  rd_kafka_mock_broker_push_request_error_rtts(
      cluster_->mock(), kOutputBroker, testing::kApiProduce, 3,
      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, 0, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, 0,
      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, 0);
  rd_kafka_mock_push_request_errors(cluster_->mock(), testing::kApiAddPartitionsToTxn, 2,
                                    RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
                                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
  rd_kafka_mock_push_request_errors(cluster_->mock(), testing::kApiTxnOffsetCommit, 2,
                                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
  rd_kafka_mock_push_request_errors(cluster_->mock(), testing::kApiEndTxn, 2,
                                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                    RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS);
  cluster_->Produce("input", Input(300, 30));
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 600; }, seconds(40)))
      << streams->stats().records_processed;

  // Abortable errors: a produce request rejected for good fails delivery, and
  // the transaction must be aborted and the cycle re-processed.
  const uint64_t aborted_before = streams->stats().transactions_aborted;
  rd_kafka_mock_broker_push_request_error_rtts(
      cluster_->mock(), kOutputBroker, testing::kApiProduce, 2,
      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, 0, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, 0);
  cluster_->Produce("input", Input(300, 30));
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 900; }, seconds(40)))
      << streams->stats().records_processed;
  EXPECT_GT(streams->stats().transactions_aborted, aborted_before);
  EXPECT_GT(streams->stats().delivery_errors, 0u);
  ASSERT_TRUE(streams->Stop().ok());

  EXPECT_EQ(streams->stats().records_processed, 900u);
  EXPECT_EQ(ReadCounts(config, *topology_, kPartitions), expected_);
  EXPECT_EQ(testing::MaxCountPerKey(cluster_->ReadAll("output")), expected_);
}

TEST_F(KafkaStreamsTest, BrokerDownAndUpLosesNoInput) {
  TempDir dir;
  StreamsConfig config = Config(dir.path(), "i1", ProcessingGuarantee::kExactlyOnceV2);
  auto streams = MakeStreams(config);
  ASSERT_TRUE(streams->Start().ok());
  ASSERT_TRUE(streams->AwaitReady(seconds(30)).ok());
  cluster_->Produce("input", Input(400, 25));
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 400; }, seconds(30)));

  // Take a broker down while new input is being processed, then bring it back.
  std::thread producer([&] { cluster_->Produce("input", Input(400, 25)); });
  std::this_thread::sleep_for(milliseconds(100));
  ASSERT_EQ(rd_kafka_mock_broker_set_down(cluster_->mock(), 2), RD_KAFKA_RESP_ERR_NO_ERROR);
  // Longer than the transaction timeout: cycles fail, abort and recover.
  std::this_thread::sleep_for(seconds(10));
  EXPECT_NE(streams->state(), KafkaStreams::State::kError) << streams->error();
  ASSERT_EQ(rd_kafka_mock_broker_set_up(cluster_->mock(), 2), RD_KAFKA_RESP_ERR_NO_ERROR);
  producer.join();
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 800; }, seconds(60)))
      << streams->stats().records_processed;
  ASSERT_TRUE(streams->Stop().ok());
  EXPECT_EQ(streams->stats().records_processed, 800u);
  EXPECT_EQ(ReadCounts(config, *topology_, kPartitions), expected_);
  EXPECT_EQ(testing::MaxCountPerKey(cluster_->ReadAll("output")), expected_);
}

TEST_F(KafkaStreamsTest, FatalProducerErrorRecreatesProducerAndRejoins) {
  TempDir dir;
  StreamsConfig config = Config(dir.path(), "i1", ProcessingGuarantee::kExactlyOnceV2);
  auto streams = MakeStreams(config);
  ASSERT_TRUE(streams->Start().ok());
  ASSERT_TRUE(streams->AwaitReady(seconds(30)).ok());
  cluster_->Produce("input", Input(200, 20));
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 200; }, seconds(30)));

  // The next transaction is fenced (as when another instance took over).
  rd_kafka_mock_push_request_errors(cluster_->mock(), testing::kApiAddPartitionsToTxn, 1,
                                    RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
  cluster_->Produce("input", Input(200, 20));
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 400; }, seconds(45)))
      << streams->stats().records_processed;
  EXPECT_GE(streams->stats().producer_fenced, 1u);
  EXPECT_GE(streams->stats().rebalances, 2u);  // Rejoined the group.
  ASSERT_TRUE(streams->AwaitReady(seconds(30)).ok());
  ASSERT_TRUE(streams->Stop().ok());
  EXPECT_EQ(streams->state(), KafkaStreams::State::kNotRunning);
  EXPECT_EQ(ReadCounts(config, *topology_, kPartitions), expected_);
}

TEST_F(KafkaStreamsTest, MalformedInputGoesToDeadLetterTopic) {
  TempDir dir;
  auto registry = std::make_shared<prometheus::Registry>();
  StreamsConfig config = Config(dir.path(), "i1", ProcessingGuarantee::kExactlyOnceV2);
  auto streams = MakeStreams(config, registry);
  ASSERT_TRUE(streams->Start().ok());
  auto good = Input(100, 10);
  std::vector<std::pair<std::string, std::string>> mixed;
  for (size_t i = 0; i < good.size(); ++i) {
    mixed.push_back(good[i]);
    if (i % 25 == 0) mixed.emplace_back("key-bad-" + std::to_string(i), "!garbage");
  }
  cluster_->Produce("input", mixed);
  ASSERT_TRUE(
      WaitFor([&] { return streams->stats().records_processed >= mixed.size(); }, seconds(30)));
  ASSERT_TRUE(streams->Stop().ok());

  EXPECT_EQ(streams->stats().dead_letter_records, 4u);
  EXPECT_EQ(MetricValue(*registry, "streams_dead_letter_records_total", {{"topic", "input.dlq"}}),
            4);
  auto dlq = cluster_->ReadAll("input.dlq");
  ASSERT_EQ(dlq.size(), 4u);
  for (const auto& r : dlq) {
    EXPECT_EQ(r.value, "!garbage");
    EXPECT_TRUE(FindHeader(r.headers, kDlqErrorHeader).has_value());
    EXPECT_EQ(FindHeader(r.headers, kDlqTopicHeader), "input");
    EXPECT_TRUE(FindHeader(r.headers, kDlqPartitionHeader).has_value());
    EXPECT_TRUE(FindHeader(r.headers, kDlqOffsetHeader).has_value());
  }
  // The good records were all counted; the bad ones were not.
  EXPECT_EQ(ReadCounts(config, *topology_, kPartitions), expected_);
}

TEST_F(KafkaStreamsTest, SecondInstanceOnSameStateDirFailsToStart) {
  TempDir dir;
  auto first = MakeStreams(Config(dir.path(), "i1", ProcessingGuarantee::kExactlyOnceV2));
  auto second = MakeStreams(Config(dir.path(), "i2", ProcessingGuarantee::kExactlyOnceV2));
  ASSERT_TRUE(first->Start().ok());
  Status status = second->Start();
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(),
              HasSubstr("state directory " + dir.path() + "/" + kApp +
                        " is locked by another instance (pid " + std::to_string(::getpid()) + ")"));
  EXPECT_EQ(second->state(), KafkaStreams::State::kCreated);
  ASSERT_TRUE(first->Stop().ok());
  first.reset();  // Releases the lock.
  auto third = MakeStreams(Config(dir.path(), "i3", ProcessingGuarantee::kExactlyOnceV2));
  EXPECT_TRUE(third->Start().ok());
  EXPECT_TRUE(third->Stop().ok());
}

TEST_F(KafkaStreamsTest, StartFailsForMissingOrNotCoPartitionedSources) {
  TempDir dir;
  {
    auto topology = testing::BuildCountTopology("absent", "output");
    auto streams = KafkaStreams::Create(
        *topology, Config(dir.path(), "i1", ProcessingGuarantee::kAtLeastOnce), nullptr);
    ASSERT_TRUE(streams.ok());
    Status status = (*streams)->Start();
    EXPECT_EQ(status.code(), StatusCode::kNotFound);
    EXPECT_THAT(status.message(), HasSubstr("absent"));
  }
  {
    cluster_->CreateTopic("other", 2);
    TopologyBuilder b;
    b.AddSource<std::string, std::string>("s", {"input", "other"}, StringSerdeInstance(),
                                          StringSerdeInstance());
    b.AddSink<std::string, std::string>("out", "output", StringSerdeInstance(),
                                        StringSerdeInstance(), {"s"});
    auto topology = std::move(b).Build();
    ASSERT_TRUE(topology.ok()) << topology.status();
    auto streams = KafkaStreams::Create(
        **topology, Config(dir.path(), "i1", ProcessingGuarantee::kAtLeastOnce), nullptr);
    ASSERT_TRUE(streams.ok());
    Status status = (*streams)->Start();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr("not co-partitioned"));
  }
}

// Item: a failed or timed-out committed-offset lookup at assignment is
// retried (then the thread rejoins); it never falls back to the task's local
// checkpoint, which dates from the last time this instance owned the
// partition (here: before B processed 400 more records).
TEST_F(KafkaStreamsTest, FailedCommittedOffsetLookupsAreRetriedNotReplacedByACheckpoint) {
  TempDir dir_a;
  TempDir dir_b;
  const std::map<std::string, std::string> fast_lookups = {{"offsets.lookup.timeout.ms", "300"}};
  StreamsConfig config_a =
      Config(dir_a.path(), "a", ProcessingGuarantee::kAtLeastOnce, fast_lookups);
  StreamsConfig config_b = Config(dir_b.path(), "b", ProcessingGuarantee::kAtLeastOnce);
  cluster_->Produce("input", Input(400, 40));
  {
    auto a = MakeStreams(config_a);
    ASSERT_TRUE(a->Start().ok());
    ASSERT_TRUE(WaitFor([&] { return a->stats().records_processed >= 400; }, seconds(30)));
    ASSERT_TRUE(a->Stop().ok());
  }
  cluster_->Produce("input", Input(400, 40));
  {
    auto b = MakeStreams(config_b);
    ASSERT_TRUE(b->Start().ok());
    ASSERT_TRUE(WaitFor([&] { return b->stats().records_processed >= 400; }, seconds(30)))
        << b->stats().records_processed;
    ASSERT_TRUE(b->Stop().ok());
  }
  // A comes back while the coordinator cannot answer OffsetFetch for several
  // lookup timeouts.
  std::vector<rd_kafka_resp_err_t> errors(20, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
  rd_kafka_mock_push_request_errors_array(cluster_->mock(), kApiOffsetFetch, errors.size(),
                                          errors.data());
  auto registry = std::make_shared<prometheus::Registry>();
  auto a = MakeStreams(config_a, registry);
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(a->AwaitReady(seconds(60)).ok()) << a->error();
  cluster_->Produce("input", Input(100, 40));
  ASSERT_TRUE(WaitFor([&] { return a->stats().records_processed >= 100; }, seconds(30)));
  // Nothing processed twice: what A restores plus what it processes is exact.
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_TRUE(a->Stop().ok());
  EXPECT_EQ(a->stats().records_processed, 100u);
  EXPECT_EQ(ReadCounts(config_a, *topology_, kPartitions), expected_);
  EXPECT_EQ(testing::MaxCountPerKey(cluster_->ReadAll("output")), expected_);
}

// Item: transient broker errors while taking an assignment (the changelogs'
// leader is down, so restore watermarks cannot be read) make the thread
// retry and rejoin, not fail; when the broker is back after 10 s every record
// is processed exactly once (exactly_once_v2, one instance: the mock keeps no
// transactional offsets, so a takeover by another instance could not be exact).
TEST_F(KafkaStreamsTest, AssignmentDuringABrokerOutageIsRetriedUntilTheBrokerIsBack) {
  // The group coordinator stays up; the changelogs' leader goes down.
  rd_kafka_mock_coordinator_set(cluster_->mock(), "group", kApp, 1);
  TempDir dir;
  // Eager (stated, although the default): the forced rebalance hands the sole
  // member its partitions again (under the cooperative protocol it keeps them
  // and nothing is assigned).
  StreamsConfig config =
      Config(dir.path(), "a", ProcessingGuarantee::kExactlyOnceV2,
             {{"offsets.lookup.timeout.ms", "500"}, {"rebalance.protocol", "eager"}});
  auto registry = std::make_shared<prometheus::Registry>();
  auto streams = MakeStreams(config, registry);
  ASSERT_TRUE(streams->Start().ok());
  ASSERT_TRUE(streams->AwaitReady(seconds(30)).ok());
  cluster_->Produce("input", Input(400, 40));
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 400; }, seconds(30)));
  std::this_thread::sleep_for(milliseconds(300));  // Idle: everything committed.

  ASSERT_EQ(rd_kafka_mock_broker_set_down(cluster_->mock(), kOutputBroker),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  const auto down_at = std::chrono::steady_clock::now();
  // The coordinator asks the member to rejoin: it gets its assignment while
  // the changelogs cannot be reached.
  rd_kafka_mock_push_request_errors(cluster_->mock(), kApiHeartbeat, 1,
                                    RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
  ASSERT_TRUE(WaitFor(
      [&] { return MetricValue(*registry, "streams_assignment_retries_total") >= 1; }, seconds(9)));
  // Input arrives during the outage (its partitions' leader is up).
  cluster_->Produce("input", Input(400, 40));
  while (std::chrono::steady_clock::now() - down_at < seconds(10)) {
    std::this_thread::sleep_for(milliseconds(100));
    ASSERT_NE(streams->state(), KafkaStreams::State::kError) << streams->error();
  }
  ASSERT_EQ(rd_kafka_mock_broker_set_up(cluster_->mock(), kOutputBroker),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 800; }, seconds(90)))
      << streams->stats().records_processed;
  ASSERT_TRUE(streams->AwaitReady(seconds(30)).ok());
  ASSERT_TRUE(streams->Stop().ok());
  EXPECT_EQ(streams->state(), KafkaStreams::State::kNotRunning);
  EXPECT_EQ(streams->stats().records_processed, 800u);
  EXPECT_EQ(ReadCounts(config, *topology_, kPartitions), expected_);
  EXPECT_EQ(testing::MaxCountPerKey(cluster_->ReadAll("output")), expected_);
}

// Item: every client's event queue is served: the offsets client (never
// assigned) and the restore consumer (assigned only while restoring) do not
// accumulate error events while the brokers are unreachable.
TEST_F(KafkaStreamsTest, AuxiliaryClientQueuesAreServed) {
  TempDir dir;
  auto registry = std::make_shared<prometheus::Registry>();
  auto streams = MakeStreams(Config(dir.path(), "i1", ProcessingGuarantee::kAtLeastOnce), registry);
  ASSERT_TRUE(streams->Start().ok());
  ASSERT_TRUE(streams->AwaitReady(seconds(30)).ok());
  cluster_->Produce("input", Input(100, 10));
  ASSERT_TRUE(WaitFor([&] { return streams->stats().records_processed >= 100; }, seconds(30)));
  for (int broker = 1; broker <= 3; ++broker) {
    ASSERT_EQ(rd_kafka_mock_broker_set_down(cluster_->mock(), broker), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  double max_offsets = 0;
  double max_restore = 0;
  for (int i = 0; i < 60; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    max_offsets = std::max(max_offsets, MetricValue(*registry, "streams_client_queue_events",
                                                    {{"client", "offsets"}}));
    max_restore = std::max(max_restore, MetricValue(*registry, "streams_client_queue_events",
                                                    {{"client", "restore-consumer"}}));
  }
  for (int broker = 1; broker <= 3; ++broker) {
    ASSERT_EQ(rd_kafka_mock_broker_set_up(cluster_->mock(), broker), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  EXPECT_EQ(SeriesCount(*registry, "streams_client_queue_events"), 4u);
  EXPECT_LE(max_offsets, 3);
  EXPECT_LE(max_restore, 3);
  ASSERT_TRUE(streams->Stop().ok());
}

}  // namespace
}  // namespace streams::runtime
