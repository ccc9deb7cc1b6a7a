// Internal: fault injection points for tests (in the spirit of RocksDB's
// SyncPoint): counters a test sets and the runtime consumes, so failures that
// a real cluster produces only rarely can be tested deterministically.
// Production code never sets them; each check is one relaxed atomic load.
//
// Thread safety: the counters are atomics; any thread may set or consume them.
#pragma once

#include <atomic>

namespace streams::runtime::internal {

struct FaultInjection {
  // The next `fail_seeks` consumer seeks of any stream thread fail (Unavailable).
  std::atomic<int> fail_seeks{0};
};

// The process-wide fault injection points.
FaultInjection& Faults();

}  // namespace streams::runtime::internal
