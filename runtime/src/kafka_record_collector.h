// Internal: the RecordCollector of a stream thread: its Kafka producer
// (transactional under exactly_once_v2, idempotent otherwise) and what was
// sent and acknowledged in the current cycle.
//
// Thread safety: not thread-safe; used by its stream thread only. Delivery
// reports are served from rd_kafka_poll/rd_kafka_flush calls made by that thread.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "kafka_util.h"
#include "streams/record_collector.h"

namespace streams::runtime::internal {

class KafkaRecordCollector final : public RecordCollector {
 public:
  // `transactional`: begin a transaction lazily at the first Send of a cycle.
  // `partition_counts_source` fetches partition counts on a cache miss.
  KafkaRecordCollector(bool transactional, std::string log_name);

  // Sets the producer (borrowed; owned by the stream thread, replaced after a
  // fatal error). The producer must have been created with a conf passed to
  // ConfigureProducerConf(conf).
  void SetProducer(rd_kafka_t* producer);
  rd_kafka_t* producer() const { return producer_; }

  // Installs the delivery-report callback (opaque = this) on `conf`.
  void ConfigureProducerConf(rd_kafka_conf_t* conf);

  // Seeds / replaces the partition-count cache.
  void SetPartitionCounts(std::map<std::string, int32_t> counts);

  // RecordCollector.
  Result<int32_t> PartitionCount(const std::string& topic) override;
  Status Send(ProducedRecord record) override;

  // Begins the cycle's transaction when transactional and not yet begun.
  // Errors: Fenced (fatal), Aborted, FailedPrecondition.
  Status EnsureTransaction();
  bool in_transaction() const { return in_transaction_; }
  // Marks the transaction as ended (committed or aborted) and clears the cycle.
  void EndCycle();

  // Serves pending delivery reports without blocking.
  void PollDeliveries();
  // Waits until every sent record is acknowledged. Errors: TimedOut.
  Status Flush(std::chrono::milliseconds timeout);

  // The first delivery error of the cycle (OK when none).
  const Status& delivery_error() const { return delivery_error_; }
  // Offset after the last acknowledged record of each partition this cycle.
  const std::map<TopicPartition, Offset>& acked_next_offsets() const { return acked_next_; }
  // Dead-letter records sent this cycle, per topic.
  const std::map<std::string, uint64_t>& dead_letters() const { return dead_letters_; }
  uint64_t sent_in_cycle() const { return sent_in_cycle_; }
  uint64_t delivery_errors_total() const { return delivery_errors_total_; }

 private:
  static void DeliveryReport(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  void OnDelivery(const rd_kafka_message_t* message);

  bool transactional_;
  std::string log_name_;
  rd_kafka_t* producer_ = nullptr;
  bool in_transaction_ = false;
  std::map<std::string, int32_t> partition_counts_;
  Status delivery_error_;
  bool delivery_error_is_purge_ = false;
  std::map<TopicPartition, Offset> acked_next_;
  std::map<std::string, uint64_t> dead_letters_;
  std::set<TopicPartition> failed_partitions_;
  uint64_t sent_in_cycle_ = 0;
  uint64_t delivery_errors_total_ = 0;
  // Delivery reports belonging to an earlier cycle are ignored by generation.
  uint64_t generation_ = 0;
};

}  // namespace streams::runtime::internal
