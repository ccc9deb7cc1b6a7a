#include "streams/stream_task.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace streams {
namespace {

using internal::AnyRecord;
using internal::NodeKind;
using internal::NodeSpec;

class StreamTaskImpl;

// The context of one node of one task: the task's services, the node's
// children and the stores connected to it.
class NodeContextImpl final : public internal::NodeContext {
 public:
  NodeContextImpl(StreamTaskImpl* task, size_t node) : task_(task), node_(node) {}

  const TaskId& task_id() const override;
  const std::string& application_id() const override;
  const std::optional<RecordMetadata>& record_metadata() const override;
  const Headers& headers() const override;
  Timestamp timestamp() const override;
  Timestamp stream_time() const override;
  bool has_stream_time() const override;
  TimestampCheck timestamp_check() const override;
  Timestamp wall_clock_time() const override;
  state::KeyValueStore* GetStateStore(std::string_view name) override;
  Result<PunctuationId> Schedule(std::chrono::milliseconds interval, PunctuationType type,
                                 Punctuator punctuator) override;
  void Cancel(PunctuationId id) override;
  void RequestCommit() override;
  Status ForwardAny(AnyRecord record, std::optional<std::string_view> child) override;
  Result<int32_t> PartitionCount(const std::string& topic) override;
  Status Send(ProducedRecord record) override;

 private:
  StreamTaskImpl* task_;
  size_t node_;
};

struct Schedule {
  size_t node = 0;
  std::chrono::milliseconds interval{0};
  PunctuationType type = PunctuationType::kStreamTime;
  Punctuator punctuator;
  // The time at (or after) which it fires next.
  Timestamp next;
};

// The smallest multiple of `interval` strictly greater than `t`.
Timestamp NextMultipleAfter(Timestamp t, int64_t interval) {
  int64_t remainder = t.millis() % interval;
  if (remainder < 0) remainder += interval;
  return Timestamp(t.millis() - remainder + interval);
}

class StreamTaskImpl final : public StreamTask {
 public:
  StreamTaskImpl(const Topology& topology, TaskId id, TaskConfig config,
                 std::unique_ptr<state::TaskState> state, RecordCollector* collector,
                 const Clock* clock)
      : topology_(topology),
        id_(std::move(id)),
        config_(std::move(config)),
        state_(std::move(state)),
        collector_(collector),
        clock_(clock) {
    const auto& nodes = topology_.nodes();
    std::map<std::string, size_t, std::less<>> index;
    for (size_t i = 0; i < nodes.size(); ++i) index.emplace(nodes[i].name, i);
    children_.resize(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      const NodeSpec& node = nodes[i];
      for (const std::string& child : node.children) children_[i].push_back(index.at(child));
      contexts_.push_back(std::make_unique<NodeContextImpl>(this, i));
      instances_.push_back(node.make_instance ? node.make_instance() : nullptr);
      if (node.kind == NodeKind::kSource) {
        for (const std::string& topic : node.topics) source_by_topic_.emplace(topic, i);
      }
    }
    for (const std::string& topic : topology_.source_topics()) {
      inputs_.push_back(TopicPartition{topic, id_.partition});
    }
    committed_ = state_->checkpoint();
    for (const TopicPartition& tp : inputs_) {
      auto it = committed_.input_offsets.find(tp);
      if (it != committed_.input_offsets.end()) committed_positions_.emplace(tp, it->second);
    }
    positions_ = committed_positions_;
    committed_stream_time_ = committed_.stream_time;
    if (committed_stream_time_) state_->AdvanceStreamTime(*committed_stream_time_);
    stream_time_ = committed_stream_time_;
  }

  ~StreamTaskImpl() override {
    Status status = Close(/*clean=*/false);
    if (!status.ok()) {
      spdlog::warn("task {}: close on destruction failed: {}", id_.ToString(), status.ToString());
    }
  }

  const TaskId& id() const override { return id_; }

  std::vector<TopicPartition> input_partitions() const override { return inputs_; }

  std::vector<RestoreSpec> RestoreSpecs() const override {
    std::vector<RestoreSpec> specs;
    for (const state::StoreSpec& store : topology_.stores()) {
      if (!store.logged) continue;
      RestoreSpec spec;
      spec.store = store.name;
      spec.changelog = TopicPartition{Topology::ChangelogTopic(config_.application_id, store.name),
                                      id_.partition};
      if (store.kind == state::StoreKind::kPersistent) {
        auto it = committed_.changelog_offsets.find(store.name);
        if (it != committed_.changelog_offsets.end()) spec.from = it->second;
      }
      specs.push_back(std::move(spec));
    }
    return specs;
  }

  Status ApplyRestoreBatch(const std::string& store,
                           const std::vector<state::ChangelogRecord>& records,
                           Offset next_offset) override {
    if (initialized_) {
      return Status::FailedPrecondition("task " + id_.ToString() +
                                        ": restore after the processors were initialized");
    }
    if (closed_) return Status::FailedPrecondition("task " + id_.ToString() + " is closed");
    const state::StoreSpec* spec = FindStoreSpec(store);
    if (spec == nullptr) {
      return Status::NotFound("task " + id_.ToString() + ": no store '" + store + "'");
    }
    STREAMS_RETURN_IF_ERROR(
        state_->ApplyRestoreBatch(store, records, next_offset)
            .WithContext("task " + id_.ToString() + ": restoring '" + store + "'"));
    for (const state::ChangelogRecord& record : records) AdvanceStreamTime(record.timestamp);
    // Restored data is committed data: aborts never rewind past it.
    committed_stream_time_ = stream_time_;
    if (spec->kind == state::StoreKind::kPersistent) {
      committed_.changelog_offsets.insert_or_assign(store, next_offset);
    }
    committed_.stream_time = committed_stream_time_;
    return Status::Ok();
  }

  Status InitializeProcessors() override {
    if (closed_) return Status::FailedPrecondition("task " + id_.ToString() + " is closed");
    if (initialized_) {
      return Status::FailedPrecondition("task " + id_.ToString() + " is already initialized");
    }
    const auto& nodes = topology_.nodes();
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!instances_[i]) continue;
      Status status = instances_[i]->Init(*contexts_[i]);
      if (!status.ok()) {
        return status.WithContext("task " + id_.ToString() + ": Init of " +
                                  (nodes[i].kind == NodeKind::kSink ? "sink '" : "processor '") +
                                  nodes[i].name + "'");
      }
      ++initialized_count_;
    }
    initialized_ = true;
    committed_schedules_ = schedules_;
    committed_next_schedule_id_ = next_schedule_id_;
    return Status::Ok();
  }

  Status Process(const ConsumedRecord& record) override {
    if (!initialized_ || closed_) {
      return Status::FailedPrecondition("task " + id_.ToString() +
                                        (closed_ ? " is closed" : " is not initialized"));
    }
    TopicPartition tp{record.topic, record.partition};
    auto source = source_by_topic_.find(record.topic);
    if (source == source_by_topic_.end() || record.partition != id_.partition) {
      return Status::InvalidArgument("task " + id_.ToString() + " does not process partition " +
                                     tp.ToString());
    }
    const NodeSpec& spec = topology_.nodes()[source->second];
    Result<AnyRecord> decoded = spec.decode(record);
    unprepared_work_ = true;
    if (!decoded.ok()) return DeadLetter(record, decoded.status());

    timestamp_check_ = CheckTimestamp(record.timestamp);
    if (timestamp_check_ == TimestampCheck::kValid) AdvanceStreamTime(record.timestamp);
    metadata_ = RecordMetadata{record.topic, record.partition, record.offset};
    current_timestamp_ = record.timestamp;
    current_headers_ = record.headers;
    failed_node_.reset();
    Status status = ForwardFrom(source->second, std::move(*decoded), std::nullopt);
    metadata_.reset();
    current_headers_.clear();
    timestamp_check_ = TimestampCheck::kValid;
    if (!status.ok()) {
      return status.WithContext("task " + id_.ToString() + ": node '" +
                                failed_node_.value_or(spec.name) + "' failed on " + tp.ToString() +
                                "@" + std::to_string(record.offset.value()));
    }
    positions_.insert_or_assign(tp, record.offset.Next());
    ++stats_.records_processed;
    return FireStreamTimePunctuations();
  }

  Status DeadLetterRecord(const ConsumedRecord& record, const Status& error) override {
    if (!initialized_ || closed_) {
      return Status::FailedPrecondition("task " + id_.ToString() +
                                        (closed_ ? " is closed" : " is not initialized"));
    }
    if (source_by_topic_.find(record.topic) == source_by_topic_.end() ||
        record.partition != id_.partition) {
      return Status::InvalidArgument("task " + id_.ToString() + " does not process partition " +
                                     TopicPartition{record.topic, record.partition}.ToString());
    }
    unprepared_work_ = true;
    return DeadLetter(record, error);
  }

  Status AdoptCommittedStreamTime(Timestamp committed) override {
    if (closed_) return Status::FailedPrecondition("task " + id_.ToString() + " is closed");
    if (HasUncommittedWork()) {
      return Status::FailedPrecondition("task " + id_.ToString() +
                                        ": stream time adopted with uncommitted work");
    }
    if (stream_time_ && committed <= *stream_time_) return Status::Ok();
    AdvanceStreamTime(committed);
    committed_stream_time_ = stream_time_;
    committed_.stream_time = stream_time_;
    return Status::Ok();
  }

  Status PunctuateWallClock() override {
    if (!initialized_ || closed_) {
      return Status::FailedPrecondition("task " + id_.ToString() +
                                        (closed_ ? " is closed" : " is not initialized"));
    }
    const Timestamp now = clock_->Now();
    std::vector<uint64_t> due;
    for (const auto& [id, schedule] : schedules_) {
      if (schedule.type == PunctuationType::kWallClockTime && schedule.next <= now) {
        due.push_back(id);
      }
    }
    for (uint64_t id : due) {
      auto it = schedules_.find(id);
      if (it == schedules_.end()) continue;  // Cancelled by an earlier punctuator.
      Schedule& schedule = it->second;
      const int64_t interval = schedule.interval.count();
      // Missed intervals are coalesced into this one call.
      const int64_t behind = now.millis() - schedule.next.millis();
      schedule.next = Timestamp(schedule.next.millis() + (behind / interval + 1) * interval);
      STREAMS_RETURN_IF_ERROR(Punctuate(id, now));
    }
    return Status::Ok();
  }

  bool commit_requested() const override { return commit_requested_; }

  bool HasUncommittedWork() const override {
    return state_->HasStagedWrites() || positions_ != committed_positions_ ||
           stream_time_ != committed_stream_time_ || stats_.records_processed > 0 ||
           stats_.records_dead_lettered > 0 || stats_.changelog_records > 0;
  }

  Status PrepareCommit() override {
    if (closed_) return Status::FailedPrecondition("task " + id_.ToString() + " is closed");
    // TTL stores: reads already hide expired entries (by stream time), so purging
    // here changes no result; it only decides in which cycle the tombstones are
    // written to the changelog.
    Result<size_t> purged = state_->PurgeExpired();
    if (!purged.ok()) {
      return purged.status().WithContext("task " + id_.ToString() + ": purging expired entries");
    }
    std::vector<state::ChangelogRecord> changelog = state_->TakeChangelog();
    for (state::ChangelogRecord& entry : changelog) {
      const state::StoreSpec* spec = FindStoreSpec(entry.store);
      if (spec == nullptr || !spec->logged) continue;
      ProducedRecord out;
      out.topic = Topology::ChangelogTopic(config_.application_id, entry.store);
      out.partition = id_.partition;
      out.timestamp = entry.timestamp;
      out.key = std::move(entry.key);
      out.value = std::move(entry.value);
      STREAMS_RETURN_IF_ERROR(collector_->Send(std::move(out))
                                  .WithContext("task " + id_.ToString() +
                                               ": sending changelog of '" + entry.store + "'"));
      ++stats_.changelog_records;
    }
    unprepared_work_ = false;
    return Status::Ok();
  }

  std::map<TopicPartition, Offset> ConsumedOffsets() const override { return positions_; }

  std::optional<Offset> ConsumedOffset(const TopicPartition& tp) const override {
    auto it = positions_.find(tp);
    if (it == positions_.end()) return std::nullopt;
    return it->second;
  }

  Status ResetInputOffsets(const std::map<TopicPartition, Offset>& committed) override {
    for (const auto& [tp, offset] : committed) {
      if (std::find(inputs_.begin(), inputs_.end(), tp) == inputs_.end()) {
        return Status::InvalidArgument("task " + id_.ToString() + " does not process partition " +
                                       tp.ToString());
      }
    }
    if (HasUncommittedWork()) {
      return Status::FailedPrecondition("task " + id_.ToString() +
                                        ": input offsets reset with uncommitted work");
    }
    for (const auto& [tp, offset] : committed) {
      committed_positions_.insert_or_assign(tp, offset);
      positions_.insert_or_assign(tp, offset);
    }
    return Status::Ok();
  }

  Status Commit(const std::map<std::string, Offset>& changelog_next_offsets) override {
    if (closed_) return Status::FailedPrecondition("task " + id_.ToString() + " is closed");
    if (unprepared_work_) {
      return Status::FailedPrecondition(
          "task " + id_.ToString() +
          ": records were processed after PrepareCommit; their changelog was not sent");
    }
    state::Checkpoint checkpoint;
    checkpoint.input_offsets = committed_.input_offsets;  // Keeps partitions of old topologies.
    for (const auto& [tp, offset] : positions_)
      checkpoint.input_offsets.insert_or_assign(tp, offset);
    checkpoint.changelog_offsets = committed_.changelog_offsets;
    for (const auto& [store, offset] : changelog_next_offsets) {
      const state::StoreSpec* spec = FindStoreSpec(store);
      if (spec == nullptr) {
        return Status::InvalidArgument("task " + id_.ToString() +
                                       ": changelog offset for unknown store '" + store + "'");
      }
      // In-memory stores restore from the beginning: they have no offset.
      if (spec->logged && spec->kind == state::StoreKind::kPersistent) {
        checkpoint.changelog_offsets.insert_or_assign(store, offset);
      }
    }
    checkpoint.stream_time = stream_time_;
    STREAMS_RETURN_IF_ERROR(
        state_->Commit(checkpoint)
            .WithContext("task " + id_.ToString() + ": committing local state"));
    committed_ = std::move(checkpoint);
    committed_positions_ = positions_;
    committed_stream_time_ = stream_time_;
    committed_schedules_ = schedules_;
    committed_next_schedule_id_ = next_schedule_id_;
    stats_ = {};
    commit_requested_ = false;
    return Status::Ok();
  }

  void Abort() override {
    if (closed_) return;
    state_->Abort();
    positions_ = committed_positions_;
    stream_time_ = committed_stream_time_;
    schedules_ = committed_schedules_;
    next_schedule_id_ = committed_next_schedule_id_;
    stats_ = {};
    commit_requested_ = false;
    unprepared_work_ = false;
  }

  const state::Checkpoint& committed_checkpoint() const override { return committed_; }

  std::optional<Timestamp> stream_time() const override { return stream_time_; }

  state::KeyValueStore* GetStore(std::string_view name) override {
    return closed_ ? nullptr : state_->GetStore(name);
  }

  const TaskCycleStats& cycle_stats() const override { return stats_; }

  uint64_t ApproximateStateBytes() override { return closed_ ? 0 : state_->ApproximateSizeBytes(); }

  std::map<std::string, uint64_t> ApproximateStoreEntries() override {
    std::map<std::string, uint64_t> entries;
    if (closed_) return entries;
    for (const state::StoreSpec& spec : topology_.stores()) {
      if (state::KeyValueStore* store = state_->GetStore(spec.name)) {
        entries[spec.name] = store->ApproximateNumEntries();
      }
    }
    return entries;
  }

  Status Close(bool clean) override {
    if (closed_) return Status::Ok();
    if (clean && state_->HasStagedWrites()) {
      spdlog::warn("task {}: closing with uncommitted state; it is dropped", id_.ToString());
    }
    // Processors first (they may use their stores while closing), in topological order.
    for (size_t i = 0; i < instances_.size() && initialized_count_ > 0; ++i) {
      if (!instances_[i]) continue;
      instances_[i]->Close();
      --initialized_count_;
    }
    closed_ = true;
    state_->Abort();
    return state_->Close().WithContext("task " + id_.ToString() + ": closing state");
  }

  // --- Services for NodeContextImpl.

  const std::string& application_id() const { return config_.application_id; }
  const std::optional<RecordMetadata>& metadata() const { return metadata_; }
  const Headers& current_headers() const { return current_headers_; }
  Timestamp current_timestamp() const { return current_timestamp_; }
  Timestamp stream_time_or_zero() const { return stream_time_.value_or(Timestamp(0)); }
  bool has_stream_time() const { return stream_time_.has_value(); }
  TimestampCheck timestamp_check() const { return timestamp_check_; }
  Timestamp wall_clock_time() const { return clock_->Now(); }
  RecordCollector* collector() const { return collector_; }
  void RequestCommit() { commit_requested_ = true; }

  state::KeyValueStore* StoreFor(size_t node, std::string_view name) {
    if (closed_) return nullptr;
    const auto& stores = topology_.nodes()[node].stores;
    if (std::find(stores.begin(), stores.end(), name) == stores.end()) return nullptr;
    return state_->GetStore(name);
  }

  Result<PunctuationId> AddSchedule(size_t node, std::chrono::milliseconds interval,
                                    PunctuationType type, Punctuator punctuator) {
    if (interval.count() <= 0) {
      return Status::InvalidArgument("punctuation interval must be positive, got " +
                                     std::to_string(interval.count()) + " ms");
    }
    if (!punctuator) return Status::InvalidArgument("punctuator is empty");
    Schedule schedule;
    schedule.node = node;
    schedule.interval = interval;
    schedule.type = type;
    schedule.punctuator = std::move(punctuator);
    if (type == PunctuationType::kStreamTime) {
      // Aligned to multiples of the interval; the first one after the current stream time.
      schedule.next = NextMultipleAfter(stream_time_or_zero(), interval.count());
    } else {
      schedule.next = Timestamp(clock_->Now().millis() + interval.count());
    }
    const uint64_t id = next_schedule_id_++;
    schedules_.emplace(id, std::move(schedule));
    return PunctuationId(id);
  }

  void CancelSchedule(PunctuationId id) { schedules_.erase(id.value()); }

  // Sends `record` from `node` to its children (all, or the one named `child`).
  Status ForwardFrom(size_t node, AnyRecord record, std::optional<std::string_view> child) {
    const std::vector<size_t>& children = children_[node];
    if (child) {
      for (size_t c : children) {
        if (topology_.nodes()[c].name == *child) return RunNode(c, std::move(record));
      }
      return Status::NotFound("node '" + topology_.nodes()[node].name + "' has no child '" +
                              std::string(*child) + "'");
    }
    for (size_t i = 0; i < children.size(); ++i) {
      const bool last = i + 1 == children.size();
      STREAMS_RETURN_IF_ERROR(RunNode(children[i], last ? std::move(record) : record));
    }
    return Status::Ok();
  }

 private:
  const state::StoreSpec* FindStoreSpec(std::string_view name) const {
    for (const state::StoreSpec& spec : topology_.stores()) {
      if (spec.name == name) return &spec;
    }
    return nullptr;
  }

  TimestampCheck CheckTimestamp(Timestamp t) const {
    if (t.millis() < 0 || t.millis() > kMaxValidTimestampMillis) return TimestampCheck::kInvalid;
    const auto& max_lead = topology_.timestamp_policy().max_lead;
    if (max_lead && stream_time_) {
      // Ahead of what? Stream time alone would stop a partition for good after
      // an idle gap longer than max_lead (every later record would be "ahead"),
      // so the reference is the later of stream time and the clock: with
      // producers' clocks in sync, a record is never ahead of the processing
      // host's clock by more than the skew. The first record of a new task
      // (no stream time yet) is not bounded.
      const int64_t reference = std::max(stream_time_->millis(), clock_->Now().millis());
      if (t.millis() - reference > max_lead->count()) return TimestampCheck::kTooFarAhead;
    }
    return TimestampCheck::kValid;
  }

  void AdvanceStreamTime(Timestamp t) {
    if (!stream_time_ || t > *stream_time_) stream_time_ = t;
    state_->AdvanceStreamTime(t);
  }

  // Runs `record` through node `node`; the record's timestamp and headers are
  // the context's while it runs.
  Status RunNode(size_t node, AnyRecord record) {
    const Timestamp saved_timestamp = current_timestamp_;
    Headers saved_headers = std::move(current_headers_);
    current_timestamp_ = record.timestamp;
    current_headers_ = record.headers;
    Status status = instances_[node]->Process(std::move(record));
    current_timestamp_ = saved_timestamp;
    current_headers_ = std::move(saved_headers);
    if (!status.ok() && !failed_node_) failed_node_ = topology_.nodes()[node].name;
    return status;
  }

  Status DeadLetter(const ConsumedRecord& record, const Status& error) {
    ProducedRecord out;
    out.topic =
        config_.dead_letter_topic.empty() ? record.topic + ".dlq" : config_.dead_letter_topic;
    out.timestamp = record.timestamp;
    out.key = record.key;
    out.value = record.value;
    out.headers = record.headers;
    if (const Redactor& redact = topology_.dead_letter_redactor()) {
      if (out.key) out.key = redact(*out.key);
      if (out.value) out.value = redact(*out.value);
      for (Header& header : out.headers) {
        header.key = redact(header.key);
        header.value = redact(header.value);
      }
    }
    out.headers.push_back(Header{kDlqErrorHeader, error.message()});
    out.headers.push_back(Header{kDlqErrorClassHeader, std::string(StatusCodeName(error.code()))});
    out.headers.push_back(Header{kDlqTopicHeader, record.topic});
    out.headers.push_back(Header{kDlqPartitionHeader, std::to_string(record.partition.value())});
    out.headers.push_back(Header{kDlqOffsetHeader, std::to_string(record.offset.value())});
    const TopicPartition tp{record.topic, record.partition};
    // Never log payloads: the error message of a serde names sizes and types
    // only, and processors' errors name fields, not values.
    spdlog::warn("task {}: record {}@{} sent to dead-letter topic {}: {}", id_.ToString(),
                 tp.ToString(), record.offset.value(), out.topic, error.ToString());
    const std::string dlq_topic = out.topic;
    STREAMS_RETURN_IF_ERROR(
        collector_->Send(std::move(out))
            .WithContext("task " + id_.ToString() + ": sending to dead-letter topic " + dlq_topic));
    positions_.insert_or_assign(tp, record.offset.Next());
    ++stats_.records_dead_lettered;
    return Status::Ok();
  }

  Status FireStreamTimePunctuations() {
    if (!stream_time_) return Status::Ok();
    const Timestamp now = *stream_time_;
    std::vector<uint64_t> due;
    for (const auto& [id, schedule] : schedules_) {
      if (schedule.type == PunctuationType::kStreamTime && schedule.next <= now) {
        due.push_back(id);
      }
    }
    for (uint64_t id : due) {
      auto it = schedules_.find(id);
      if (it == schedules_.end()) continue;  // Cancelled by an earlier punctuator.
      // Every multiple passed since the last call is coalesced into this one.
      it->second.next = NextMultipleAfter(now, it->second.interval.count());
      STREAMS_RETURN_IF_ERROR(Punctuate(id, now));
    }
    return Status::Ok();
  }

  Status Punctuate(uint64_t id, Timestamp time) {
    auto it = schedules_.find(id);
    const size_t node = it->second.node;
    // A copy: the punctuator may cancel itself.
    Punctuator punctuator = it->second.punctuator;
    metadata_.reset();
    current_headers_.clear();
    current_timestamp_ = time;
    failed_node_.reset();
    unprepared_work_ = true;
    Status status = punctuator(time);
    if (!status.ok()) {
      return status.WithContext("task " + id_.ToString() + ": punctuator of node '" +
                                topology_.nodes()[node].name + "'" +
                                (failed_node_ ? " (failed in node '" + *failed_node_ + "')" : ""));
    }
    return Status::Ok();
  }

  const Topology& topology_;
  const TaskId id_;
  const TaskConfig config_;
  std::unique_ptr<state::TaskState> state_;
  RecordCollector* collector_;
  const Clock* clock_;

  std::vector<std::vector<size_t>> children_;
  std::vector<std::unique_ptr<NodeContextImpl>> contexts_;
  std::vector<std::unique_ptr<internal::NodeInstance>> instances_;
  std::map<std::string, size_t, std::less<>> source_by_topic_;
  std::vector<TopicPartition> inputs_;

  bool initialized_ = false;
  size_t initialized_count_ = 0;
  bool closed_ = false;
  bool commit_requested_ = false;
  // Records or punctuations ran since the last PrepareCommit.
  bool unprepared_work_ = false;

  // The record being processed.
  std::optional<RecordMetadata> metadata_;
  Timestamp current_timestamp_;
  Headers current_headers_;
  std::optional<std::string> failed_node_;

  std::optional<Timestamp> stream_time_;
  TimestampCheck timestamp_check_ = TimestampCheck::kValid;
  std::map<TopicPartition, Offset> positions_;
  std::map<uint64_t, Schedule> schedules_;
  uint64_t next_schedule_id_ = 1;
  TaskCycleStats stats_;

  // As of the last commit (what Abort rewinds to).
  state::Checkpoint committed_;
  std::map<TopicPartition, Offset> committed_positions_;
  std::optional<Timestamp> committed_stream_time_;
  std::map<uint64_t, Schedule> committed_schedules_;
  uint64_t committed_next_schedule_id_ = 1;
};

const TaskId& NodeContextImpl::task_id() const { return task_->id(); }
const std::string& NodeContextImpl::application_id() const { return task_->application_id(); }
const std::optional<RecordMetadata>& NodeContextImpl::record_metadata() const {
  return task_->metadata();
}
const Headers& NodeContextImpl::headers() const { return task_->current_headers(); }
Timestamp NodeContextImpl::timestamp() const { return task_->current_timestamp(); }
Timestamp NodeContextImpl::stream_time() const { return task_->stream_time_or_zero(); }
bool NodeContextImpl::has_stream_time() const { return task_->has_stream_time(); }
TimestampCheck NodeContextImpl::timestamp_check() const { return task_->timestamp_check(); }
Timestamp NodeContextImpl::wall_clock_time() const { return task_->wall_clock_time(); }
state::KeyValueStore* NodeContextImpl::GetStateStore(std::string_view name) {
  return task_->StoreFor(node_, name);
}
Result<PunctuationId> NodeContextImpl::Schedule(std::chrono::milliseconds interval,
                                                PunctuationType type, Punctuator punctuator) {
  return task_->AddSchedule(node_, interval, type, std::move(punctuator));
}
void NodeContextImpl::Cancel(PunctuationId id) { task_->CancelSchedule(id); }
void NodeContextImpl::RequestCommit() { task_->RequestCommit(); }
Status NodeContextImpl::ForwardAny(AnyRecord record, std::optional<std::string_view> child) {
  return task_->ForwardFrom(node_, std::move(record), child);
}
Result<int32_t> NodeContextImpl::PartitionCount(const std::string& topic) {
  return task_->collector()->PartitionCount(topic);
}
Status NodeContextImpl::Send(ProducedRecord record) {
  return task_->collector()->Send(std::move(record));
}

}  // namespace

Result<std::unique_ptr<StreamTask>> StreamTask::Create(const Topology& topology, TaskId id,
                                                       TaskConfig config,
                                                       state::StateResources* resources,
                                                       RecordCollector* collector,
                                                       const Clock* clock) {
  if (collector == nullptr || clock == nullptr || resources == nullptr) {
    return Status::InvalidArgument("task " + id.ToString() +
                                   ": resources, collector and clock are required");
  }
  if (config.application_id.empty()) {
    return Status::InvalidArgument("task " + id.ToString() + ": application_id is empty");
  }
  if (config.state_directory.empty()) {
    return Status::InvalidArgument("task " + id.ToString() + ": state_directory is empty");
  }
  std::error_code ec;
  std::filesystem::create_directories(config.state_directory, ec);
  if (ec) {
    return Status::IoError("task " + id.ToString() + ": cannot create state directory " +
                           config.state_directory + ": " + ec.message());
  }
  auto state = state::TaskState::Open(config.state_directory, topology.stores(), resources);
  if (!state.ok()) return state.status().WithContext("task " + id.ToString());
  return std::unique_ptr<StreamTask>(new StreamTaskImpl(topology, std::move(id), std::move(config),
                                                        std::move(*state), collector, clock));
}

}  // namespace streams
