#include "runtime_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <exception>

#include "streams/runtime/kafka_streams.h"

namespace streams::runtime::internal {
namespace {

// Process-wide reference counts of labelled series, keyed by family and labels.
std::mutex& GlobalMutex() {
  static std::mutex mutex;
  return mutex;
}
std::map<std::pair<const void*, std::map<std::string, std::string>>, int>& GlobalRefs() {
  static auto* refs =
      new std::map<std::pair<const void*, std::map<std::string, std::string>>, int>();
  return *refs;
}

prometheus::Histogram::BucketBoundaries CommitBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

bool Matches(const std::map<std::string, std::string>& labels,
             const std::map<std::string, std::string>& match) {
  for (const auto& [k, v] : match) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

RuntimeMetrics::RuntimeMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)) {
  if (!registry_) return;
  try {
    auto& r = *registry_;
    commit_duration_ = &prometheus::BuildHistogram()
                            .Name("streams_commit_duration_seconds")
                            .Help("Duration of a commit (flush, offsets, transaction commit)")
                            .Register(r);
    transactions_ = &prometheus::BuildCounter()
                         .Name("streams_transactions_total")
                         .Help("Commit cycles by result (committed or aborted)")
                         .Register(r);
    records_processed_ = &prometheus::BuildCounter()
                              .Name("streams_records_processed_total")
                              .Help("Input records processed in committed cycles")
                              .Register(r);
    e2e_latency_ = &prometheus::BuildHistogram()
                        .Name("streams_end_to_end_latency_seconds")
                        .Help("Input record timestamp to commit time")
                        .Register(r);
    consumer_lag_ = &prometheus::BuildGauge()
                         .Name("streams_consumer_lag")
                         .Help("High watermark minus position per input partition")
                         .Register(r);
    restore_records_ = &prometheus::BuildCounter()
                            .Name("streams_restore_records_total")
                            .Help("Changelog records restored")
                            .Register(r);
    restore_remaining_ = &prometheus::BuildGauge()
                              .Name("streams_restore_remaining_records")
                              .Help("Changelog records left to restore")
                              .Register(r);
    store_bytes_ = &prometheus::BuildGauge()
                        .Name("streams_state_store_bytes")
                        .Help("Approximate local state size per task")
                        .Register(r);
    store_entries_ = &prometheus::BuildGauge()
                          .Name("streams_state_store_entries")
                          .Help("Approximate number of entries per store")
                          .Register(r);
    dead_letters_ = &prometheus::BuildCounter()
                         .Name("streams_dead_letter_records_total")
                         .Help("Records sent to a dead-letter topic")
                         .Register(r);
    tasks_assigned_ = &prometheus::BuildGauge()
                           .Name("streams_tasks_assigned")
                           .Help("Tasks currently assigned")
                           .Register(r);
    delivery_errors_ = &prometheus::BuildCounter()
                            .Name("streams_delivery_errors_total")
                            .Help("Records whose delivery failed (each fails its cycle)")
                            .Register(r);
    processing_exceptions_ =
        &prometheus::BuildCounter()
             .Name("streams_processing_exceptions_total")
             .Help("Records whose processing failed for good, by the handler's action")
             .Register(r);
    assignment_retries_ = &prometheus::BuildCounter()
                               .Name("streams_assignment_retries_total")
                               .Help(
                                   "Assignments not taken because of a transient error "
                                   "(the thread rejoined the group)")
                               .Register(r);
    rebalances_ = &prometheus::BuildCounter()
                       .Name("streams_rebalances_total")
                       .Help(
                           "Assignments received by the stream threads (a restarted static "
                           "member gets one; the other members get none)")
                       .Register(r);
    standby_tasks_ = &prometheus::BuildGauge()
                          .Name("streams_standby_tasks")
                          .Help("Standby tasks a stream thread keeps (num.standby.replicas)")
                          .Register(r);
    standby_records_ = &prometheus::BuildCounter()
                            .Name("streams_standby_records_applied_total")
                            .Help("Changelog records applied to standby tasks")
                            .Register(r);
    standby_takeovers_ = &prometheus::BuildCounter()
                              .Name("streams_standby_takeovers_total")
                              .Help(
                                  "Active tasks opened where this instance kept a standby copy "
                                  "(only the changelog's tail is restored)")
                              .Register(r);
    client_queue_events_ = &prometheus::BuildGauge()
                                .Name("streams_client_queue_events")
                                .Help("Events waiting in a Kafka client's queue")
                                .Register(r);
    instance_state_ = &prometheus::BuildGauge()
                           .Name("streams_instance_state")
                           .Help(
                               "KafkaStreams instances in each state (CREATED, REBALANCING, "
                               "RUNNING, PENDING_SHUTDOWN, NOT_RUNNING, ERROR)")
                           .Register(r);
    thread_state_ = &prometheus::BuildGauge()
                         .Name("streams_thread_state")
                         .Help("1 for the current state of a stream thread, 0 for the others")
                         .Register(r);
    task_state_ = &prometheus::BuildGauge()
                       .Name("streams_task_state")
                       .Help(
                           "1 for the current state of an assigned task (RESTORING or "
                           "RUNNING), 0 for the other")
                       .Register(r);
    for (auto state : {KafkaStreams::State::kCreated, KafkaStreams::State::kRebalancing,
                       KafkaStreams::State::kRunning, KafkaStreams::State::kPendingShutdown,
                       KafkaStreams::State::kNotRunning, KafkaStreams::State::kError}) {
      instance_state_->Add({{"state", std::string(StateName(state))}});
    }
    assignment_retries_series_ = &assignment_retries_->Add({});
    rebalances_series_ = &rebalances_->Add({});
    standby_records_series_ = &standby_records_->Add({});
    standby_takeovers_series_ = &standby_takeovers_->Add({});
    commit_duration_series_ = &commit_duration_->Add({}, CommitBuckets());
    committed_series_ = &transactions_->Add({{"result", "committed"}});
    aborted_series_ = &transactions_->Add({{"result", "aborted"}});
    records_processed_series_ = &records_processed_->Add({});
    e2e_latency_series_ = &e2e_latency_->Add({}, LatencyBuckets());
    tasks_assigned_series_ = &tasks_assigned_->Add({});
    delivery_errors_series_ = &delivery_errors_->Add({});
  } catch (const std::exception& e) {
    spdlog::error("cannot register the streams metrics: {}", e.what());
    registry_.reset();
  }
}

RuntimeMetrics::~RuntimeMetrics() {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!instance_state_name_.empty()) {
    instance_state_->Add({{"state", instance_state_name_}}).Decrement();
  }
  std::lock_guard<std::mutex> global(GlobalMutex());
  for (const auto& [key, series] : held_) {
    auto it = GlobalRefs().find({key.family, key.labels});
    if (it == GlobalRefs().end() || --it->second > 0) continue;
    GlobalRefs().erase(it);
    if (key.family == consumer_lag_ || key.family == restore_remaining_ ||
        key.family == store_bytes_ || key.family == store_entries_ ||
        key.family == client_queue_events_ || key.family == thread_state_ ||
        key.family == task_state_) {
      static_cast<prometheus::Family<prometheus::Gauge>*>(const_cast<void*>(key.family))
          ->Remove(static_cast<prometheus::Gauge*>(series));
    }
    // Counters stay: they are process totals, and removing them would reset them.
  }
  held_.clear();
}

prometheus::Gauge* RuntimeMetrics::AcquireGauge(prometheus::Family<prometheus::Gauge>* family,
                                                const std::map<std::string, std::string>& labels) {
  SeriesKey key{family, labels};
  auto it = held_.find(key);
  if (it != held_.end()) return static_cast<prometheus::Gauge*>(it->second);
  try {
    std::lock_guard<std::mutex> global(GlobalMutex());
    prometheus::Gauge* gauge = &family->Add(labels);
    ++GlobalRefs()[{family, labels}];
    held_.emplace(key, gauge);
    return gauge;
  } catch (const std::exception& e) {
    spdlog::error("metric series: {}", e.what());
    return nullptr;
  }
}

prometheus::Counter* RuntimeMetrics::AcquireCounter(
    prometheus::Family<prometheus::Counter>* family,
    const std::map<std::string, std::string>& labels) {
  SeriesKey key{family, labels};
  auto it = held_.find(key);
  if (it != held_.end()) return static_cast<prometheus::Counter*>(it->second);
  try {
    std::lock_guard<std::mutex> global(GlobalMutex());
    prometheus::Counter* counter = &family->Add(labels);
    ++GlobalRefs()[{family, labels}];
    held_.emplace(key, counter);
    return counter;
  } catch (const std::exception& e) {
    spdlog::error("metric series: {}", e.what());
    return nullptr;
  }
}

void RuntimeMetrics::ReleaseAll(const void* family,
                                const std::map<std::string, std::string>& match) {
  std::lock_guard<std::mutex> global(GlobalMutex());
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->first.family != family || !Matches(it->first.labels, match)) {
      ++it;
      continue;
    }
    auto ref = GlobalRefs().find({it->first.family, it->first.labels});
    if (ref != GlobalRefs().end() && --ref->second == 0) {
      GlobalRefs().erase(ref);
      // Only gauge families are released before destruction.
      static_cast<prometheus::Family<prometheus::Gauge>*>(const_cast<void*>(family))
          ->Remove(static_cast<prometheus::Gauge*>(it->second));
    }
    it = held_.erase(it);
  }
}

void RuntimeMetrics::ObserveCommitSeconds(double seconds) {
  if (commit_duration_series_ != nullptr) commit_duration_series_->Observe(seconds);
}

void RuntimeMetrics::AddTransaction(bool committed) {
  if (!registry_) return;
  (committed ? committed_series_ : aborted_series_)->Increment();
}

void RuntimeMetrics::AddRecordsProcessed(uint64_t count) {
  if (records_processed_series_ != nullptr && count > 0) {
    records_processed_series_->Increment(static_cast<double>(count));
  }
}

void RuntimeMetrics::ObserveEndToEndLatency(const std::vector<double>& seconds) {
  if (e2e_latency_series_ == nullptr) return;
  for (double s : seconds) e2e_latency_series_->Observe(s);
}

void RuntimeMetrics::SetConsumerLag(const TopicPartition& tp, int64_t lag) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto* g = AcquireGauge(
      consumer_lag_, {{"topic", tp.topic}, {"partition", std::to_string(tp.partition.value())}});
  if (g != nullptr) g->Set(static_cast<double>(lag));
}

void RuntimeMetrics::RemoveConsumerLag(const TopicPartition& tp) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  ReleaseAll(consumer_lag_,
             {{"topic", tp.topic}, {"partition", std::to_string(tp.partition.value())}});
}

void RuntimeMetrics::AddRestored(const std::string& task, const std::string& store,
                                 uint64_t count) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto* c = AcquireCounter(restore_records_, {{"task", task}, {"store", store}});
  if (c != nullptr) c->Increment(static_cast<double>(count));
}

void RuntimeMetrics::SetRestoreRemaining(const std::string& task, const std::string& store,
                                         int64_t remaining) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto* g = AcquireGauge(restore_remaining_, {{"task", task}, {"store", store}});
  if (g != nullptr) g->Set(static_cast<double>(remaining));
}

void RuntimeMetrics::SetStateStoreBytes(const std::string& task, uint64_t bytes) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto* g = AcquireGauge(store_bytes_, {{"task", task}});
  if (g != nullptr) g->Set(static_cast<double>(bytes));
}

void RuntimeMetrics::SetStoreEntries(const std::string& task, const std::string& store,
                                     uint64_t entries) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto* g = AcquireGauge(store_entries_, {{"task", task}, {"store", store}});
  if (g != nullptr) g->Set(static_cast<double>(entries));
}

void RuntimeMetrics::RemoveTask(const std::string& task) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  ReleaseAll(restore_remaining_, {{"task", task}});
  ReleaseAll(store_bytes_, {{"task", task}});
  ReleaseAll(store_entries_, {{"task", task}});
  ReleaseAll(task_state_, {{"task", task}});
}

void RuntimeMetrics::AddDeadLetters(const std::string& topic, uint64_t count) {
  if (!registry_ || count == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto* c = AcquireCounter(dead_letters_, {{"topic", topic}});
  if (c != nullptr) c->Increment(static_cast<double>(count));
}

void RuntimeMetrics::AddTasksAssigned(int64_t delta) {
  if (tasks_assigned_series_ == nullptr) return;
  tasks_assigned_series_->Increment(static_cast<double>(delta));
}

}  // namespace streams::runtime::internal

namespace streams::runtime::internal {

void RuntimeMetrics::AddDeliveryErrors(uint64_t count) {
  if (delivery_errors_series_ != nullptr && count > 0) {
    delivery_errors_series_->Increment(static_cast<double>(count));
  }
}

}  // namespace streams::runtime::internal

namespace streams::runtime::internal {

void RuntimeMetrics::AddProcessingException(const std::string& action) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto* c = AcquireCounter(processing_exceptions_, {{"action", action}});
  if (c != nullptr) c->Increment();
}

void RuntimeMetrics::AddRebalance() {
  if (rebalances_series_ != nullptr) rebalances_series_->Increment();
}

void RuntimeMetrics::AddAssignmentRetry() {
  if (assignment_retries_series_ != nullptr) assignment_retries_series_->Increment();
}

void RuntimeMetrics::SetStandbyTasks(const std::string& thread, int64_t tasks) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto* g = AcquireGauge(standby_tasks_, {{"thread", thread}});
  if (g != nullptr) g->Set(static_cast<double>(tasks));
}

void RuntimeMetrics::AddStandbyRecordsApplied(uint64_t count) {
  if (standby_records_series_ != nullptr)
    standby_records_series_->Increment(static_cast<double>(count));
}

void RuntimeMetrics::AddStandbyTakeover() {
  if (standby_takeovers_series_ != nullptr) standby_takeovers_series_->Increment();
}

void RuntimeMetrics::SetClientQueueEvents(const std::string& thread, const std::string& client,
                                          int64_t events) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto* g = AcquireGauge(client_queue_events_, {{"thread", thread}, {"client", client}});
  if (g != nullptr) g->Set(static_cast<double>(events));
}

}  // namespace streams::runtime::internal

namespace streams::runtime::internal {

void RuntimeMetrics::SetInstanceState(std::string_view state) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (instance_state_name_ == state) return;
  try {
    if (!instance_state_name_.empty()) {
      instance_state_->Add({{"state", instance_state_name_}}).Decrement();
    }
    instance_state_name_ = std::string(state);
    instance_state_->Add({{"state", instance_state_name_}}).Increment();
  } catch (const std::exception& e) {
    spdlog::error("metric series: {}", e.what());
  }
}

void RuntimeMetrics::SetThreadState(const std::string& thread, std::string_view state) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  for (std::string_view name : kThreadStateNames) {
    auto* g = AcquireGauge(thread_state_, {{"thread", thread}, {"state", std::string(name)}});
    if (g != nullptr) g->Set(name == state ? 1 : 0);
  }
}

void RuntimeMetrics::SetTaskState(const std::string& task, bool restoring) {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  for (std::string_view name : {kTaskStateRestoring, kTaskStateRunning}) {
    auto* g = AcquireGauge(task_state_, {{"task", task}, {"state", std::string(name)}});
    if (g != nullptr) g->Set((name == kTaskStateRestoring) == restoring ? 1 : 0);
  }
}

}  // namespace streams::runtime::internal
