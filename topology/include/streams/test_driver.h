// TopologyTestDriver: runs a Topology with real RocksDB stores in a temporary
// directory and no broker, in the spirit of Kafka Streams' TopologyTestDriver.
//
// The driver keeps in-memory topics with offsets (input, output, changelog and
// dead-letter topics) and an in-memory "group" of committed input offsets. It
// models read_committed readers: output of a cycle becomes readable only when
// the cycle commits, and is discarded when it aborts.
//
// By default every piped record is processed and committed at once
// (auto_commit). With auto_commit off, Commit() and Abort() end a cycle
// explicitly, and SimulateCrash() drops everything uncommitted, reopens every
// task from disk, restores stores from the changelog topics and re-processes
// input after the committed offsets: state then equals the last commit.
//
// Details: tasks (one per partition of the source topics, which must all have
// the same partition count) are created, restored and initialized on first use.
// Records sent without a partition go to DefaultPartitionForKey(key) or, for a
// null or empty key, partition 0. Changelog topics have one partition per task.
// Output topics are not fed back into the topology. After Abort() the aborted
// input is processed again (as a consumer rewound to its committed offsets) by
// the next PipeInput, before the new record.
//
// Thread safety: not thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streams/clock.h"
#include "streams/record.h"
#include "streams/result.h"
#include "streams/serde.h"
#include "streams/state/key_value_store.h"
#include "streams/topology.h"

namespace streams {

struct TestDriverOptions {
  std::string application_id = "test-app";
  // Partitions of every topic the topology reads or writes unless listed in
  // partition_counts.
  int32_t default_partitions = 1;
  std::map<std::string, int32_t> partition_counts;
  // Directory for task state; empty: a fresh temporary directory removed by the
  // destructor.
  std::string state_directory;
  // Dead-letter topic (empty: "<source>.dlq").
  std::string dead_letter_topic;
  // Commit after each piped record.
  bool auto_commit = true;
  // Initial wall-clock time of the driver's ManualClock.
  Timestamp initial_wall_clock{0};
};

// A record as read back from a topic of the driver.
using TestRecord = ConsumedRecord;

// Where a simulated crash happens relative to a commit.
enum class CrashPoint {
  // Nothing of the current cycle reached Kafka or the local store.
  kBeforeCommit,
  // The Kafka transaction committed (outputs, changelogs, offsets) but the
  // local store was not updated: restore must repair it from the changelog.
  kAfterKafkaCommit,
};

class TopologyTestDriver {
 public:
  // Errors: InvalidArgument (bad options), IoError (state directory).
  // `topology` is borrowed and must outlive the driver.
  static Result<std::unique_ptr<TopologyTestDriver>> Create(const Topology& topology,
                                                            TestDriverOptions options = {});
  virtual ~TopologyTestDriver() = default;

  // Appends a record to input `topic` (partition: given, or by key with
  // DefaultPartitionForKey, or 0 for a null key) and processes it. Errors:
  // NotFound for a topic the topology does not read; a processing error (the
  // cycle is then aborted).
  virtual Status PipeInput(const std::string& topic, std::optional<std::string> key,
                           std::optional<std::string> value, Timestamp timestamp,
                           Headers headers = {},
                           std::optional<Partition> partition = std::nullopt) = 0;

  // Typed convenience.
  template <typename K, typename V>
  Status PipeInput(const std::string& topic, const K& key, const V& value, Timestamp timestamp,
                   const Serde<K>& key_serde, const Serde<V>& value_serde) {
    return PipeInput(topic, key_serde.Serialize(topic, key), value_serde.Serialize(topic, value),
                     timestamp);
  }

  // Committed records of `topic` not yet read through this call, in
  // (partition, offset) order; reading consumes them.
  virtual std::vector<TestRecord> ReadOutput(const std::string& topic) = 0;
  // Every committed record of `topic`, without consuming.
  virtual std::vector<TestRecord> AllRecords(const std::string& topic) const = 0;

  // Ends the current cycle of every task with a commit / an abort.
  virtual Status Commit() = 0;
  virtual Status Abort() = 0;

  // Simulates a process crash at `point` and a restart (see CrashPoint): every
  // task is destroyed without committing, re-created from its directory,
  // restored from its changelog topics (from the checkpointed offsets),
  // positioned at the committed input offsets, and the input after them is
  // processed again (committed at once in auto_commit mode). Errors: those of
  // restore or processing.
  virtual Status SimulateCrash(CrashPoint point = CrashPoint::kBeforeCommit) = 0;

  // Advances the wall clock and fires due wall-clock punctuations.
  virtual Status AdvanceWallClockTime(std::chrono::milliseconds by) = 0;

  // A store of the task for `partition` (the task is created when needed), or
  // nullptr (unknown store or partition). Reads see the current cycle's staged
  // writes. Valid until the next SimulateCrash or the driver's destruction.
  virtual state::KeyValueStore* GetStore(const std::string& name,
                                         Partition partition = Partition(0)) = 0;

  // Committed input offsets (the driver's consumer group).
  virtual std::map<TopicPartition, Offset> CommittedOffsets() const = 0;
};

}  // namespace streams
