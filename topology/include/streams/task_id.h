// TaskId: the identity of a task, the unit of work, state and assignment.
//
// A task processes one partition number of the topology's co-partitioned
// source topics; its id prints as "0_<partition>" (one sub-topology, as in
// Kafka Streams' "<subtopology>_<partition>"), which also names the task's
// state directory and its metric labels.
//
// Thread safety: a plain value.
#pragma once

#include <compare>
#include <string>

#include "streams/kafka_types.h"

namespace streams {

struct TaskId {
  Partition partition{0};
  std::string ToString() const { return "0_" + std::to_string(partition.value()); }
  friend auto operator<=>(const TaskId&, const TaskId&) = default;
  friend bool operator==(const TaskId&, const TaskId&) = default;
};

}  // namespace streams
