// SinkRunner: drives a SinkTask from a Kafka consumer group, exactly once
// into the task's target (the Kafka Connect worker of one sink task).
//
// - Consumes `topics` with a read_committed consumer in group `group_id`
//   (eager rebalancing; scale out by starting more instances, up to the
//   partition count). Auto-commit is off; Kafka offsets are committed only for
//   monitoring, after the target committed (commit_offsets_to_kafka).
// - On assignment it loads the positions stored by the task and seeks there
//   (a partition without one starts at the earliest or latest offset). Records
//   below a partition's position are dropped, so nothing is written twice.
// - Batches up to batch_max_records or batch_max_wait, then Validate()s each
//   record (failures go to the dead-letter topic) and Put()s the batch with its
//   positions. Put errors: Fenced -> drop the batch, reload positions, seek;
//   FailedPrecondition -> write the batch one record at a time and
//   dead-letter the failing record; anything else -> pause every partition
//   (memory stays bounded to one batch), back off with jitter (circuit
//   breaker) and replay the whole batch, then seek and resume.
// - Dead letters carry Kafka Connect's context headers
//   (errors.deadletterqueue.context.headers.enable): __connect.errors.topic,
//   .partition, .offset, .connector.name, .task.id, .stage, .class.name,
//   .exception.message. Key, value and message pass through `redact` first
//   (e.g. card-number masking). They are produced (idempotent producer) and
//   flushed before the batch commits: at least once.
//
// Thread safety: Run() is called by one thread; ready(), unhealthy_reason()
// and stats() may be called from any thread (admin probes).
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "streams/connect/backoff.h"
#include "streams/connect/sink_metrics.h"
#include "streams/connect/sink_task.h"
#include "streams/result.h"
#include "streams/status.h"

namespace streams::connect {

struct SinkRunnerOptions {
  // Names the connector in dead-letter headers (__connect.errors.connector.name).
  std::string connector_name = "sink";
  std::string group_id;
  std::vector<std::string> topics;
  // librdkafka properties of the consumer (bootstrap.servers, security,
  // session.timeout.ms...). group.id, enable.auto.commit,
  // enable.auto.offset.store and isolation.level are set by the runner.
  std::map<std::string, std::string> consumer_properties;
  // librdkafka properties of the dead-letter producer (enable.idempotence is set).
  std::map<std::string, std::string> producer_properties;
  // Required: where records that can never be written go.
  std::string dead_letter_topic;
  int batch_max_records = 500;
  std::chrono::milliseconds batch_max_wait{100};
  std::chrono::milliseconds poll_timeout{50};
  // Backoff between attempts while the target is unavailable; the breaker
  // opens after breaker_open_after consecutive failures.
  BackoffPolicy retry_backoff{std::chrono::milliseconds(100), std::chrono::milliseconds(5000), 0.5};
  int breaker_open_after = 3;
  // Start of a partition without a stored position: earliest (true) or latest.
  bool start_from_earliest = true;
  bool commit_offsets_to_kafka = true;
  std::chrono::milliseconds dead_letter_timeout{10000};
  // Applied to dead letters' key, value and error message; identity when empty.
  std::function<std::string(std::string_view)> redact;
};

struct SinkRunnerStats {
  int64_t records_written = 0;  // Records in committed batches (dead letters excluded).
  int64_t batches_committed = 0;
  int64_t dead_letters = 0;
  int64_t fenced = 0;
  int64_t transient_failures = 0;
};

class SinkRunner {
 public:
  // Creates the consumer and the dead-letter producer (nothing is consumed
  // before Run). `task` and `metrics` are borrowed and must outlive the runner.
  // Errors: InvalidArgument (options, a librdkafka property named).
  static Result<std::unique_ptr<SinkRunner>> Create(SinkTask* task, SinkRunnerOptions options,
                                                    SinkMetrics* metrics);
  ~SinkRunner();
  SinkRunner(const SinkRunner&) = delete;
  SinkRunner& operator=(const SinkRunner&) = delete;

  // Subscribes and processes until `stop` becomes true; then writes the batch
  // in hand (one attempt when the target is up), leaves the group and
  // returns. Errors: Internal/InvalidArgument for a fatal consumer error (the
  // subscription failed); a down target is never fatal.
  Status Run(const std::atomic<bool>& stop);

  // True while the target is reachable (breaker not open, not paused) and every
  // assigned partition has its stored position loaded.
  bool ready() const { return ready_.load(); }
  // "" while healthy; otherwise why not (a fatal error, or the circuit open).
  std::string unhealthy_reason() const;
  SinkRunnerStats stats() const;
  // Partitions owned right now (after their positions were loaded).
  std::vector<TopicPartition> owned_partitions() const;

 private:
  struct PartitionState {
    bool open = false;             // Position loaded and fetching.
    std::optional<Offset> stored;  // Expected value for the next CAS.
    Offset next_fetch{0};          // Next offset accepted from poll.
  };
  enum class FlushResult { kDone, kTransient };

  SinkRunner() = default;
  static void RebalanceTrampoline(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t* partitions, void* opaque);
  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  // Loads the positions of the partitions that are not open yet (when the
  // breaker allows an attempt) and re-assigns with them.
  void OpenPending(bool reassign_always);
  // Assigns every partition at its next offset; pauses those not open (all
  // while paused_).
  void Reassign();
  void UpdateOwned();
  void AccountPaused();
  void Accept(rd_kafka_message_t* message);
  // Writes batch_ (or its first record while isolating).
  FlushResult Flush();
  Status PutWithPositions(const std::vector<const ConsumedRecord*>& records,
                          const std::vector<const ConsumedRecord*>& all,
                          std::vector<PositionUpdate>* positions);
  Status DeadLetter(const ConsumedRecord& record, const Status& error, const std::string& stage);
  void Pause();
  void Resume();
  void TransientFailure(const Status& status, const char* what);
  void CommitToKafka(const std::vector<PositionUpdate>& positions);
  void UpdateReady();

  SinkTask* task_ = nullptr;
  SinkMetrics* metrics_ = nullptr;
  SinkRunnerOptions options_;
  rd_kafka_t* consumer_ = nullptr;
  rd_kafka_t* producer_ = nullptr;

  // Owned by the Run() thread.
  // Sets <p>_consumer_lag of every owned partition (at most once a second).
  void UpdateLag();

  std::map<TopicPartition, PartitionState> partitions_;
  std::map<TopicPartition, prometheus::Gauge*> lag_gauges_;
  std::chrono::steady_clock::time_point lag_updated_{};
  std::vector<ConsumedRecord> batch_;
  std::set<std::pair<TopicPartition, int64_t>> dead_lettered_;  // Of batch_, already produced.
  size_t isolate_remaining_ = 0;
  bool paused_ = false;
  std::chrono::steady_clock::time_point paused_since_{};
  std::chrono::steady_clock::time_point batch_started_{};
  std::unique_ptr<CircuitBreaker> breaker_;
  std::atomic<bool> ready_{false};
  bool subscribed_ = false;

  mutable std::mutex mu_;  // Guards the fields below (read by probes).
  std::string fatal_;
  std::string last_error_;
  bool circuit_open_ = false;
  SinkRunnerStats stats_;
  int64_t dlq_delivery_errors_ = 0;
  std::vector<TopicPartition> owned_;
};

}  // namespace streams::connect
