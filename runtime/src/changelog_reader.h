// Internal: ChangelogReader, the restore side of one StreamThread (as Kafka
// Streams' StoreChangelogReader): it reads the changelog partitions of the
// thread's restoring tasks with a read_committed restore consumer, from each
// store's checkpoint up to the end of the log as it was when the restore
// began, and applies the records to the task in batches.
//
// The end is the high watermark (asked with a read_uncommitted offsets
// client), not the last stable offset: a transaction left open by a zombie
// holds the LSO back while records committed after it by the task's later
// owners belong to the state; the read_committed consumer reaches the end
// once that transaction is committed or aborted.
//
// Thread safety: used by its stream thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kafka_util.h"
#include "streams/result.h"
#include "streams/stream_task.h"
#include "thread_shared.h"

namespace streams::runtime::internal {

class ChangelogReader {
 public:
  // A task whose changelogs were all read (Restore's result).
  struct Restored {
    Partition task{0};
    uint64_t records = 0;
    double seconds = 0;
  };

  // `shared` and `stop` are borrowed and must outlive the object. Nothing is
  // created before Create().
  ChangelogReader(ThreadShared* shared, std::string log_name, const std::atomic<bool>* stop);
  ~ChangelogReader();
  ChangelogReader(const ChangelogReader&) = delete;
  ChangelogReader& operator=(const ChangelogReader&) = delete;

  // Creates the restore consumer and the offsets client. Errors:
  // InvalidArgument (librdkafka rejected the configuration).
  [[nodiscard]] Status Create();
  // Closes both clients and forgets every registration. Idempotent.
  void Close();

  // Registers the logged stores of `task` (borrowed: it must stay open until
  // Unregister, Restore reporting it, or Clear): for each store, [its
  // checkpoint, the end of its changelog). Returns true when something must
  // be read; false when every store is caught up (nothing is registered).
  // Errors: Corruption when a checkpoint lies outside its changelog's log
  // (nothing registered; the caller wipes the state and registers again);
  // Unavailable/TimedOut (watermark lookups, retried first); Aborted when
  // stopping.
  [[nodiscard]] Result<bool> Register(StreamTask* task);

  // Registers `task` (borrowed, as for Register; never initialized) as a
  // standby: its changelogs are tailed from its checkpoint for as long as it
  // is registered, read_committed (never ahead of what the active task
  // committed), and applied as restores are, each batch checkpointed with
  // its changelog offset, so that a later active copy restores only the tail.
  // Errors: as Register (Corruption: the caller wipes and registers again).
  [[nodiscard]] Status RegisterStandby(StreamTask* task);

  // Forgets the registration of the task of `partition`, if any.
  void Unregister(Partition partition);
  // Forgets every registration.
  void Clear();

  // True while some active task is registered (restoring).
  bool restoring() const { return active_registered_ > 0; }
  bool IsRestoring(Partition partition) const {
    auto it = tasks_.find(partition);
    return it != tasks_.end() && !it->second.standby;
  }
  // True while some standby task is registered.
  bool has_standbys() const { return tasks_.size() > active_registered_; }

  // Polls the restore consumer (the first poll waits up to `timeout`), applies
  // what was read (up to restore.batch.records per call; standbys' records
  // too) and returns the active tasks that are now caught up, which are no
  // longer registered. Errors: a
  // task's ApplyRestoreBatch error, naming the task and store (the caller
  // fails); the registrations stay.
  [[nodiscard]] Result<std::vector<Restored>> Restore(std::chrono::milliseconds timeout);

  // Serves the clients' event queues while nothing is restoring (they are
  // otherwise polled only by Restore).
  void PollIdle();

  // The restore consumer (read_committed: high = last stable offset) and the
  // offsets client (read_uncommitted), for lookups and queue metrics; nullptr
  // before Create / after Close.
  rd_kafka_t* restore_consumer() const { return restore_consumer_.get(); }
  rd_kafka_t* offsets_client() const { return offsets_client_.get(); }

 private:
  struct ChangelogPartition {
    Partition task{0};
    std::string store;
    int64_t end = 0;       // High watermark at restore start (standby: none).
    int64_t position = 0;  // Next offset to read.
    bool done = false;
    bool standby = false;
    // Added to the restore consumer's assignment (Reassign).
    bool assigned = false;
    std::vector<state::ChangelogRecord> batch;
  };
  struct TaskRestore {
    StreamTask* task = nullptr;
    std::chrono::steady_clock::time_point started{};
    uint64_t records = 0;
    bool standby = false;
  };

  // Register and RegisterStandby.
  Result<bool> RegisterTask(StreamTask* task, bool standby);
  void Forget(std::map<Partition, TaskRestore>::iterator it);

  // Brings the restore consumer's assignment in line with `partitions_`.
  void Reassign();

  ThreadShared* shared_;
  const StreamsConfig& config_;
  std::string log_name_;
  const std::atomic<bool>* stop_;
  KafkaHandle restore_consumer_;
  // Queries log start/end offsets (read_uncommitted: the end is the high
  // watermark, not the last stable offset); never assigned.
  KafkaHandle offsets_client_;
  std::map<TopicPartition, ChangelogPartition> partitions_;
  std::map<Partition, TaskRestore> tasks_;
  size_t active_registered_ = 0;
  // The restore consumer's current assignment.
  std::set<TopicPartition> assigned_;
};

}  // namespace streams::runtime::internal
