// SinkMetrics: the Prometheus metrics of a SinkRunner and its task, all named
// "<prefix>_..." (prefix e.g. "payments_sink"):
//
//   <p>_records_consumed_total                 records accepted from Kafka
//   <p>_batches_total{result}                  committed | retried | fenced | isolated
//   <p>_batch_records                          histogram of records per committed batch
//   <p>_batch_duration_seconds                 histogram of a committed batch's write time
//   <p>_database_retries_total{sqlstate}       transaction retries (40001, 40P01, 08006...)
//   <p>_paused                                 1 while partitions are paused (database down)
//   <p>_paused_seconds_total                   time spent paused
//   <p>_circuit_open                           1 while the database circuit breaker is open
//   <p>_dead_letter_records_total{stage}       VALUE_CONVERTER | TASK_PUT
//   <p>_offset_conflicts_total                 position compare-and-set failures
//   <p>_assigned_partitions                    partitions owned by this instance
//   <p>_consumer_lag{topic,partition}          records not yet written to the database
//                                              (high watermark - position), per owned partition
//
// The label values listed above (and sqlstate 40001, 40P01) are created at 0.
//
// Thread safety: thread-safe (prometheus-cpp metrics are atomic).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>
#include <string_view>

namespace streams::connect {

class SinkMetrics {
 public:
  SinkMetrics(prometheus::Registry& registry, const std::string& prefix);

  // Counts one retry of a transaction or batch caused by `sqlstate` ("" is
  // counted as "unknown").
  void CountDatabaseRetry(std::string_view sqlstate);

  prometheus::Counter& records_consumed;
  prometheus::Family<prometheus::Counter>& batches;
  prometheus::Histogram& batch_records;
  prometheus::Histogram& batch_duration;
  prometheus::Family<prometheus::Counter>& database_retries;
  prometheus::Gauge& paused;
  prometheus::Counter& paused_seconds;
  prometheus::Gauge& circuit_open;
  prometheus::Family<prometheus::Counter>& dead_letters;
  prometheus::Counter& offset_conflicts;
  prometheus::Gauge& assigned_partitions;
  prometheus::Family<prometheus::Gauge>& consumer_lag;
};

}  // namespace streams::connect
