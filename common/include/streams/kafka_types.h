// Strong types for Kafka coordinates: partitions, offsets, topic-partitions, timestamps.
//
// Absence is std::optional, never a -1 sentinel.
//
// Thread safety: immutable values; safe to share.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace streams {

// A partition number of a topic (>= 0).
class Partition {
 public:
  constexpr explicit Partition(int32_t value) : value_(value) {}
  constexpr int32_t value() const { return value_; }
  friend constexpr auto operator<=>(Partition, Partition) = default;

 private:
  int32_t value_;
};

// A position in a partition's log (>= 0). As a consumer position, it names the
// next record to read.
class Offset {
 public:
  constexpr explicit Offset(int64_t value) : value_(value) {}
  constexpr int64_t value() const { return value_; }
  // The offset after this one.
  constexpr Offset Next() const { return Offset(value_ + 1); }
  friend constexpr auto operator<=>(Offset, Offset) = default;

 private:
  int64_t value_;
};

// Milliseconds since the Unix epoch: a record's event time or a clock reading.
class Timestamp {
 public:
  constexpr Timestamp() = default;
  constexpr explicit Timestamp(int64_t millis) : millis_(millis) {}
  constexpr int64_t millis() const { return millis_; }
  friend constexpr auto operator<=>(Timestamp, Timestamp) = default;

 private:
  int64_t millis_ = 0;
};

struct TopicPartition {
  std::string topic;
  Partition partition{0};

  // "topic-partition", the form Kafka tools print.
  std::string ToString() const;
  friend auto operator<=>(const TopicPartition&, const TopicPartition&) = default;
  friend bool operator==(const TopicPartition&, const TopicPartition&) = default;
};

struct Header {
  std::string key;
  std::string value;
  friend bool operator==(const Header&, const Header&) = default;
};
using Headers = std::vector<Header>;

// Returns the value of the last header named `key`, if any.
std::optional<std::string_view> FindHeader(const Headers& headers, std::string_view key);

// The partition the Java client's default partitioner (murmur2, as librdkafka's
// "murmur2_random") picks for a non-empty key among `partition_count` partitions.
// Precondition: partition_count > 0.
Partition DefaultPartitionForKey(std::string_view key, int32_t partition_count);

}  // namespace streams

template <>
struct std::hash<streams::TopicPartition> {
  size_t operator()(const streams::TopicPartition& tp) const noexcept {
    return std::hash<std::string>()(tp.topic) * 31 + std::hash<int32_t>()(tp.partition.value());
  }
};
