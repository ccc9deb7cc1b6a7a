#include "kafka_util.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace streams::runtime::internal {
namespace {

void LogCallback(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // Syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug.
  const char* name = rk != nullptr ? rd_kafka_name(rk) : "rdkafka";
  if (level <= 3) {
    spdlog::error("[{}] {}: {}", name, fac, buf);
  } else if (level == 4) {
    spdlog::warn("[{}] {}: {}", name, fac, buf);
  } else if (level <= 6) {
    spdlog::info("[{}] {}: {}", name, fac, buf);
  } else {
    spdlog::debug("[{}] {}: {}", name, fac, buf);
  }
}

void ErrorCallback(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  // Transport errors are retried by librdkafka; they are worth a warning only.
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    spdlog::error("[{}] fatal client error: {}", rd_kafka_name(rk), reason);
  } else {
    spdlog::warn("[{}] client error {}: {}", rd_kafka_name(rk), rd_kafka_err2name(code), reason);
  }
}

}  // namespace

StatusCode CodeForKafkaError(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return StatusCode::kOk;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return StatusCode::kTimedOut;
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return StatusCode::kFenced;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return StatusCode::kNotFound;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
      return StatusCode::kInvalidArgument;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return StatusCode::kAlreadyExists;
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR_INVALID_TXN_STATE:
      return StatusCode::kFailedPrecondition;
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
      return StatusCode::kCorruption;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  return Status(CodeForKafkaError(err), std::string(context) + ": " + rd_kafka_err2str(err) + " (" +
                                            rd_kafka_err2name(err) + ")");
}

Status KafkaStatus(const rd_kafka_error_t* error, std::string_view context) {
  if (error == nullptr) return Status::Ok();
  rd_kafka_resp_err_t code = rd_kafka_error_code(error);
  std::string message = std::string(context) + ": " + rd_kafka_error_string(error) + " (" +
                        rd_kafka_error_name(error) + ")";
  if (rd_kafka_error_is_fatal(error)) return Status::Fenced(message);
  if (rd_kafka_error_txn_requires_abort(error)) return Status::Aborted(message);
  if (rd_kafka_error_is_retriable(error)) return Status::Unavailable(message);
  StatusCode mapped = CodeForKafkaError(code);
  return Status(mapped, message);
}

Result<KafkaConf> MakeConf(const std::map<std::string, std::string>& properties,
                           std::string_view log_name) {
  KafkaConf conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [key, value] : properties) {
    errstr[0] = '\0';
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument("librdkafka property '" + key + "': " + errstr);
    }
  }
  if (!log_name.empty()) {
    std::string id(log_name);
    if (rd_kafka_conf_set(conf.get(), "client.id", id.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument(std::string("librdkafka property 'client.id': ") + errstr);
    }
  }
  rd_kafka_conf_set_log_cb(conf.get(), LogCallback);
  rd_kafka_conf_set_error_cb(conf.get(), ErrorCallback);
  return conf;
}

Result<KafkaHandle> NewClient(rd_kafka_type_t type, KafkaConf conf) {
  char errstr[512] = {};
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return Status::InvalidArgument(std::string("cannot create Kafka client: ") + errstr);
  }
  conf.release();  // Owned by rk now.
  return KafkaHandle(rk);
}

Result<std::map<std::string, int32_t>> FetchPartitionCounts(rd_kafka_t* rk,
                                                            std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, TimeoutMs(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaStatus(err, "metadata request");
  std::map<std::string, int32_t> counts;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR || t.partition_cnt <= 0) continue;
    counts[t.topic] = t.partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  return counts;
}

Status CreateTopics(rd_kafka_t* rk, const std::vector<NewTopic>& topics,
                    std::chrono::milliseconds timeout) {
  if (topics.empty()) return Status::Ok();
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  char errstr[512];
  Status status;
  for (const auto& t : topics) {
    errstr[0] = '\0';
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(t.name.c_str(), t.partitions,
                                                    t.replication_factor, errstr, sizeof(errstr));
    if (nt == nullptr) {
      status = Status::InvalidArgument("topic '" + t.name + "': " + errstr);
      break;
    }
    new_topics.push_back(nt);
    for (const auto& [k, v] : t.config) {
      rd_kafka_resp_err_t err = rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = KafkaStatus(err, "topic '" + t.name + "' config '" + k + "'");
        break;
      }
    }
    if (!status.ok()) break;
  }
  if (status.ok()) {
    rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t* options =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(options, TimeoutMs(timeout), errstr,
                                                sizeof(errstr));
    rd_kafka_AdminOptions_set_request_timeout(options, TimeoutMs(timeout), errstr, sizeof(errstr));
    rd_kafka_CreateTopics(rk, new_topics.data(), new_topics.size(), options, queue);
    // Wait for the result event (a little longer than the request timeout).
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue, TimeoutMs(timeout) + 5000);
    if (event == nullptr) {
      status = Status::TimedOut("CreateTopics: no result in time");
    } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = Status(CodeForKafkaError(rd_kafka_event_error(event)),
                      std::string("CreateTopics: ") + rd_kafka_event_error_string(event));
    } else {
      const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event);
      size_t count = 0;
      const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
      for (size_t i = 0; i < count && status.ok(); ++i) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          continue;
        }
        const char* msg = rd_kafka_topic_result_error_string(results[i]);
        status = Status(CodeForKafkaError(err),
                        std::string("creating topic '") + rd_kafka_topic_result_name(results[i]) +
                            "': " + (msg != nullptr ? msg : rd_kafka_err2str(err)));
      }
    }
    if (event != nullptr) rd_kafka_event_destroy(event);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(queue);
  }
  rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
  return status;
}

PartitionList MakePartitionList(const std::map<TopicPartition, std::optional<Offset>>& partitions) {
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& [tp, offset] : partitions) {
    rd_kafka_topic_partition_t* p =
        rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition.value());
    if (offset) p->offset = offset->value();
  }
  return list;
}

rd_kafka_resp_err_t QueryWatermarks(rd_kafka_t* rk, const TopicPartition& tp, int64_t* low,
                                    int64_t* high, int timeout_ms) {
  // ListOffsets "timestamps": -2 the earliest offset, -1 the end.
  int64_t result[2] = {0, 0};
  const int64_t logical[2] = {RD_KAFKA_OFFSET_BEGINNING, RD_KAFKA_OFFSET_END};
  for (int i = 0; i < 2; ++i) {
    PartitionList list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition.value())->offset =
        logical[i];
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list.get(), timeout_ms);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = list->elems[0].err;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return err;
    result[i] = list->elems[0].offset;
  }
  *low = std::max<int64_t>(0, result[0]);
  *high = std::max(*low, result[1]);
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

void SetOffsetMetadata(rd_kafka_topic_partition_t* partition, std::string_view metadata) {
  if (partition->metadata != nullptr) free(partition->metadata);
  partition->metadata = nullptr;
  partition->metadata_size = 0;
  if (metadata.empty()) return;
  // librdkafka frees it with free() when the list is destroyed.
  partition->metadata = malloc(metadata.size());
  if (partition->metadata == nullptr) return;  // Out of memory: committed without metadata.
  memcpy(partition->metadata, metadata.data(), metadata.size());
  partition->metadata_size = metadata.size();
}

namespace {
constexpr std::string_view kStreamTimeMetadataPrefix = "streams.v1;stream_time=";
}  // namespace

std::string EncodeStreamTimeMetadata(Timestamp stream_time) {
  return std::string(kStreamTimeMetadataPrefix) + std::to_string(stream_time.millis());
}

std::optional<Timestamp> DecodeStreamTimeMetadata(std::string_view metadata) {
  if (metadata.substr(0, kStreamTimeMetadataPrefix.size()) != kStreamTimeMetadataPrefix) {
    return std::nullopt;
  }
  std::string_view digits = metadata.substr(kStreamTimeMetadataPrefix.size());
  int64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value < 0) return std::nullopt;
  return Timestamp(value);
}

int TimeoutMs(std::chrono::milliseconds timeout) {
  return static_cast<int>(std::clamp<int64_t>(timeout.count(), 0, INT_MAX));
}

std::string PartitionListString(const rd_kafka_topic_partition_list_t* list) {
  std::string out;
  for (int i = 0; list != nullptr && i < list->cnt; ++i) {
    if (!out.empty()) out += ",";
    out += std::string(list->elems[i].topic) + "-" + std::to_string(list->elems[i].partition);
  }
  return out.empty() ? "(none)" : out;
}

Status RetryLookup(const std::function<rd_kafka_resp_err_t(int)>& lookup, const std::string& what,
                   std::chrono::milliseconds attempt, const std::atomic<bool>& stop,
                   std::string_view log_name) {
  using std::chrono::milliseconds;
  const auto deadline = std::chrono::steady_clock::now() + attempt * 6;
  milliseconds backoff(100);
  for (int attempts = 1;; ++attempts) {
    rd_kafka_resp_err_t err = lookup(TimeoutMs(attempt));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (attempts > 1) {
        spdlog::info("[{}] {}: succeeded after {} attempts", log_name, what, attempts);
      }
      return Status::Ok();
    }
    Status status = KafkaStatus(err, what);
    if (stop.load()) return Status::Aborted("stopping: " + status.message());
    if (std::chrono::steady_clock::now() + backoff > deadline) {
      return Status(
          status.code() == StatusCode::kTimedOut ? StatusCode::kTimedOut : StatusCode::kUnavailable,
          status.message() + " (" + std::to_string(attempts) + " attempts)");
    }
    spdlog::warn("[{}] {} (attempt {}); retrying in {} ms", log_name, status.message(), attempts,
                 backoff.count());
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, milliseconds(2000));
  }
}

}  // namespace streams::runtime::internal
