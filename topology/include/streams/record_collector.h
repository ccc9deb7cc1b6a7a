// RecordCollector: where a task's output records go (a Kafka producer inside a
// transaction in the runtime; in-memory topics in the TopologyTestDriver).
//
// Thread safety: a collector is used by the one thread that drives its tasks.
#pragma once

#include <string>

#include "streams/record.h"
#include "streams/result.h"

namespace streams {

class RecordCollector {
 public:
  virtual ~RecordCollector() = default;
  // Number of partitions of `topic`. Errors: NotFound, Unavailable.
  virtual Result<int32_t> PartitionCount(const std::string& topic) = 0;
  // Queues `record` for the current cycle (transaction). It becomes visible to
  // read_committed readers only when the cycle commits. Errors: Aborted (the
  // cycle must abort), Fenced, InvalidArgument (record too large, ...).
  virtual Status Send(ProducedRecord record) = 0;
};

}  // namespace streams
