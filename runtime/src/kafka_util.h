// Internal: RAII wrappers and error translation for the librdkafka C API.
//
// Thread safety: the functions are thread-safe; handles follow librdkafka's rules
// (rd_kafka_t is thread-safe, topic-partition lists are not).
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "streams/kafka_types.h"
#include "streams/result.h"
#include "streams/status.h"

namespace streams::runtime::internal {

struct KafkaHandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaHandleDeleter>;

struct KafkaConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using KafkaConf = std::unique_ptr<rd_kafka_conf_t, KafkaConfDeleter>;

struct KafkaErrorDeleter {
  void operator()(rd_kafka_error_t* error) const { rd_kafka_error_destroy(error); }
};
using KafkaError = std::unique_ptr<rd_kafka_error_t, KafkaErrorDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

// The StatusCode for a librdkafka error code (retriable broker errors map to
// Unavailable, fencing to Fenced, timeouts to TimedOut, ...).
StatusCode CodeForKafkaError(rd_kafka_resp_err_t err);

// "<context>: <librdkafka error string> (<error name>)" with the mapped code.
Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view context);
// The same for an rd_kafka_error_t; fatal errors become Fenced, errors that
// require a transaction abort become Aborted. OK for nullptr.
Status KafkaStatus(const rd_kafka_error_t* error, std::string_view context);

// A configuration with `properties` applied and librdkafka's logs routed to
// spdlog with `log_name` as prefix. Errors: InvalidArgument naming the property.
Result<KafkaConf> MakeConf(const std::map<std::string, std::string>& properties,
                           std::string_view log_name);

// Creates a client; takes ownership of `conf` on success and on failure.
// Errors: InvalidArgument (librdkafka rejected the configuration).
Result<KafkaHandle> NewClient(rd_kafka_type_t type, KafkaConf conf);

// Partition counts of every topic the cluster knows (an all-topics metadata
// request: never auto-creates topics). Errors: Unavailable/TimedOut.
Result<std::map<std::string, int32_t>> FetchPartitionCounts(rd_kafka_t* rk,
                                                            std::chrono::milliseconds timeout);

struct NewTopic {
  std::string name;
  int32_t partitions = 1;
  int replication_factor = 1;
  std::map<std::string, std::string> config;
};

// Creates `topics` with the admin API (rk may be any client type). A topic
// that already exists is not an error. Errors: the first failing topic's
// error, naming it.
Status CreateTopics(rd_kafka_t* rk, const std::vector<NewTopic>& topics,
                    std::chrono::milliseconds timeout);

// Builds a partition list; offsets set when given.
PartitionList MakePartitionList(const std::map<TopicPartition, std::optional<Offset>>& partitions);

// The low and high watermarks of a partition (high: the high watermark for a
// read_uncommitted client, the last stable offset for read_committed), asked
// with ListOffsets through rd_kafka_offsets_for_times, which honours
// `timeout_ms` (rd_kafka_query_watermark_offsets waits for the request's
// socket timeout and retries timed-out requests, so with the leader down it
// may never return). Errors: the librdkafka error (_TIMED_OUT, ...).
rd_kafka_resp_err_t QueryWatermarks(rd_kafka_t* rk, const TopicPartition& tp, int64_t* low,
                                    int64_t* high, int timeout_ms);

// Sets a partition's offset metadata (a copy; freed with the list).
void SetOffsetMetadata(rd_kafka_topic_partition_t* partition, std::string_view metadata);

// Offset metadata that carries a task's stream time, committed with the input
// offsets ("streams.v1;stream_time=<ms>"), and its decoding: std::nullopt for
// metadata in another format (written by another client) or none.
std::string EncodeStreamTimeMetadata(Timestamp stream_time);
std::optional<Timestamp> DecodeStreamTimeMetadata(std::string_view metadata);

// Milliseconds as int for librdkafka timeouts (clamped).
int TimeoutMs(std::chrono::milliseconds timeout);

// "topic-partition,..." for logs; "(none)" for an empty or null list.
std::string PartitionListString(const rd_kafka_topic_partition_list_t* list);

// Runs `lookup(attempt_ms)` (a librdkafka metadata call with a per-attempt
// timeout of `attempt`) until it succeeds, with backoff (100 ms doubling to
// 2 s), for up to 6 x `attempt`. `what` names the lookup in logs and errors,
// `log_name` the caller. Errors: the last error (Unavailable, or TimedOut
// when the last attempt timed out) when it keeps failing; Aborted as soon as
// `stop` is set.
Status RetryLookup(const std::function<rd_kafka_resp_err_t(int timeout_ms)>& lookup,
                   const std::string& what, std::chrono::milliseconds attempt,
                   const std::atomic<bool>& stop, std::string_view log_name);

}  // namespace streams::runtime::internal
