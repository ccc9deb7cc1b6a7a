// Internal: TaskManager, the tasks of one StreamThread (as Kafka Streams'
// TaskManager): the task map, taking and giving back partitions (open,
// position, restore, close clean or dirty), routing consumed records to their
// task, and the per-task steps of a commit and an abort.
//
// Input positions have one owner, the StreamTask (ConsumedOffsets): the
// manager sets them from the group's committed offsets when a task is opened
// (ResetInputOffsets), reads them for the transaction's offsets and for
// seeks, and never keeps a copy; the TopologyTestDriver uses the same path.
//
// The manager uses the thread's group consumer (assign, seek, pause) and its
// ChangelogReader (restores) but owns neither; the transaction itself is the
// StreamThread's (with StreamsProducer).
//
// Thread safety: used by its stream thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "changelog_reader.h"
#include "kafka_record_collector.h"
#include "kafka_util.h"
#include "streams/result.h"
#include "streams/stream_task.h"
#include "thread_shared.h"

namespace streams::runtime::internal {

class TaskManager {
 public:
  // What became of one consumed record (Process).
  struct ProcessOutcome {
    enum class Kind {
      kSkipped,    // No running task for it, or already processed.
      kProcessed,  // Processed (or, in the replay of a poisoned cycle, dead-lettered).
      kError,      // Processing failed; the cycle must be aborted (status).
      kPermanent,  // The record can never be processed (status; see MarkPoison).
    };
    Kind kind = Kind::kSkipped;
    Status status;
    TopicPartition partition;
    Offset offset{0};
    Timestamp timestamp;
  };

  // `shared`, `collector`, `reader` and `stop` are borrowed and must outlive
  // the object. `on_tasks_changed` is called whenever the task set or a
  // task's restoring flag changes.
  TaskManager(ThreadShared* shared, std::string log_name, KafkaRecordCollector* collector,
              ChangelogReader* reader, const std::atomic<bool>* stop,
              std::function<void()> on_tasks_changed);
  ~TaskManager();
  TaskManager(const TaskManager&) = delete;
  TaskManager& operator=(const TaskManager&) = delete;

  // The group consumer (borrowed; nullptr once it is closed).
  void SetConsumer(rd_kafka_t* consumer) { consumer_ = consumer; }

  // --- Assignment -------------------------------------------------------

  // Takes `partitions`: looks up the group's committed offsets, opens a task
  // per partition number, positions each input at its committed offset (the
  // local checkpoint only when the group has none, then auto.offset.reset),
  // registers restores with the ChangelogReader (inputs paused until done),
  // and assigns the consumer with explicit offsets (incremental_assign when
  // `incremental`). Errors: Unavailable/TimedOut (lookups), Aborted
  // (stopping), those of opening, restoring and initializing tasks and of
  // the assign call; the tasks opened so far stay: the caller closes them.
  [[nodiscard]] Status Assign(rd_kafka_topic_partition_list_t* partitions, bool incremental);

  // Closes the tasks of `which` (the others stay open): flushed and
  // checkpointed when `clean`, otherwise their uncommitted work is dropped.
  // The cycle must have been committed or aborted already.
  void Close(const std::set<Partition>& which, bool clean);
  void CloseAll(bool clean);

  // Reopens a task whose local commit failed after the Kafka commit, at the
  // positions just committed, and restores it from its changelog. Errors:
  // those of opening and restoring (the caller rejoins or fails).
  [[nodiscard]] Status Reopen(Partition partition);

  // Called with what the ChangelogReader reports caught up: initializes the
  // task's processors, rewinds its inputs to their committed positions and
  // resumes them. Errors: those of InitializeProcessors, seek and resume.
  [[nodiscard]] Status FinishRestore(const ChangelogReader::Restored& restored);

  bool empty() const { return tasks_.empty(); }
  bool Owns(Partition partition) const { return tasks_.count(partition) != 0; }
  std::vector<TaskId> task_ids() const;
  size_t restoring_count() const;

  // --- Standby tasks ------------------------------------------------------

  // Makes the standby tasks exactly `wanted` minus the active ones: closes
  // the others (clean) and opens the missing ones, each tailing its
  // changelogs through the ChangelogReader. Best effort: a standby that
  // cannot be opened is logged and retried at the next call.
  void UpdateStandbys(const std::set<Partition>& wanted);
  // Closes every standby task (clean).
  void CloseStandbys();
  size_t standby_count() const { return standbys_.size(); }
  bool HasStandby(Partition partition) const { return standbys_.count(partition) != 0; }

  // --- Processing -------------------------------------------------------

  // Routes a record of the group consumer to its task. A record of a
  // partition marked poisoned (MarkPoison) is dead-lettered instead.
  ProcessOutcome Process(const rd_kafka_message_t* message);

  // Remembers that the record at `offset` of `tp` failed for good with
  // `error`: in the replay of its cycle it is dead-lettered. Forgotten once
  // committed past.
  void MarkPoison(const TopicPartition& tp, Offset offset, Status error);

  // Fires due wall-clock punctuations of every running task. Errors: the
  // first failing task's, naming it (the caller aborts the cycle).
  [[nodiscard]] Status PunctuateWallClock();

  // True when a running task has uncommitted work, or asked for a commit.
  bool HasUncommittedWork() const;
  bool CommitRequested() const;

  // --- Commit and abort --------------------------------------------------

  // Sends every running task's changelog records (PrepareCommit). Errors:
  // the first failing task's, naming it.
  [[nodiscard]] Status PrepareCommit();

  // The running tasks' input positions as a list to commit, each with its
  // task's stream time as offset metadata (as Kafka Streams does, so the next
  // owner knows it even when the last records wrote no changelog).
  PartitionList OffsetsToCommit() const;

  // After the Kafka commit: commits every running task's local state with
  // the changelog offsets `acked` (topic partition -> next offset) and forgets
  // poisoned records committed past. Returns the tasks whose local commit
  // failed (to Reopen).
  std::vector<Partition> CommitLocal(const std::map<TopicPartition, Offset>& acked);

  // Aborts every running task (state and positions back to the last commit)
  // and seeks their inputs there. Errors: the seek's (the consumer's
  // positions then do not match the tasks': the caller closes the tasks and
  // rejoins).
  [[nodiscard]] Status AbortAndRewind();

  // Exports consumer lag per input partition and, when `state_metrics`, the
  // stores' sizes and entries.
  void UpdateMetrics(bool state_metrics);

 private:
  struct TaskEntry {
    std::unique_ptr<StreamTask> task;
    std::vector<TopicPartition> inputs;
    // Store -> changelog partition, for logged stores.
    std::map<std::string, TopicPartition> changelogs;
  };
  // The group's committed position of an input partition.
  struct CommittedPosition {
    Offset offset{0};
    // The task's stream time committed with it (offset metadata), if any.
    std::optional<Timestamp> stream_time;
  };

  Result<std::unique_ptr<StreamTask>> OpenTask(Partition partition);
  // OpenTask for each of `partitions` (distinct), several at once on helper
  // threads that end before it returns; one result per partition.
  std::map<Partition, Result<std::unique_ptr<StreamTask>>> OpenTasks(
      const std::vector<Partition>& partitions);
  // Registers `entry`'s restore; on a checkpoint outside the changelog, wipes
  // the task's state, reopens it and registers again. True when something
  // must be restored.
  Result<bool> BeginRestore(Partition partition, TaskEntry& entry);
  // The group's committed offsets of `partitions` (absent: none committed).
  // A failed or timed-out lookup (also a pending transactional commit:
  // read_committed asks for stable offsets) is retried with backoff for up to
  // 6 x offsets.lookup.timeout.ms, never replaced by a local checkpoint or
  // auto.offset.reset.
  Result<std::map<TopicPartition, CommittedPosition>> FetchCommitted(
      const rd_kafka_topic_partition_list_t* partitions);
  // Closes the standby copy of `partition`, if any, before its active task
  // opens on the same state directory.
  void ReleaseStandby(Partition partition);
  // Unregisters and closes (clean) the standby task of `partition`, if any.
  void CloseStandby(Partition partition);
  // Opens a standby task and registers it (wiping state the changelog no
  // longer covers).
  Status OpenStandby(Partition partition);
  Status Seek(const std::map<TopicPartition, Offset>& offsets);
  Status SetPaused(const std::vector<TopicPartition>& partitions, bool pause);
  bool Running(const TaskEntry& entry) const;
  void TasksChanged();

  ThreadShared* shared_;
  const StreamsConfig& config_;
  std::string log_name_;
  KafkaRecordCollector* collector_;
  ChangelogReader* reader_;
  const std::atomic<bool>* stop_;
  std::function<void()> on_tasks_changed_;
  rd_kafka_t* consumer_ = nullptr;

  std::map<Partition, TaskEntry> tasks_;
  // Standby tasks: opened, never initialized; their stores follow the
  // changelogs (ChangelogReader::RegisterStandby).
  std::map<Partition, std::unique_ptr<StreamTask>> standbys_;
  // Records whose processing failed for good, with their errors: in the
  // replay of their cycle they are dead-lettered instead of processed
  // (processing.exception.handler). Dropped once committed past.
  std::map<TopicPartition, std::map<Offset, Status>> poison_;
};

}  // namespace streams::runtime::internal
