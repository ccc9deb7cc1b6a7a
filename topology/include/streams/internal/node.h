// Internal: the type-erased node machinery behind the typed Processor API.
// Not part of the public surface; used by TopologyBuilder templates and StreamTask.
#pragma once

#include <any>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeindex>
#include <typeinfo>
#include <vector>

#include "streams/processor.h"
#include "streams/record.h"
#include "streams/state/store_spec.h"

namespace streams::internal {

struct AnyRecord {
  std::any key;
  std::any value;
  Timestamp timestamp;
  Headers headers;
};

// Readable name of a C++ type for error messages and Describe().
std::string TypeName(const std::type_info& type);

// Per-node context implemented by StreamTask; gives a node the task's services.
class NodeContext : public ProcessorContextBase, public Forwarder {
 public:
  // Partition count of `topic` as known by the record collector.
  virtual Result<int32_t> PartitionCount(const std::string& topic) = 0;
  // Sends a serialized record out of the topology (sink nodes).
  virtual Status Send(ProducedRecord record) = 0;
};

// One node of one task.
class NodeInstance {
 public:
  virtual ~NodeInstance() = default;
  virtual Status Init(NodeContext& context) = 0;
  virtual Status Process(AnyRecord record) = 0;
  virtual void Close() = 0;
};

// Adapts an untyped NodeContext to ProcessorContext<KOut, VOut>.
template <typename KOut, typename VOut>
class TypedContext final : public ProcessorContext<KOut, VOut> {
 public:
  explicit TypedContext(NodeContext* base) : base_(base) {}
  const TaskId& task_id() const override { return base_->task_id(); }
  const std::string& application_id() const override { return base_->application_id(); }
  const std::optional<RecordMetadata>& record_metadata() const override {
    return base_->record_metadata();
  }
  const Headers& headers() const override { return base_->headers(); }
  Timestamp timestamp() const override { return base_->timestamp(); }
  Timestamp stream_time() const override { return base_->stream_time(); }
  bool has_stream_time() const override { return base_->has_stream_time(); }
  TimestampCheck timestamp_check() const override { return base_->timestamp_check(); }
  Timestamp wall_clock_time() const override { return base_->wall_clock_time(); }
  state::KeyValueStore* GetStateStore(std::string_view name) override {
    return base_->GetStateStore(name);
  }
  Result<PunctuationId> Schedule(std::chrono::milliseconds interval, PunctuationType type,
                                 Punctuator punctuator) override {
    return base_->Schedule(interval, type, std::move(punctuator));
  }
  void Cancel(PunctuationId id) override { base_->Cancel(id); }
  void RequestCommit() override { base_->RequestCommit(); }
  Status Forward(Record<KOut, VOut> record) override {
    return base_->ForwardAny(Wrap(std::move(record)), std::nullopt);
  }
  Status Forward(Record<KOut, VOut> record, std::string_view child) override {
    return base_->ForwardAny(Wrap(std::move(record)), child);
  }

 private:
  static AnyRecord Wrap(Record<KOut, VOut>&& r) {
    return AnyRecord{std::any(std::move(r.key)), std::any(std::move(r.value)), r.timestamp,
                     std::move(r.headers)};
  }
  NodeContext* base_;
};

// Unwraps a type-erased record; Internal error on a type mismatch (which
// TopologyBuilder::Build rules out for well-formed topologies).
template <typename K, typename V>
Result<Record<K, V>> Unwrap(AnyRecord&& r, std::string_view node) {
  K* key = std::any_cast<K>(&r.key);
  V* value = std::any_cast<V>(&r.value);
  if (key == nullptr || value == nullptr) {
    return Status::Internal("node '" + std::string(node) + "' received a record of the wrong type");
  }
  return Record<K, V>{std::move(*key), std::move(*value), r.timestamp, std::move(r.headers)};
}

template <typename P>
class ProcessorNodeInstance final : public NodeInstance {
  using KIn = typename P::KeyIn;
  using VIn = typename P::ValueIn;
  using KOut = typename P::KeyOut;
  using VOut = typename P::ValueOut;

 public:
  ProcessorNodeInstance(std::string name, std::unique_ptr<P> processor)
      : name_(std::move(name)), processor_(std::move(processor)) {}
  Status Init(NodeContext& context) override {
    context_.emplace(&context);
    return processor_->Init(*context_);
  }
  Status Process(AnyRecord record) override {
    auto typed = Unwrap<KIn, VIn>(std::move(record), name_);
    if (!typed.ok()) return typed.status();
    return processor_->Process(*typed);
  }
  void Close() override { processor_->Close(); }

 private:
  std::string name_;
  std::unique_ptr<P> processor_;
  std::optional<TypedContext<KOut, VOut>> context_;
};

enum class NodeKind { kSource, kProcessor, kSink };

// The immutable description of one node, plus how to make its per-task parts.
struct NodeSpec {
  std::string name;
  NodeKind kind = NodeKind::kProcessor;
  std::vector<std::string> parents;
  // Filled by TopologyBuilder::Build: the nodes that name this one as a parent,
  // in the order they were added to the builder (the order of Forward).
  std::vector<std::string> children;
  // Source: the topics it reads. Sink: the one topic it writes.
  std::vector<std::string> topics;
  // Stores connected to this processor.
  std::vector<std::string> stores;
  // Record types this node accepts and emits (sources accept none, sinks emit none).
  std::optional<std::type_index> key_in, value_in, key_out, value_out;
  std::string key_in_name, value_in_name, key_out_name, value_out_name;
  // Source only: turns a consumed record into a typed one (Corruption on bad bytes).
  std::function<Result<AnyRecord>(const ConsumedRecord&)> decode;
  // Processor and sink: makes this node's instance for one task.
  std::function<std::unique_ptr<NodeInstance>()> make_instance;
};

}  // namespace streams::internal
