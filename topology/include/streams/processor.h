// The Processor API, in the style of Kafka Streams.
//
// A Processor<KIn, VIn, KOut, VOut> receives typed records from its parents,
// may read and write the state stores connected to it, and forwards records of
// type <KOut, VOut> to its children through its ProcessorContext.
//
// Lifetime: one processor instance per task, made by the supplier given to
// TopologyBuilder::AddProcessor. Init() is called once after the task's stores
// are restored and before the first record; Close() once when the task closes.
//
// Thread safety: a processor instance and its context are used by one thread at
// a time (the thread that owns the task). Processors need no locking.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "streams/kafka_types.h"
#include "streams/result.h"
#include "streams/state/key_value_store.h"
#include "streams/status.h"
#include "streams/task_id.h"

namespace streams {

// A typed record inside a topology.
template <typename K, typename V>
struct Record {
  K key;
  V value;
  Timestamp timestamp;
  Headers headers;
};

// Where the record being processed came from.
struct RecordMetadata {
  std::string topic;
  Partition partition{0};
  Offset offset{0};
};

enum class PunctuationType {
  // Fires as stream time (the largest record timestamp seen by the task) reaches
  // or passes each multiple of the interval (aligned to the epoch), right after
  // the record that moved it. Several multiples passed by one record give one
  // call, with the stream time. Due punctuators fire in the order they were
  // scheduled. Deterministic: depends only on the input (an aborted cycle
  // rewinds the schedule, so its replay fires the same punctuations).
  kStreamTime,
  // Fires when StreamTask::PunctuateWallClock finds the clock at or past the
  // next due time (first due: schedule time + interval); missed intervals are
  // coalesced into one call with the clock's time. Not deterministic.
  kWallClockTime,
};

// How the task judged the timestamp of the record being processed (see
// TimestampPolicy in topology.h). Only a kValid timestamp moves stream time.
enum class TimestampCheck {
  // Within [0, kMaxValidTimestampMillis] and not more than the policy's
  // max_lead ahead. Also inside a punctuator.
  kValid,
  // Negative (the producer set none) or after kMaxValidTimestampMillis (a
  // microsecond or nanosecond value in a millisecond field).
  kInvalid,
  // More than TimestampPolicy::max_lead ahead of both the task's stream time
  // and the task's clock (see TimestampPolicy).
  kTooFarAhead,
};

// 9999-12-31T23:59:59.999Z: larger record timestamps are kInvalid.
inline constexpr int64_t kMaxValidTimestampMillis = 253402300799999;

// A punctuator gets the time (stream or wall clock) at which it fired. Inside
// it, the context's record_metadata() is std::nullopt, headers() is empty and
// timestamp() is that time; records it forwards carry their own timestamps.
using Punctuator = std::function<Status(Timestamp)>;

// Handle of a scheduled punctuation.
class PunctuationId {
 public:
  constexpr explicit PunctuationId(uint64_t value) : value_(value) {}
  constexpr uint64_t value() const { return value_; }
  friend constexpr auto operator<=>(PunctuationId, PunctuationId) = default;

 private:
  uint64_t value_;
};

// Untyped part of the context, shared by all processors of a task.
class ProcessorContextBase {
 public:
  virtual ~ProcessorContextBase() = default;

  virtual const TaskId& task_id() const = 0;
  virtual const std::string& application_id() const = 0;

  // Metadata of the record being processed; std::nullopt inside a punctuator.
  virtual const std::optional<RecordMetadata>& record_metadata() const = 0;
  // Headers of the record being processed (empty inside a punctuator).
  virtual const Headers& headers() const = 0;
  // Timestamp of the record being processed, or the punctuation time.
  virtual Timestamp timestamp() const = 0;
  // The largest kValid record timestamp this task has seen (restored after
  // restarts, handovers included); Timestamp(0) before the first one. While a
  // record is processed, it includes that record's timestamp when it is kValid.
  virtual Timestamp stream_time() const = 0;
  // Whether the task has a stream time yet (false until the first kValid record
  // of a new task).
  virtual bool has_stream_time() const = 0;
  // The task's verdict on the current record's timestamp (kValid in a punctuator).
  virtual TimestampCheck timestamp_check() const = 0;
  // The injected clock's time. Decisions must not depend on it.
  virtual Timestamp wall_clock_time() const = 0;

  // A store connected to this processor (TopologyBuilder::AddStateStore), or
  // nullptr when no store of that name is connected to it. Valid until Close().
  virtual state::KeyValueStore* GetStateStore(std::string_view name) = 0;

  // Schedules `punctuator` every `interval` (> 0). Errors: InvalidArgument.
  virtual Result<PunctuationId> Schedule(std::chrono::milliseconds interval, PunctuationType type,
                                         Punctuator punctuator) = 0;
  // Cancels a punctuation; unknown ids are ignored.
  virtual void Cancel(PunctuationId id) = 0;

  // Asks the runtime to commit soon after this record.
  virtual void RequestCommit() = 0;
};

namespace internal {
// Type-erased record, as it travels between nodes.
struct AnyRecord;
// Forwards a type-erased record to the children of the current node.
class Forwarder {
 public:
  virtual ~Forwarder() = default;
  virtual Status ForwardAny(AnyRecord record, std::optional<std::string_view> child) = 0;
};
}  // namespace internal

// The context a processor forwards through.
template <typename KOut, typename VOut>
class ProcessorContext : public ProcessorContextBase {
 public:
  // Sends `record` to every child (or only to the child named `child`).
  // Errors: NotFound for an unknown child; otherwise the first error of a child.
  virtual Status Forward(Record<KOut, VOut> record) = 0;
  virtual Status Forward(Record<KOut, VOut> record, std::string_view child) = 0;
};

template <typename KIn, typename VIn, typename KOut = KIn, typename VOut = VIn>
class Processor {
 public:
  using KeyIn = KIn;
  using ValueIn = VIn;
  using KeyOut = KOut;
  using ValueOut = VOut;

  virtual ~Processor() = default;

  // Called once before the first record. `context` outlives the processor's use
  // of it (until Close() returns). A non-OK status fails the task.
  virtual Status Init(ProcessorContext<KOut, VOut>& context) { return Status::Ok(); }

  // Processes one record. A non-OK status fails the current cycle: the runtime
  // aborts the transaction and the record is processed again later. Business
  // outcomes (a declined payment) are records, not errors.
  virtual Status Process(const Record<KIn, VIn>& record) = 0;

  // Called once when the task closes; release resources here.
  virtual void Close() {}
};

}  // namespace streams
