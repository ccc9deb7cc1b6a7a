// Internal: one StreamThread of a KafkaStreams instance: a group consumer, a
// producer (transactional under exactly_once_v2), a restore consumer, and the
// StreamTasks of the partitions assigned to its consumer.
//
// Thread safety: Start/RequestStop/Join and the snapshot accessors (state,
// tasks, restoring, error) are thread-safe; everything else runs on the
// thread itself.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kafka_record_collector.h"
#include "kafka_util.h"
#include "runtime_metrics.h"
#include "streams/clock.h"
#include "streams/runtime/kafka_streams.h"
#include "streams/runtime/streams_config.h"
#include "streams/state/state_resources.h"
#include "streams/stream_task.h"
#include "streams/topology.h"

namespace streams::runtime::internal {

// Counters shared by the threads of an instance.
class StatsSink {
 public:
  void Add(const std::function<void(KafkaStreamsStats&)>& update) {
    std::lock_guard<std::mutex> lock(mutex_);
    update(stats_);
  }
  KafkaStreamsStats Get() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  mutable std::mutex mutex_;
  KafkaStreamsStats stats_;
};

// What the threads of an instance share; owned by KafkaStreams, outlives them.
struct ThreadShared {
  const Topology* topology = nullptr;
  const StreamsConfig* config = nullptr;
  const Clock* clock = nullptr;
  state::StateResources* resources = nullptr;
  RuntimeMetrics* metrics = nullptr;
  StatsSink* stats = nullptr;
  // Partition counts known at Start (seed of the collectors' caches).
  std::map<std::string, int32_t> partition_counts;
  // Called (from any thread) whenever a thread's state or task set changes.
  std::function<void()> on_change;
};

class StreamThread {
  using SteadyTime = std::chrono::steady_clock::time_point;

 public:
  enum class State {
    kCreated,
    kStarting,
    kRebalancing,
    kRestoring,
    kRunning,
    kStopping,
    kDead,
    kError
  };

  // The `state` label of streams_thread_state, e.g. "RUNNING".
  static std::string_view ThreadStateName(State state);

  StreamThread(ThreadShared* shared, int index);
  ~StreamThread();
  StreamThread(const StreamThread&) = delete;
  StreamThread& operator=(const StreamThread&) = delete;

  // Creates the clients (errors: InvalidArgument from librdkafka configuration)
  // and starts the thread.
  Status Start();
  // Asks the thread to finish its cycle and shut down; returns at once.
  void RequestStop();
  // Waits for the thread; returns the first error of its shutdown.
  Status Join();

  State state() const { return state_.load(); }
  std::vector<TaskId> tasks() const;
  // Tasks not yet restored.
  size_t restoring() const;
  // The error that moved the thread to kError.
  Status error() const;
  const std::string& name() const { return name_; }

 private:
  struct TaskEntry {
    std::unique_ptr<StreamTask> task;
    std::vector<TopicPartition> inputs;
    // Store -> changelog partition, for logged stores.
    std::map<std::string, TopicPartition> changelogs;
    bool restoring = false;
    SteadyTime restore_started{};
    uint64_t restored_records = 0;
  };
  struct RestorePartition {
    Partition task{0};
    std::string store;
    int64_t end = 0;       // High watermark at restore start.
    int64_t position = 0;  // Next offset to read.
    bool done = false;
    // Added to the restore consumer's assignment (ReassignRestoreConsumer).
    bool assigned = false;
    std::vector<state::ChangelogRecord> batch;
  };

  // The group's committed position of an input partition.
  struct CommittedPosition {
    Offset offset{0};
    // The task's stream time committed with it (offset metadata), if any.
    std::optional<Timestamp> stream_time;
  };

  void Run();
  void SetState(State state);
  void Fail(Status status);

  // Clients.
  Status CreateConsumer();
  Status CreateRestoreConsumer();
  Status CreateProducer();
  // Initializes transactions with retries; false when stopping or failed.
  Status InitTransactions();

  // One round: poll, restore, punctuate, maybe commit.
  void RunOnce();
  void ProcessMessage(rd_kafka_message_t* message);
  bool CommitDue() const;
  bool HasCycleWork() const;
  // Commits the current cycle. On failure the cycle has been aborted (or the
  // fatal path taken) already; the returned status says why.
  Status CommitCycle();
  // Commit steps shared by both guarantees: the tasks' changelog records out,
  // every output acknowledged, and the input positions not yet committed.
  Status PrepareTasks();
  Status FlushOutputs();
  std::map<TopicPartition, std::optional<Offset>> UncommittedPositions() const;
  Status CommitTransactional();
  Status CommitAtLeastOnce();
  // Ends the cycle with an abort: aborts the transaction, rewinds tasks and
  // the consumer to the last commit.
  void AbortCycle(const Status& reason, bool backoff = true);
  // Handles an error of the cycle: abort, or the fatal path for Fenced.
  void HandleCycleError(const Status& status);
  // Adds the collector's new delivery errors to the stats and metrics.
  void ReportDeliveryErrors();
  // Fatal producer error: close tasks dirty, recreate the producer, rejoin.
  void RecoverFromFatal(const Status& reason);
  void CloseAllTasks(bool clean);
  // Closes the tasks of `which` (others stay open) and drops their positions.
  // The cycle must have been committed or aborted already.
  void CloseTasks(const std::set<Partition>& which, bool clean);

  // Rebalance.
  static void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* partitions, void* opaque);
  void OnAssign(rd_kafka_topic_partition_list_t* partitions);
  // The body of OnAssign: opens, positions and starts restoring the tasks and
  // assigns the consumer. On error the caller closes what was opened.
  Status AssignTasks(rd_kafka_topic_partition_list_t* partitions);
  // Answers an assignment with an empty one (no task, nothing fetched).
  void AssignNothing();
  // The group's committed offsets of `partitions` (absent: none committed).
  // A failed or timed-out lookup (also a pending transactional commit:
  // read_committed asks for stable offsets) is retried with backoff for up to
  // 6 x offsets.lookup.timeout.ms, never replaced by a local checkpoint or
  // auto.offset.reset. Errors: Unavailable/TimedOut when it keeps failing,
  // Aborted when stopping.
  Result<std::map<TopicPartition, CommittedPosition>> FetchCommitted(
      const rd_kafka_topic_partition_list_t* partitions);
  // Runs `lookup(timeout_ms)` (a librdkafka metadata call) until it succeeds,
  // with backoff, for up to 6 x offsets.lookup.timeout.ms. Errors: the last
  // error (Unavailable/TimedOut), Aborted when stopping.
  Status RetryLookup(const std::function<rd_kafka_resp_err_t(int timeout_ms)>& lookup,
                     const std::string& what);
  // Leaves and rejoins the group (unsubscribe + subscribe) at the next round,
  // not before `backoff`: the way out of an assignment or a position that
  // cannot be trusted. The tasks must be closed already.
  void RequestRejoin(const Status& reason, std::chrono::milliseconds backoff);
  // A transient error (Unavailable, TimedOut, IoError, Aborted) of setting up
  // tasks: closes the tasks and rejoins with a growing backoff. Any other
  // error fails the thread.
  void RejoinOrFail(const Status& status);
  // Reopens a task whose local commit failed after the Kafka commit, and
  // restores it from its changelog.
  Status ReopenTask(Partition partition);
  void Rejoin();
  // Subscribes the consumer to the source topics (fails the thread on error).
  void Subscribe();
  // Classifies a processing error: true when the record itself can never be
  // processed (InvalidArgument, Corruption), so retrying cannot help.
  static bool IsPermanentRecordError(const Status& status);
  // Pauses or resumes the consumer's `partitions`. Errors: the librdkafka
  // error of the call or of a partition.
  Status SetPaused(const std::vector<TopicPartition>& partitions, bool pause);
  // Serves the event queues of the restore consumer and the offsets client,
  // which are otherwise polled only while restoring (or never).
  void PollAuxiliaryClients();
  void OnRevoke(rd_kafka_topic_partition_list_t* partitions);
  // Cooperative protocol: tasks only for the added partitions; the revoked
  // ones are committed (or aborted when lost) and closed, the rest go on.
  void OnIncrementalAssign(rd_kafka_topic_partition_list_t* partitions);
  void OnIncrementalRevoke(rd_kafka_topic_partition_list_t* partitions, bool lost);
  // incremental_assign (add) or incremental_unassign. Errors: librdkafka's.
  Status AssignIncrementally(rd_kafka_topic_partition_list_t* partitions, bool add);
  // After a cooperative rebalance callback: rejoins when an assigned
  // partition has no task (all were closed by a fatal error in the callback).
  void RejoinIfPartitionsLackTasks();
  Result<std::unique_ptr<StreamTask>> OpenTask(Partition partition);
  // Starts restoring `entry`; wipes and reopens its state when the checkpoint
  // does not fit the changelog. Returns true when something must be restored.
  Result<bool> BeginRestore(Partition partition, TaskEntry& entry);
  void RestoreStep(std::chrono::milliseconds timeout);
  void ReassignRestoreConsumer();
  Status FinishRestore(Partition partition, TaskEntry& entry);
  // Seeks the consumer. Errors: the first failing partition's error (the
  // consumer's positions then do not match the tasks': the caller must not
  // process on; it closes the tasks and rejoins).
  Status Seek(const std::map<TopicPartition, Offset>& offsets);
  // `offsets` as a list to commit, each with its task's stream time as
  // offset metadata (none for a task without stream time or still restoring).
  PartitionList OffsetsToCommit(
      const std::map<TopicPartition, std::optional<Offset>>& offsets) const;
  void UpdatePublishedTasks();
  void UpdateLagAndStateMetrics(bool state_metrics);

  ThreadShared* shared_;
  const StreamsConfig& config_;
  int index_;
  std::string name_;
  std::string transactional_id_;

  KafkaHandle consumer_;
  KafkaHandle restore_consumer_;
  // Queries log start/end offsets (read_uncommitted: the end is the high
  // watermark, not the last stable offset); never assigned.
  KafkaHandle offsets_client_;
  KafkaHandle producer_;
  KafkaRecordCollector collector_;

  std::map<Partition, TaskEntry> tasks_;
  std::map<TopicPartition, RestorePartition> restoring_;
  // The restore consumer's current assignment.
  std::set<TopicPartition> restore_assigned_;
  // Input positions: as of the last commit (or assignment), and as processed.
  std::map<TopicPartition, Offset> committed_positions_;
  std::map<TopicPartition, Offset> positions_;
  // Cycle bookkeeping.
  Timestamp cycle_start_;
  uint64_t cycle_records_ = 0;
  std::vector<int64_t> cycle_timestamps_;
  int consecutive_aborts_ = 0;
  uint64_t reported_delivery_errors_ = 0;
  bool rejoin_requested_ = false;
  // No rejoin before this (backoff after failed assignments).
  SteadyTime rejoin_not_before_{};
  int consecutive_assignment_failures_ = 0;
  // Records whose processing failed for good, with their errors: in the
  // replay of their cycle they are dead-lettered instead of processed
  // (processing.exception.handler). Dropped once committed past.
  std::map<TopicPartition, std::map<Offset, Status>> poison_;
  // True inside the rebalance callback (no rejoin from there).
  bool in_rebalance_ = false;
  // The group's rebalance protocol is COOPERATIVE (set by each callback).
  bool cooperative_ = false;
  std::chrono::steady_clock::time_point last_state_metrics_{};
  std::chrono::steady_clock::time_point last_error_log_{};
  // After a deferred commit (rebalance in progress), no commit before this.
  std::chrono::steady_clock::time_point commit_deferred_until_{};

  std::atomic<State> state_{State::kCreated};
  std::atomic<bool> stop_requested_{false};
  std::thread thread_;
  Status shutdown_status_;

  mutable std::mutex snapshot_mutex_;
  std::vector<TaskId> published_tasks_;
  size_t published_restoring_ = 0;
  Status error_;
};

}  // namespace streams::runtime::internal
