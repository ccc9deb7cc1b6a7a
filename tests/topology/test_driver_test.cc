#include "streams/test_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "payments/v1/payments.pb.h"
#include "streams/stream_task.h"
#include "streams/topology.h"
#include "topology_test_util.h"

namespace streams {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::LambdaProcessor;
using ::testing::Pair;
using testing::StoreContents;
using ::testing::UnorderedElementsAre;

using namespace std::chrono_literals;

using StringProcessor = LambdaProcessor<std::string, std::string>;

// Splits a line into words, keyed by word. A word "boom" fails the record.
class SplitProcessor : public Processor<std::string, std::string> {
 public:
  Status Init(ProcessorContext<std::string, std::string>& context) override {
    context_ = &context;
    return Status::Ok();
  }
  Status Process(const Record<std::string, std::string>& record) override {
    std::istringstream words(record.value);
    std::string word;
    while (words >> word) {
      if (word == "boom") return Status::Internal("boom in the input");
      STREAMS_RETURN_IF_ERROR(context_->Forward({word, word, record.timestamp, record.headers}));
    }
    return Status::Ok();
  }

 private:
  ProcessorContext<std::string, std::string>* context_ = nullptr;
};

// Counts words in the store "counts" (decimal text) and forwards the new count.
class CountProcessor : public Processor<std::string, std::string, std::string, int64_t> {
 public:
  Status Init(ProcessorContext<std::string, int64_t>& context) override {
    context_ = &context;
    store_ = context.GetStateStore("counts");
    if (store_ == nullptr) return Status::FailedPrecondition("store 'counts' is not connected");
    return Status::Ok();
  }
  Status Process(const Record<std::string, std::string>& record) override {
    STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> current, store_->Get(record.key));
    const int64_t count = (current ? std::stoll(*current) : 0) + 1;
    STREAMS_RETURN_IF_ERROR(store_->Put(record.key, std::to_string(count)));
    return context_->Forward({record.key, count, record.timestamp, record.headers});
  }

 private:
  ProcessorContext<std::string, int64_t>* context_ = nullptr;
  state::KeyValueStore* store_ = nullptr;
};

std::unique_ptr<Topology> WordCountTopology(state::StoreKind kind = state::StoreKind::kPersistent) {
  TopologyBuilder builder;
  builder.AddSource<std::string, std::string>("lines", {"text"}, StringSerdeInstance(),
                                              StringSerdeInstance());
  builder.AddProcessor<SplitProcessor>("split", [] { return std::make_unique<SplitProcessor>(); },
                                       {"lines"});
  builder.AddProcessor<CountProcessor>("count", [] { return std::make_unique<CountProcessor>(); },
                                       {"split"});
  builder.AddStateStore({.name = "counts", .kind = kind}, {"count"});
  builder.AddSink<std::string, int64_t>("out", "counts-out", StringSerdeInstance(),
                                        testing::Int64SerdeInstance(), {"count"});
  auto topology = std::move(builder).Build();
  EXPECT_TRUE(topology.ok()) << topology.status();
  return topology.ok() ? std::move(*topology) : nullptr;
}

// (key, value) of records, for compact assertions.
std::vector<std::pair<std::string, std::string>> KeyValues(const std::vector<TestRecord>& records) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const TestRecord& r : records) {
    out.emplace_back(r.key.value_or("<null>"), r.value.value_or("<null>"));
  }
  return out;
}

// Everything about a record but its offset (offsets may differ between runs).
std::vector<std::string> Fingerprints(const std::vector<TestRecord>& records) {
  std::vector<std::string> out;
  for (const TestRecord& r : records) {
    out.push_back(r.topic + "/" + std::to_string(r.partition.value()) + "@" +
                  std::to_string(r.timestamp.millis()) + " " + r.key.value_or("<null>") + "=" +
                  r.value.value_or("<null>"));
  }
  return out;
}

class TopologyTestDriverTest : public ::testing::Test {
 protected:
  std::unique_ptr<TopologyTestDriver> MakeDriver(const Topology& topology,
                                                 TestDriverOptions options = {}) {
    auto driver = TopologyTestDriver::Create(topology, std::move(options));
    EXPECT_TRUE(driver.ok()) << driver.status();
    return driver.ok() ? std::move(*driver) : nullptr;
  }

  static Status Pipe(TopologyTestDriver& driver, const std::string& key, const std::string& line,
                     int64_t ts, const std::string& topic = "text") {
    return driver.PipeInput(topic, key, line, Timestamp(ts));
  }
};

TEST_F(TopologyTestDriverTest, CountsWordsIntoOutputsAndStore) {
  auto topology = WordCountTopology();
  auto driver = MakeDriver(*topology);
  ASSERT_TRUE(Pipe(*driver, "l1", "a b a", 10).ok());
  ASSERT_TRUE(Pipe(*driver, "l2", "b c", 20).ok());
  EXPECT_THAT(
      KeyValues(driver->ReadOutput("counts-out")),
      ElementsAre(Pair("a", "1"), Pair("b", "1"), Pair("a", "2"), Pair("b", "2"), Pair("c", "1")));
  EXPECT_THAT(driver->ReadOutput("counts-out"), IsEmpty());  // Reading consumes.
  EXPECT_EQ(driver->AllRecords("counts-out").size(), 5u);
  EXPECT_THAT(StoreContents(driver->GetStore("counts")),
              UnorderedElementsAre(Pair("a", "2"), Pair("b", "2"), Pair("c", "1")));
  EXPECT_THAT(driver->CommittedOffsets(),
              ElementsAre(Pair(TopicPartition{"text", Partition(0)}, Offset(2))));
  const auto outputs = driver->AllRecords("counts-out");
  EXPECT_EQ(outputs[4].timestamp, Timestamp(20));
  EXPECT_EQ(outputs[4].offset, Offset(4));
  EXPECT_EQ(driver->GetStore("no-such-store"), nullptr);
}

TEST_F(TopologyTestDriverTest, WritesChangelogOfEveryCommit) {
  auto topology = WordCountTopology();
  auto driver = MakeDriver(*topology, {.application_id = "wc"});
  ASSERT_TRUE(Pipe(*driver, "l1", "a b a", 10).ok());  // One cycle: "a" coalesced to 2.
  ASSERT_TRUE(Pipe(*driver, "l2", "a", 30).ok());
  const auto changelog = driver->AllRecords("wc-counts-changelog");
  EXPECT_THAT(KeyValues(changelog), ElementsAre(Pair("b", "1"), Pair("a", "2"), Pair("a", "3")));
  ASSERT_EQ(changelog.size(), 3u);
  EXPECT_EQ(changelog[0].partition, Partition(0));
  EXPECT_EQ(changelog[2].timestamp, Timestamp(30));
  EXPECT_EQ(changelog[2].offset, Offset(2));
}

TEST_F(TopologyTestDriverTest, RejectsUnknownTopicAndPartition) {
  auto topology = WordCountTopology();
  auto driver = MakeDriver(*topology, {.default_partitions = 2});
  EXPECT_EQ(driver->PipeInput("nope", "k", "v", Timestamp(1)).code(), StatusCode::kNotFound);
  EXPECT_EQ(driver->PipeInput("text", "k", "v", Timestamp(1), {}, Partition(2)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(driver->GetStore("counts", Partition(5)), nullptr);
}

TEST_F(TopologyTestDriverTest, RejectsBadOptions) {
  auto topology = WordCountTopology();
  EXPECT_EQ(TopologyTestDriver::Create(*topology, {.application_id = ""}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TopologyTestDriver::Create(*topology, {.default_partitions = 0}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(TopologyTestDriverTest, PartitionsByKeyAcrossTasks) {
  auto topology = WordCountTopology();
  auto driver = MakeDriver(*topology, {.default_partitions = 3});
  std::map<int32_t, int> lines_per_partition;
  for (int i = 0; i < 12; ++i) {
    const std::string key = "line-" + std::to_string(i);
    ASSERT_TRUE(Pipe(*driver, key, "w", i).ok());
    ++lines_per_partition[DefaultPartitionForKey(key, 3).value()];
  }
  int64_t total = 0;
  for (int32_t p = 0; p < 3; ++p) {
    auto contents = StoreContents(driver->GetStore("counts", Partition(p)));
    const int expected = lines_per_partition[p];
    if (expected == 0) {
      EXPECT_THAT(contents, IsEmpty());
    } else {
      EXPECT_THAT(contents, ElementsAre(Pair("w", std::to_string(expected))));
    }
    total += expected;
    auto committed = driver->CommittedOffsets();
    auto it = committed.find(TopicPartition{"text", Partition(p)});
    if (expected > 0) {
      ASSERT_NE(it, committed.end());
      EXPECT_EQ(it->second, Offset(expected));
    }
  }
  EXPECT_EQ(total, 12);
  // Outputs are partitioned by their key ("w") and changelogs by task.
  for (const TestRecord& r : driver->AllRecords("counts-out")) {
    EXPECT_EQ(r.partition, DefaultPartitionForKey("w", 3));
  }
  // Each task logs its own store to its own changelog partition (one write per cycle).
  std::map<int32_t, std::vector<std::string>> changelog_values;
  for (const TestRecord& r : driver->AllRecords("test-app-counts-changelog")) {
    EXPECT_EQ(r.key, "w");
    changelog_values[r.partition.value()].push_back(r.value.value_or("<null>"));
  }
  for (int32_t p = 0; p < 3; ++p) {
    std::vector<std::string> expected;
    for (int i = 1; i <= lines_per_partition[p]; ++i) expected.push_back(std::to_string(i));
    EXPECT_EQ(changelog_values[p], expected) << "partition " << p;
  }
}

TEST_F(TopologyTestDriverTest, AbortDropsOutputsAndRollsBackState) {
  auto topology = WordCountTopology();
  auto driver = MakeDriver(*topology, {.auto_commit = false});
  ASSERT_TRUE(Pipe(*driver, "l1", "a b", 10).ok());
  ASSERT_TRUE(driver->Commit().ok());
  EXPECT_THAT(KeyValues(driver->ReadOutput("counts-out")),
              ElementsAre(Pair("a", "1"), Pair("b", "1")));

  ASSERT_TRUE(Pipe(*driver, "l2", "a c", 20).ok());
  // Staged: visible to the task's own reads, invisible to read_committed readers.
  EXPECT_THAT(StoreContents(driver->GetStore("counts")),
              UnorderedElementsAre(Pair("a", "2"), Pair("b", "1"), Pair("c", "1")));
  EXPECT_THAT(driver->ReadOutput("counts-out"), IsEmpty());

  ASSERT_TRUE(driver->Abort().ok());
  EXPECT_THAT(StoreContents(driver->GetStore("counts")),
              UnorderedElementsAre(Pair("a", "1"), Pair("b", "1")));
  EXPECT_THAT(driver->ReadOutput("counts-out"), IsEmpty());
  EXPECT_EQ(driver->AllRecords("test-app-counts-changelog").size(), 2u);
  EXPECT_THAT(driver->CommittedOffsets(),
              ElementsAre(Pair(TopicPartition{"text", Partition(0)}, Offset(1))));

  // The aborted record is read again (from the committed offset) before the next one.
  ASSERT_TRUE(Pipe(*driver, "l3", "c", 30).ok());
  ASSERT_TRUE(driver->Commit().ok());
  EXPECT_THAT(KeyValues(driver->ReadOutput("counts-out")),
              ElementsAre(Pair("a", "2"), Pair("c", "1"), Pair("c", "2")));
  EXPECT_THAT(StoreContents(driver->GetStore("counts")),
              UnorderedElementsAre(Pair("a", "2"), Pair("b", "1"), Pair("c", "2")));
}

TEST_F(TopologyTestDriverTest, ProcessingErrorAbortsTheCycle) {
  auto topology = WordCountTopology();
  auto driver = MakeDriver(*topology);
  ASSERT_TRUE(Pipe(*driver, "l1", "a", 10).ok());
  Status status = Pipe(*driver, "l2", "a boom", 20);
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("node 'split' failed on text-0@1"));
  EXPECT_THAT(status.message(), HasSubstr("boom in the input"));
  // "a" of the failed record was counted, then rolled back with the cycle.
  EXPECT_THAT(StoreContents(driver->GetStore("counts")), ElementsAre(Pair("a", "1")));
  EXPECT_THAT(KeyValues(driver->AllRecords("counts-out")), ElementsAre(Pair("a", "1")));
  EXPECT_THAT(driver->CommittedOffsets(),
              ElementsAre(Pair(TopicPartition{"text", Partition(0)}, Offset(1))));
}

// Runs the same script with an optional crash in the middle; returns the driver.
struct ScriptResult {
  std::vector<std::string> outputs;
  std::vector<std::string> changelog;
  std::map<int32_t, std::map<std::string, std::string>> stores;
  // Store contents right after the crash, with the re-processed cycle aborted:
  // what the restarted task holds as committed state.
  std::map<int32_t, std::map<std::string, std::string>> after_crash;
};

// With `inspect`, the cycle re-processed after the crash is aborted to look at
// the committed state, and re-processed again with the third cycle (so the
// changelog coalesces differently from a run without crash).
ScriptResult RunScript(const Topology& topology, std::optional<CrashPoint> crash,
                       bool inspect = true) {
  ScriptResult result;
  auto created = TopologyTestDriver::Create(
      topology, {.application_id = "wc", .default_partitions = 2, .auto_commit = false});
  EXPECT_TRUE(created.ok()) << created.status();
  if (!created.ok()) return result;
  TopologyTestDriver& driver = **created;
  auto pipe = [&](const std::string& key, const std::string& line, int64_t ts) {
    EXPECT_TRUE(driver.PipeInput("text", key, line, Timestamp(ts)).ok());
  };
  auto snapshot = [&] {
    std::map<int32_t, std::map<std::string, std::string>> stores;
    for (int32_t p = 0; p < 2; ++p)
      stores[p] = StoreContents(driver.GetStore("counts", Partition(p)));
    return stores;
  };
  pipe("k1", "a b", 10);
  pipe("k2", "b c", 11);
  pipe("k3", "a", 12);
  EXPECT_TRUE(driver.Commit().ok());
  pipe("k1", "a a", 20);
  pipe("k4", "c d", 21);
  pipe("k2", "d", 22);
  if (crash) {
    EXPECT_TRUE(driver.SimulateCrash(*crash).ok());
    if (inspect) {
      EXPECT_TRUE(driver.Abort().ok());
      result.after_crash = snapshot();
    }
  }
  EXPECT_TRUE(driver.Commit().ok());
  pipe("k5", "d e", 30);
  pipe("k1", "a", 31);
  EXPECT_TRUE(driver.Commit().ok());
  result.outputs = Fingerprints(driver.AllRecords("counts-out"));
  result.changelog = Fingerprints(driver.AllRecords("wc-counts-changelog"));
  result.stores = snapshot();
  return result;
}

// The state of a run without crash after its first commit / its second commit.
std::map<int32_t, std::map<std::string, std::string>> StateAfterCommits(const Topology& topology,
                                                                        int commits) {
  auto driver = *TopologyTestDriver::Create(
      topology, {.application_id = "wc", .default_partitions = 2, .auto_commit = false});
  const std::vector<std::vector<std::pair<std::string, std::string>>> cycles = {
      {{"k1", "a b"}, {"k2", "b c"}, {"k3", "a"}}, {{"k1", "a a"}, {"k4", "c d"}, {"k2", "d"}}};
  int64_t ts = 10;
  for (int c = 0; c < commits; ++c) {
    for (const auto& [key, line] : cycles[c]) {
      EXPECT_TRUE(driver->PipeInput("text", key, line, Timestamp(ts++)).ok());
    }
    EXPECT_TRUE(driver->Commit().ok());
  }
  std::map<int32_t, std::map<std::string, std::string>> stores;
  for (int32_t p = 0; p < 2; ++p)
    stores[p] = StoreContents(driver->GetStore("counts", Partition(p)));
  return stores;
}

TEST_F(TopologyTestDriverTest, CrashBeforeCommitRestoresLastCommitAndReprocesses) {
  auto topology = WordCountTopology();
  const ScriptResult reference = RunScript(*topology, std::nullopt);
  const ScriptResult crashed = RunScript(*topology, CrashPoint::kBeforeCommit);
  EXPECT_EQ(crashed.after_crash, StateAfterCommits(*topology, 1));
  EXPECT_EQ(crashed.outputs, reference.outputs);
  EXPECT_EQ(crashed.stores, reference.stores);
  EXPECT_FALSE(reference.outputs.empty());
  const ScriptResult uninspected =
      RunScript(*topology, CrashPoint::kBeforeCommit, /*inspect=*/false);
  EXPECT_EQ(uninspected.outputs, reference.outputs);
  EXPECT_EQ(uninspected.changelog, reference.changelog);
  EXPECT_EQ(uninspected.stores, reference.stores);
}

TEST_F(TopologyTestDriverTest, CrashAfterKafkaCommitRestoresFromChangelog) {
  auto topology = WordCountTopology();
  const ScriptResult reference = RunScript(*topology, std::nullopt);
  const ScriptResult crashed = RunScript(*topology, CrashPoint::kAfterKafkaCommit);
  // The Kafka transaction of the second cycle committed; the local store was
  // behind and was repaired from the changelog.
  EXPECT_EQ(crashed.after_crash, StateAfterCommits(*topology, 2));
  EXPECT_NE(crashed.after_crash, StateAfterCommits(*topology, 1));
  EXPECT_EQ(crashed.outputs, reference.outputs);
  EXPECT_EQ(crashed.changelog, reference.changelog);
  EXPECT_EQ(crashed.stores, reference.stores);
}

TEST_F(TopologyTestDriverTest, InMemoryStoreIsRebuiltFromChangelogAfterCrash) {
  auto topology = WordCountTopology(state::StoreKind::kInMemory);
  const ScriptResult reference = RunScript(*topology, std::nullopt);
  for (CrashPoint point : {CrashPoint::kBeforeCommit, CrashPoint::kAfterKafkaCommit}) {
    const ScriptResult crashed = RunScript(*topology, point);
    EXPECT_EQ(crashed.after_crash,
              StateAfterCommits(*topology, point == CrashPoint::kBeforeCommit ? 1 : 2));
    EXPECT_EQ(crashed.outputs, reference.outputs);
    EXPECT_EQ(crashed.stores, reference.stores);
  }
}

TEST_F(TopologyTestDriverTest, CrashWithAutoCommitLosesNothing) {
  auto topology = WordCountTopology();
  auto driver = MakeDriver(*topology);
  ASSERT_TRUE(Pipe(*driver, "l1", "x y", 1).ok());
  ASSERT_TRUE(driver->SimulateCrash(CrashPoint::kBeforeCommit).ok());
  ASSERT_TRUE(Pipe(*driver, "l2", "x", 2).ok());
  EXPECT_THAT(StoreContents(driver->GetStore("counts")),
              UnorderedElementsAre(Pair("x", "2"), Pair("y", "1")));
  EXPECT_EQ(driver->AllRecords("counts-out").size(), 3u);
}

TEST_F(TopologyTestDriverTest, UserStateDirectoryIsKept) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("topology-driver-test-" +
                            std::to_string(::testing::UnitTest::GetInstance()->random_seed())))
                              .string();
  std::filesystem::remove_all(dir);
  auto topology = WordCountTopology();
  {
    auto driver = MakeDriver(*topology, {.application_id = "keep", .state_directory = dir});
    ASSERT_TRUE(Pipe(*driver, "l1", "a", 1).ok());
  }
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir) / "keep" / "0_0"));
  std::filesystem::remove_all(dir);
}

// --- Dead letters.

using payments::v1::PaymentRequest;
using AmountProcessor = LambdaProcessor<std::string, PaymentRequest, std::string, int64_t>;

std::unique_ptr<Topology> AmountsTopology() {
  TopologyBuilder builder;
  builder.AddSource<std::string, PaymentRequest>("requests", {"payments.requests"},
                                                 StringSerdeInstance(),
                                                 ProtobufSerdeInstance<PaymentRequest>());
  builder.AddProcessor<AmountProcessor>(
      "amount",
      [] {
        return std::make_unique<AmountProcessor>(nullptr, [](auto& ctx, const auto& r) {
          return ctx.Forward({r.value.customer_id(), r.value.amount_minor(), r.timestamp, {}});
        });
      },
      {"requests"});
  builder.AddSink<std::string, int64_t>("out", "amounts", StringSerdeInstance(),
                                        testing::Int64SerdeInstance(), {"amount"});
  return *std::move(builder).Build();
}

std::string Request(const std::string& customer, int64_t amount) {
  PaymentRequest request;
  request.set_customer_id(customer);
  request.set_amount_minor(amount);
  return request.SerializeAsString();
}

TEST_F(TopologyTestDriverTest, RoutesUndecodableRecordsToDeadLetterTopicAndContinues) {
  auto topology = AmountsTopology();
  auto driver = MakeDriver(*topology);
  ASSERT_TRUE(driver->PipeInput("payments.requests", "c1", Request("c1", 500), Timestamp(1)).ok());
  ASSERT_TRUE(driver
                  ->PipeInput("payments.requests", "c2", std::string("\xff\xff\xff"), Timestamp(2),
                              {{"trace-id", "t-9"}})
                  .ok());
  ASSERT_TRUE(driver->PipeInput("payments.requests", "c3", std::nullopt, Timestamp(3)).ok());
  ASSERT_TRUE(driver->PipeInput("payments.requests", "c4", Request("c4", 700), Timestamp(4)).ok());

  EXPECT_THAT(KeyValues(driver->ReadOutput("amounts")),
              ElementsAre(Pair("c1", "500"), Pair("c4", "700")));
  const auto dead = driver->ReadOutput("payments.requests.dlq");
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].key, "c2");
  EXPECT_EQ(dead[0].value, std::string("\xff\xff\xff"));
  EXPECT_EQ(dead[0].timestamp, Timestamp(2));
  EXPECT_EQ(FindHeader(dead[0].headers, "trace-id"), "t-9");
  EXPECT_EQ(dead[0].headers.front(), (Header{"trace-id", "t-9"}));
  EXPECT_THAT(std::string(FindHeader(dead[0].headers, kDlqErrorHeader).value_or("")),
              HasSubstr("on topic 'payments.requests' is not a valid payments.v1.PaymentRequest"));
  EXPECT_EQ(FindHeader(dead[0].headers, kDlqTopicHeader), "payments.requests");
  EXPECT_EQ(FindHeader(dead[0].headers, kDlqPartitionHeader), "0");
  EXPECT_EQ(FindHeader(dead[0].headers, kDlqOffsetHeader), "1");
  EXPECT_EQ(dead[1].key, "c3");
  EXPECT_EQ(dead[1].value, std::nullopt);
  EXPECT_THAT(std::string(FindHeader(dead[1].headers, kDlqErrorHeader).value_or("")),
              HasSubstr("null payload"));
  EXPECT_EQ(FindHeader(dead[1].headers, kDlqOffsetHeader), "2");
  EXPECT_THAT(driver->CommittedOffsets(),
              ElementsAre(Pair(TopicPartition{"payments.requests", Partition(0)}, Offset(4))));
}

TEST_F(TopologyTestDriverTest, UsesConfiguredDeadLetterTopic) {
  auto topology = AmountsTopology();
  auto driver = MakeDriver(*topology, {.dead_letter_topic = "all.dlq"});
  ASSERT_TRUE(
      driver->PipeInput("payments.requests", "c", std::string("\x0a\x05"), Timestamp(1)).ok());
  EXPECT_EQ(driver->AllRecords("all.dlq").size(), 1u);
  EXPECT_THAT(driver->AllRecords("payments.requests.dlq"), IsEmpty());
}

TEST_F(TopologyTestDriverTest, DeadLettersOfAnAbortedCycleAreDropped) {
  auto topology = AmountsTopology();
  auto driver = MakeDriver(*topology, {.auto_commit = false});
  ASSERT_TRUE(driver->PipeInput("payments.requests", "c", std::string("\xff"), Timestamp(1)).ok());
  ASSERT_TRUE(driver->Abort().ok());
  EXPECT_THAT(driver->AllRecords("payments.requests.dlq"), IsEmpty());
  ASSERT_TRUE(driver->Commit().ok());
  EXPECT_THAT(driver->AllRecords("payments.requests.dlq"), IsEmpty());
}

// --- Punctuation.

// Schedules a punctuation in Init and forwards ("tick", "<time> meta=<...> ts=<...>").
std::unique_ptr<Topology> TickerTopology(PunctuationType type, std::chrono::milliseconds interval) {
  TopologyBuilder builder;
  builder.AddSource<std::string, std::string>("in", {"events"}, StringSerdeInstance(),
                                              StringSerdeInstance());
  builder.AddProcessor<StringProcessor>(
      "ticker",
      [type, interval] {
        return std::make_unique<StringProcessor>(
            [type, interval](StringProcessor::Context& ctx) -> Status {
              auto id = ctx.Schedule(interval, type, [&ctx](Timestamp t) {
                const std::string value = std::to_string(t.millis()) +
                                          (ctx.record_metadata() ? " meta=set" : " meta=none") +
                                          " ts=" + std::to_string(ctx.timestamp().millis()) +
                                          " headers=" + std::to_string(ctx.headers().size());
                return ctx.Forward({"tick", value, t, {}});
              });
              return id.ok() ? Status::Ok() : id.status();
            },
            [](StringProcessor::Context&, const auto&) { return Status::Ok(); });
      },
      {"in"});
  builder.AddSink<std::string, std::string>("out", "ticks", StringSerdeInstance(),
                                            StringSerdeInstance(), {"ticker"});
  return *std::move(builder).Build();
}

std::vector<std::string> Values(const std::vector<TestRecord>& records) {
  std::vector<std::string> out;
  for (const TestRecord& r : records) out.push_back(r.value.value_or("<null>"));
  return out;
}

TEST_F(TopologyTestDriverTest, StreamTimePunctuationFollowsRecordTimestamps) {
  auto topology = TickerTopology(PunctuationType::kStreamTime, 10ms);
  auto driver = MakeDriver(*topology);
  for (int64_t ts : {5, 12, 13, 35, 30, 40, 41}) {
    ASSERT_TRUE(driver->PipeInput("events", "k", "v", Timestamp(ts), {{"h", "1"}}).ok());
  }
  // 12 passes 10; 35 passes 20 and 30 (one call); 30 is late (stream time stays
  // 35); 40 reaches 40.
  EXPECT_THAT(Values(driver->ReadOutput("ticks")),
              ElementsAre("12 meta=none ts=12 headers=0", "35 meta=none ts=35 headers=0",
                          "40 meta=none ts=40 headers=0"));
  // The wall clock does not fire stream-time punctuations.
  ASSERT_TRUE(driver->AdvanceWallClockTime(1h).ok());
  EXPECT_THAT(driver->ReadOutput("ticks"), IsEmpty());
}

TEST_F(TopologyTestDriverTest, StreamTimePunctuationReplaysDeterministicallyAfterAbort) {
  auto topology = TickerTopology(PunctuationType::kStreamTime, 10ms);
  auto reference = MakeDriver(*topology);
  for (int64_t ts : {5, 12, 13, 35, 40}) {
    ASSERT_TRUE(reference->PipeInput("events", "k", "v", Timestamp(ts)).ok());
  }
  auto driver = MakeDriver(*topology, {.auto_commit = false});
  for (int64_t ts : {5, 12}) ASSERT_TRUE(driver->PipeInput("events", "k", "v", Timestamp(ts)).ok());
  ASSERT_TRUE(driver->Commit().ok());
  for (int64_t ts : {13, 35})
    ASSERT_TRUE(driver->PipeInput("events", "k", "v", Timestamp(ts)).ok());
  ASSERT_TRUE(driver->Abort().ok());  // The tick at 35 is dropped and must fire again.
  ASSERT_TRUE(driver->PipeInput("events", "k", "v", Timestamp(40)).ok());
  ASSERT_TRUE(driver->Commit().ok());
  EXPECT_EQ(Values(driver->AllRecords("ticks")), Values(reference->AllRecords("ticks")));
  EXPECT_THAT(Values(driver->AllRecords("ticks")),
              ElementsAre("12 meta=none ts=12 headers=0", "35 meta=none ts=35 headers=0",
                          "40 meta=none ts=40 headers=0"));
}

TEST_F(TopologyTestDriverTest, StreamTimePunctuationResumesAfterCrash) {
  auto topology = TickerTopology(PunctuationType::kStreamTime, 10ms);
  auto driver = MakeDriver(*topology, {.auto_commit = false});
  for (int64_t ts : {5, 12, 13}) {
    ASSERT_TRUE(driver->PipeInput("events", "k", "v", Timestamp(ts)).ok());
  }
  ASSERT_TRUE(driver->Commit().ok());
  ASSERT_TRUE(driver->PipeInput("events", "k", "v", Timestamp(25)).ok());
  ASSERT_TRUE(driver->SimulateCrash(CrashPoint::kBeforeCommit).ok());
  ASSERT_TRUE(driver->Commit().ok());
  // Stream time 13 came back from the checkpoint: 20 is the next multiple and
  // the re-processed record at 25 fires it once, as in the first attempt.
  EXPECT_THAT(Values(driver->AllRecords("ticks")),
              ElementsAre("12 meta=none ts=12 headers=0", "25 meta=none ts=25 headers=0"));
}

TEST_F(TopologyTestDriverTest, WallClockPunctuationFollowsManualClock) {
  auto topology = TickerTopology(PunctuationType::kWallClockTime, 1000ms);
  auto driver = MakeDriver(*topology, {.initial_wall_clock = Timestamp(50000)});
  ASSERT_TRUE(driver->PipeInput("events", "k", "v", Timestamp(1)).ok());  // Creates the task.
  ASSERT_TRUE(driver->AdvanceWallClockTime(999ms).ok());
  EXPECT_THAT(driver->ReadOutput("ticks"), IsEmpty());
  ASSERT_TRUE(driver->AdvanceWallClockTime(1ms).ok());
  EXPECT_THAT(Values(driver->ReadOutput("ticks")),
              ElementsAre("51000 meta=none ts=51000 headers=0"));
  ASSERT_TRUE(driver->AdvanceWallClockTime(2500ms).ok());  // Missed ticks are coalesced.
  EXPECT_THAT(Values(driver->ReadOutput("ticks")),
              ElementsAre("53500 meta=none ts=53500 headers=0"));
  ASSERT_TRUE(driver->AdvanceWallClockTime(400ms).ok());  // Next one is due at 54000.
  EXPECT_THAT(Values(driver->ReadOutput("ticks")), IsEmpty());
  ASSERT_TRUE(driver->AdvanceWallClockTime(100ms).ok());
  EXPECT_THAT(Values(driver->ReadOutput("ticks")),
              ElementsAre("54000 meta=none ts=54000 headers=0"));
  // Records do not fire wall-clock punctuations.
  ASSERT_TRUE(driver->PipeInput("events", "k", "v", Timestamp(999999999)).ok());
  EXPECT_THAT(driver->ReadOutput("ticks"), IsEmpty());
}

TEST_F(TopologyTestDriverTest, CancelledPunctuationStopsFiring) {
  TopologyBuilder builder;
  builder.AddSource<std::string, std::string>("in", {"events"}, StringSerdeInstance(),
                                              StringSerdeInstance());
  builder.AddProcessor<StringProcessor>(
      "p",
      [] {
        auto id = std::make_shared<std::optional<PunctuationId>>();
        return std::make_unique<StringProcessor>(
            [id](StringProcessor::Context& ctx) -> Status {
              auto scheduled =
                  ctx.Schedule(10ms, PunctuationType::kStreamTime, [&ctx](Timestamp t) {
                    return ctx.Forward({"tick", std::to_string(t.millis()), t, {}});
                  });
              if (!scheduled.ok()) return scheduled.status();
              *id = *scheduled;
              EXPECT_EQ(ctx.Schedule(0ms, PunctuationType::kStreamTime,
                                     [](Timestamp) { return Status::Ok(); })
                            .status()
                            .code(),
                        StatusCode::kInvalidArgument);
              return Status::Ok();
            },
            [id](StringProcessor::Context& ctx, const auto& r) {
              if (r.value == "stop" && *id) ctx.Cancel(**id);
              return Status::Ok();
            });
      },
      {"in"});
  builder.AddSink<std::string, std::string>("out", "ticks", StringSerdeInstance(),
                                            StringSerdeInstance(), {"p"});
  auto topology = *std::move(builder).Build();
  auto driver = MakeDriver(*topology);
  ASSERT_TRUE(driver->PipeInput("events", "k", "go", Timestamp(10)).ok());
  ASSERT_TRUE(driver->PipeInput("events", "k", "stop", Timestamp(15)).ok());
  ASSERT_TRUE(driver->PipeInput("events", "k", "go", Timestamp(50)).ok());
  EXPECT_THAT(Values(driver->AllRecords("ticks")), ElementsAre("10"));
}

// --- Context behaviour.

TEST_F(TopologyTestDriverTest, ContextExposesMetadataHeadersAndConnectedStoresOnly) {
  TopologyBuilder builder;
  builder.AddSource<std::string, std::string>("in", {"events"}, StringSerdeInstance(),
                                              StringSerdeInstance());
  builder.AddProcessor<StringProcessor>(
      "inspect",
      [] {
        return std::make_unique<StringProcessor>(nullptr, [](auto& ctx, const auto& r) {
          const auto& meta = ctx.record_metadata();
          std::string value = meta ? meta->topic + "-" + std::to_string(meta->partition.value()) +
                                         "@" + std::to_string(meta->offset.value())
                                   : "none";
          value += " task=" + ctx.task_id().ToString() + " app=" + ctx.application_id();
          value += " ts=" + std::to_string(ctx.timestamp().millis());
          value += " stream=" + std::to_string(ctx.stream_time().millis());
          value += " h=" + std::string(FindHeader(ctx.headers(), "h").value_or("-"));
          value += std::string(" own=") + (ctx.GetStateStore("own") ? "yes" : "no");
          value += std::string(" other=") + (ctx.GetStateStore("other") ? "yes" : "no");
          // A child sees the timestamp and headers of the record it receives.
          return ctx.Forward(
              {r.key, value, Timestamp(r.timestamp.millis() + 1000), {{"h", "fwd"}}});
        });
      },
      {"in"});
  builder.AddProcessor<StringProcessor>(
      "child",
      [] {
        return std::make_unique<StringProcessor>(nullptr, [](auto& ctx, const auto& r) {
          Record<std::string, std::string> out = r;
          out.value += " | child ts=" + std::to_string(ctx.timestamp().millis()) +
                       " h=" + std::string(FindHeader(ctx.headers(), "h").value_or("-"));
          return ctx.Forward(std::move(out));
        });
      },
      {"inspect"});
  builder.AddProcessor<StringProcessor>("holder",
                                        [] {
                                          return std::make_unique<StringProcessor>(
                                              nullptr,
                                              [](auto&, const auto&) { return Status::Ok(); });
                                        },
                                        {"in"});
  builder.AddStateStore({.name = "own"}, {"inspect"});
  builder.AddStateStore({.name = "other", .kind = state::StoreKind::kInMemory}, {"holder"});
  builder.AddSink<std::string, std::string>("out", "seen", StringSerdeInstance(),
                                            StringSerdeInstance(), {"child"});
  auto topology = *std::move(builder).Build();
  auto driver = MakeDriver(*topology, {.application_id = "ctx", .default_partitions = 2});
  ASSERT_TRUE(
      driver->PipeInput("events", "k", "v", Timestamp(70), {{"h", "orig"}}, Partition(1)).ok());
  ASSERT_TRUE(driver->PipeInput("events", "k", "v", Timestamp(60), {}, Partition(1)).ok());
  const auto seen = driver->ReadOutput("seen");
  EXPECT_THAT(Values(seen),
              ElementsAre("events-1@0 task=0_1 app=ctx ts=70 stream=70 h=orig own=yes other=no "
                          "| child ts=1070 h=fwd",
                          "events-1@1 task=0_1 app=ctx ts=60 stream=70 h=- own=yes other=no "
                          "| child ts=1060 h=fwd"));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].timestamp, Timestamp(1070));
  EXPECT_EQ(seen[0].headers, (Headers{{"h", "fwd"}}));
}

TEST_F(TopologyTestDriverTest, ForwardsToNamedChildOrFailsWithNotFound) {
  TopologyBuilder builder;
  builder.AddSource<std::string, std::string>("in", {"events"}, StringSerdeInstance(),
                                              StringSerdeInstance());
  builder.AddProcessor<StringProcessor>(
      "router",
      [] {
        return std::make_unique<StringProcessor>(nullptr, [](auto& ctx, const auto& r) {
          return ctx.Forward(r, r.value);  // The value names the child.
        });
      },
      {"in"});
  builder.AddSink<std::string, std::string>("left", "left-topic", StringSerdeInstance(),
                                            StringSerdeInstance(), {"router"});
  builder.AddSink<std::string, std::string>("right", "right-topic", StringSerdeInstance(),
                                            StringSerdeInstance(), {"router"});
  auto topology = *std::move(builder).Build();
  auto driver = MakeDriver(*topology);
  ASSERT_TRUE(driver->PipeInput("events", "k1", "left", Timestamp(1)).ok());
  ASSERT_TRUE(driver->PipeInput("events", "k2", "right", Timestamp(2)).ok());
  ASSERT_TRUE(driver->PipeInput("events", "k3", "left", Timestamp(3)).ok());
  EXPECT_THAT(KeyValues(driver->ReadOutput("left-topic")),
              ElementsAre(Pair("k1", "left"), Pair("k3", "left")));
  EXPECT_THAT(KeyValues(driver->ReadOutput("right-topic")), ElementsAre(Pair("k2", "right")));
  Status status = driver->PipeInput("events", "k4", "middle", Timestamp(4));
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("node 'router' has no child 'middle'"));
}

TEST_F(TopologyTestDriverTest, SinkPartitionerChoosesOutputPartition) {
  TopologyBuilder builder;
  builder.AddSource<std::string, std::string>("in", {"events"}, StringSerdeInstance(),
                                              StringSerdeInstance());
  builder.AddSink<std::string, std::string>(
      "out", "routed", StringSerdeInstance(), StringSerdeInstance(), {"in"},
      [](const std::string&, const std::string&, const std::string& value, int32_t count) {
        return std::optional<Partition>(Partition(static_cast<int32_t>(value.size()) % count));
      });
  auto topology = *std::move(builder).Build();
  auto driver = MakeDriver(*topology, {.partition_counts = {{"routed", 4}}});
  ASSERT_TRUE(driver->PipeInput("events", "k", "abcdef", Timestamp(1)).ok());
  const auto routed = driver->AllRecords("routed");
  ASSERT_EQ(routed.size(), 1u);
  EXPECT_EQ(routed[0].partition, Partition(2));
}

// --- TTL store through the driver.

using TtlProcessor = LambdaProcessor<std::string, std::string>;

TEST_F(TopologyTestDriverTest, TtlStoreExpiresByStreamTimeAndTombstonesTheChangelog) {
  TopologyBuilder builder;
  builder.AddSource<std::string, std::string>("in", {"ops"}, StringSerdeInstance(),
                                              StringSerdeInstance());
  builder.AddProcessor<TtlProcessor>(
      "ttl",
      [] {
        return std::make_unique<TtlProcessor>(nullptr, [](auto& ctx, const auto& r) -> Status {
          state::KeyValueStore* store = ctx.GetStateStore("recent");
          if (r.value == "put") return store->Put(r.key, "seen");
          auto got = store->Get(r.key);
          if (!got.ok()) return got.status();
          return ctx.Forward({r.key, got->has_value() ? "found" : "missing", r.timestamp, {}});
        });
      },
      {"in"});
  builder.AddStateStore({.name = "recent", .ttl = std::chrono::milliseconds(100)}, {"ttl"});
  builder.AddSink<std::string, std::string>("out", "answers", StringSerdeInstance(),
                                            StringSerdeInstance(), {"ttl"});
  auto topology = *std::move(builder).Build();
  auto driver = MakeDriver(*topology, {.application_id = "ttl"});
  ASSERT_TRUE(driver->PipeInput("ops", "k", "put", Timestamp(1000)).ok());
  ASSERT_TRUE(driver->PipeInput("ops", "k", "get", Timestamp(1099)).ok());  // Before 1000+100.
  ASSERT_TRUE(driver->PipeInput("ops", "other", "get", Timestamp(1100)).ok());
  ASSERT_TRUE(driver->PipeInput("ops", "k", "get", Timestamp(1100)).ok());
  EXPECT_THAT(KeyValues(driver->ReadOutput("answers")),
              ElementsAre(Pair("k", "found"), Pair("other", "missing"), Pair("k", "missing")));
  const auto changelog = driver->AllRecords("ttl-recent-changelog");
  ASSERT_EQ(changelog.size(), 2u);
  EXPECT_EQ(changelog[0].key, "k");
  EXPECT_TRUE(changelog[0].value.has_value());
  EXPECT_EQ(changelog[1].key, "k");
  EXPECT_EQ(changelog[1].value, std::nullopt);  // Purged at the commit after expiry.
  EXPECT_EQ(changelog[1].timestamp, Timestamp(1100));

  // After a crash the restored store still hides (and has dropped) the entry.
  ASSERT_TRUE(driver->SimulateCrash(CrashPoint::kBeforeCommit).ok());
  ASSERT_TRUE(driver->PipeInput("ops", "k", "get", Timestamp(1102)).ok());
  EXPECT_THAT(KeyValues(driver->ReadOutput("answers")), ElementsAre(Pair("k", "missing")));
}

}  // namespace
}  // namespace streams
