// Internal: what the stream threads of one KafkaStreams instance share.
//
// Thread safety: StatsSink is thread-safe; ThreadShared is filled before the
// threads start and read-only afterwards (its pointees document their own).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "runtime_metrics.h"
#include "streams/clock.h"
#include "streams/runtime/kafka_streams_stats.h"
#include "streams/runtime/streams_config.h"
#include "streams/state/state_resources.h"
#include "streams/topology.h"

namespace streams::runtime::internal {

// Counters shared by the threads of an instance.
class StatsSink {
 public:
  void Add(const std::function<void(KafkaStreamsStats&)>& update) {
    std::lock_guard<std::mutex> lock(mutex_);
    update(stats_);
  }
  KafkaStreamsStats Get() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  mutable std::mutex mutex_;
  KafkaStreamsStats stats_;
};

// What the threads of an instance share; owned by KafkaStreams, outlives them.
struct ThreadShared {
  const Topology* topology = nullptr;
  const StreamsConfig* config = nullptr;
  const Clock* clock = nullptr;
  state::StateResources* resources = nullptr;
  RuntimeMetrics* metrics = nullptr;
  StatsSink* stats = nullptr;
  // Partition counts known at Start (seed of the collectors' caches).
  std::map<std::string, int32_t> partition_counts;
  // Called (from any thread) whenever a thread's state or task set changes.
  std::function<void()> on_change;
};

}  // namespace streams::runtime::internal
