// Internal: StreamsProducer, the producer of one StreamThread and its
// transactions (as Kafka Streams' StreamsProducer): creation, transaction
// initialization with retries, commit with the consumed offsets, abort, and
// re-creation after a fatal error (fencing).
//
// The records themselves go through a KafkaRecordCollector, which is handed
// the producer whenever one is created and detached before it is destroyed
// (the collector also begins each transaction, at the first send of a cycle).
//
// Thread safety: used by its stream thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "kafka_record_collector.h"
#include "kafka_util.h"
#include "streams/runtime/streams_config.h"
#include "streams/status.h"

namespace streams::runtime::internal {

class StreamsProducer {
 public:
  // `config`, `collector` and `stop` are borrowed and must outlive the
  // object. Under exactly_once_v2 the producer is transactional with
  // `transactional_id`. Nothing is created before Create().
  StreamsProducer(const StreamsConfig& config, std::string log_name, std::string transactional_id,
                  KafkaRecordCollector* collector, const std::atomic<bool>* stop);
  ~StreamsProducer();
  StreamsProducer(const StreamsProducer&) = delete;
  StreamsProducer& operator=(const StreamsProducer&) = delete;

  // Creates the librdkafka producer (idempotent; transactional under
  // exactly_once_v2) and hands it to the collector. Errors: InvalidArgument
  // (librdkafka rejected the configuration).
  [[nodiscard]] Status Create();

  // Under exactly_once_v2: initializes transactions (fences older producers
  // with the same transactional.id), retrying retriable errors with backoff
  // until it succeeds; a fatal error re-creates the producer, up to 3 times.
  // OK at once under at_least_once. Errors: the last error (fatal or not
  // retriable); Aborted when `stop` is set meanwhile.
  [[nodiscard]] Status InitTransactions();

  // Commits the open transaction: first adds `offsets` (when not null and not
  // empty) with the group metadata of `consumer`, then commits; each call is
  // retried on retriable errors within transaction.timeout.ms, serving
  // delivery reports in between. Errors: Fenced (fatal: call Recreate),
  // Aborted (the transaction must be aborted), TimedOut/Unavailable.
  [[nodiscard]] Status CommitTransaction(const rd_kafka_topic_partition_list_t* offsets,
                                         rd_kafka_t* consumer);

  // Aborts the open transaction (retried within transaction.timeout.ms).
  // Errors: as CommitTransaction; when it fails the producer is unusable and
  // must be re-created.
  [[nodiscard]] Status AbortTransaction();

  // After a fatal error: detaches and destroys the producer, creates a new
  // one and initializes its transactions. Errors: those of Create and
  // InitTransactions.
  [[nodiscard]] Status Recreate();

  // Detaches the producer from the collector, flushes what is queued (up to
  // 5 s) and destroys it. Idempotent.
  void Close();

  // The librdkafka handle, or nullptr before Create / after Close.
  rd_kafka_t* get() const { return producer_.get(); }
  const std::string& transactional_id() const { return transactional_id_; }

 private:
  void Destroy();

  const StreamsConfig& config_;
  std::string log_name_;
  std::string transactional_id_;
  KafkaRecordCollector* collector_;
  const std::atomic<bool>* stop_;
  KafkaHandle producer_;
};

}  // namespace streams::runtime::internal
