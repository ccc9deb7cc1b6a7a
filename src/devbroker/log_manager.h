// Topic registry: owns every topic's partition logs.

#ifndef DEVBROKER_LOG_MANAGER_H_
#define DEVBROKER_LOG_MANAGER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "devbroker/partition_log.h"
#include "devbroker/protocol.h"

namespace devbroker {

inline constexpr int32_t kMaxPartitionsPerTopic = 10000;

// Thread-safety: not thread-safe; owned and used by the broker loop thread.
class LogManager {
 public:
  LogManager() = default;
  LogManager(const LogManager&) = delete;
  LogManager& operator=(const LogManager&) = delete;

  // Kafka topic-name rules: 1..249 chars of [a-zA-Z0-9._-], not "." or "..".
  static Err ValidateTopicName(std::string_view name);

  // Creates a topic. Errors: kInvalidTopic, kInvalidPartitions (count not in
  // 1..kMaxPartitionsPerTopic), kTopicAlreadyExists.
  Err CreateTopic(const std::string& name, int32_t partitions);

  // Number of partitions, or -1 if the topic does not exist.
  int32_t PartitionCount(const std::string& topic) const;

  // The partition's log, or nullptr if topic/partition does not exist.
  PartitionLog* GetPartition(const std::string& topic, int32_t partition);

  // Topic names in sorted order.
  std::vector<std::string> TopicNames() const;

  // A counter bumped by every change to any log (append, marker, creation);
  // long-poll fetches re-check their data only when it moved.
  uint64_t version() const { return version_; }
  void BumpVersion() { ++version_; }

 private:
  std::map<std::string, std::vector<std::unique_ptr<PartitionLog>>> topics_;
  uint64_t version_ = 0;
};

}  // namespace devbroker

#endif  // DEVBROKER_LOG_MANAGER_H_
