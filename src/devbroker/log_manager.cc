#include "devbroker/log_manager.h"

namespace devbroker {

Err LogManager::ValidateTopicName(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") {
    return Err::kInvalidTopic;
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return Err::kInvalidTopic;
  }
  return Err::kNone;
}

Err LogManager::CreateTopic(const std::string& name, int32_t partitions) {
  if (Err e = ValidateTopicName(name); e != Err::kNone) return e;
  if (partitions < 1 || partitions > kMaxPartitionsPerTopic) {
    return Err::kInvalidPartitions;
  }
  if (topics_.count(name) != 0) return Err::kTopicAlreadyExists;
  std::vector<std::unique_ptr<PartitionLog>> logs;
  logs.reserve(static_cast<size_t>(partitions));
  for (int32_t i = 0; i < partitions; ++i) {
    logs.push_back(std::make_unique<PartitionLog>());
  }
  topics_.emplace(name, std::move(logs));
  BumpVersion();
  return Err::kNone;
}

int32_t LogManager::PartitionCount(const std::string& topic) const {
  auto it = topics_.find(topic);
  return it == topics_.end() ? -1 : static_cast<int32_t>(it->second.size());
}

PartitionLog* LogManager::GetPartition(const std::string& topic,
                                       int32_t partition) {
  auto it = topics_.find(topic);
  if (it == topics_.end() || partition < 0 ||
      static_cast<size_t>(partition) >= it->second.size()) {
    return nullptr;
  }
  return it->second[static_cast<size_t>(partition)].get();
}

std::vector<std::string> LogManager::TopicNames() const {
  std::vector<std::string> names;
  names.reserve(topics_.size());
  for (const auto& [name, logs] : topics_) names.push_back(name);
  return names;
}

}  // namespace devbroker
