#include "task_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "fault_injection.h"
#include "streams/state/task_state.h"

namespace streams::runtime::internal {
namespace {

ConsumedRecord ToConsumedRecord(const rd_kafka_message_t* m) {
  ConsumedRecord r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = Partition(m->partition);
  r.offset = Offset(m->offset);
  rd_kafka_timestamp_type_t type;
  int64_t ts = rd_kafka_message_timestamp(m, &type);
  // -1 when the producer set none: kept, so the task judges it (TimestampCheck::kInvalid)
  // the same way on every replay instead of substituting the wall clock.
  r.timestamp = Timestamp(ts);
  if (m->key != nullptr) r.key.emplace(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value.emplace(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      r.headers.push_back(Header{name, value != nullptr
                                           ? std::string(static_cast<const char*>(value), size)
                                           : std::string()});
    }
  }
  return r;
}

}  // namespace

TaskManager::TaskManager(ThreadShared* shared, std::string log_name,
                         KafkaRecordCollector* collector, ChangelogReader* reader,
                         const std::atomic<bool>* stop, std::function<void()> on_tasks_changed)
    : shared_(shared),
      config_(*shared->config),
      log_name_(std::move(log_name)),
      collector_(collector),
      reader_(reader),
      stop_(stop),
      on_tasks_changed_(std::move(on_tasks_changed)) {}

TaskManager::~TaskManager() = default;

bool TaskManager::Running(const TaskEntry& entry) const {
  return !reader_->IsRestoring(entry.task->id().partition);
}

std::vector<TaskId> TaskManager::task_ids() const {
  std::vector<TaskId> ids;
  ids.reserve(tasks_.size());
  for (const auto& [partition, entry] : tasks_) ids.push_back(TaskId{partition});
  return ids;
}

size_t TaskManager::restoring_count() const {
  size_t count = 0;
  for (const auto& [partition, entry] : tasks_) count += Running(entry) ? 0 : 1;
  return count;
}

void TaskManager::TasksChanged() {
  for (const auto& [partition, entry] : tasks_) {
    shared_->metrics->SetTaskState(TaskId{partition}.ToString(), !Running(entry));
  }
  if (on_tasks_changed_) on_tasks_changed_();
}

// ---------------------------------------------------------------------------
// Assignment

Result<std::unique_ptr<StreamTask>> TaskManager::OpenTask(Partition partition) {
  TaskId id{partition};
  TaskConfig task_config;
  task_config.application_id = config_.application_id();
  task_config.state_directory = config_.TaskStateDir(id);
  task_config.dead_letter_topic = config_.dead_letter_topic();
  return StreamTask::Create(*shared_->topology, id, std::move(task_config), shared_->resources,
                            collector_, shared_->clock);
}

std::map<Partition, Result<std::unique_ptr<StreamTask>>> TaskManager::OpenTasks(
    const std::vector<Partition>& partitions) {
  std::map<Partition, Result<std::unique_ptr<StreamTask>>> out;
  for (Partition p : partitions) out.emplace(p, Status::Internal("not opened"));
  // Opening a task's RocksDB replays its write-ahead log after a crash (a few
  // hundred ms per task): the tasks of one assignment open side by side, on
  // up to as many threads as the machine has cores.
  // This thread is one of the workers; with one core no thread is started.
  const size_t workers = std::min<size_t>(
      partitions.size(), std::max<unsigned>(1, std::thread::hardware_concurrency()));
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t i = next++; i < partitions.size(); i = next++) {
      // Each worker writes only its own, pre-created entry of `out`.
      out.at(partitions[i]) = OpenTask(partitions[i]);
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < workers; ++i) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  return out;
}

Result<bool> TaskManager::BeginRestore(Partition partition, TaskEntry& entry) {
  Result<bool> registered = reader_->Register(entry.task.get());
  if (registered.ok() || registered.status().code() != StatusCode::kCorruption) {
    return registered;
  }
  spdlog::warn("[{}] task {}: {}; wiping its local state and restoring from the beginning",
               log_name_, TaskId{partition}.ToString(), registered.status().message());
  (void)entry.task->Close(false);  // Deliberately ignored: the state is wiped below.
  entry.task.reset();
  STREAMS_RETURN_IF_ERROR(state::DestroyTaskState(config_.TaskStateDir(TaskId{partition})));
  STREAMS_ASSIGN_OR_RETURN(entry.task, OpenTask(partition));
  // A second Corruption (the fresh state has no checkpoint) cannot happen;
  // if it does, it is returned.
  return reader_->Register(entry.task.get());
}

Result<std::map<TopicPartition, TaskManager::CommittedPosition>> TaskManager::FetchCommitted(
    const rd_kafka_topic_partition_list_t* partitions) {
  PartitionList committed(rd_kafka_topic_partition_list_copy(partitions));
  STREAMS_RETURN_IF_ERROR(RetryLookup(
      [&](int timeout_ms) {
        for (int i = 0; i < committed->cnt; ++i) {
          committed->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
          committed->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        rd_kafka_resp_err_t err = rd_kafka_committed(consumer_, committed.get(), timeout_ms);
        // A partition-level error (e.g. UNSTABLE_OFFSET_COMMIT) fails the
        // lookup: "no offset" may only come from a successful answer.
        for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < committed->cnt; ++i) {
          err = committed->elems[i].err;
        }
        return err;
      },
      "fetching the committed offsets of " + PartitionListString(partitions),
      config_.offsets_lookup_timeout(), *stop_, log_name_));
  std::map<TopicPartition, CommittedPosition> out;
  for (int i = 0; i < committed->cnt; ++i) {
    const auto& e = committed->elems[i];
    if (e.offset < 0) continue;  // None committed.
    CommittedPosition position;
    position.offset = Offset(e.offset);
    if (e.metadata != nullptr && e.metadata_size > 0) {
      position.stream_time = DecodeStreamTimeMetadata(
          std::string_view(static_cast<const char*>(e.metadata), e.metadata_size));
    }
    out.emplace(TopicPartition{e.topic, Partition(e.partition)}, position);
  }
  return out;
}

Status TaskManager::Assign(rd_kafka_topic_partition_list_t* partitions, bool incremental) {
  STREAMS_ASSIGN_OR_RETURN(auto committed_offsets, FetchCommitted(partitions));

  std::map<Partition, std::vector<TopicPartition>> by_task;
  for (int i = 0; i < partitions->cnt; ++i) {
    by_task[Partition(partitions->elems[i].partition)].push_back(
        TopicPartition{partitions->elems[i].topic, Partition(partitions->elems[i].partition)});
  }

  std::vector<Partition> to_open;
  for (const auto& [partition, inputs] : by_task) {
    ReleaseStandby(partition);
    to_open.push_back(partition);
  }
  std::map<Partition, Result<std::unique_ptr<StreamTask>>> opened = OpenTasks(to_open);

  std::vector<TopicPartition> paused;
  std::map<TopicPartition, Offset> starts;
  for (auto& [partition, inputs] : by_task) {
    const std::string task_name = TaskId{partition}.ToString();
    Result<std::unique_ptr<StreamTask>> task = std::move(opened.at(partition));
    if (!task.ok()) return task.status().WithContext("opening task " + task_name);
    TaskEntry entry;
    entry.task = std::move(*task);
    entry.inputs = inputs;
    // Closes the task being set up on an error (the error is reported).
    const auto fail = [&](Status status) {
      reader_->Unregister(partition);
      (void)entry.task->Close(false);  // Deliberately ignored: `status` is reported.
      return status;
    };
    // The stream time the previous owner committed with its last transaction
    // (restore may raise it further; it never goes back).
    std::optional<Timestamp> committed_stream_time;
    for (const auto& tp : inputs) {
      auto c = committed_offsets.find(tp);
      if (c != committed_offsets.end() && c->second.stream_time &&
          (!committed_stream_time || *c->second.stream_time > *committed_stream_time)) {
        committed_stream_time = c->second.stream_time;
      }
    }
    auto must_restore = BeginRestore(partition, entry);
    if (!must_restore.ok()) {
      if (entry.task == nullptr)
        return must_restore.status().WithContext("restoring task " + task_name);
      return fail(must_restore.status().WithContext("restoring task " + task_name));
    }
    if (committed_stream_time) {
      Status adopted = entry.task->AdoptCommittedStreamTime(*committed_stream_time);
      if (!adopted.ok()) return fail(adopted);
    }
    for (const auto& spec : entry.task->RestoreSpecs()) {
      entry.changelogs[spec.store] = spec.changelog;
    }
    // Where to start each input partition: the group's committed offset; only
    // when the group answered that it has none (its offsets expired or were
    // deleted while the application was down), the local checkpoint; then
    // auto.offset.reset.
    std::map<TopicPartition, Offset> task_starts;
    for (const auto& tp : inputs) {
      if (auto c = committed_offsets.find(tp); c != committed_offsets.end()) {
        task_starts.emplace(tp, c->second.offset);
      } else if (std::optional<Offset> checkpointed = entry.task->ConsumedOffset(tp)) {
        task_starts.emplace(tp, *checkpointed);
        spdlog::info("[{}] {}: no committed offset, resuming from the local checkpoint at {}",
                     log_name_, tp.ToString(), checkpointed->value());
      } else {
        int64_t low = 0, high = 0;
        Status watermarks = RetryLookup(
            [&](int timeout_ms) {
              // The restore consumer reads read_committed like the group
              // consumer (high = last stable offset) and times out promptly.
              return QueryWatermarks(reader_->restore_consumer(), tp, &low, &high, timeout_ms);
            },
            "watermarks of " + tp.ToString(), config_.offsets_lookup_timeout(), *stop_, log_name_);
        if (!watermarks.ok()) return fail(watermarks);
        const bool earliest = config_.auto_offset_reset() == OffsetReset::kEarliest;
        task_starts.emplace(tp, Offset(earliest ? low : high));
        spdlog::info("[{}] {}: no committed offset, starting at the {} offset {}", log_name_,
                     tp.ToString(), earliest ? "earliest" : "latest", earliest ? low : high);
      }
    }
    // The task owns its input positions from here on.
    Status reset = entry.task->ResetInputOffsets(task_starts);
    if (!reset.ok()) return fail(reset.WithContext("positioning task " + task_name));
    starts.insert(task_starts.begin(), task_starts.end());
    if (*must_restore) {
      paused.insert(paused.end(), inputs.begin(), inputs.end());
    } else {
      Status init = entry.task->InitializeProcessors();
      if (!init.ok()) return fail(init.WithContext("initializing task " + task_name));
    }
    tasks_.emplace(partition, std::move(entry));
    shared_->metrics->AddTasksAssigned(1);
  }

  // Assign with explicit start offsets.
  for (int i = 0; i < partitions->cnt; ++i) {
    TopicPartition tp{partitions->elems[i].topic, Partition(partitions->elems[i].partition)};
    auto it = starts.find(tp);
    if (it != starts.end()) partitions->elems[i].offset = it->second.value();
  }
  if (incremental) {
    KafkaError error(rd_kafka_incremental_assign(consumer_, partitions));
    if (error) {
      return KafkaStatus(error.get(), "incremental assign " + PartitionListString(partitions));
    }
  } else {
    rd_kafka_resp_err_t err = rd_kafka_assign(consumer_, partitions);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaStatus(err, "assign");
  }
  if (!paused.empty()) STREAMS_RETURN_IF_ERROR(SetPaused(paused, /*pause=*/true));
  TasksChanged();
  return Status::Ok();
}

void TaskManager::Close(const std::set<Partition>& which, bool clean) {
  int64_t count = 0;
  for (Partition partition : which) {
    auto it = tasks_.find(partition);
    if (it == tasks_.end()) continue;
    reader_->Unregister(partition);
    Status closed = it->second.task->Close(clean);
    if (!closed.ok()) {
      spdlog::error("[{}] closing task {}: {}", log_name_, TaskId{partition}.ToString(),
                    closed.ToString());
    }
    shared_->metrics->RemoveTask(TaskId{partition}.ToString());
    for (const auto& tp : it->second.inputs) {
      shared_->metrics->RemoveConsumerLag(tp);
      poison_.erase(tp);
    }
    tasks_.erase(it);
    ++count;
  }
  if (count == 0) return;
  spdlog::info("[{}] closed {} task(s) {}", log_name_, count, clean ? "cleanly" : "dirty");
  shared_->metrics->AddTasksAssigned(-count);
  shared_->stats->Add([count](KafkaStreamsStats& s) { s.tasks_closed += count; });
  TasksChanged();
}

void TaskManager::CloseAll(bool clean) {
  std::set<Partition> all;
  for (const auto& [partition, entry] : tasks_) all.insert(partition);
  Close(all, clean);
  // Nothing of the cycle outlives its tasks.
  reader_->Clear();
  poison_.clear();
}

Status TaskManager::Reopen(Partition partition) {
  // Local state is behind Kafka: reopen the task and restore it.
  auto it = tasks_.find(partition);
  if (it == tasks_.end()) return Status::Ok();
  TaskEntry& entry = it->second;
  const std::string task_name = TaskId{partition}.ToString();
  // Just committed to Kafka; the reopened task resumes from there.
  const std::optional<Timestamp> stream_time = entry.task->stream_time();
  const std::map<TopicPartition, Offset> positions = entry.task->ConsumedOffsets();
  reader_->Unregister(partition);
  (void)entry.task->Close(false);  // Deliberately ignored: the task is reopened below.
  STREAMS_ASSIGN_OR_RETURN(entry.task, OpenTask(partition));
  STREAMS_ASSIGN_OR_RETURN(bool must_restore, BeginRestore(partition, entry));
  if (stream_time) STREAMS_RETURN_IF_ERROR(entry.task->AdoptCommittedStreamTime(*stream_time));
  STREAMS_RETURN_IF_ERROR(entry.task->ResetInputOffsets(positions));
  if (must_restore) {
    STREAMS_RETURN_IF_ERROR(SetPaused(entry.inputs, /*pause=*/true));
  } else {
    STREAMS_RETURN_IF_ERROR(
        entry.task->InitializeProcessors().WithContext("initializing task " + task_name));
  }
  TasksChanged();
  return Status::Ok();
}

Status TaskManager::FinishRestore(const ChangelogReader::Restored& restored) {
  auto it = tasks_.find(restored.task);
  if (it == tasks_.end()) return Status::Ok();
  TaskEntry& entry = it->second;
  const std::string task_name = TaskId{restored.task}.ToString();
  STREAMS_RETURN_IF_ERROR(
      entry.task->InitializeProcessors().WithContext("initializing task " + task_name));
  spdlog::info("[{}] task {}: restored {} changelog records in {:.3f} s", log_name_, task_name,
               restored.records, restored.seconds);
  // Resume the input from the last commit (records fetched meanwhile were dropped).
  STREAMS_RETURN_IF_ERROR(
      Seek(entry.task->ConsumedOffsets()).WithContext("rewinding the input of task " + task_name));
  STREAMS_RETURN_IF_ERROR(SetPaused(entry.inputs, /*pause=*/false));
  TasksChanged();
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Standby tasks

void TaskManager::CloseStandby(Partition partition) {
  auto it = standbys_.find(partition);
  if (it == standbys_.end()) return;
  reader_->Unregister(partition);
  Status closed = it->second->Close(/*clean=*/true);
  if (!closed.ok()) {
    spdlog::warn("[{}] closing standby task {}: {}", log_name_, TaskId{partition}.ToString(),
                 closed.ToString());
  }
  standbys_.erase(it);
}

void TaskManager::ReleaseStandby(Partition partition) {
  if (standbys_.count(partition) == 0) return;
  CloseStandby(partition);
  spdlog::info("[{}] task {}: taking over from this instance's standby copy", log_name_,
               TaskId{partition}.ToString());
  shared_->stats->Add([](KafkaStreamsStats& s) { s.standby_takeovers += 1; });
  shared_->metrics->AddStandbyTakeover();
}

Status TaskManager::OpenStandby(Partition partition) {
  STREAMS_ASSIGN_OR_RETURN(std::unique_ptr<StreamTask> task, OpenTask(partition));
  Status registered = reader_->RegisterStandby(task.get());
  if (registered.code() == StatusCode::kCorruption) {
    spdlog::warn("[{}] standby task {}: {}; wiping its local state", log_name_,
                 TaskId{partition}.ToString(), registered.message());
    (void)task->Close(false);  // Deliberately ignored: the state is wiped below.
    task.reset();
    STREAMS_RETURN_IF_ERROR(state::DestroyTaskState(config_.TaskStateDir(TaskId{partition})));
    STREAMS_ASSIGN_OR_RETURN(task, OpenTask(partition));
    registered = reader_->RegisterStandby(task.get());
  }
  if (!registered.ok()) {
    reader_->Unregister(partition);
    (void)task->Close(false);  // Deliberately ignored: `registered` is reported.
    return registered;
  }
  standbys_.emplace(partition, std::move(task));
  return Status::Ok();
}

void TaskManager::UpdateStandbys(const std::set<Partition>& wanted) {
  std::vector<Partition> drop;
  for (const auto& [partition, task] : standbys_) {
    if (wanted.count(partition) == 0 || tasks_.count(partition) != 0) drop.push_back(partition);
  }
  for (Partition partition : drop) {
    CloseStandby(partition);
    spdlog::info("[{}] standby task {} closed (placement changed)", log_name_,
                 TaskId{partition}.ToString());
  }
  for (Partition partition : wanted) {
    if (standbys_.count(partition) != 0 || tasks_.count(partition) != 0) continue;
    Status opened = OpenStandby(partition);
    if (!opened.ok()) {
      spdlog::warn("[{}] standby task {} not opened (retried later): {}", log_name_,
                   TaskId{partition}.ToString(), opened.ToString());
    }
  }
}

void TaskManager::CloseStandbys() { UpdateStandbys({}); }

// ---------------------------------------------------------------------------
// Processing

TaskManager::ProcessOutcome TaskManager::Process(const rd_kafka_message_t* message) {
  ProcessOutcome outcome;
  auto entry = tasks_.find(Partition(message->partition));
  if (entry == tasks_.end() || !Running(entry->second)) return outcome;  // Re-read after restore.
  StreamTask& task = *entry->second.task;
  outcome.partition =
      TopicPartition{rd_kafka_topic_name(message->rkt), Partition(message->partition)};
  outcome.offset = Offset(message->offset);
  std::optional<Offset> position = task.ConsumedOffset(outcome.partition);
  if (position && outcome.offset < *position) {
    return outcome;  // Already processed (a record fetched before a seek).
  }
  ConsumedRecord record = ToConsumedRecord(message);
  outcome.timestamp = record.timestamp;
  const auto where = [&] {
    return outcome.partition.ToString() + "@" + std::to_string(message->offset);
  };
  const Status* poison = nullptr;
  if (auto p = poison_.find(outcome.partition); p != poison_.end()) {
    if (auto o = p->second.find(record.offset); o != p->second.end()) poison = &o->second;
  }
  if (poison != nullptr) {
    // The replay of a cycle aborted because this record failed for good.
    Status dead = task.DeadLetterRecord(record, *poison);
    if (!dead.ok()) {
      outcome.kind = ProcessOutcome::Kind::kError;
      outcome.status = dead.WithContext("dead-lettering " + where());
      return outcome;
    }
    outcome.kind = ProcessOutcome::Kind::kProcessed;
    return outcome;
  }
  Status status = task.Process(record);
  if (!status.ok()) {
    const bool permanent =
        status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kCorruption;
    outcome.kind = permanent ? ProcessOutcome::Kind::kPermanent : ProcessOutcome::Kind::kError;
    outcome.status = status.WithContext("processing " + where());
    return outcome;
  }
  outcome.kind = ProcessOutcome::Kind::kProcessed;
  return outcome;
}

void TaskManager::MarkPoison(const TopicPartition& tp, Offset offset, Status error) {
  poison_[tp].insert_or_assign(offset, std::move(error));
}

Status TaskManager::PunctuateWallClock() {
  for (auto& [partition, entry] : tasks_) {
    if (!Running(entry)) continue;
    STREAMS_RETURN_IF_ERROR(entry.task->PunctuateWallClock().WithContext(
        "wall-clock punctuation of task " + TaskId{partition}.ToString()));
  }
  return Status::Ok();
}

bool TaskManager::HasUncommittedWork() const {
  return std::any_of(tasks_.begin(), tasks_.end(), [&](const auto& e) {
    return Running(e.second) && e.second.task->HasUncommittedWork();
  });
}

bool TaskManager::CommitRequested() const {
  return std::any_of(tasks_.begin(), tasks_.end(), [&](const auto& e) {
    return Running(e.second) && e.second.task->commit_requested();
  });
}

// ---------------------------------------------------------------------------
// Commit and abort

Status TaskManager::PrepareCommit() {
  for (auto& [partition, entry] : tasks_) {
    if (!Running(entry)) continue;
    STREAMS_RETURN_IF_ERROR(entry.task->PrepareCommit().WithContext(
        "preparing the commit of task " + TaskId{partition}.ToString()));
  }
  return Status::Ok();
}

PartitionList TaskManager::OffsetsToCommit() const {
  std::map<TopicPartition, std::optional<Offset>> offsets;
  std::map<Partition, std::optional<Timestamp>> stream_times;
  for (const auto& [partition, entry] : tasks_) {
    if (!Running(entry)) continue;
    for (const auto& [tp, offset] : entry.task->ConsumedOffsets()) offsets.emplace(tp, offset);
    stream_times.emplace(partition, entry.task->stream_time());
  }
  PartitionList list = MakePartitionList(offsets);
  for (int i = 0; i < list->cnt; ++i) {
    auto it = stream_times.find(Partition(list->elems[i].partition));
    if (it != stream_times.end() && it->second) {
      SetOffsetMetadata(&list->elems[i], EncodeStreamTimeMetadata(*it->second));
    }
  }
  return list;
}

std::vector<Partition> TaskManager::CommitLocal(const std::map<TopicPartition, Offset>& acked) {
  std::vector<Partition> broken;
  for (auto& [partition, entry] : tasks_) {
    if (!Running(entry)) continue;
    std::map<std::string, Offset> changelog_next;
    for (const auto& [store, tp] : entry.changelogs) {
      auto it = acked.find(tp);
      if (it != acked.end()) changelog_next.emplace(store, it->second);
    }
    Status local = entry.task->Commit(changelog_next);
    if (!local.ok()) {
      spdlog::error(
          "[{}] task {} could not commit its local state after the Kafka commit: {}; "
          "it will be restored from its changelog",
          log_name_, TaskId{partition}.ToString(), local.ToString());
      broken.push_back(partition);
    }
    for (const auto& tp : entry.inputs) {
      auto records = poison_.find(tp);
      std::optional<Offset> committed = entry.task->ConsumedOffset(tp);
      if (records == poison_.end() || !committed) continue;
      // Dead-lettered and committed.
      records->second.erase(records->second.begin(), records->second.lower_bound(*committed));
      if (records->second.empty()) poison_.erase(records);
    }
  }
  return broken;
}

Status TaskManager::AbortAndRewind() {
  std::map<TopicPartition, Offset> rewind;
  for (auto& [partition, entry] : tasks_) {
    if (!Running(entry)) continue;
    entry.task->Abort();
    for (const auto& [tp, offset] : entry.task->ConsumedOffsets())
      rewind.insert_or_assign(tp, offset);
  }
  return Seek(rewind);
}

Status TaskManager::Seek(const std::map<TopicPartition, Offset>& offsets) {
  if (offsets.empty() || consumer_ == nullptr) return Status::Ok();
  std::map<TopicPartition, std::optional<Offset>> with_offsets(offsets.begin(), offsets.end());
  PartitionList list = MakePartitionList(with_offsets);
  if (Faults().fail_seeks.load() > 0 && Faults().fail_seeks.fetch_sub(1) > 0) {
    return Status::Unavailable("seek: injected failure (test)");
  }
  // librdkafka 2.0.2 sometimes gives up waiting for the seeks' answers long
  // before the timeout ("Timed out waiting for N remaining partition
  // seek(s)", seen after ~20 ms right after an earlier seek of the same
  // partitions); a seek to the same offsets is idempotent, so it is retried.
  Status status;
  std::chrono::milliseconds backoff(20);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    for (int i = 0; i < list->cnt; ++i) list->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    status = Status::Ok();
    KafkaError error(rd_kafka_seek_partitions(consumer_, list.get(), 5000));
    if (error) status = KafkaStatus(error.get(), "seek " + PartitionListString(list.get()));
    for (int i = 0; status.ok() && i < list->cnt; ++i) {
      if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status =
            KafkaStatus(list->elems[i].err, "seek " + std::string(list->elems[i].topic) + "-" +
                                                std::to_string(list->elems[i].partition) + " to " +
                                                std::to_string(list->elems[i].offset));
      }
    }
    if (status.ok() || stop_->load()) return status;
    spdlog::warn("[{}] {} (attempt {} of 3)", log_name_, status.ToString(), attempt);
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
  return status;
}

Status TaskManager::SetPaused(const std::vector<TopicPartition>& partitions, bool pause) {
  if (partitions.empty()) return Status::Ok();
  std::map<TopicPartition, std::optional<Offset>> parts;
  for (const auto& tp : partitions) parts.emplace(tp, std::nullopt);
  PartitionList list = MakePartitionList(parts);
  rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(consumer_, list.get())
                                  : rd_kafka_resume_partitions(consumer_, list.get());
  for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) {
    err = list->elems[i].err;
  }
  return KafkaStatus(
      err, std::string(pause ? "pausing " : "resuming ") + PartitionListString(list.get()));
}

void TaskManager::UpdateMetrics(bool state_metrics) {
  for (auto& [partition, entry] : tasks_) {
    for (const auto& tp : entry.inputs) {
      int64_t low = 0, high = 0;
      if (rd_kafka_get_watermark_offsets(consumer_, tp.topic.c_str(), tp.partition.value(), &low,
                                         &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
          high < 0) {
        continue;
      }
      std::optional<Offset> position = entry.task->ConsumedOffset(tp);
      if (!position) continue;
      shared_->metrics->SetConsumerLag(tp, std::max<int64_t>(0, high - position->value()));
    }
    if (state_metrics && Running(entry)) {
      const std::string task = TaskId{partition}.ToString();
      shared_->metrics->SetStateStoreBytes(task, entry.task->ApproximateStateBytes());
      for (const auto& [store, entries] : entry.task->ApproximateStoreEntries()) {
        shared_->metrics->SetStoreEntries(task, store, entries);
      }
    }
  }
}

}  // namespace streams::runtime::internal
