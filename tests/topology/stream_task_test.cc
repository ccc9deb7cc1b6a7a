#include "streams/stream_task.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "streams/topology.h"
#include "topology_test_util.h"

namespace streams {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using testing::StoreContents;

// Collects sent records; can be told to fail.
class FakeCollector final : public RecordCollector {
 public:
  Result<int32_t> PartitionCount(const std::string& topic) override { return 4; }
  Status Send(ProducedRecord record) override {
    if (!fail_with.ok()) return fail_with;
    sent.push_back(std::move(record));
    return Status::Ok();
  }
  std::vector<ProducedRecord> sent;
  Status fail_with;
};

// Counts records per key in "counts"; writes the last value in "mem" (in
// memory) and "scratch" (not logged); forwards the count as text.
class CountingProcessor : public Processor<std::string, std::string> {
 public:
  explicit CountingProcessor(int* closed) : closed_(closed) {}
  Status Init(ProcessorContext<std::string, std::string>& context) override {
    context_ = &context;
    counts_ = context.GetStateStore("counts");
    mem_ = context.GetStateStore("mem");
    scratch_ = context.GetStateStore("scratch");
    if (!counts_ || !mem_ || !scratch_) return Status::FailedPrecondition("stores missing");
    return Status::Ok();
  }
  Status Process(const Record<std::string, std::string>& record) override {
    if (record.value == "fail") return Status::Aborted("asked to fail");
    if (record.value == "commit") context_->RequestCommit();
    STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> current, counts_->Get(record.key));
    const int64_t count = (current ? std::stoll(*current) : 0) + 1;
    STREAMS_RETURN_IF_ERROR(counts_->Put(record.key, std::to_string(count)));
    STREAMS_RETURN_IF_ERROR(mem_->Put(record.key, record.value));
    STREAMS_RETURN_IF_ERROR(scratch_->Put(record.key, record.value));
    return context_->Forward({record.key, std::to_string(count), record.timestamp, {}});
  }
  void Close() override { ++*closed_; }

 private:
  int* closed_;
  ProcessorContext<std::string, std::string>* context_ = nullptr;
  state::KeyValueStore* counts_ = nullptr;
  state::KeyValueStore* mem_ = nullptr;
  state::KeyValueStore* scratch_ = nullptr;
};

class StreamTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "stream-task-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto resources = state::StateResources::Create({});
    ASSERT_TRUE(resources.ok()) << resources.status();
    resources_ = std::move(*resources);

    TopologyBuilder builder;
    builder.AddSource<std::string, std::string>("src", {"text", "more"}, StringSerdeInstance(),
                                                StringSerdeInstance());
    builder.AddProcessor<CountingProcessor>(
        "count", [this] { return std::make_unique<CountingProcessor>(&closed_); }, {"src"});
    builder.AddStateStore({.name = "counts"}, {"count"});
    builder.AddStateStore({.name = "mem", .kind = state::StoreKind::kInMemory}, {"count"});
    builder.AddStateStore({.name = "scratch", .logged = false}, {"count"});
    builder.AddSink<std::string, std::string>("out", "counted", StringSerdeInstance(),
                                              StringSerdeInstance(), {"count"});
    auto topology = std::move(builder).Build();
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = std::move(*topology);
  }

  void TearDown() override {
    task_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Creates (or re-creates) the task of partition 1.
  void OpenTask(bool initialize = true) {
    task_.reset();
    auto task = StreamTask::Create(*topology_, TaskId{Partition(1)},
                                   {.application_id = "app", .state_directory = dir_ + "/0_1"},
                                   resources_.get(), &collector_, &clock_);
    ASSERT_TRUE(task.ok()) << task.status();
    task_ = std::move(*task);
    if (initialize) {
      ASSERT_TRUE(task_->InitializeProcessors().ok());
    }
  }

  static ConsumedRecord Input(std::string topic, int64_t offset, int64_t ts, std::string key,
                              std::optional<std::string> value) {
    ConsumedRecord record;
    record.topic = std::move(topic);
    record.partition = Partition(1);
    record.offset = Offset(offset);
    record.timestamp = Timestamp(ts);
    record.key = std::move(key);
    record.value = std::move(value);
    return record;
  }

  // Processes, prepares and commits with the changelog offsets a broker would give.
  void ProcessAndCommit(const std::vector<ConsumedRecord>& records) {
    for (const auto& r : records) ASSERT_TRUE(task_->Process(r).ok());
    const size_t before = collector_.sent.size();
    ASSERT_TRUE(task_->PrepareCommit().ok());
    std::map<std::string, Offset> ends;
    for (size_t i = before; i < collector_.sent.size(); ++i) {
      const ProducedRecord& r = collector_.sent[i];
      if (r.topic == "app-counts-changelog") ends.insert_or_assign("counts", Offset(++counts_end_));
      if (r.topic == "app-mem-changelog") ends.insert_or_assign("mem", Offset(++mem_end_));
    }
    ASSERT_TRUE(task_->Commit(ends).ok());
  }

  std::vector<ProducedRecord> SentTo(const std::string& topic) const {
    std::vector<ProducedRecord> out;
    for (const auto& r : collector_.sent) {
      if (r.topic == topic) out.push_back(r);
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<state::StateResources> resources_;
  std::unique_ptr<Topology> topology_;
  FakeCollector collector_;
  ManualClock clock_;
  std::unique_ptr<StreamTask> task_;
  int closed_ = 0;
  int64_t counts_end_ = 0;
  int64_t mem_end_ = 0;
};

TEST_F(StreamTaskTest, InputPartitionsAreTheTaskPartitionOfEverySourceTopic) {
  OpenTask();
  EXPECT_EQ(task_->id().ToString(), "0_1");
  EXPECT_THAT(task_->input_partitions(), ElementsAre(TopicPartition{"more", Partition(1)},
                                                     TopicPartition{"text", Partition(1)}));
}

TEST_F(StreamTaskTest, RejectsRecordsOfOtherPartitionsAndTopics) {
  OpenTask();
  ConsumedRecord wrong_partition = Input("text", 0, 1, "k", "v");
  wrong_partition.partition = Partition(0);
  EXPECT_EQ(task_->Process(wrong_partition).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(task_->Process(Input("counted", 0, 1, "k", "v")).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(task_->HasUncommittedWork());
}

TEST_F(StreamTaskTest, ProcessBeforeInitializeIsRejected) {
  OpenTask(/*initialize=*/false);
  EXPECT_EQ(task_->Process(Input("text", 0, 1, "k", "v")).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(task_->InitializeProcessors().ok());
  EXPECT_EQ(task_->InitializeProcessors().code(), StatusCode::kFailedPrecondition);
}

TEST_F(StreamTaskTest, PrepareCommitSendsChangelogOfLoggedStoresToTaskPartition) {
  OpenTask();
  ASSERT_TRUE(task_->Process(Input("text", 0, 5, "a", "x")).ok());
  ASSERT_TRUE(task_->Process(Input("more", 0, 7, "b", "y")).ok());
  ASSERT_TRUE(task_->Process(Input("text", 1, 6, "a", "z")).ok());
  EXPECT_TRUE(task_->HasUncommittedWork());
  EXPECT_EQ(task_->cycle_stats().records_processed, 3u);
  ASSERT_TRUE(task_->PrepareCommit().ok());
  auto counts = SentTo("app-counts-changelog");
  ASSERT_EQ(counts.size(), 2u);  // Coalesced per key.
  EXPECT_EQ(counts[0].key, "b");
  EXPECT_EQ(counts[0].value, "1");
  EXPECT_EQ(counts[0].partition, Partition(1));
  EXPECT_EQ(counts[1].key, "a");
  EXPECT_EQ(counts[1].value, "2");
  EXPECT_EQ(counts[1].timestamp, Timestamp(7));  // The stream time of the write.
  EXPECT_EQ(SentTo("app-mem-changelog").size(), 2u);
  EXPECT_THAT(SentTo("app-scratch-changelog"), IsEmpty());
  EXPECT_EQ(task_->cycle_stats().changelog_records, 4u);
  EXPECT_EQ(SentTo("counted").size(), 3u);
}

TEST_F(StreamTaskTest, CommitRequiresPrepareAfterTheLastRecord) {
  OpenTask();
  ASSERT_TRUE(task_->Process(Input("text", 0, 5, "a", "x")).ok());
  ASSERT_TRUE(task_->PrepareCommit().ok());
  ASSERT_TRUE(task_->Process(Input("text", 1, 6, "a", "x")).ok());
  Status status = task_->Commit({});
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("after PrepareCommit"));
  ASSERT_TRUE(task_->PrepareCommit().ok());
  EXPECT_TRUE(task_->Commit({}).ok());
}

TEST_F(StreamTaskTest, CommitCheckpointsOffsetsChangelogPositionsAndStreamTime) {
  OpenTask();
  ProcessAndCommit({Input("text", 0, 5, "a", "x"), Input("text", 1, 9, "b", "x"),
                    Input("more", 3, 8, "a", "x")});
  state::Checkpoint expected;
  expected.input_offsets = {{TopicPartition{"text", Partition(1)}, Offset(2)},
                            {TopicPartition{"more", Partition(1)}, Offset(4)}};
  expected.changelog_offsets = {{"counts", Offset(2)}};  // In-memory stores have none.
  expected.stream_time = Timestamp(9);
  EXPECT_EQ(task_->committed_checkpoint(), expected);
  EXPECT_FALSE(task_->HasUncommittedWork());
  EXPECT_EQ(task_->cycle_stats().records_processed, 0u);

  // A cycle without changelog records keeps the previous changelog offsets.
  ASSERT_TRUE(task_->Process(Input("text", 2, 3, "c", "fail")).code() == StatusCode::kAborted);
  task_->Abort();
  ProcessAndCommit({});
  EXPECT_EQ(task_->committed_checkpoint().changelog_offsets.at("counts"), Offset(2));

  // Reopened from disk: the same checkpoint, and restore starts after it.
  OpenTask(/*initialize=*/false);
  EXPECT_EQ(task_->committed_checkpoint(), expected);
  EXPECT_EQ(task_->ConsumedOffsets(), expected.input_offsets);
  auto specs = task_->RestoreSpecs();
  ASSERT_EQ(specs.size(), 2u);  // "scratch" is not logged.
  EXPECT_EQ(specs[0].store, "counts");
  EXPECT_EQ(specs[0].changelog, (TopicPartition{"app-counts-changelog", Partition(1)}));
  EXPECT_EQ(specs[0].from, Offset(2));
  EXPECT_EQ(specs[1].store, "mem");
  EXPECT_EQ(specs[1].changelog, (TopicPartition{"app-mem-changelog", Partition(1)}));
  EXPECT_EQ(specs[1].from, std::nullopt);  // In memory: from the beginning.
}

TEST_F(StreamTaskTest, AbortRollsBackStatePositionsAndStreamTime) {
  OpenTask();
  ProcessAndCommit({Input("text", 0, 5, "a", "x")});
  ASSERT_TRUE(task_->Process(Input("text", 1, 50, "a", "y")).ok());
  ASSERT_TRUE(task_->Process(Input("more", 0, 60, "b", "y")).ok());
  EXPECT_THAT(StoreContents(task_->GetStore("counts")),
              ElementsAre(Pair("a", "2"), Pair("b", "1")));
  task_->Abort();
  EXPECT_FALSE(task_->HasUncommittedWork());
  EXPECT_THAT(task_->ConsumedOffsets(),
              ElementsAre(Pair(TopicPartition{"text", Partition(1)}, Offset(1))));
  EXPECT_THAT(StoreContents(task_->GetStore("counts")), ElementsAre(Pair("a", "1")));
  EXPECT_THAT(StoreContents(task_->GetStore("mem")), ElementsAre(Pair("a", "x")));
  EXPECT_EQ(task_->cycle_stats().records_processed, 0u);
  // Stream time went back to 5: the next commit checkpoints the replayed maximum.
  ProcessAndCommit({Input("text", 1, 20, "a", "y")});
  EXPECT_EQ(task_->committed_checkpoint().stream_time, Timestamp(20));
}

TEST_F(StreamTaskTest, DeadLettersUndecodableRecordsThroughTheCollector) {
  TopologyBuilder builder;
  builder.AddSource<std::string, int64_t>("numbers", {"nums"}, StringSerdeInstance(),
                                          testing::Int64SerdeInstance());
  builder.AddSink<std::string, int64_t>("out", "copy", StringSerdeInstance(),
                                        testing::Int64SerdeInstance(), {"numbers"});
  topology_ = *std::move(builder).Build();
  auto task = StreamTask::Create(
      *topology_, TaskId{Partition(1)},
      {.application_id = "app", .state_directory = dir_ + "/dlq", .dead_letter_topic = "errors"},
      resources_.get(), &collector_, &clock_);
  ASSERT_TRUE(task.ok()) << task.status();
  ASSERT_TRUE((*task)->InitializeProcessors().ok());
  ConsumedRecord bad = Input("nums", 41, 5, "k", "forty-two");
  bad.headers = {{"origin", "test"}};
  ASSERT_TRUE((*task)->Process(bad).ok());
  ASSERT_TRUE((*task)->Process(Input("nums", 42, 6, "k", "42")).ok());
  ASSERT_EQ(collector_.sent.size(), 2u);
  const ProducedRecord& dead = collector_.sent[0];
  EXPECT_EQ(dead.topic, "errors");
  EXPECT_EQ(dead.key, "k");
  EXPECT_EQ(dead.value, "forty-two");
  EXPECT_EQ(dead.timestamp, Timestamp(5));
  EXPECT_EQ(dead.headers, (Headers{{"origin", "test"},
                                   {kDlqErrorHeader, "value: not a decimal int64 on topic 'nums'"},
                                   {kDlqErrorClassHeader, "Corruption"},
                                   {kDlqTopicHeader, "nums"},
                                   {kDlqPartitionHeader, "1"},
                                   {kDlqOffsetHeader, "41"}}));
  EXPECT_EQ(collector_.sent[1].topic, "copy");
  EXPECT_EQ((*task)->cycle_stats().records_dead_lettered, 1u);
  EXPECT_EQ((*task)->cycle_stats().records_processed, 1u);
  EXPECT_THAT((*task)->ConsumedOffsets(),
              ElementsAre(Pair(TopicPartition{"nums", Partition(1)}, Offset(43))));

  // A collector failure is the task's error (the cycle must abort).
  collector_.fail_with = Status::Fenced("fenced");
  EXPECT_EQ((*task)->Process(Input("nums", 43, 7, "k", "bad")).code(), StatusCode::kFenced);
  EXPECT_EQ((*task)->Process(Input("nums", 43, 7, "k", "7")).code(), StatusCode::kFenced);
}

TEST_F(StreamTaskTest, RestoreAppliesChangelogAndAdvancesStreamTime) {
  OpenTask(/*initialize=*/false);
  ASSERT_TRUE(task_
                  ->ApplyRestoreBatch("counts",
                                      {{"counts", "a", "3", Timestamp(40)},
                                       {"counts", "b", "1", Timestamp(30)},
                                       {"counts", "b", std::nullopt, Timestamp(45)}},
                                      Offset(10))
                  .ok());
  ASSERT_TRUE(task_->ApplyRestoreBatch("mem", {{"mem", "a", "m", Timestamp(41)}}, Offset(1)).ok());
  EXPECT_EQ(task_->ApplyRestoreBatch("nope", {}, Offset(0)).code(), StatusCode::kNotFound);
  EXPECT_EQ(task_->committed_checkpoint().changelog_offsets.at("counts"), Offset(10));
  EXPECT_EQ(task_->committed_checkpoint().stream_time, Timestamp(45));
  EXPECT_FALSE(task_->HasUncommittedWork());
  ASSERT_TRUE(task_->InitializeProcessors().ok());
  EXPECT_EQ(task_->ApplyRestoreBatch("counts", {}, Offset(10)).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(task_->Process(Input("text", 0, 1, "a", "x")).ok());
  EXPECT_THAT(SentTo("counted").back().value, "4");
  // An aborted cycle does not rewind below the restored stream time.
  task_->Abort();
  ProcessAndCommit({});
  EXPECT_EQ(task_->committed_checkpoint().stream_time, Timestamp(45));
}

TEST_F(StreamTaskTest, ResetInputOffsetsAdoptsTheGroupPositions) {
  OpenTask();
  const TopicPartition text{"text", Partition(1)};
  EXPECT_EQ(task_->ResetInputOffsets({{TopicPartition{"text", Partition(0)}, Offset(3)}}).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(task_->ResetInputOffsets({{text, Offset(7)}}).ok());
  EXPECT_THAT(task_->ConsumedOffsets(), ElementsAre(Pair(text, Offset(7))));
  task_->Abort();  // Rewinds to the adopted position, not to the empty checkpoint.
  EXPECT_THAT(task_->ConsumedOffsets(), ElementsAre(Pair(text, Offset(7))));
  ASSERT_TRUE(task_->Process(Input("text", 7, 1, "a", "x")).ok());
  EXPECT_EQ(task_->ResetInputOffsets({{text, Offset(9)}}).code(), StatusCode::kFailedPrecondition);
}

TEST_F(StreamTaskTest, ProcessorErrorsNameTheNodeAndTheRecord) {
  OpenTask();
  Status status = task_->Process(Input("text", 4, 1, "a", "fail"));
  EXPECT_EQ(status.code(), StatusCode::kAborted);
  EXPECT_THAT(status.message(), HasSubstr("node 'count' failed on text-1@4: asked to fail"));
  // The failed record is not consumed.
  EXPECT_THAT(task_->ConsumedOffsets(), IsEmpty());
}

TEST_F(StreamTaskTest, RequestCommitIsClearedByCommit) {
  OpenTask();
  ASSERT_TRUE(task_->Process(Input("text", 0, 1, "a", "x")).ok());
  EXPECT_FALSE(task_->commit_requested());
  ASSERT_TRUE(task_->Process(Input("text", 1, 1, "a", "commit")).ok());
  EXPECT_TRUE(task_->commit_requested());
  ProcessAndCommit({});
  EXPECT_FALSE(task_->commit_requested());
}

TEST_F(StreamTaskTest, InitFailureNamesTheProcessor) {
  TopologyBuilder builder;
  builder.AddSource<std::string, std::string>("src", {"text"}, StringSerdeInstance(),
                                              StringSerdeInstance());
  using Failing = testing::LambdaProcessor<std::string, std::string>;
  builder.AddProcessor<Failing>("picky",
                                [] {
                                  return std::make_unique<Failing>(
                                      [](auto&) { return Status::InvalidArgument("bad config"); },
                                      [](auto&, const auto&) { return Status::Ok(); });
                                },
                                {"src"});
  topology_ = *std::move(builder).Build();
  auto task = StreamTask::Create(*topology_, TaskId{Partition(0)},
                                 {.application_id = "app", .state_directory = dir_ + "/init"},
                                 resources_.get(), &collector_, &clock_);
  ASSERT_TRUE(task.ok());
  Status status = (*task)->InitializeProcessors();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("Init of processor 'picky': bad config"));
}

TEST_F(StreamTaskTest, CloseClosesProcessorsOnceAndStopsTheTask) {
  OpenTask();
  ASSERT_TRUE(task_->Process(Input("text", 0, 1, "a", "x")).ok());
  EXPECT_THAT(task_->ApproximateStoreEntries(),
              ElementsAre(Pair("counts", _), Pair("mem", _), Pair("scratch", _)));
  ASSERT_TRUE(task_->Close(/*clean=*/false).ok());
  EXPECT_EQ(closed_, 1);
  ASSERT_TRUE(task_->Close(/*clean=*/true).ok());
  EXPECT_EQ(closed_, 1);
  EXPECT_EQ(task_->Process(Input("text", 1, 1, "a", "x")).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(task_->GetStore("counts"), nullptr);
  task_.reset();
  EXPECT_EQ(closed_, 1);
  // The unclean close dropped the staged write.
  OpenTask();
  EXPECT_THAT(StoreContents(task_->GetStore("counts")), IsEmpty());
}

TEST_F(StreamTaskTest, SecondTaskOnTheSameDirectoryFailsWithIoError) {
  OpenTask();
  auto second = StreamTask::Create(*topology_, TaskId{Partition(1)},
                                   {.application_id = "app", .state_directory = dir_ + "/0_1"},
                                   resources_.get(), &collector_, &clock_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIoError);
  EXPECT_THAT(second.status().message(), HasSubstr("task 0_1"));
}

}  // namespace
}  // namespace streams

namespace streams {
namespace {

// Forwards "<timestamp check>@<stream time>" for every record.
class TimeProbe : public Processor<std::string, std::string> {
 public:
  Status Init(ProcessorContext<std::string, std::string>& context) override {
    context_ = &context;
    return Status::Ok();
  }
  Status Process(const Record<std::string, std::string>& record) override {
    if (record.value.rfind("corrupt", 0) == 0) return Status::Corruption("stored value does not decode");
    const char* check = context_->timestamp_check() == TimestampCheck::kValid     ? "valid"
                        : context_->timestamp_check() == TimestampCheck::kInvalid ? "invalid"
                                                                                   : "ahead";
    return context_->Forward({record.key,
                              std::string(check) + "@" +
                                  (context_->has_stream_time()
                                       ? std::to_string(context_->stream_time().millis())
                                       : std::string("none")),
                              record.timestamp,
                              {}});
  }

 private:
  ProcessorContext<std::string, std::string>* context_ = nullptr;
};

class TaskTimestampTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "task-timestamp-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto resources = state::StateResources::Create({});
    ASSERT_TRUE(resources.ok()) << resources.status();
    resources_ = std::move(*resources);
  }
  void TearDown() override {
    task_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Open(TimestampPolicy policy, Redactor redactor = nullptr) {
    TopologyBuilder builder;
    builder.AddSource<std::string, std::string>("src", {"in"}, StringSerdeInstance(),
                                                StringSerdeInstance());
    builder.AddProcessor<TimeProbe>("probe", [] { return std::make_unique<TimeProbe>(); },
                                    {"src"});
    builder.AddSink<std::string, std::string>("out", "out", StringSerdeInstance(),
                                              StringSerdeInstance(), {"probe"});
    builder.SetTimestampPolicy(policy);
    if (redactor) builder.SetDeadLetterRedactor(std::move(redactor));
    auto topology = std::move(builder).Build();
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = std::move(*topology);
    auto task = StreamTask::Create(*topology_, TaskId{Partition(0)},
                                   {.application_id = "app", .state_directory = dir_ + "/0_0"},
                                   resources_.get(), &collector_, &clock_);
    ASSERT_TRUE(task.ok()) << task.status();
    task_ = std::move(*task);
    ASSERT_TRUE(task_->InitializeProcessors().ok());
  }

  std::string Process(int64_t offset, int64_t ts, std::string value = "x") {
    ConsumedRecord r;
    r.topic = "in";
    r.offset = Offset(offset);
    r.timestamp = Timestamp(ts);
    r.key = "k";
    r.value = std::move(value);
    const size_t before = collector_.sent.size();
    Status status = task_->Process(r);
    if (!status.ok()) return status.ToString();
    return collector_.sent.size() > before ? collector_.sent.back().value.value_or("") : "";
  }

  std::string dir_;
  std::unique_ptr<state::StateResources> resources_;
  FakeCollector collector_;
  ManualClock clock_;
  std::unique_ptr<Topology> topology_;
  std::unique_ptr<StreamTask> task_;
};

TEST_F(TaskTimestampTest, NegativeAndAbsurdTimestampsAreInvalidAndDoNotMoveStreamTime) {
  Open({});
  EXPECT_EQ(Process(0, -1), "invalid@none");
  EXPECT_EQ(Process(1, 1000), "valid@1000");
  EXPECT_EQ(Process(2, -1), "invalid@1000");
  // Microseconds in a millisecond field: after 9999-12-31.
  EXPECT_EQ(Process(3, 1764000000000000), "invalid@1000");
  EXPECT_EQ(Process(4, kMaxValidTimestampMillis), "valid@" + std::to_string(kMaxValidTimestampMillis));
  EXPECT_EQ(task_->stream_time(), Timestamp(kMaxValidTimestampMillis));
}

TEST_F(TaskTimestampTest, RecordsBeyondTheLeadDoNotMoveStreamTime) {
  Open({.max_lead = std::chrono::milliseconds(100)});
  EXPECT_EQ(Process(0, 5000), "valid@5000");
  EXPECT_EQ(Process(1, 5100), "valid@5100");  // Exactly the lead: fine.
  EXPECT_EQ(Process(2, 5201), "ahead@5100");
  EXPECT_EQ(Process(3, 5150), "valid@5150");
  EXPECT_EQ(task_->stream_time(), Timestamp(5150));
}

TEST_F(TaskTimestampTest, TheClockIsAReferenceSoAnIdleGapDoesNotStopThePartition) {
  Open({.max_lead = std::chrono::milliseconds(100)});
  EXPECT_EQ(Process(0, 5000), "valid@5000");
  // Hours later (the partition was idle): ahead of stream time, not of the clock.
  clock_.Set(Timestamp(5000 + 3600000));
  EXPECT_EQ(Process(1, 5000 + 3600000 + 50), "valid@3605050");
  EXPECT_EQ(Process(2, 5000 + 3600000 + 500), "ahead@3605050");
}

TEST_F(TaskTimestampTest, AdoptedStreamTimeOnlyRaisesAndIsWhatAbortRewindsTo) {
  Open({});
  ASSERT_TRUE(task_->AdoptCommittedStreamTime(Timestamp(9000)).ok());
  ASSERT_TRUE(task_->AdoptCommittedStreamTime(Timestamp(4000)).ok());
  EXPECT_EQ(task_->stream_time(), Timestamp(9000));
  EXPECT_EQ(Process(0, 2000), "valid@9000");
  task_->Abort();
  EXPECT_EQ(task_->stream_time(), Timestamp(9000));
  EXPECT_EQ(Process(0, 9500), "valid@9500");
  // Not with uncommitted work.
  EXPECT_EQ(task_->AdoptCommittedStreamTime(Timestamp(20000)).code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(TaskTimestampTest, DeadLetterRecordIsRedactedAndMovesThePosition) {
  Open({}, [](std::string_view bytes) {
    std::string out(bytes);
    for (char& c : out) {
      if (c >= '0' && c <= '9') c = '*';
    }
    return out;
  });
  ConsumedRecord r;
  r.topic = "in";
  r.offset = Offset(7);
  r.timestamp = Timestamp(1234);
  r.key = "card 4111";
  r.value = "corrupt 4111111111111111";
  r.headers = {{"trace", "id-42"}};
  Status failed = task_->Process(r);
  EXPECT_EQ(failed.code(), StatusCode::kCorruption);
  task_->Abort();
  ASSERT_TRUE(task_->DeadLetterRecord(r, failed).ok());
  ASSERT_EQ(collector_.sent.size(), 1u);
  const ProducedRecord& dead = collector_.sent[0];
  EXPECT_EQ(dead.topic, "in.dlq");
  EXPECT_EQ(dead.key, "card ****");
  EXPECT_EQ(dead.value, "corrupt ****************");
  std::map<std::string, std::string> headers;
  for (const Header& h : dead.headers) headers[h.key] = h.value;
  EXPECT_EQ(headers["trace"], "id-**");
  EXPECT_EQ(headers[kDlqErrorClassHeader], "Corruption");
  EXPECT_EQ(headers[kDlqOffsetHeader], "7");
  EXPECT_EQ(task_->ConsumedOffsets().at(TopicPartition{"in", Partition(0)}), Offset(8));
  EXPECT_FALSE(task_->stream_time().has_value());
  ConsumedRecord other = r;
  other.topic = "elsewhere";
  EXPECT_EQ(task_->DeadLetterRecord(other, failed).code(), StatusCode::kInvalidArgument);
}

TEST_F(TaskTimestampTest, NonPositiveMaxLeadIsRejectedByBuild) {
  TopologyBuilder builder;
  builder.AddSource<std::string, std::string>("src", {"in"}, StringSerdeInstance(),
                                              StringSerdeInstance());
  builder.AddSink<std::string, std::string>("out", "out", StringSerdeInstance(),
                                            StringSerdeInstance(), {"src"});
  builder.SetTimestampPolicy({.max_lead = std::chrono::milliseconds(0)});
  auto topology = std::move(builder).Build();
  EXPECT_EQ(topology.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(topology.status().message(), HasSubstr("max_lead must be positive"));
}

}  // namespace
}  // namespace streams
