// Internal: one StreamThread of a KafkaStreams instance (as Kafka Streams'
// StreamThread): the loop and its states. It owns a group consumer and the
// thread's helpers, each with one concern:
//   - TaskManager: the tasks, assignment and revocation, per-task commit;
//   - ChangelogReader: restores, with its restore consumer;
//   - StreamsProducer: the producer and its transactions;
//   - KafkaRecordCollector: the records sent in a cycle and their acks.
// The thread drives the cycle (poll, process, punctuate, commit or abort) and
// the rebalance callbacks, and decides how each error is handled.
//
// Thread safety: Start/RequestStop/Join and the snapshot accessors (state,
// tasks, restoring, error) are thread-safe; everything else runs on the
// thread itself.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "changelog_reader.h"
#include "kafka_record_collector.h"
#include "kafka_util.h"
#include "standby_placement.h"
#include "streams/task_id.h"
#include "streams_producer.h"
#include "task_manager.h"
#include "thread_shared.h"

namespace streams::runtime::internal {

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

  // `shared` is borrowed and must outlive the thread.
  StreamThread(ThreadShared* shared, int index);
  ~StreamThread();
  StreamThread(const StreamThread&) = delete;
  StreamThread& operator=(const StreamThread&) = delete;

  // Creates the clients (errors: InvalidArgument from librdkafka configuration)
  // and starts the thread.
  [[nodiscard]] Status Start();
  // Asks the thread to finish its cycle and shut down; returns at once.
  void RequestStop();
  // Waits for the thread; returns the first error of its shutdown.
  [[nodiscard]] Status Join();

  State state() const { return state_.load(); }
  std::vector<TaskId> tasks() const;
  // Tasks not yet restored.
  size_t restoring() const;
  // The error that moved the thread to kError.
  Status error() const;
  const std::string& name() const { return name_; }

 private:
  void Run();
  void SetState(State state);
  void Fail(Status status);
  Status CreateConsumer();

  // One round: poll, restore, punctuate, maybe commit.
  void RunOnce();
  void ProcessMessage(rd_kafka_message_t* message);
  // A consumer error (a message with err set).
  void HandleConsumerError(const rd_kafka_message_t* message);
  bool CommitDue() const;
  // commit.adaptive: the input is caught up and the cycle's first record has
  // waited as long as the previous commit took.
  bool AdaptiveCommitDue() const;
  bool HasCycleWork() const;
  // Commits the current cycle. On failure the cycle has been aborted (or the
  // fatal path taken) already; the returned status says why.
  Status CommitCycle();
  // Flushes the cycle's records: every output acknowledged.
  Status FlushOutputs();
  Status CommitTransactional();
  Status CommitAtLeastOnce();
  // Ends the cycle with an abort: aborts the transaction, rewinds tasks and
  // the consumer to the last commit.
  void AbortCycle(const Status& reason, bool backoff = true);
  // Forgets the cycle's bookkeeping (records, timestamps, collector) and
  // starts the next one now.
  void ResetCycle();
  // Handles an error of the cycle: abort, or the fatal path for Fenced.
  void HandleCycleError(const Status& status);
  // Adds the collector's new delivery errors to the stats and metrics.
  void ReportDeliveryErrors();
  // Fatal producer error: close tasks dirty, recreate the producer, rejoin.
  void RecoverFromFatal(const Status& reason);
  // Closes every task and ends the cycle with them.
  void CloseAllTasks(bool clean);
  // Reads what the ChangelogReader has and finishes the tasks it caught up.
  void RestoreStep(std::chrono::milliseconds timeout);

  // Rebalance.
  static void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* partitions, void* opaque);
  void OnAssign(rd_kafka_topic_partition_list_t* partitions);
  void OnRevoke(rd_kafka_topic_partition_list_t* partitions);
  // Cooperative protocol: tasks only for the added partitions; the revoked
  // ones are committed (or aborted when lost) and closed, the rest go on.
  void OnIncrementalAssign(rd_kafka_topic_partition_list_t* partitions);
  void OnIncrementalRevoke(rd_kafka_topic_partition_list_t* partitions, bool lost);
  // Takes an assignment through the TaskManager; the state follows.
  Status AssignTasks(rd_kafka_topic_partition_list_t* partitions);
  // incremental_assign (add) or incremental_unassign. Errors: librdkafka's.
  Status AssignIncrementally(rd_kafka_topic_partition_list_t* partitions, bool add);
  // After a cooperative rebalance callback: rejoins when an assigned
  // partition has no task (all were closed by a fatal error in the callback).
  void RejoinIfPartitionsLackTasks();
  // Answers an assignment with an empty one (no task, nothing fetched).
  void AssignNothing();
  // Leaves and rejoins the group (unsubscribe + subscribe) at the next round,
  // not before `backoff`: the way out of an assignment or a position that
  // cannot be trusted. The tasks must be closed already.
  void RequestRejoin(const Status& reason, std::chrono::milliseconds backoff);
  // A transient error (Unavailable, TimedOut, IoError, Aborted) of setting up
  // tasks: closes the tasks and rejoins with a growing backoff. Any other
  // error fails the thread.
  void RejoinOrFail(const Status& status);
  void Rejoin();
  // Subscribes the consumer to the source topics (fails the thread on error).
  void Subscribe();

  // num.standby.replicas > 0: places this instance's standby tasks from the
  // group's membership (standby_placement.h) when a refresh is due.
  void MaybeRefreshStandbys();
  void UpdatePublishedTasks();
  void UpdateLagAndStateMetrics(bool state_metrics);

  ThreadShared* shared_;
  const StreamsConfig& config_;
  int index_;
  std::string name_;
  std::string transactional_id_;
  std::atomic<bool> stop_requested_{false};

  // Declared in dependency order (destroyed in reverse).
  KafkaHandle consumer_;
  KafkaRecordCollector collector_;
  StreamsProducer producer_;
  ChangelogReader changelog_reader_;
  TaskManager task_manager_;

  // Cycle bookkeeping.
  Timestamp cycle_start_;
  uint64_t cycle_records_ = 0;
  // When the cycle's first record was processed (commit.adaptive).
  SteadyTime cycle_first_record_{};
  // How long the last commit took (commit.adaptive's linger).
  std::chrono::microseconds last_commit_duration_{0};
  // The last round's poll found nothing more to process.
  bool caught_up_ = false;
  std::vector<int64_t> cycle_timestamps_;
  int consecutive_aborts_ = 0;
  uint64_t reported_delivery_errors_ = 0;
  bool rejoin_requested_ = false;
  // No rejoin before this (backoff after failed assignments).
  SteadyTime rejoin_not_before_{};
  int consecutive_assignment_failures_ = 0;
  // True inside the rebalance callback (no rejoin from there).
  bool in_rebalance_ = false;
  // The group's rebalance protocol is COOPERATIVE (set by each callback).
  bool cooperative_ = false;
  SteadyTime last_state_metrics_{};
  SteadyTime last_error_log_{};
  // After a deferred commit (rebalance in progress), no commit before this.
  SteadyTime commit_deferred_until_{};
  // The next standby placement (num.standby.replicas > 0).
  SteadyTime standby_refresh_at_{};

  std::atomic<State> state_{State::kCreated};
  std::thread thread_;
  Status shutdown_status_;

  mutable std::mutex snapshot_mutex_;
  std::vector<TaskId> published_tasks_;
  size_t published_restoring_ = 0;
  Status error_;
};

}  // namespace streams::runtime::internal
