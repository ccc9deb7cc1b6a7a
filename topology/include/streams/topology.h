// Topology and TopologyBuilder: the graph of sources, processors, sinks and
// state stores that a task runs, in the style of Kafka Streams' Processor API.
//
//   TopologyBuilder b;
//   b.AddSource<std::string, Request>("requests", {"payments.requests"},
//                                     StringSerdeInstance(), ProtobufSerdeInstance<Request>());
//   b.AddProcessor<Decider>("decide", [] { return std::make_unique<Decider>(); }, {"requests"});
//   b.AddStateStore({.name = "idempotency"}, {"decide"});
//   b.AddSink<std::string, Confirmation>("out", "payments.confirmations", ..., {"decide"});
//   Result<std::unique_ptr<Topology>> topology = std::move(b).Build();
//
// All source topics must be co-partitioned: task N processes partition N of
// each of them (one sub-topology).
//
// Thread safety: TopologyBuilder is not thread-safe. A built Topology is
// immutable and may be shared by all tasks of all threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

#include "streams/internal/node.h"
#include "streams/processor.h"
#include "streams/result.h"
#include "streams/serde.h"
#include "streams/state/store_spec.h"

namespace streams {

// Picks the partition of an output record; std::nullopt lets the writer choose
// (DefaultPartitionForKey on the serialized key).
template <typename K, typename V>
using StreamPartitioner = std::function<std::optional<Partition>(
    const std::string& topic, const K& key, const V& value, int32_t partition_count)>;

// How tasks treat record timestamps. A record whose timestamp is not kValid
// (see TimestampCheck in processor.h) is still processed, but does not move
// stream time, so it cannot expire TTL entries or fire stream-time
// punctuations; processors see the verdict in context.timestamp_check().
struct TimestampPolicy {
  // A record more than this ahead of max(the task's stream time, the task's
  // clock) is kTooFarAhead (the first record of a task without stream time is
  // not bounded). Stream time alone cannot be the reference: after
  // an idle gap longer than max_lead every record would be ahead of it, for
  // good. This is the one verdict that reads the clock; it can only change
  // from kTooFarAhead to kValid on a later replay (clocks move forward), and
  // never for a record that was within the bound when first processed.
  // std::nullopt: no bound (only negative and absurd timestamps are rejected).
  std::optional<std::chrono::milliseconds> max_lead;
};

// Rewrites bytes before they leave the engine in a dead-letter record: the
// key, the value and every header value (masking card numbers, say). Must be
// deterministic and thread-safe; it runs on stream threads.
using Redactor = std::function<std::string(std::string_view)>;

class Topology {
 public:
  // Nodes in a topological order (every parent before its children).
  const std::vector<internal::NodeSpec>& nodes() const { return nodes_; }
  const std::vector<state::StoreSpec>& stores() const { return stores_; }
  // Topics read by source nodes, sorted, without duplicates.
  const std::vector<std::string>& source_topics() const { return source_topics_; }
  // Topics written by sink nodes, sorted, without duplicates.
  const std::vector<std::string>& sink_topics() const { return sink_topics_; }
  // The node named `name`, or nullptr.
  const internal::NodeSpec* FindNode(std::string_view name) const;
  const TimestampPolicy& timestamp_policy() const { return timestamp_policy_; }
  // The dead-letter redactor; empty: records are dead-lettered as read.
  const Redactor& dead_letter_redactor() const { return dead_letter_redactor_; }

  // "<application_id>-<store>-changelog".
  static std::string ChangelogTopic(std::string_view application_id, std::string_view store);

  // A human-readable description in the style of Kafka Streams'
  // TopologyDescription: sources with topics, processors with stores, sinks,
  // and the edges between them.
  std::string Describe() const;

 private:
  friend class TopologyBuilder;
  std::vector<internal::NodeSpec> nodes_;
  std::vector<state::StoreSpec> stores_;
  std::vector<std::string> source_topics_;
  std::vector<std::string> sink_topics_;
  TimestampPolicy timestamp_policy_;
  Redactor dead_letter_redactor_;
};

class TopologyBuilder {
 public:
  // Adds a source node reading `topics` with the given serdes. A record whose
  // key or value fails to deserialize is sent to the dead-letter topic by the task.
  template <typename K, typename V>
  TopologyBuilder& AddSource(std::string name, std::vector<std::string> topics,
                             SerdePtr<K> key_serde, SerdePtr<V> value_serde);

  // Adds a processor made by `supplier` (called once per task, from whichever
  // thread opens the task, so possibly concurrently: it must be thread-safe)
  // whose parents are the named nodes. Parents may be added later; Build()
  // resolves them.
  template <typename P>
  TopologyBuilder& AddProcessor(std::string name, std::function<std::unique_ptr<P>()> supplier,
                                std::vector<std::string> parents);

  // Adds a sink node writing records of its parents to `topic`.
  template <typename K, typename V>
  TopologyBuilder& AddSink(std::string name, std::string topic, SerdePtr<K> key_serde,
                           SerdePtr<V> value_serde, std::vector<std::string> parents,
                           StreamPartitioner<K, V> partitioner = nullptr);

  // Adds a state store and connects it to the named processors.
  TopologyBuilder& AddStateStore(state::StoreSpec spec, std::vector<std::string> processors);

  // Connects an existing store to more processors.
  TopologyBuilder& ConnectProcessorAndStateStores(std::string processor,
                                                  std::vector<std::string> stores);

  // Sets how tasks judge record timestamps (default: no max_lead). Build()
  // rejects a max_lead <= 0.
  TopologyBuilder& SetTimestampPolicy(TimestampPolicy policy);
  // Sets the redactor applied to every dead-lettered record (default: none).
  TopologyBuilder& SetDeadLetterRedactor(Redactor redactor);

  // Validates and freezes the topology. Errors (InvalidArgument, every problem
  // found listed in one message): duplicate node or store name, unknown parent,
  // a parent listed twice, a parent that is a sink, a source with parents or no
  // topics, a topic read by two sources, a processor or sink without parents, a
  // connection to a missing store or from a missing processor (or to a source or
  // sink), a store connected to no processor, a store TTL <= 0, a cycle (its
  // nodes named), a parent whose output types differ from the child's input
  // types (readable type names), no source at all, an invalid node, store or
  // topic name (names are 1-249 characters of [A-Za-z0-9._-]).
  // On success nodes() are in topological order (ties: the order nodes were
  // added) with NodeSpec::children and NodeSpec::stores filled.
  Result<std::unique_ptr<Topology>> Build() &&;

  // Low level: adds a node described by hand (what the typed Add* methods do).
  // Build() validates it like any other node. Prefer AddSource/AddProcessor/AddSink.
  void AddNode(internal::NodeSpec spec);

 private:
  std::vector<internal::NodeSpec> nodes_;
  std::vector<std::pair<state::StoreSpec, std::vector<std::string>>> stores_;
  std::vector<std::pair<std::string, std::vector<std::string>>> connections_;
  TimestampPolicy timestamp_policy_;
  Redactor dead_letter_redactor_;
};

// ---------------------------------------------------------------------------
// Implementation of the templates.

namespace internal {

template <typename K, typename V>
class SinkNodeInstance final : public NodeInstance {
 public:
  SinkNodeInstance(std::string name, std::string topic, SerdePtr<K> key_serde,
                   SerdePtr<V> value_serde, StreamPartitioner<K, V> partitioner)
      : name_(std::move(name)),
        topic_(std::move(topic)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        partitioner_(std::move(partitioner)) {}

  Status Init(NodeContext& context) override {
    context_ = &context;
    return Status::Ok();
  }
  Status Process(AnyRecord any) override {
    auto typed = Unwrap<K, V>(std::move(any), name_);
    if (!typed.ok()) return typed.status();
    ProducedRecord out;
    out.topic = topic_;
    out.timestamp = typed->timestamp;
    out.key = key_serde_->Serialize(topic_, typed->key);
    out.value = value_serde_->Serialize(topic_, typed->value);
    out.headers = std::move(typed->headers);
    if (partitioner_) {
      auto count = context_->PartitionCount(topic_);
      if (!count.ok()) return count.status();
      out.partition = partitioner_(topic_, typed->key, typed->value, *count);
    }
    return context_->Send(std::move(out));
  }
  void Close() override {}

 private:
  std::string name_;
  std::string topic_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
  StreamPartitioner<K, V> partitioner_;
  NodeContext* context_ = nullptr;
};

}  // namespace internal

template <typename K, typename V>
TopologyBuilder& TopologyBuilder::AddSource(std::string name, std::vector<std::string> topics,
                                            SerdePtr<K> key_serde, SerdePtr<V> value_serde) {
  internal::NodeSpec spec;
  spec.name = std::move(name);
  spec.kind = internal::NodeKind::kSource;
  spec.topics = std::move(topics);
  spec.key_out = std::type_index(typeid(K));
  spec.value_out = std::type_index(typeid(V));
  spec.key_out_name = internal::TypeName(typeid(K));
  spec.value_out_name = internal::TypeName(typeid(V));
  spec.decode = [key_serde, value_serde](const ConsumedRecord& r) -> Result<internal::AnyRecord> {
    std::optional<std::string_view> key_bytes, value_bytes;
    if (r.key) key_bytes = *r.key;
    if (r.value) value_bytes = *r.value;
    auto key = key_serde->Deserialize(r.topic, key_bytes);
    if (!key.ok()) return key.status().WithContext("key");
    auto value = value_serde->Deserialize(r.topic, value_bytes);
    if (!value.ok()) return value.status().WithContext("value");
    return internal::AnyRecord{std::any(std::move(*key)), std::any(std::move(*value)), r.timestamp,
                               r.headers};
  };
  AddNode(std::move(spec));
  return *this;
}

template <typename P>
TopologyBuilder& TopologyBuilder::AddProcessor(std::string name,
                                               std::function<std::unique_ptr<P>()> supplier,
                                               std::vector<std::string> parents) {
  using KIn = typename P::KeyIn;
  using VIn = typename P::ValueIn;
  using KOut = typename P::KeyOut;
  using VOut = typename P::ValueOut;
  internal::NodeSpec spec;
  spec.name = std::move(name);
  spec.kind = internal::NodeKind::kProcessor;
  spec.parents = std::move(parents);
  spec.key_in = std::type_index(typeid(KIn));
  spec.value_in = std::type_index(typeid(VIn));
  spec.key_out = std::type_index(typeid(KOut));
  spec.value_out = std::type_index(typeid(VOut));
  spec.key_in_name = internal::TypeName(typeid(KIn));
  spec.value_in_name = internal::TypeName(typeid(VIn));
  spec.key_out_name = internal::TypeName(typeid(KOut));
  spec.value_out_name = internal::TypeName(typeid(VOut));
  spec.make_instance = [node = spec.name, supplier = std::move(supplier)]() {
    return std::unique_ptr<internal::NodeInstance>(
        new internal::ProcessorNodeInstance<P>(node, supplier()));
  };
  AddNode(std::move(spec));
  return *this;
}

template <typename K, typename V>
TopologyBuilder& TopologyBuilder::AddSink(std::string name, std::string topic,
                                          SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                                          std::vector<std::string> parents,
                                          StreamPartitioner<K, V> partitioner) {
  internal::NodeSpec spec;
  spec.name = std::move(name);
  spec.kind = internal::NodeKind::kSink;
  spec.parents = std::move(parents);
  spec.topics = {topic};
  spec.key_in = std::type_index(typeid(K));
  spec.value_in = std::type_index(typeid(V));
  spec.key_in_name = internal::TypeName(typeid(K));
  spec.value_in_name = internal::TypeName(typeid(V));
  spec.make_instance = [node = spec.name, topic = std::move(topic), key_serde, value_serde,
                        partitioner = std::move(partitioner)]() {
    return std::unique_ptr<internal::NodeInstance>(
        new internal::SinkNodeInstance<K, V>(node, topic, key_serde, value_serde, partitioner));
  };
  AddNode(std::move(spec));
  return *this;
}

}  // namespace streams
