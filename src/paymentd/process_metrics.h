// Process and build metrics shared by every daemon (paymentd, payments-sink),
// served by AdminServer beside the registry's metrics.
//
// ProcessCollector reads /proc/self at every scrape and returns the standard
// process metrics of the Prometheus client libraries:
//
//   process_cpu_seconds_total        counter  user + system CPU time
//   process_resident_memory_bytes    gauge    resident set size
//   process_virtual_memory_bytes     gauge    virtual memory size
//   process_open_fds                 gauge    open file descriptors
//   process_max_fds                  gauge    soft limit of open file descriptors
//   process_start_time_seconds       gauge    start time, seconds since the Unix epoch
//
// A value that cannot be read is left out of that scrape (never a made-up 0).
//
// RegisterBuildInfo adds the gauge <prefix>_build_info{version,revision} = 1.
//
// Thread safety: thread-safe (Collect() keeps no state).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "streams/result.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace paymentd {

// The fields of /proc/<pid>/stat the process metrics need, in the kernel's units.
struct ProcStat {
  uint64_t utime_ticks = 0;  // Field 14.
  uint64_t stime_ticks = 0;  // Field 15.
  uint64_t start_ticks = 0;  // Field 22: start time after boot, in clock ticks.
  uint64_t vsize_bytes = 0;  // Field 23.
  int64_t rss_pages = 0;     // Field 24.
};

// Parses the contents of /proc/<pid>/stat (the command name may hold spaces
// and parentheses). Errors: Corruption naming what is missing.
streams::Result<ProcStat> ParseProcStat(std::string_view text);

// Parses the "btime <seconds>" line of /proc/stat (boot time, Unix seconds).
// Errors: Corruption when the line is missing or malformed.
streams::Result<int64_t> ParseBootTime(std::string_view proc_stat);

class ProcessCollector final : public prometheus::Collectable {
 public:
  // The families above, read now from /proc/self.
  std::vector<prometheus::MetricFamily> Collect() const override;
};

// The project version (CMake PROJECT_VERSION) and the source revision the
// binary was built from (git commit, or "unknown").
std::string_view BuildVersion();
std::string_view BuildRevision();

// Registers <prefix>_build_info{version,revision} = 1 on `registry` (e.g.
// prefix "paymentd" or "payments_sink"). `prefix` must be a valid metric
// name prefix. Errors: InvalidArgument when prometheus-cpp rejects the name or
// it is already registered with another type.
streams::Status RegisterBuildInfo(prometheus::Registry& registry, std::string_view prefix);

}  // namespace paymentd
