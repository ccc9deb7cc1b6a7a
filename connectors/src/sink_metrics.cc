#include "streams/connect/sink_metrics.h"

namespace streams::connect {
namespace {

prometheus::Family<prometheus::Counter>& CounterFamily(prometheus::Registry& r,
                                                       const std::string& name,
                                                       const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

prometheus::Gauge& Gauge(prometheus::Registry& r, const std::string& name,
                         const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

prometheus::Histogram& Histogram(prometheus::Registry& r, const std::string& name,
                                 const std::string& help,
                                 prometheus::Histogram::BucketBoundaries b) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add({}, std::move(b));
}

}  // namespace

SinkMetrics::SinkMetrics(prometheus::Registry& r, const std::string& p)
    : records_consumed(
          CounterFamily(r, p + "_records_consumed_total", "Records accepted from Kafka for writing")
              .Add({})),
      batches(
          CounterFamily(r, p + "_batches_total",
                        "Batch write attempts by result (committed, retried, fenced, isolated)")),
      batch_records(Histogram(r, p + "_batch_records", "Records per committed batch",
                              {1, 10, 50, 100, 250, 500, 1000, 2000, 5000})),
      batch_duration(Histogram(r, p + "_batch_duration_seconds",
                               "Time to write and commit one batch",
                               {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})),
      database_retries(CounterFamily(r, p + "_database_retries_total",
                                     "Database transaction retries by SQLSTATE")),
      paused(Gauge(r, p + "_paused", "1 while the partitions are paused (database unavailable)")),
      paused_seconds(
          CounterFamily(r, p + "_paused_seconds_total", "Time spent with partitions paused")
              .Add({})),
      circuit_open(Gauge(r, p + "_circuit_open", "1 while the database circuit breaker is open")),
      dead_letters(CounterFamily(r, p + "_dead_letter_records_total",
                                 "Records sent to the dead-letter topic by stage")),
      offset_conflicts(CounterFamily(r, p + "_offset_conflicts_total",
                                     "Stored position compare-and-set failures (fenced writes)")
                           .Add({})),
      assigned_partitions(
          Gauge(r, p + "_assigned_partitions", "Partitions assigned to this instance")),
      consumer_lag(prometheus::BuildGauge()
                       .Name(p + "_consumer_lag")
                       .Help("Records of an owned partition not yet written to the database")
                       .Register(r)) {
  // The known label values start at 0, so their series exist before the first event.
  for (const char* result : {"committed", "retried", "fenced", "isolated"}) {
    batches.Add({{"result", result}});
  }
  for (const char* sqlstate : {"40001", "40P01"}) database_retries.Add({{"sqlstate", sqlstate}});
  for (const char* stage : {"VALUE_CONVERTER", "TASK_PUT"}) dead_letters.Add({{"stage", stage}});
}

void SinkMetrics::CountDatabaseRetry(std::string_view sqlstate) {
  database_retries.Add({{"sqlstate", sqlstate.empty() ? "unknown" : std::string(sqlstate)}})
      .Increment();
}

}  // namespace streams::connect
