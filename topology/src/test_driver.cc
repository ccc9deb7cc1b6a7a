#include "streams/test_driver.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "streams/state/state_resources.h"
#include "streams/stream_task.h"

namespace streams {
namespace {

// Restore reads changelog records in batches of this size.
constexpr size_t kRestoreBatchSize = 1000;

class TopologyTestDriverImpl;

// Stages the records of the current cycle; the driver publishes them on commit.
class DriverCollector final : public RecordCollector {
 public:
  explicit DriverCollector(TopologyTestDriverImpl* driver) : driver_(driver) {}
  Result<int32_t> PartitionCount(const std::string& topic) override;
  Status Send(ProducedRecord record) override;

 private:
  TopologyTestDriverImpl* driver_;
};

class TopologyTestDriverImpl final : public TopologyTestDriver {
 public:
  TopologyTestDriverImpl(const Topology& topology, TestDriverOptions options, std::string root,
                         bool owns_root, int32_t task_count,
                         std::unique_ptr<state::StateResources> resources)
      : topology_(topology),
        options_(std::move(options)),
        root_(std::move(root)),
        owns_root_(owns_root),
        task_count_(task_count),
        clock_(options_.initial_wall_clock),
        resources_(std::move(resources)),
        collector_(this) {
    for (const state::StoreSpec& spec : topology_.stores()) {
      changelog_topics_.insert(Topology::ChangelogTopic(options_.application_id, spec.name));
    }
  }

  ~TopologyTestDriverImpl() override {
    tasks_.clear();  // Closes every task (and its database) before the files go.
    if (owns_root_) {
      std::error_code ec;
      std::filesystem::remove_all(root_, ec);
      if (ec) spdlog::warn("test driver: cannot remove {}: {}", root_, ec.message());
    }
  }

  Status PipeInput(const std::string& topic, std::optional<std::string> key,
                   std::optional<std::string> value, Timestamp timestamp, Headers headers,
                   std::optional<Partition> partition) override {
    const auto& sources = topology_.source_topics();
    if (std::find(sources.begin(), sources.end(), topic) == sources.end()) {
      return Status::NotFound("topic '" + topic + "' is not read by the topology");
    }
    const int32_t count = PartitionCountOf(topic);
    Partition p = partition.value_or(PartitionForKey(key, count));
    if (p.value() < 0 || p.value() >= count) {
      return Status::InvalidArgument("partition " + std::to_string(p.value()) + " of topic '" +
                                     topic + "' does not exist (" + std::to_string(count) +
                                     " partitions)");
    }
    TestRecord record;
    record.topic = topic;
    record.partition = p;
    record.timestamp = timestamp;
    record.key = std::move(key);
    record.value = std::move(value);
    record.headers = std::move(headers);
    const Offset offset = Append(std::move(record));
    input_log_.push_back(InputRef{TopicPartition{topic, p}, offset});
    STREAMS_RETURN_IF_ERROR(ProcessPending());
    if (options_.auto_commit) return Commit();
    return Status::Ok();
  }

  std::vector<TestRecord> ReadOutput(const std::string& topic) override {
    std::vector<TestRecord> out;
    auto it = topics_.find(topic);
    if (it == topics_.end()) return out;
    for (size_t p = 0; p < it->second.size(); ++p) {
      size_t& cursor = read_cursors_[TopicPartition{topic, Partition(static_cast<int32_t>(p))}];
      const auto& log = it->second[p];
      for (; cursor < log.size(); ++cursor) out.push_back(log[cursor]);
    }
    return out;
  }

  std::vector<TestRecord> AllRecords(const std::string& topic) const override {
    std::vector<TestRecord> out;
    auto it = topics_.find(topic);
    if (it == topics_.end()) return out;
    for (const auto& log : it->second) out.insert(out.end(), log.begin(), log.end());
    return out;
  }

  Status Commit() override {
    // 1. Changelogs of every task join the cycle's outputs.
    for (auto& [partition, task] : tasks_) {
      if (!HasWork(*task)) continue;
      Status status = task->PrepareCommit();
      if (!status.ok()) {
        STREAMS_RETURN_IF_ERROR(Abort());
        return status.WithContext("commit aborted");
      }
    }
    // 2. The "Kafka transaction" commits: outputs, changelogs and offsets.
    std::map<TopicPartition, Offset> ends = PublishStaged();
    for (auto& [partition, task] : tasks_) {
      for (const auto& [tp, offset] : task->ConsumedOffsets()) {
        group_offsets_.insert_or_assign(tp, offset);
      }
    }
    // 3. Local state follows.
    for (auto& [partition, task] : tasks_) {
      if (!HasWork(*task)) continue;
      STREAMS_RETURN_IF_ERROR(task->Commit(ChangelogEnds(partition, ends)));
    }
    return Status::Ok();
  }

  Status Abort() override {
    staged_.clear();
    for (auto& [partition, task] : tasks_) task->Abort();
    next_input_ = 0;  // Aborted input is read again from the committed offsets.
    return Status::Ok();
  }

  Status SimulateCrash(CrashPoint point) override {
    if (point == CrashPoint::kAfterKafkaCommit) {
      for (auto& [partition, task] : tasks_) {
        if (HasWork(*task)) STREAMS_RETURN_IF_ERROR(task->PrepareCommit());
      }
      PublishStaged();
      for (auto& [partition, task] : tasks_) {
        for (const auto& [tp, offset] : task->ConsumedOffsets()) {
          group_offsets_.insert_or_assign(tp, offset);
        }
      }
      // ... and the process dies before StreamTask::Commit.
    }
    staged_.clear();
    std::vector<int32_t> partitions;
    for (const auto& [partition, task] : tasks_) partitions.push_back(partition);
    tasks_.clear();  // Uncommitted local state is dropped with the tasks.

    for (int32_t partition : partitions) {
      auto task = GetOrCreateTask(partition);
      if (!task.ok()) return task.status().WithContext("restart after simulated crash");
    }
    next_input_ = 0;
    STREAMS_RETURN_IF_ERROR(ProcessPending());
    if (options_.auto_commit) return Commit();
    return Status::Ok();
  }

  Status AdvanceWallClockTime(std::chrono::milliseconds by) override {
    clock_.Advance(by.count());
    for (auto& [partition, task] : tasks_) {
      Status status = task->PunctuateWallClock();
      if (!status.ok()) {
        STREAMS_RETURN_IF_ERROR(Abort());
        return status;
      }
    }
    if (options_.auto_commit) return Commit();
    return Status::Ok();
  }

  state::KeyValueStore* GetStore(const std::string& name, Partition partition) override {
    if (partition.value() < 0 || partition.value() >= task_count_) return nullptr;
    auto task = GetOrCreateTask(partition.value());
    if (!task.ok()) {
      spdlog::warn("test driver: cannot create task for partition {}: {}", partition.value(),
                   task.status().ToString());
      return nullptr;
    }
    return (*task)->GetStore(name);
  }

  std::map<TopicPartition, Offset> CommittedOffsets() const override { return group_offsets_; }

  // --- For DriverCollector.

  int32_t PartitionCountOf(const std::string& topic) const {
    auto it = options_.partition_counts.find(topic);
    if (it != options_.partition_counts.end()) return it->second;
    if (changelog_topics_.count(topic) > 0) return task_count_;
    return options_.default_partitions;
  }

  Status Stage(ProducedRecord record) {
    const int32_t count = PartitionCountOf(record.topic);
    if (!record.partition) record.partition = PartitionForKey(record.key, count);
    if (record.partition->value() < 0 || record.partition->value() >= count) {
      return Status::InvalidArgument("partition " + std::to_string(record.partition->value()) +
                                     " of topic '" + record.topic + "' does not exist (" +
                                     std::to_string(count) + " partitions)");
    }
    staged_.push_back(std::move(record));
    return Status::Ok();
  }

 private:
  struct InputRef {
    TopicPartition tp;
    Offset offset;
  };

  // The driver's partitioner for records without an explicit partition: the
  // Java client's murmur2 for a non-empty key, partition 0 otherwise (the real
  // producer spreads null keys; the driver stays deterministic).
  static Partition PartitionForKey(const std::optional<std::string>& key, int32_t count) {
    if (key && !key->empty()) return DefaultPartitionForKey(*key, count);
    return Partition(0);
  }

  static bool HasWork(StreamTask& task) {
    return task.HasUncommittedWork() || task.commit_requested();
  }

  std::vector<std::vector<TestRecord>>& TopicLog(const std::string& topic) {
    auto& log = topics_[topic];
    if (log.empty()) log.resize(static_cast<size_t>(PartitionCountOf(topic)));
    return log;
  }

  Offset Append(TestRecord record) {
    auto& log = TopicLog(record.topic)[static_cast<size_t>(record.partition.value())];
    record.offset = Offset(static_cast<int64_t>(log.size()));
    const Offset offset = record.offset;
    log.push_back(std::move(record));
    return offset;
  }

  // Appends the staged records to their topics; returns the end offset of
  // every partition written.
  std::map<TopicPartition, Offset> PublishStaged() {
    std::map<TopicPartition, Offset> ends;
    for (ProducedRecord& produced : staged_) {
      TestRecord record;
      record.topic = std::move(produced.topic);
      record.partition = *produced.partition;
      record.timestamp = produced.timestamp;
      record.key = std::move(produced.key);
      record.value = std::move(produced.value);
      record.headers = std::move(produced.headers);
      TopicPartition tp{record.topic, record.partition};
      const Offset offset = Append(std::move(record));
      ends.insert_or_assign(std::move(tp), offset.Next());
    }
    staged_.clear();
    return ends;
  }

  std::map<std::string, Offset> ChangelogEnds(int32_t partition,
                                              const std::map<TopicPartition, Offset>& ends) const {
    std::map<std::string, Offset> result;
    for (const state::StoreSpec& spec : topology_.stores()) {
      if (!spec.logged) continue;
      auto it = ends.find(TopicPartition{
          Topology::ChangelogTopic(options_.application_id, spec.name), Partition(partition)});
      if (it != ends.end()) result.emplace(spec.name, it->second);
    }
    return result;
  }

  // The task of `partition`, created, restored and initialized on first use.
  Result<StreamTask*> GetOrCreateTask(int32_t partition) {
    auto it = tasks_.find(partition);
    if (it != tasks_.end()) return it->second.get();
    TaskId id{Partition(partition)};
    TaskConfig config;
    config.application_id = options_.application_id;
    config.state_directory =
        (std::filesystem::path(root_) / options_.application_id / id.ToString()).string();
    config.dead_letter_topic = options_.dead_letter_topic;
    STREAMS_ASSIGN_OR_RETURN(std::unique_ptr<StreamTask> task,
                             StreamTask::Create(topology_, id, std::move(config), resources_.get(),
                                                &collector_, &clock_));
    STREAMS_RETURN_IF_ERROR(Restore(*task));
    // The group, not the local checkpoint, says where consumption resumes.
    std::map<TopicPartition, Offset> positions;
    for (const TopicPartition& tp : task->input_partitions()) {
      auto group = group_offsets_.find(tp);
      positions.emplace(tp, group == group_offsets_.end() ? Offset(0) : group->second);
    }
    STREAMS_RETURN_IF_ERROR(task->ResetInputOffsets(positions));
    STREAMS_RETURN_IF_ERROR(task->InitializeProcessors());
    StreamTask* raw = task.get();
    tasks_.emplace(partition, std::move(task));
    return raw;
  }

  Status Restore(StreamTask& task) {
    for (const RestoreSpec& spec : task.RestoreSpecs()) {
      auto topic = topics_.find(spec.changelog.topic);
      if (topic == topics_.end()) continue;
      const auto& log = topic->second[static_cast<size_t>(spec.changelog.partition.value())];
      size_t next = static_cast<size_t>(spec.from.value_or(Offset(0)).value());
      if (next > log.size()) {
        spdlog::warn(
            "test driver: checkpoint of store '{}' is at offset {} but its changelog {} ends at "
            "{}; keeping the local state",
            spec.store, next, spec.changelog.ToString(), log.size());
        continue;
      }
      while (next < log.size()) {
        std::vector<state::ChangelogRecord> batch;
        const size_t end = std::min(log.size(), next + kRestoreBatchSize);
        for (; next < end; ++next) {
          const TestRecord& record = log[next];
          batch.push_back(state::ChangelogRecord{spec.store, record.key.value_or(std::string()),
                                                 record.value, record.timestamp});
        }
        STREAMS_RETURN_IF_ERROR(
            task.ApplyRestoreBatch(spec.store, batch, Offset(static_cast<int64_t>(next))));
      }
    }
    return Status::Ok();
  }

  // Processes every input record after its task's position, in the order the
  // records were piped. On error the cycle is aborted.
  Status ProcessPending() {
    for (; next_input_ < input_log_.size(); ++next_input_) {
      const InputRef& ref = input_log_[next_input_];
      auto task = GetOrCreateTask(ref.tp.partition.value());
      if (!task.ok()) return task.status();
      const auto positions = (*task)->ConsumedOffsets();
      auto position = positions.find(ref.tp);
      if (position != positions.end() && ref.offset < position->second) continue;
      const TestRecord& record =
          topics_.at(ref.tp.topic)[static_cast<size_t>(ref.tp.partition.value())]
                                  [static_cast<size_t>(ref.offset.value())];
      ConsumedRecord consumed;
      consumed.topic = record.topic;
      consumed.partition = record.partition;
      consumed.offset = record.offset;
      consumed.timestamp = record.timestamp;
      consumed.key = record.key;
      consumed.value = record.value;
      consumed.headers = record.headers;
      Status status = (*task)->Process(consumed);
      if (!status.ok()) {
        STREAMS_RETURN_IF_ERROR(Abort());
        return status;
      }
    }
    return Status::Ok();
  }

  const Topology& topology_;
  const TestDriverOptions options_;
  const std::string root_;
  const bool owns_root_;
  const int32_t task_count_;
  ManualClock clock_;
  std::unique_ptr<state::StateResources> resources_;
  DriverCollector collector_;
  std::set<std::string> changelog_topics_;

  // Committed records: topic -> partition -> records (offset = index).
  std::map<std::string, std::vector<std::vector<TestRecord>>> topics_;
  std::map<TopicPartition, size_t> read_cursors_;
  // Input records in the order they were piped, and the first one that may
  // still need processing.
  std::vector<InputRef> input_log_;
  size_t next_input_ = 0;
  // Records sent in the current cycle, partition resolved.
  std::vector<ProducedRecord> staged_;
  std::map<TopicPartition, Offset> group_offsets_;
  // Declared last: tasks are destroyed before the collector, clock and resources.
  std::map<int32_t, std::unique_ptr<StreamTask>> tasks_;
};

Result<int32_t> DriverCollector::PartitionCount(const std::string& topic) {
  return driver_->PartitionCountOf(topic);
}

Status DriverCollector::Send(ProducedRecord record) { return driver_->Stage(std::move(record)); }

bool IsValidApplicationId(std::string_view id) {
  if (id.empty() || id.size() > 200) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

}  // namespace

Result<std::unique_ptr<TopologyTestDriver>> TopologyTestDriver::Create(const Topology& topology,
                                                                       TestDriverOptions options) {
  if (!IsValidApplicationId(options.application_id)) {
    return Status::InvalidArgument("test driver: invalid application_id '" +
                                   options.application_id + "'");
  }
  if (options.default_partitions < 1) {
    return Status::InvalidArgument("test driver: default_partitions must be at least 1");
  }
  for (const auto& [topic, count] : options.partition_counts) {
    if (count < 1) {
      return Status::InvalidArgument("test driver: topic '" + topic +
                                     "' must have at least 1 partition");
    }
  }
  // One sub-topology: every source topic must have the same number of partitions.
  std::optional<int32_t> task_count;
  for (const std::string& topic : topology.source_topics()) {
    auto it = options.partition_counts.find(topic);
    const int32_t count =
        it == options.partition_counts.end() ? options.default_partitions : it->second;
    if (task_count && *task_count != count) {
      return Status::InvalidArgument(
          "test driver: source topics are not co-partitioned (partition counts differ, e.g. "
          "for '" +
          topic + "')");
    }
    task_count = count;
  }

  std::string root = options.state_directory;
  const bool owns_root = root.empty();
  if (owns_root) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "streams-test-driver-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return Status::IoError("test driver: mkdtemp failed: " + std::string(std::strerror(errno)));
    }
    root = pattern;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
    if (ec) {
      return Status::IoError("test driver: cannot create " + root + ": " + ec.message());
    }
  }

  state::StateOptions state_options;
  state_options.block_cache_bytes = 8 << 20;
  state_options.write_buffer_bytes = 16 << 20;
  state_options.write_buffer_size_per_store = 1 << 20;
  auto resources = state::StateResources::Create(state_options);
  if (!resources.ok()) {
    if (owns_root) {
      std::error_code ec;
      std::filesystem::remove_all(root, ec);
    }
    return resources.status().WithContext("test driver");
  }
  const int32_t tasks = task_count.value_or(options.default_partitions);
  return std::unique_ptr<TopologyTestDriver>(new TopologyTestDriverImpl(
      topology, std::move(options), std::move(root), owns_root, tasks, std::move(*resources)));
}

}  // namespace streams
