// Internal: the Prometheus metrics of a KafkaStreams instance.
//
// With a null registry every method is a no-op. Several instances may share a
// registry: families merge, and labelled series are reference-counted so one
// instance removing a series (a revoked partition) never removes one another
// instance still updates.
//
// Thread safety: thread-safe; shared by the stream threads of an instance.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "streams/kafka_types.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace streams::runtime::internal {

// The values of the `state` label of streams_thread_state, in the order of
// StreamThread::State.
inline constexpr std::string_view kThreadStateNames[] = {
    "CREATED", "STARTING", "REBALANCING", "RESTORING", "RUNNING", "STOPPING", "DEAD", "ERROR"};

// The values of the `state` label of streams_task_state.
inline constexpr std::string_view kTaskStateRestoring = "RESTORING";
inline constexpr std::string_view kTaskStateRunning = "RUNNING";

class RuntimeMetrics {
 public:
  explicit RuntimeMetrics(std::shared_ptr<prometheus::Registry> registry);
  ~RuntimeMetrics();
  RuntimeMetrics(const RuntimeMetrics&) = delete;
  RuntimeMetrics& operator=(const RuntimeMetrics&) = delete;

  void ObserveCommitSeconds(double seconds);
  void AddTransaction(bool committed);
  void AddRecordsProcessed(uint64_t count);
  // Observes one end-to-end latency sample per element.
  void ObserveEndToEndLatency(const std::vector<double>& seconds);
  void SetConsumerLag(const TopicPartition& tp, int64_t lag);
  void RemoveConsumerLag(const TopicPartition& tp);
  void AddRestored(const std::string& task, const std::string& store, uint64_t count);
  void SetRestoreRemaining(const std::string& task, const std::string& store, int64_t remaining);
  void SetStateStoreBytes(const std::string& task, uint64_t bytes);
  void SetStoreEntries(const std::string& task, const std::string& store, uint64_t entries);
  // Removes the task-labelled series of `task` (on revocation).
  void RemoveTask(const std::string& task);
  void AddDeadLetters(const std::string& topic, uint64_t count);
  void AddTasksAssigned(int64_t delta);
  void AddDeliveryErrors(uint64_t count);
  // A record whose processing failed for good; action "dead_letter" or "fail".
  void AddProcessingException(const std::string& action);
  // An assignment that could not be taken (transient error; the thread rejoins).
  void AddAssignmentRetry();
  // An assignment (rebalance callback with partitions to assign) arrived.
  void AddRebalance();
  // streams_standby_tasks{thread}: the standby tasks a thread keeps.
  void SetStandbyTasks(const std::string& thread, int64_t tasks);
  void AddStandbyRecordsApplied(uint64_t count);
  // An active task opened where this instance kept its standby copy.
  void AddStandbyTakeover();
  // Events waiting in a client's main queue (thread, client = consumer,
  // restore-consumer, offsets, producer).
  void SetClientQueueEvents(const std::string& thread, const std::string& client, int64_t events);
  // The instance moved to `state` (a KafkaStreams StateName): streams_instance_state
  // counts the instances of the registry in each state (0 or 1 in a daemon).
  void SetInstanceState(std::string_view state);
  // streams_thread_state{thread,state}: 1 for `state` (one of kThreadStateNames),
  // 0 for the others.
  void SetThreadState(const std::string& thread, std::string_view state);
  // streams_task_state{task,state}: 1 for RESTORING or RUNNING, 0 for the other.
  // Removed with the task's other series by RemoveTask.
  void SetTaskState(const std::string& task, bool restoring);

 private:
  struct SeriesKey {
    const void* family;
    std::map<std::string, std::string> labels;
    friend auto operator<=>(const SeriesKey&, const SeriesKey&) = default;
  };
  prometheus::Gauge* AcquireGauge(prometheus::Family<prometheus::Gauge>* family,
                                  const std::map<std::string, std::string>& labels);
  prometheus::Counter* AcquireCounter(prometheus::Family<prometheus::Counter>* family,
                                      const std::map<std::string, std::string>& labels);
  void ReleaseAll(const void* family, const std::map<std::string, std::string>& match);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>* commit_duration_ = nullptr;
  prometheus::Family<prometheus::Counter>* transactions_ = nullptr;
  prometheus::Family<prometheus::Counter>* records_processed_ = nullptr;
  prometheus::Family<prometheus::Histogram>* e2e_latency_ = nullptr;
  prometheus::Family<prometheus::Gauge>* consumer_lag_ = nullptr;
  prometheus::Family<prometheus::Counter>* restore_records_ = nullptr;
  prometheus::Family<prometheus::Gauge>* restore_remaining_ = nullptr;
  prometheus::Family<prometheus::Gauge>* store_bytes_ = nullptr;
  prometheus::Family<prometheus::Gauge>* store_entries_ = nullptr;
  prometheus::Family<prometheus::Counter>* dead_letters_ = nullptr;
  prometheus::Family<prometheus::Gauge>* tasks_assigned_ = nullptr;
  prometheus::Family<prometheus::Counter>* delivery_errors_ = nullptr;
  prometheus::Family<prometheus::Counter>* processing_exceptions_ = nullptr;
  prometheus::Family<prometheus::Counter>* assignment_retries_ = nullptr;
  prometheus::Family<prometheus::Counter>* rebalances_ = nullptr;
  prometheus::Family<prometheus::Gauge>* client_queue_events_ = nullptr;
  prometheus::Family<prometheus::Gauge>* standby_tasks_ = nullptr;
  prometheus::Family<prometheus::Counter>* standby_records_ = nullptr;
  prometheus::Family<prometheus::Counter>* standby_takeovers_ = nullptr;
  prometheus::Family<prometheus::Gauge>* instance_state_ = nullptr;
  prometheus::Family<prometheus::Gauge>* thread_state_ = nullptr;
  prometheus::Family<prometheus::Gauge>* task_state_ = nullptr;

  prometheus::Histogram* commit_duration_series_ = nullptr;
  prometheus::Counter* committed_series_ = nullptr;
  prometheus::Counter* aborted_series_ = nullptr;
  prometheus::Counter* records_processed_series_ = nullptr;
  prometheus::Histogram* e2e_latency_series_ = nullptr;
  prometheus::Gauge* tasks_assigned_series_ = nullptr;
  prometheus::Counter* delivery_errors_series_ = nullptr;
  prometheus::Counter* assignment_retries_series_ = nullptr;
  prometheus::Counter* rebalances_series_ = nullptr;
  prometheus::Counter* standby_records_series_ = nullptr;
  prometheus::Counter* standby_takeovers_series_ = nullptr;

  std::mutex mutex_;
  // The state this instance is counted in (streams_instance_state); empty: none.
  std::string instance_state_name_;
  // Series this instance holds a reference on.
  std::map<SeriesKey, void*> held_;
};

}  // namespace streams::runtime::internal
