// SinkTask: what a sink connector implements to be driven by SinkRunner, in
// the spirit of Kafka Connect's SinkTask, but exactly once: the task stores
// its Kafka positions in the target itself, in the same transaction as the
// records' effects (SinkOffsetStore), and the runner seeks to those stored
// positions on every assignment.
//
// Call order (all from the runner's thread): LoadPositions when partitions are
// assigned (again after a Fenced Put), then Validate for each consumed record
// and Put for each batch, OnAssigned / OnRevoked around rebalances.
//
// Thread safety: a SinkTask is used by one SinkRunner thread; implementations
// need not be thread-safe unless they share state with other threads.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "streams/kafka_types.h"
#include "streams/record.h"
#include "streams/result.h"
#include "streams/status.h"

namespace streams::connect {

// Moves the stored position of `tp` from `expected` (std::nullopt: none stored
// yet) to `next` (the offset after the last record of the batch).
struct PositionUpdate {
  TopicPartition tp;
  std::optional<Offset> expected;
  Offset next{0};
  friend bool operator==(const PositionUpdate&, const PositionUpdate&) = default;
};

class SinkTask {
 public:
  virtual ~SinkTask() = default;

  // The stored next offsets of `partitions` (a partition without a stored
  // position is absent). Errors: Unavailable / TimedOut / Aborted (retried by
  // the runner with backoff), others.
  virtual Result<std::map<TopicPartition, Offset>> LoadPositions(
      const std::vector<TopicPartition>& partitions) = 0;

  // Checks that `record` can be converted (decoded, required fields). A non-OK
  // status is final for that record: the runner sends it to the dead-letter
  // topic (stage VALUE_CONVERTER) and moves past it. Must be deterministic.
  virtual Status Validate(const ConsumedRecord& record) = 0;

  // Writes `records` (validated, in consumption order; may be empty) and
  // applies `positions` (one per partition of the batch, dead letters
  // included) atomically: all or nothing. Errors:
  //   Fenced: a position compare-and-set failed (another instance, or an
  //     earlier commit with an unknown outcome, moved it); nothing written.
  //   FailedPrecondition: a record can never be written (constraint or data
  //     error); nothing written. The runner then writes the batch one record
  //     at a time and dead-letters the failing one (stage TASK_PUT).
  //   Anything else (Unavailable, Aborted, TimedOut, Internal): transient;
  //     the runner pauses, backs off and replays the whole batch.
  virtual Status Put(const std::vector<const ConsumedRecord*>& records,
                     const std::vector<PositionUpdate>& positions) = 0;

  // Informational: partitions now owned / no longer owned by this instance.
  virtual void OnAssigned(const std::vector<TopicPartition>& partitions) {}
  virtual void OnRevoked(const std::vector<TopicPartition>& partitions) {}
};

}  // namespace streams::connect
