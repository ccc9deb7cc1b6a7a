// StreamTask: one partition's worth of a topology: its processor instances, its
// state (a TaskState), its stream time and punctuations, and its input positions.
// Used by the Kafka runtime and by the TopologyTestDriver alike.
//
// Life of a task:
//   Create -> RestoreSpecs/ApplyRestoreBatch (until caught up) -> InitializeProcessors
//   -> { Process* ; PrepareCommit ; (Kafka commit) ; Commit  |  Abort }* -> Close
//
// Thread safety: not thread-safe; one thread drives a task at a time.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "streams/clock.h"
#include "streams/processor.h"
#include "streams/record.h"
#include "streams/record_collector.h"
#include "streams/result.h"
#include "streams/state/state_resources.h"
#include "streams/state/task_state.h"
#include "streams/topology.h"

namespace streams {

struct TaskConfig {
  std::string application_id;
  // This task's own directory (e.g. <state.dir>/<application.id>/0_3).
  std::string state_directory;
  // Dead-letter topic for records that fail to deserialize; empty means
  // "<source topic>.dlq".
  std::string dead_letter_topic;
};

// Headers put on a dead-lettered record.
inline constexpr char kDlqErrorHeader[] = "dlq.error";
inline constexpr char kDlqTopicHeader[] = "dlq.source.topic";
inline constexpr char kDlqPartitionHeader[] = "dlq.source.partition";
inline constexpr char kDlqOffsetHeader[] = "dlq.source.offset";
// The StatusCodeName of the error ("Corruption", "InvalidArgument", ...).
inline constexpr char kDlqErrorClassHeader[] = "dlq.error.class";

// A store's changelog partition and where restoring it starts.
struct RestoreSpec {
  std::string store;
  TopicPartition changelog;
  // First offset to read; std::nullopt: from the beginning of the partition.
  std::optional<Offset> from;
};

// What a task did in the current cycle, for metrics.
struct TaskCycleStats {
  uint64_t records_processed = 0;
  uint64_t records_dead_lettered = 0;
  uint64_t changelog_records = 0;
};

class StreamTask {
 public:
  // Opens the task's state in config.state_directory and makes its processor
  // instances (not yet initialized). `topology`, `resources`, `collector` and
  // `clock` are borrowed and must outlive the task.
  // The directory is created when missing. Errors: InvalidArgument (null
  // pointer, empty application_id or state_directory), IoError (directory), and
  // those of TaskState::Open, prefixed with the task id.
  static Result<std::unique_ptr<StreamTask>> Create(const Topology& topology, TaskId id,
                                                    TaskConfig config,
                                                    state::StateResources* resources,
                                                    RecordCollector* collector, const Clock* clock);

  // Destroying an open task is Close(/*clean=*/false).
  virtual ~StreamTask() = default;

  virtual const TaskId& id() const = 0;

  // The source partitions of this task (partition id() of every source topic).
  virtual std::vector<TopicPartition> input_partitions() const = 0;

  // Changelog partitions to restore before processing, with the checkpointed
  // start offsets. Logged stores only.
  virtual std::vector<RestoreSpec> RestoreSpecs() const = 0;

  // Applies records read from a store's changelog (see TaskState::ApplyRestoreBatch);
  // the records' timestamps advance stream time. Precondition: not initialized.
  virtual Status ApplyRestoreBatch(const std::string& store,
                                   const std::vector<state::ChangelogRecord>& records,
                                   Offset next_offset) = 0;

  // Calls Init() of every processor (after restore). Errors: the first failing
  // processor's status, with its name.
  virtual Status InitializeProcessors() = 0;

  // Processes one input record of one of input_partitions(): advances stream
  // time, runs it through the topology, fires due stream-time punctuations.
  // A record that fails to deserialize goes to the dead-letter topic (headers
  // kDlq*; its timestamp does not move stream time, as in Kafka Streams) and
  // processing goes on (OK). Errors: InvalidArgument for a partition that is
  // not an input of this task, FailedPrecondition before InitializeProcessors
  // or after Close; errors from processors or the collector are returned with
  // the failing node and record named, and the caller must then Abort().
  // The input position becomes record.offset + 1 only on success.
  virtual Status Process(const ConsumedRecord& record) = 0;

  // Sends `record` (one of input_partitions()) to the dead-letter topic instead
  // of processing it, as for a record that does not deserialize: redacted by
  // the topology's dead-letter redactor, with the kDlq* headers naming `error`
  // (its message must not contain record contents); the input position moves
  // past it and stream time does not. For a record whose processing failed for
  // good: the caller aborts the cycle and, in the replay, dead-letters the
  // record here instead of calling Process. Errors: InvalidArgument (not an
  // input partition), FailedPrecondition (not initialized or closed), those of
  // the collector.
  virtual Status DeadLetterRecord(const ConsumedRecord& record, const Status& error) = 0;

  // Fires due wall-clock punctuations.
  virtual Status PunctuateWallClock() = 0;

  // True when a processor asked for a commit, or there is uncommitted work.
  virtual bool commit_requested() const = 0;
  virtual bool HasUncommittedWork() const = 0;

  // First stages tombstones for expired entries of TTL stores
  // (TaskState::PurgeExpired), then sends this cycle's changelog records to
  // "<application_id>-<store>-changelog", partition id(), through the collector.
  // Call before the Kafka commit, after the last Process of the cycle (Commit
  // refuses work done after it). Errors: those of the state and collector.
  virtual Status PrepareCommit() = 0;

  // Next offsets to consume for the input partitions, as processed so far
  // (what the runtime sends with the transaction).
  virtual std::map<TopicPartition, Offset> ConsumedOffsets() const = 0;
  // The same for one input partition; std::nullopt when `tp` has no position
  // (not an input of this task, or none known yet).
  virtual std::optional<Offset> ConsumedOffset(const TopicPartition& tp) const = 0;

  // Before processing, after a restart: adopts the consumer group's committed
  // offsets as the task's input positions and as the point Abort() rewinds to.
  // They may be ahead of the local checkpoint when the process died between the
  // Kafka commit and Commit(); restoring the changelog repairs the state, and
  // this repairs the positions (otherwise the next commit could send older
  // offsets for an idle partition). Partitions absent from `committed` keep
  // their checkpointed position. Errors: InvalidArgument for a partition that
  // is not an input of this task; FailedPrecondition when the task has
  // uncommitted work.
  virtual Status ResetInputOffsets(const std::map<TopicPartition, Offset>& committed) = 0;

  // After the Kafka transaction committed: atomically applies the staged state
  // with a checkpoint of ConsumedOffsets(), the stream time, and the changelog
  // positions; `changelog_next_offsets` maps store -> offset after its last
  // changelog record of this cycle (stores absent keep their previous offset).
  // Errors: FailedPrecondition (records processed after PrepareCommit, or
  // closed), InvalidArgument (unknown store), those of TaskState::Commit (then
  // nothing was applied and the call may be retried, or the cycle aborted).
  virtual Status Commit(const std::map<std::string, Offset>& changelog_next_offsets) = 0;

  // Drops staged state, and rewinds positions, stream time and the punctuation
  // schedules to the last commit (schedules made, fired or cancelled in the
  // aborted cycle are undone), so a replay is deterministic. Processors' own
  // member variables are not rewound: keep state in stores.
  // The caller re-reads input from ConsumedOffsets().
  virtual void Abort() = 0;

  // The task's stream time: the largest kValid record timestamp processed or
  // restored; std::nullopt before the first one.
  virtual std::optional<Timestamp> stream_time() const = 0;

  // Before processing: raises stream time (and the point Abort() rewinds to) to
  // `committed` when it is larger, e.g. the stream time the previous owner
  // committed with its last transaction. Records at the end of the input that
  // wrote no changelog record (replays, declines) are remembered so across
  // handovers. Errors: FailedPrecondition when the task has uncommitted work or
  // is closed.
  virtual Status AdoptCommittedStreamTime(Timestamp committed) = 0;

  // The last committed checkpoint.
  virtual const state::Checkpoint& committed_checkpoint() const = 0;

  // The task's store named `name` (connected to any processor), for tests and
  // diagnostics, or nullptr (unknown name, or the task is closed). Reads see
  // this cycle's staged writes. The pointer lives until Close().
  virtual state::KeyValueStore* GetStore(std::string_view name) = 0;

  // Stats since the last Commit/Abort.
  virtual const TaskCycleStats& cycle_stats() const = 0;

  // Approximate local state size and entries per store, for metrics.
  virtual uint64_t ApproximateStateBytes() = 0;
  virtual std::map<std::string, uint64_t> ApproximateStoreEntries() = 0;

  // Closes processors (in topological order; only those initialized) and then
  // the state. Staged state is dropped either way: commit before a clean close
  // (clean=true only logs a warning when uncommitted state is dropped).
  // Idempotent; afterwards every other call fails or returns nothing.
  virtual Status Close(bool clean) = 0;
};

}  // namespace streams
