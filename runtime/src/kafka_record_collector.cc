#include "kafka_record_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "streams/stream_task.h"

namespace streams::runtime::internal {

KafkaRecordCollector::KafkaRecordCollector(bool transactional, std::string log_name)
    : transactional_(transactional), log_name_(std::move(log_name)) {}

void KafkaRecordCollector::SetProducer(rd_kafka_t* producer) {
  producer_ = producer;
  in_transaction_ = false;
  EndCycle();
}

void KafkaRecordCollector::ConfigureProducerConf(rd_kafka_conf_t* conf) {
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_dr_msg_cb(conf, &KafkaRecordCollector::DeliveryReport);
}

void KafkaRecordCollector::SetPartitionCounts(std::map<std::string, int32_t> counts) {
  partition_counts_ = std::move(counts);
}

Result<int32_t> KafkaRecordCollector::PartitionCount(const std::string& topic) {
  auto it = partition_counts_.find(topic);
  if (it != partition_counts_.end()) return it->second;
  if (producer_ == nullptr) return Status::Unavailable("no producer");
  STREAMS_ASSIGN_OR_RETURN(auto counts,
                           FetchPartitionCounts(producer_, std::chrono::milliseconds(10000)));
  partition_counts_ = std::move(counts);
  it = partition_counts_.find(topic);
  if (it == partition_counts_.end()) {
    return Status::NotFound("topic '" + topic + "' does not exist");
  }
  return it->second;
}

Status KafkaRecordCollector::EnsureTransaction() {
  if (!transactional_ || in_transaction_) return Status::Ok();
  if (producer_ == nullptr) return Status::FailedPrecondition("no producer");
  KafkaError error(rd_kafka_begin_transaction(producer_));
  if (error) return KafkaStatus(error.get(), "begin_transaction");
  in_transaction_ = true;
  return Status::Ok();
}

void KafkaRecordCollector::EndCycle() {
  in_transaction_ = false;
  delivery_error_ = Status::Ok();
  delivery_error_is_purge_ = false;
  acked_next_.clear();
  dead_letters_.clear();
  failed_partitions_.clear();
  sent_in_cycle_ = 0;
  ++generation_;
}

Status KafkaRecordCollector::Send(ProducedRecord record) {
  if (producer_ == nullptr) return Status::FailedPrecondition("no producer");
  STREAMS_RETURN_IF_ERROR(EnsureTransaction());
  int32_t partition = RD_KAFKA_PARTITION_UA;
  if (record.partition) {
    partition = record.partition->value();
  } else if (record.key && !record.key->empty()) {
    STREAMS_ASSIGN_OR_RETURN(int32_t count, PartitionCount(record.topic));
    partition = DefaultPartitionForKey(*record.key, count).value();
  }
  rd_kafka_headers_t* headers = nullptr;
  if (!record.headers.empty()) {
    headers = rd_kafka_headers_new(record.headers.size());
    for (const auto& h : record.headers) {
      rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                          static_cast<ssize_t>(h.value.size()));
    }
  }
  const bool dead_letter = FindHeader(record.headers, kDlqErrorHeader).has_value();
  void* opaque = reinterpret_cast<void*>(static_cast<uintptr_t>(generation_));
  const void* key_ptr = record.key ? record.key->data() : nullptr;
  size_t key_len = record.key ? record.key->size() : 0;
  void* value_ptr = record.value ? record.value->data() : nullptr;
  size_t value_len = record.value ? record.value->size() : 0;
  // A record without a timestamp (negative: a dead-lettered input the producer
  // sent without one) is written with 0, which librdkafka replaces by the time
  // of sending; Kafka rejects negative timestamps.
  const int64_t timestamp = std::max<int64_t>(0, record.timestamp.millis());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    rd_kafka_resp_err_t err;
    if (headers != nullptr) {
      err = rd_kafka_producev(
          producer_, RD_KAFKA_V_TOPIC(record.topic.c_str()), RD_KAFKA_V_PARTITION(partition),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key_ptr, key_len),
          RD_KAFKA_V_VALUE(value_ptr, value_len), RD_KAFKA_V_TIMESTAMP(timestamp),
          RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    } else {
      err = rd_kafka_producev(
          producer_, RD_KAFKA_V_TOPIC(record.topic.c_str()), RD_KAFKA_V_PARTITION(partition),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key_ptr, key_len),
          RD_KAFKA_V_VALUE(value_ptr, value_len), RD_KAFKA_V_TIMESTAMP(timestamp),
          RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && std::chrono::steady_clock::now() < deadline) {
      // Serve delivery reports to make room, then retry.
      rd_kafka_poll(producer_, 10);
      continue;
    }
    if (headers != nullptr) rd_kafka_headers_destroy(headers);
    std::string context = "producing to " + record.topic + "-" + std::to_string(partition);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char reason[512] = {};
      rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(producer_, reason, sizeof(reason));
      return Status::Fenced(context + ": fatal producer error " + rd_kafka_err2name(fatal) + ": " +
                            reason);
    }
    if (err == RD_KAFKA_RESP_ERR__STATE) {
      // The transaction is in an abortable error state.
      return Status::Aborted(context + ": " + rd_kafka_err2str(err));
    }
    Status status = KafkaStatus(err, context);
    if (status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kTimedOut) {
      return Status::Aborted(status.message());
    }
    return status;
  }
  ++sent_in_cycle_;
  if (dead_letter) ++dead_letters_[record.topic];
  return Status::Ok();
}

void KafkaRecordCollector::PollDeliveries() {
  if (producer_ != nullptr) rd_kafka_poll(producer_, 0);
}

Status KafkaRecordCollector::Flush(std::chrono::milliseconds timeout) {
  if (producer_ == nullptr) return Status::Ok();
  rd_kafka_resp_err_t err = rd_kafka_flush(producer_, TimeoutMs(timeout));
  // rd_kafka_flush serves delivery reports (dr_msg_cb) itself.
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    return Status::TimedOut(
        "flushing the producer: " + std::to_string(rd_kafka_outq_len(producer_)) +
        " records still in flight");
  }
  return KafkaStatus(err, "flushing the producer");
}

void KafkaRecordCollector::DeliveryReport(rd_kafka_t* rk, const rd_kafka_message_t* message,
                                          void* opaque) {
  static_cast<KafkaRecordCollector*>(opaque)->OnDelivery(message);
}

void KafkaRecordCollector::OnDelivery(const rd_kafka_message_t* message) {
  auto generation = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(message->_private));
  if (generation != generation_) return;  // A report of an earlier (aborted) cycle.
  TopicPartition tp{rd_kafka_topic_name(message->rkt), Partition(message->partition)};
  if (message->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
      message->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
    // Purged by an abort (or by librdkafka after the transaction failed):
    // a consequence of an error reported by another record or call.
    if (delivery_error_.ok()) {
      delivery_error_ = Status::Aborted("record to " + tp.ToString() + " purged");
      delivery_error_is_purge_ = true;
    }
    return;
  }
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++delivery_errors_total_;
    // Log the first failure per partition and cycle; the rest are counted.
    if (failed_partitions_.insert(tp).second) {
      spdlog::error("[{}] delivery to {} failed: {} ({})", log_name_, tp.ToString(),
                    rd_kafka_err2str(message->err), rd_kafka_err2name(message->err));
    }
    if (delivery_error_.ok() || delivery_error_is_purge_) {
      delivery_error_ = KafkaStatus(message->err, "delivery to " + tp.ToString());
      delivery_error_is_purge_ = false;
    }
    return;
  }
  if (message->offset >= 0) {
    Offset next(message->offset + 1);
    auto [it, inserted] = acked_next_.emplace(tp, next);
    if (!inserted && it->second < next) it->second = next;
  }
}

}  // namespace streams::runtime::internal
