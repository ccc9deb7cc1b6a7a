// Serialized records as they cross the boundary between Kafka and the engine.
//
// Thread safety: plain values.
#pragma once

#include <optional>
#include <string>

#include "streams/kafka_types.h"

namespace streams {

// A record read from a topic partition. `key` and `value` are raw bytes; an
// absent value is a tombstone.
struct ConsumedRecord {
  std::string topic;
  Partition partition{0};
  Offset offset{0};
  Timestamp timestamp;
  std::optional<std::string> key;
  std::optional<std::string> value;
  Headers headers;
};

// A record to write. When `partition` is absent, the writer picks one with
// DefaultPartitionForKey (or round-robin for a null key).
struct ProducedRecord {
  std::string topic;
  std::optional<Partition> partition;
  Timestamp timestamp;
  std::optional<std::string> key;
  std::optional<std::string> value;
  Headers headers;
};

}  // namespace streams
