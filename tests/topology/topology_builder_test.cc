#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "payments/v1/payments.pb.h"
#include "streams/topology.h"
#include "topology_test_util.h"

namespace streams {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

using StringProcessor = testing::LambdaProcessor<std::string, std::string>;
using CountProcessor = testing::LambdaProcessor<std::string, std::string, std::string, int64_t>;
using RequestProcessor = testing::LambdaProcessor<std::string, payments::v1::PaymentRequest>;

std::function<std::unique_ptr<StringProcessor>()> PassThrough() {
  return [] {
    return std::make_unique<StringProcessor>(
        nullptr, [](auto& ctx, const auto& r) { return ctx.Forward(r); });
  };
}

class TopologyBuilderTest : public ::testing::Test {
 protected:
  void AddStringSource(const std::string& name, std::vector<std::string> topics) {
    builder_.AddSource<std::string, std::string>(name, std::move(topics), StringSerdeInstance(),
                                                 StringSerdeInstance());
  }
  void AddStringProcessor(const std::string& name, std::vector<std::string> parents) {
    builder_.AddProcessor<StringProcessor>(name, PassThrough(), std::move(parents));
  }
  void AddStringSink(const std::string& name, const std::string& topic,
                     std::vector<std::string> parents) {
    builder_.AddSink<std::string, std::string>(name, topic, StringSerdeInstance(),
                                               StringSerdeInstance(), std::move(parents));
  }
  // Builds and returns the error message (empty when the build succeeded).
  std::string BuildError() {
    auto result = std::move(builder_).Build();
    if (result.ok()) return "";
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    return result.status().message();
  }
  std::vector<std::string> NodeNames(const Topology& topology) {
    std::vector<std::string> names;
    for (const auto& node : topology.nodes()) names.push_back(node.name);
    return names;
  }

  TopologyBuilder builder_;
};

TEST_F(TopologyBuilderTest, BuildsNodesInTopologicalOrderWithSortedTopics) {
  // Added children-first: Build() must still order parents before children.
  AddStringSink("sink-b", "out-b", {"proc"});
  AddStringSink("sink-a", "out-a", {"proc"});
  AddStringSink("sink-a2", "out-a", {"proc"});
  AddStringProcessor("proc", {"src"});
  AddStringSource("src", {"zeta", "alpha"});
  builder_.AddStateStore({.name = "store"}, {"proc"});
  auto topology = std::move(builder_).Build();
  ASSERT_TRUE(topology.ok()) << topology.status();
  EXPECT_THAT(NodeNames(**topology), ElementsAre("src", "proc", "sink-b", "sink-a", "sink-a2"));
  EXPECT_THAT((*topology)->source_topics(), ElementsAre("alpha", "zeta"));
  EXPECT_THAT((*topology)->sink_topics(), ElementsAre("out-a", "out-b"));
  const internal::NodeSpec* proc = (*topology)->FindNode("proc");
  ASSERT_NE(proc, nullptr);
  EXPECT_THAT(proc->children, ElementsAre("sink-b", "sink-a", "sink-a2"));
  EXPECT_THAT(proc->stores, ElementsAre("store"));
  EXPECT_EQ((*topology)->FindNode("missing"), nullptr);
  ASSERT_EQ((*topology)->stores().size(), 1u);
  EXPECT_EQ((*topology)->stores()[0].name, "store");
}

TEST_F(TopologyBuilderTest, RejectsDuplicateNodeName) {
  AddStringSource("src", {"in"});
  AddStringProcessor("src", {"src"});
  EXPECT_THAT(BuildError(), HasSubstr("duplicate node name 'src'"));
}

TEST_F(TopologyBuilderTest, RejectsDuplicateStoreName) {
  AddStringSource("src", {"in"});
  AddStringProcessor("proc", {"src"});
  builder_.AddStateStore({.name = "s"}, {"proc"});
  builder_.AddStateStore({.name = "s", .kind = state::StoreKind::kInMemory}, {"proc"});
  EXPECT_THAT(BuildError(), HasSubstr("duplicate store name 's'"));
}

TEST_F(TopologyBuilderTest, RejectsInvalidNames) {
  AddStringSource("bad name", {"in"});
  AddStringSource("src", {"bad/topic"});
  AddStringProcessor("", {"src"});
  AddStringSink("sink", "", {"src"});
  builder_.AddStateStore({.name = "bad:store"}, {"src"});
  const std::string error = BuildError();
  EXPECT_THAT(error, HasSubstr("invalid node name 'bad name'"));
  EXPECT_THAT(error, HasSubstr("invalid node name ''"));
  EXPECT_THAT(error, HasSubstr("invalid topic name 'bad/topic'"));
  EXPECT_THAT(error, HasSubstr("sink 'sink' writes invalid topic name ''"));
  EXPECT_THAT(error, HasSubstr("invalid store name 'bad:store'"));
}

TEST_F(TopologyBuilderTest, RejectsUnknownParent) {
  AddStringSource("src", {"in"});
  AddStringProcessor("proc", {"src", "ghost"});
  EXPECT_THAT(BuildError(), HasSubstr("processor 'proc' has unknown parent 'ghost'"));
}

TEST_F(TopologyBuilderTest, RejectsSourceWithParents) {
  AddStringSource("src", {"in"});
  internal::NodeSpec spec;
  spec.name = "src2";
  spec.kind = internal::NodeKind::kSource;
  spec.topics = {"in2"};
  spec.parents = {"src"};
  builder_.AddNode(std::move(spec));
  EXPECT_THAT(BuildError(), HasSubstr("source 'src2' cannot have parents (has src)"));
}

TEST_F(TopologyBuilderTest, RejectsSourceWithoutTopics) {
  AddStringSource("src", {});
  AddStringSource("ok", {"in"});
  EXPECT_THAT(BuildError(), HasSubstr("source 'src' has no topics"));
}

TEST_F(TopologyBuilderTest, RejectsTopicReadByTwoSources) {
  AddStringSource("a", {"in"});
  AddStringSource("b", {"other", "in"});
  EXPECT_THAT(BuildError(), HasSubstr("topic 'in' is read by more than one source ('a' and 'b')"));
}

TEST_F(TopologyBuilderTest, RejectsProcessorAndSinkWithoutParents) {
  AddStringSource("src", {"in"});
  AddStringProcessor("proc", {});
  AddStringSink("sink", "out", {});
  const std::string error = BuildError();
  EXPECT_THAT(error, HasSubstr("processor 'proc' has no parents"));
  EXPECT_THAT(error, HasSubstr("sink 'sink' has no parents"));
}

TEST_F(TopologyBuilderTest, RejectsSinkAsParent) {
  AddStringSource("src", {"in"});
  AddStringSink("sink", "out", {"src"});
  AddStringProcessor("proc", {"sink"});
  EXPECT_THAT(BuildError(), HasSubstr("processor 'proc' has parent 'sink', which is a sink"));
}

TEST_F(TopologyBuilderTest, RejectsRepeatedParent) {
  AddStringSource("src", {"in"});
  AddStringProcessor("proc", {"src", "src"});
  EXPECT_THAT(BuildError(), HasSubstr("processor 'proc' lists parent 'src' more than once"));
}

TEST_F(TopologyBuilderTest, RejectsConnectionToMissingStore) {
  AddStringSource("src", {"in"});
  AddStringProcessor("proc", {"src"});
  builder_.ConnectProcessorAndStateStores("proc", {"nowhere"});
  EXPECT_THAT(BuildError(), HasSubstr("processor 'proc' is connected to unknown store 'nowhere'"));
}

TEST_F(TopologyBuilderTest, RejectsConnectionFromMissingProcessor) {
  AddStringSource("src", {"in"});
  AddStringProcessor("proc", {"src"});
  builder_.AddStateStore({.name = "s"}, {"proc", "ghost"});
  builder_.ConnectProcessorAndStateStores("phantom", {"s"});
  const std::string error = BuildError();
  EXPECT_THAT(error, HasSubstr("store 's' is connected to unknown processor 'ghost'"));
  EXPECT_THAT(error, HasSubstr("store 's' is connected to unknown processor 'phantom'"));
}

TEST_F(TopologyBuilderTest, RejectsStoreConnectedToSourceOrSink) {
  AddStringSource("src", {"in"});
  AddStringProcessor("proc", {"src"});
  AddStringSink("sink", "out", {"proc"});
  builder_.AddStateStore({.name = "s"}, {"src", "proc"});
  builder_.ConnectProcessorAndStateStores("sink", {"s"});
  const std::string error = BuildError();
  EXPECT_THAT(error, HasSubstr("store 's' cannot be connected to source 'src'"));
  EXPECT_THAT(error, HasSubstr("store 's' cannot be connected to sink 'sink'"));
}

TEST_F(TopologyBuilderTest, RejectsStoreConnectedToNoProcessor) {
  AddStringSource("src", {"in"});
  AddStringProcessor("proc", {"src"});
  builder_.AddStateStore({.name = "lonely"}, {});
  EXPECT_THAT(BuildError(), HasSubstr("store 'lonely' is not connected to any processor"));
}

TEST_F(TopologyBuilderTest, RejectsNonPositiveTtl) {
  AddStringSource("src", {"in"});
  AddStringProcessor("proc", {"src"});
  builder_.AddStateStore({.name = "s", .ttl = std::chrono::milliseconds(0)}, {"proc"});
  EXPECT_THAT(BuildError(), HasSubstr("store 's' has a non-positive ttl"));
}

TEST_F(TopologyBuilderTest, ReportsTheNodesOfACycle) {
  AddStringSource("src", {"in"});
  AddStringProcessor("a", {"src", "c"});
  AddStringProcessor("b", {"a"});
  AddStringProcessor("c", {"b"});
  AddStringProcessor("downstream", {"c"});  // Blocked by the cycle, but not part of it.
  AddStringProcessor("self", {"src", "self"});
  const std::string error = BuildError();
  EXPECT_THAT(error, HasSubstr("cycle among nodes 'a', 'b', 'c'"));
  EXPECT_THAT(error, HasSubstr("cycle among nodes 'self'"));
  EXPECT_THAT(error, Not(HasSubstr("'downstream'")));
}

TEST_F(TopologyBuilderTest, RejectsTypeMismatchWithReadableTypeNames) {
  builder_.AddSource<std::string, payments::v1::PaymentRequest>(
      "requests", {"in"}, StringSerdeInstance(),
      ProtobufSerdeInstance<payments::v1::PaymentRequest>());
  AddStringProcessor("strings", {"requests"});
  builder_.AddProcessor<CountProcessor>("counter",
                                        [] {
                                          return std::make_unique<CountProcessor>(
                                              nullptr,
                                              [](auto&, const auto&) { return Status::Ok(); });
                                        },
                                        {"strings"});
  AddStringSink("sink", "out", {"counter"});
  const std::string error = BuildError();
  EXPECT_THAT(error, HasSubstr("processor 'strings' expects records <std::string, std::string> "
                               "but its parent 'requests' forwards "
                               "<std::string, payments::v1::PaymentRequest>"));
  EXPECT_THAT(error, HasSubstr("sink 'sink' expects records <std::string, std::string> but its "
                               "parent 'counter' forwards <std::string, long>"));
}

TEST_F(TopologyBuilderTest, RejectsTopologyWithoutSource) {
  EXPECT_THAT(BuildError(), HasSubstr("the topology has no source node"));
}

TEST_F(TopologyBuilderTest, CollectsEveryProblemInOneMessage) {
  AddStringSource("src", {"in"});
  AddStringProcessor("src", {"src"});
  AddStringProcessor("orphan", {});
  AddStringProcessor("lost", {"ghost"});
  builder_.AddStateStore({.name = "unused"}, {});
  const std::string error = BuildError();
  EXPECT_THAT(error, HasSubstr("invalid topology (4 problems): "));
  EXPECT_THAT(error, HasSubstr("duplicate node name 'src'"));
  EXPECT_THAT(error, HasSubstr("processor 'orphan' has no parents"));
  EXPECT_THAT(error, HasSubstr("processor 'lost' has unknown parent 'ghost'"));
  EXPECT_THAT(error, HasSubstr("store 'unused' is not connected to any processor"));
}

TEST_F(TopologyBuilderTest, DescribesLikeKafkaStreams) {
  AddStringSource("lines", {"text-b", "text-a"});
  AddStringProcessor("split", {"lines"});
  builder_.AddProcessor<CountProcessor>("count",
                                        [] {
                                          return std::make_unique<CountProcessor>(
                                              nullptr,
                                              [](auto&, const auto&) { return Status::Ok(); });
                                        },
                                        {"split"});
  builder_.AddStateStore({.name = "counts"}, {"count"});
  builder_.AddStateStore({.name = "audit", .kind = state::StoreKind::kInMemory}, {"count"});
  builder_.AddSink<std::string, int64_t>("out", "word-counts", StringSerdeInstance(),
                                         testing::Int64SerdeInstance(), {"count"});
  AddStringSink("echo", "echo", {"split", "lines"});
  auto topology = std::move(builder_).Build();
  ASSERT_TRUE(topology.ok()) << topology.status();
  EXPECT_EQ((*topology)->Describe(),
            "Topologies:\n"
            "   Sub-topology: 0\n"
            "    Source: lines (topics: [text-b, text-a])\n"
            "      --> echo, split\n"
            "    Processor: split (stores: [])\n"
            "      --> count, echo\n"
            "      <-- lines\n"
            "    Processor: count (stores: [audit, counts])\n"
            "      --> out\n"
            "      <-- split\n"
            "    Sink: out (topic: word-counts)\n"
            "      <-- count\n"
            "    Sink: echo (topic: echo)\n"
            "      <-- lines, split\n"
            "\n");
}

TEST_F(TopologyBuilderTest, DescribesProcessorWithoutChildren) {
  AddStringSource("src", {"in"});
  AddStringProcessor("leaf", {"src"});
  auto topology = std::move(builder_).Build();
  ASSERT_TRUE(topology.ok()) << topology.status();
  EXPECT_THAT((*topology)->Describe(), HasSubstr("    Processor: leaf (stores: [])\n"
                                                 "      --> none\n"
                                                 "      <-- src\n"));
}

TEST_F(TopologyBuilderTest, NamesChangelogTopics) {
  EXPECT_EQ(Topology::ChangelogTopic("paymentd", "idempotency"), "paymentd-idempotency-changelog");
}

TEST_F(TopologyBuilderTest, TypeNamesAreReadable) {
  EXPECT_EQ(internal::TypeName(typeid(std::string)), "std::string");
  EXPECT_EQ(internal::TypeName(typeid(int64_t)), "long");
  EXPECT_EQ(internal::TypeName(typeid(payments::v1::PaymentRequest)),
            "payments::v1::PaymentRequest");
  EXPECT_EQ(internal::TypeName(typeid(std::vector<std::string>)),
            "std::vector<std::string, std::allocator<std::string> >");
  EXPECT_EQ(internal::TypeName(typeid(std::string_view)), "std::string_view");
}

}  // namespace
}  // namespace streams
