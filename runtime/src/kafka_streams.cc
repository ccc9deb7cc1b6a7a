#include "streams/runtime/kafka_streams.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "kafka_util.h"
#include "runtime_metrics.h"
#include "state_dir_lock.h"
#include "stream_thread.h"

namespace streams::runtime {
namespace {

using internal::StreamThread;
using std::chrono::milliseconds;

constexpr milliseconds kStartTimeout(15000);

class KafkaStreamsImpl final : public KafkaStreams {
 public:
  KafkaStreamsImpl(const Topology& topology, StreamsConfig config,
                   std::shared_ptr<prometheus::Registry> registry, const Clock* clock)
      : topology_(topology),
        config_(std::move(config)),
        clock_(clock),
        metrics_(std::move(registry)) {
    metrics_.SetInstanceState(StateName(State::kCreated));
  }

  ~KafkaStreamsImpl() override { (void)Stop(); }

  Status Start() override;
  Status Stop() override;

  State state() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_;
  }

  bool IsReady() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return IsReadyLocked();
  }

  Status error() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
  }

  std::vector<TaskId> assigned_tasks() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<TaskId> all;
    for (const auto& t : threads_) {
      auto ids = t->tasks();
      all.insert(all.end(), ids.begin(), ids.end());
    }
    std::sort(all.begin(), all.end());
    return all;
  }

  Status AwaitTermination(milliseconds timeout) const override {
    std::unique_lock<std::mutex> lock(mutex_);
    bool done = cv_.wait_for(
        lock, timeout, [&] { return state_ == State::kNotRunning || state_ == State::kError; });
    if (!done) return Status::TimedOut("still " + std::string(StateName(state_)));
    return Status::Ok();
  }

  Status AwaitReady(milliseconds timeout) const override {
    std::unique_lock<std::mutex> lock(mutex_);
    bool ended = false;
    bool done = cv_.wait_for(lock, timeout, [&] {
      ended = state_ == State::kPendingShutdown || state_ == State::kNotRunning ||
              state_ == State::kError;
      return ended || IsReadyLocked();
    });
    if (!done)
      return Status::TimedOut("not ready after " + std::to_string(timeout.count()) + " ms (state " +
                              std::string(StateName(state_)) + ")");
    if (ended && !IsReadyLocked()) {
      return Status::FailedPrecondition("instance is " + std::string(StateName(state_)) +
                                        (error_.ok() ? "" : ": " + error_.ToString()));
    }
    return Status::Ok();
  }

  void SetStateListener(StateListener listener) override {
    std::lock_guard<std::mutex> lock(mutex_);
    listener_ = std::make_shared<StateListener>(std::move(listener));
  }

  KafkaStreamsStats stats() const override { return stats_.Get(); }

  const StreamsConfig& config() const override { return config_; }

 private:
  bool IsReadyLocked() const {
    if (state_ != State::kRunning) return false;
    for (const auto& t : threads_) {
      if (t->state() != StreamThread::State::kRunning || t->restoring() > 0) return false;
    }
    return true;
  }

  // Moves to `next` (under mutex_), then calls the listener outside the lock.
  void TransitionLocked(std::unique_lock<std::mutex>& lock, State next) {
    if (state_ == next) {
      cv_.notify_all();
      return;
    }
    State old = state_;
    state_ = next;
    metrics_.SetInstanceState(StateName(next));
    spdlog::info("[{}] state {} -> {}", config_.application_id(), StateName(old), StateName(next));
    auto listener = listener_;
    cv_.notify_all();
    lock.unlock();
    if (listener && *listener) (*listener)(old, next);
    lock.lock();
  }

  // Recomputes the instance state from the threads' states.
  void OnThreadChange() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (state_ != State::kRebalancing && state_ != State::kRunning &&
        state_ != State::kPendingShutdown) {
      cv_.notify_all();
      return;
    }
    bool all_running = !threads_.empty();
    for (const auto& t : threads_) {
      if (t->state() == StreamThread::State::kError) {
        if (error_.ok()) error_ = t->error().WithContext(t->name());
        TransitionLocked(lock, State::kError);
        return;
      }
      if (t->state() != StreamThread::State::kRunning) all_running = false;
    }
    if (state_ == State::kPendingShutdown) {
      cv_.notify_all();
      return;
    }
    TransitionLocked(lock, all_running ? State::kRunning : State::kRebalancing);
  }

  // Checks the topics and creates missing changelogs; returns partition counts.
  Result<std::map<std::string, int32_t>> PrepareTopics();

  const Topology& topology_;
  const StreamsConfig config_;
  const Clock* clock_;
  internal::RuntimeMetrics metrics_;
  internal::StatsSink stats_;
  std::unique_ptr<internal::StateDirLock> lock_;
  std::unique_ptr<state::StateResources> resources_;
  internal::ThreadShared shared_;

  std::mutex stop_mutex_;  // Serializes Start and Stop.
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  State state_ = State::kCreated;
  Status error_;
  std::shared_ptr<StateListener> listener_;
  std::vector<std::unique_ptr<StreamThread>> threads_;
};

Result<std::map<std::string, int32_t>> KafkaStreamsImpl::PrepareTopics() {
  auto props = config_.KafkaProperties(ClientKind::kAdmin);
  STREAMS_ASSIGN_OR_RETURN(internal::KafkaConf conf,
                           internal::MakeConf(props, config_.application_id() + "-admin"));
  STREAMS_ASSIGN_OR_RETURN(internal::KafkaHandle admin,
                           internal::NewClient(RD_KAFKA_PRODUCER, std::move(conf)));
  STREAMS_ASSIGN_OR_RETURN(auto counts, internal::FetchPartitionCounts(admin.get(), kStartTimeout));

  std::vector<std::string> missing;
  std::optional<int32_t> partitions;
  std::string first_source;
  for (const auto& topic : topology_.source_topics()) {
    auto it = counts.find(topic);
    if (it == counts.end()) {
      missing.push_back(topic);
      continue;
    }
    if (!partitions) {
      partitions = it->second;
      first_source = topic;
    } else if (*partitions != it->second) {
      return Status::InvalidArgument("source topics are not co-partitioned: '" + first_source +
                                     "' has " + std::to_string(*partitions) + " partitions, '" +
                                     topic + "' has " + std::to_string(it->second));
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return Status::NotFound("source topic(s) missing: " + list);
  }

  std::vector<internal::NewTopic> to_create;
  for (const auto& store : topology_.stores()) {
    if (!store.logged) continue;
    std::string changelog = Topology::ChangelogTopic(config_.application_id(), store.name);
    auto it = counts.find(changelog);
    if (it != counts.end()) {
      if (it->second < *partitions) {
        return Status::InvalidArgument(
            "changelog topic '" + changelog + "' has " + std::to_string(it->second) +
            " partitions, fewer than the source topics' " + std::to_string(*partitions));
      }
      continue;
    }
    internal::NewTopic t;
    t.name = changelog;
    t.partitions = *partitions;
    t.replication_factor = config_.replication_factor();
    t.config["cleanup.policy"] = "compact";
    // Restore derives stream time from changelog timestamps: they must be the
    // records' own (CreateTime), never the broker's append time, whatever the
    // broker's default (log.message.timestamp.type).
    t.config["message.timestamp.type"] = "CreateTime";
    to_create.push_back(std::move(t));
  }
  if (!to_create.empty()) {
    for (const auto& t : to_create) {
      std::string topic_config;
      for (const auto& [k, v] : t.config) {
        topic_config += (topic_config.empty() ? "" : ", ") + k + "=" + v;
      }
      spdlog::info("[{}] creating changelog topic {} ({} partitions, replication factor {}, {})",
                   config_.application_id(), t.name, t.partitions, t.replication_factor,
                   topic_config);
    }
    Status created = internal::CreateTopics(admin.get(), to_create, kStartTimeout);
    if (!created.ok()) {
      return created.WithContext(
          "creating changelog topics (create them with cleanup.policy=compact, "
          "message.timestamp.type=CreateTime and " +
          std::to_string(*partitions) + " partitions)");
    }
    STREAMS_ASSIGN_OR_RETURN(counts, internal::FetchPartitionCounts(admin.get(), kStartTimeout));
  }

  // Output and dead-letter topics: a record sent to a missing topic would fail
  // every cycle, so missing ones are created up front (source partition count,
  // broker-default retention). A broker that cannot create topics gets a
  // warning naming them, and the cycle that needs one aborts until it exists.
  std::vector<std::string> outputs = topology_.sink_topics();
  if (!config_.dead_letter_topic().empty()) {
    outputs.push_back(config_.dead_letter_topic());
  } else {
    for (const auto& source : topology_.source_topics()) outputs.push_back(source + ".dlq");
  }
  std::vector<internal::NewTopic> outputs_to_create;
  for (const auto& topic : outputs) {
    if (counts.count(topic) != 0) continue;
    internal::NewTopic t;
    t.name = topic;
    t.partitions = *partitions;
    t.replication_factor = config_.replication_factor();
    spdlog::info("[{}] creating output topic {} ({} partitions, replication factor {})",
                 config_.application_id(), t.name, t.partitions, t.replication_factor);
    outputs_to_create.push_back(std::move(t));
  }
  if (!outputs_to_create.empty()) {
    Status created = internal::CreateTopics(admin.get(), outputs_to_create, kStartTimeout);
    if (!created.ok()) {
      spdlog::warn(
          "[{}] could not create output topics ({}); records for a missing topic "
          "abort their cycle until it exists",
          config_.application_id(), created.ToString());
    } else {
      STREAMS_ASSIGN_OR_RETURN(counts, internal::FetchPartitionCounts(admin.get(), kStartTimeout));
    }
  }
  return counts;
}

Status KafkaStreamsImpl::Start() {
  std::lock_guard<std::mutex> stop_lock(stop_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_ != State::kCreated) {
      return Status::FailedPrecondition("Start() called in state " +
                                        std::string(StateName(state_)));
    }
  }
  spdlog::info("[{}] starting with configuration:\n{}", config_.application_id(),
               config_.Describe());
  if (!lock_) {
    STREAMS_ASSIGN_OR_RETURN(lock_, internal::StateDirLock::Acquire(config_.ApplicationStateDir()));
  }
  auto counts = PrepareTopics();
  if (!counts.ok()) {
    lock_.reset();
    return counts.status();
  }
  auto resources = state::StateResources::Create(config_.state_options());
  if (!resources.ok()) {
    lock_.reset();
    return resources.status();
  }
  resources_ = std::move(*resources);

  shared_.topology = &topology_;
  shared_.config = &config_;
  shared_.clock = clock_;
  shared_.resources = resources_.get();
  shared_.metrics = &metrics_;
  shared_.stats = &stats_;
  shared_.partition_counts = std::move(*counts);
  shared_.on_change = [this] { OnThreadChange(); };

  std::vector<std::unique_ptr<StreamThread>> threads;
  for (int i = 0; i < config_.num_stream_threads(); ++i) {
    threads.push_back(std::make_unique<StreamThread>(&shared_, i));
  }
  {
    std::unique_lock<std::mutex> lock(mutex_);
    threads_ = std::move(threads);
    TransitionLocked(lock, State::kRebalancing);
  }
  for (auto& t : threads_) {
    Status started = t->Start();
    if (!started.ok()) {
      for (auto& other : threads_) other->RequestStop();
      for (auto& other : threads_) (void)other->Join();
      std::unique_lock<std::mutex> lock(mutex_);
      threads_.clear();
      error_ = started;
      TransitionLocked(lock, State::kError);
      return started;
    }
  }
  return Status::Ok();
}

Status KafkaStreamsImpl::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mutex_);
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (state_ == State::kCreated) {
      TransitionLocked(lock, State::kNotRunning);
      return Status::Ok();
    }
    if (state_ == State::kNotRunning) return Status::Ok();
    if (state_ != State::kError) TransitionLocked(lock, State::kPendingShutdown);
    if (threads_.empty()) {
      if (state_ != State::kError) TransitionLocked(lock, State::kNotRunning);
      return Status::Ok();
    }
  }
  spdlog::info("[{}] stopping", config_.application_id());
  for (auto& t : threads_) t->RequestStop();
  Status first;
  for (auto& t : threads_) {
    Status joined = t->Join();
    if (!joined.ok() && first.ok()) first = joined;
  }
  std::vector<std::unique_ptr<StreamThread>> threads;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    threads = std::move(threads_);
    threads_.clear();
  }
  threads.clear();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (state_ != State::kError) TransitionLocked(lock, State::kNotRunning);
  }
  spdlog::info("[{}] stopped", config_.application_id());
  return first;
}

}  // namespace

Result<std::unique_ptr<KafkaStreams>> KafkaStreams::Create(
    const Topology& topology, StreamsConfig config, std::shared_ptr<prometheus::Registry> registry,
    const Clock* clock) {
  if (topology.source_topics().empty()) {
    return Status::InvalidArgument("the topology has no source topic");
  }
  if (clock == nullptr) return Status::InvalidArgument("clock must not be null");
  return std::unique_ptr<KafkaStreams>(
      new KafkaStreamsImpl(topology, std::move(config), std::move(registry), clock));
}

std::string KafkaStreams::TaskDirectory(const StreamsConfig& config, const TaskId& task) {
  return config.TaskStateDir(task);
}

std::string_view StateName(KafkaStreams::State state) {
  switch (state) {
    case KafkaStreams::State::kCreated:
      return "CREATED";
    case KafkaStreams::State::kRebalancing:
      return "REBALANCING";
    case KafkaStreams::State::kRunning:
      return "RUNNING";
    case KafkaStreams::State::kPendingShutdown:
      return "PENDING_SHUTDOWN";
    case KafkaStreams::State::kNotRunning:
      return "NOT_RUNNING";
    case KafkaStreams::State::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

}  // namespace streams::runtime
