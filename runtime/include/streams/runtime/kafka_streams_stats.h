// KafkaStreamsStats: counters of a KafkaStreams instance (KafkaStreams::stats()).
#pragma once

#include <cstdint>

namespace streams::runtime {

// Counters of an instance since Create (the same numbers are exported as
// Prometheus metrics when a registry is given). For tests, benchmarks, logs.
// Thread safety: a plain value (a snapshot returned by KafkaStreams::stats()).
struct KafkaStreamsStats {
  uint64_t records_processed = 0;        // Input records of committed cycles.
  uint64_t transactions_committed = 0;   // Committed cycles (transactions or, under
                                         // at_least_once, offset commits).
  uint64_t transactions_aborted = 0;     // Aborted cycles.
  uint64_t producer_fenced = 0;          // Fatal producer errors (producer re-created).
  uint64_t delivery_errors = 0;          // Delivery reports with an error.
  uint64_t dead_letter_records = 0;      // Records sent to a dead-letter topic (committed).
  uint64_t records_restored = 0;         // Changelog records applied by restores.
  uint64_t standby_records_applied = 0;  // Changelog records applied to standby tasks.
  uint64_t standby_takeovers = 0;        // Active tasks opened on this instance's standby copy.
  uint64_t rebalances = 0;               // Assignments received.
  uint64_t tasks_closed = 0;             // Tasks closed (clean or dirty).
  double commit_seconds_total = 0;       // Time spent committing (flush + commit).
  double commit_seconds_max = 0;
};

}  // namespace streams::runtime
