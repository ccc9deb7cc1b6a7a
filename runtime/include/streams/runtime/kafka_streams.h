// KafkaStreams: runs a streams::Topology against Kafka with librdkafka, in the
// style of Kafka Streams' KafkaStreams class.
//
//   STREAMS_ASSIGN_OR_RETURN(auto streams,
//                            KafkaStreams::Create(*topology, std::move(config), registry));
//   STREAMS_RETURN_IF_ERROR(streams->Start());
//   ... WaitForShutdownSignal (signals.h) or AwaitTermination ...
//   STREAMS_RETURN_IF_ERROR(streams->Stop());
//
// num.stream.threads StreamThreads each own a group consumer and a producer
// (transactional under exactly_once_v2). A task (one StreamTask) runs per
// assigned partition number of the co-partitioned source topics. See
// runtime/README.md for the commit cycle, failure handling, restore and
// rebalancing.
//
// States and transitions (as in Kafka Streams):
//   kCreated -> kRebalancing (Start) <-> kRunning
//   kRebalancing/kRunning -> kPendingShutdown (Stop) -> kNotRunning
//   any -> kError (a stream thread failed beyond recovery; error() tells why;
//                  Stop() still cleans up and the state stays kError)
//
// Thread safety: every public method is thread-safe, except that the object
// must not be destroyed while another thread is inside one of its methods.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "streams/clock.h"
#include "streams/processor.h"
#include "streams/result.h"
#include "streams/runtime/kafka_streams_stats.h"
#include "streams/runtime/streams_config.h"
#include "streams/status.h"
#include "streams/topology.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace streams::runtime {

class KafkaStreams {
 public:
  enum class State { kCreated, kRebalancing, kRunning, kPendingShutdown, kNotRunning, kError };

  // Called on every state change, from the thread that caused it (a stream
  // thread or the caller of Start/Stop). Must be quick and must not call Stop().
  using StateListener = std::function<void(State old_state, State new_state)>;

  // Validates that the topology can run (at least one source topic) and
  // prepares the instance; nothing touches Kafka or the disk yet.
  // `topology` and `clock` are borrowed and must outlive the returned object.
  // `registry` may be null (no metrics exported); it is shared.
  // Errors: InvalidArgument.
  static Result<std::unique_ptr<KafkaStreams>> Create(
      const Topology& topology, StreamsConfig config,
      std::shared_ptr<prometheus::Registry> registry, const Clock* clock = SystemClock::Default());

  // Stops (as Stop()) when still running.
  virtual ~KafkaStreams() = default;

  // Locks the state directory <state.dir>/<application.id> (flock on ".lock",
  // held until the object is destroyed), creates missing changelog topics,
  // checks that the source topics exist and are co-partitioned, then starts the
  // stream threads and returns (state kRebalancing). Errors (state unchanged):
  // FailedPrecondition (not kCreated; "state directory ... is locked by another
  // instance (pid N)"), NotFound (a source topic is missing), InvalidArgument
  // (source topics with different partition counts), Unavailable/TimedOut (the
  // cluster cannot be reached), IoError (state directory).
  virtual Status Start() = 0;

  // Graceful shutdown, draining: every thread finishes its current cycle and
  // commits it, closes its tasks cleanly (stores flushed and checkpointed),
  // leaves the group (rd_kafka_consumer_close) and closes its clients; then the
  // state is kNotRunning (or stays kError). Blocks until done. Idempotent; OK
  // for a never-started instance. Returns the first error met while stopping.
  virtual Status Stop() = 0;

  virtual State state() const = 0;

  // True when kRunning and every assigned task is restored and processing.
  virtual bool IsReady() const = 0;

  // The error that moved the instance to kError; OK otherwise.
  virtual Status error() const = 0;

  // Tasks currently assigned to this instance (all threads), sorted.
  virtual std::vector<TaskId> assigned_tasks() const = 0;

  // Waits until the state is kNotRunning or kError. Returns OK when it is,
  // TimedOut after `timeout`.
  virtual Status AwaitTermination(std::chrono::milliseconds timeout) const = 0;

  // Waits until IsReady(). OK when ready; TimedOut after `timeout`;
  // FailedPrecondition when the instance stopped or failed meanwhile.
  virtual Status AwaitReady(std::chrono::milliseconds timeout) const = 0;

  // Replaces the state listener (nullptr: none). Call before Start().
  virtual void SetStateListener(StateListener listener) = 0;

  virtual KafkaStreamsStats stats() const = 0;

  virtual const StreamsConfig& config() const = 0;

  // The directory of a task's state: <state.dir>/<application.id>/<task id>.
  // After Stop(), tests may open it with state::TaskState::Open to inspect the
  // committed state.
  static std::string TaskDirectory(const StreamsConfig& config, const TaskId& task);
};

// "CREATED", "REBALANCING", "RUNNING", "PENDING_SHUTDOWN", "NOT_RUNNING", "ERROR".
std::string_view StateName(KafkaStreams::State state);

}  // namespace streams::runtime
