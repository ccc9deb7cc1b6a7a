#include "streams_producer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <thread>

namespace streams::runtime::internal {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// Calls a librdkafka transactional API (given its per-attempt timeout) until
// it succeeds, fails for good, or `budget` is spent on retriable errors.
// Between attempts the producer's delivery reports are served: abort and
// commit wait for the outstanding messages, whose reports must be polled.
Status RetryTxnCall(rd_kafka_t* producer, const std::function<rd_kafka_error_t*(int)>& call,
                    std::string_view what, milliseconds budget) {
  auto deadline = SteadyClock::now() + budget;
  milliseconds backoff(10);
  while (true) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    int attempt_ms = TimeoutMs(std::clamp(left, milliseconds(100), milliseconds(1000)));
    KafkaError error(call(attempt_ms));
    if (!error) return Status::Ok();
    Status status = KafkaStatus(error.get(), what);
    bool retriable = (rd_kafka_error_is_retriable(error.get()) ||
                      rd_kafka_error_code(error.get()) == RD_KAFKA_RESP_ERR__TIMED_OUT) &&
                     !rd_kafka_error_is_fatal(error.get()) &&
                     !rd_kafka_error_txn_requires_abort(error.get());
    if (!retriable || SteadyClock::now() + backoff > deadline) return status;
    spdlog::debug("{} not done yet, retrying: {}", what, status.message());
    rd_kafka_poll(producer, static_cast<int>(backoff.count()));
    backoff = std::min(backoff * 2, milliseconds(500));
  }
}

}  // namespace

StreamsProducer::StreamsProducer(const StreamsConfig& config, std::string log_name,
                                 std::string transactional_id, KafkaRecordCollector* collector,
                                 const std::atomic<bool>* stop)
    : config_(config),
      log_name_(std::move(log_name)),
      transactional_id_(std::move(transactional_id)),
      collector_(collector),
      stop_(stop) {}

StreamsProducer::~StreamsProducer() { Close(); }

Status StreamsProducer::Create() {
  auto props = config_.KafkaProperties(ClientKind::kProducer);
  props["enable.idempotence"] = "true";
  props["partitioner"] = "murmur2_random";
  if (config_.exactly_once()) {
    props["transactional.id"] = transactional_id_;
    props["transaction.timeout.ms"] = std::to_string(config_.transaction_timeout().count());
  }
  STREAMS_ASSIGN_OR_RETURN(KafkaConf conf, MakeConf(props, log_name_ + "-producer"));
  collector_->ConfigureProducerConf(conf.get());
  STREAMS_ASSIGN_OR_RETURN(producer_, NewClient(RD_KAFKA_PRODUCER, std::move(conf)));
  collector_->SetProducer(producer_.get());
  return Status::Ok();
}

Status StreamsProducer::InitTransactions() {
  if (!config_.exactly_once()) return Status::Ok();
  milliseconds backoff(100);
  int fatal_attempts = 0;
  while (!stop_->load()) {
    KafkaError error(
        rd_kafka_init_transactions(producer_.get(), TimeoutMs(config_.transaction_timeout() * 2)));
    if (!error) {
      spdlog::info("[{}] transactions initialized (transactional.id={})", log_name_,
                   transactional_id_);
      return Status::Ok();
    }
    Status status = KafkaStatus(error.get(), "init_transactions");
    if (rd_kafka_error_is_fatal(error.get())) {
      if (++fatal_attempts > 3) return status;
      spdlog::warn("[{}] {}; re-creating the producer", log_name_, status.message());
      Destroy();
      STREAMS_RETURN_IF_ERROR(Create());
    } else if (!rd_kafka_error_is_retriable(error.get()) &&
               rd_kafka_error_code(error.get()) != RD_KAFKA_RESP_ERR__TIMED_OUT) {
      return status;
    } else {
      spdlog::warn("[{}] {}; retrying", log_name_, status.message());
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, milliseconds(2000));
  }
  return Status::Aborted("stopped while initializing transactions");
}

Status StreamsProducer::CommitTransaction(const rd_kafka_topic_partition_list_t* offsets,
                                          rd_kafka_t* consumer) {
  if (offsets != nullptr && offsets->cnt > 0) {
    rd_kafka_consumer_group_metadata_t* metadata = rd_kafka_consumer_group_metadata(consumer);
    Status sent = RetryTxnCall(
        producer_.get(),
        [&](int timeout_ms) {
          return rd_kafka_send_offsets_to_transaction(producer_.get(), offsets, metadata,
                                                      timeout_ms);
        },
        "send_offsets_to_transaction", config_.transaction_timeout());
    rd_kafka_consumer_group_metadata_destroy(metadata);
    STREAMS_RETURN_IF_ERROR(sent);
  }
  return RetryTxnCall(
      producer_.get(),
      [&](int timeout_ms) { return rd_kafka_commit_transaction(producer_.get(), timeout_ms); },
      "commit_transaction", config_.transaction_timeout());
}

Status StreamsProducer::AbortTransaction() {
  return RetryTxnCall(
      producer_.get(),
      [&](int timeout_ms) { return rd_kafka_abort_transaction(producer_.get(), timeout_ms); },
      "abort_transaction", config_.transaction_timeout());
}

Status StreamsProducer::Recreate() {
  Destroy();
  STREAMS_RETURN_IF_ERROR(Create());
  return InitTransactions();
}

void StreamsProducer::Destroy() {
  collector_->SetProducer(nullptr);
  producer_.reset();
}

void StreamsProducer::Close() {
  if (!producer_) return;
  collector_->SetProducer(nullptr);
  rd_kafka_flush(producer_.get(), TimeoutMs(milliseconds(5000)));
  producer_.reset();
}

}  // namespace streams::runtime::internal
