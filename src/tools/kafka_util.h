// Small librdkafka helpers shared by the command-line tools (payments-loadgen,
// payments-verify, kafka-mock) and the paymentd integration tests.
//
// Every librdkafka error is translated into a streams::Status here; nothing
// throws.
//
// Thread safety: the free functions are thread-safe. A KafkaHandle is as
// thread-safe as librdkafka's rd_kafka_t (most calls may be made from any thread).
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "streams/kafka_types.h"
#include "streams/result.h"
#include "streams/status.h"

namespace payments::tools {

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
};

// Owning handles. Destroying a KafkaHandle closes the client (rd_kafka_destroy).
using KafkaHandle = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;
using KafkaConf = std::unique_ptr<rd_kafka_conf_t, RdKafkaDeleter>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, RdKafkaDeleter>;
using KafkaMessage = std::unique_ptr<rd_kafka_message_t, RdKafkaDeleter>;

// Ordered librdkafka properties (later entries of the same key win).
using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

// Splits "key=value" at the first '='. Errors: InvalidArgument when there is no
// '=' or the key is empty. The value may be empty or contain '='.
streams::Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view text);

// Builds a librdkafka configuration from `properties`. Errors: InvalidArgument
// naming the key for an unknown property or a bad value. The caller owns the
// returned configuration until it passes it to CreateClient.
streams::Result<KafkaConf> MakeConf(const KafkaProperties& properties);

// Creates a producer or consumer from `conf`, taking ownership of it in all
// cases. Errors: InvalidArgument with librdkafka's message.
streams::Result<KafkaHandle> CreateClient(rd_kafka_type_t type, KafkaConf conf);

// Number of partitions of `topic` from the cluster metadata, once every
// partition has a leader: a topic just created (leaderless for a moment on
// Apache Kafka) is asked again with backoff until `timeout`. Errors: NotFound
// when the topic does not exist (or has no partitions), Unavailable/TimedOut
// when the cluster does not answer, or a partition has no leader, within `timeout`.
streams::Result<int32_t> PartitionCount(rd_kafka_t* rk, const std::string& topic,
                                        std::chrono::milliseconds timeout);

// The end offset of every partition of `topic`: the high watermark, or the last
// stable offset for a client configured with isolation.level=read_committed.
// Errors: as PartitionCount, plus Unavailable/TimedOut for the offset queries.
streams::Result<std::map<streams::Partition, streams::Offset>> QueryEndOffsets(
    rd_kafka_t* rk, const std::string& topic, std::chrono::milliseconds timeout);

// A topic to create.
struct TopicSpec {
  std::string name;
  int partitions = 4;
  int replication_factor = 1;
};

// What CreateTopics did for one topic.
enum class TopicOutcome { kCreated, kAlreadyExisted };

// Creates `topics` with the Admin API (CreateTopics) through a client built
// from `properties` (bootstrap.servers, security...). A topic that already
// exists is not an error (its partition count is left as it is). Returns once
// every partition of every topic has a leader. Errors:
// InvalidArgument (properties, bad spec), Unavailable/TimedOut (cluster),
// Internal (the broker refused, e.g. no CreateTopics support; the message
// names the topic and the broker's reason).
streams::Result<std::map<std::string, TopicOutcome>> CreateTopics(
    const KafkaProperties& properties, const std::vector<TopicSpec>& topics,
    std::chrono::milliseconds timeout);

// One record read by ReadTopicsToEnd.
struct ReadRecord {
  std::string topic;
  streams::Partition partition{0};
  streams::Offset offset{0};
  streams::Timestamp timestamp;
  // True when the broker stamped the timestamp (LogAppendTime).
  bool log_append_time = false;
  std::optional<std::string> key;
  std::optional<std::string> value;
  streams::Headers headers;
};

struct ReadOptions {
  // Client properties (bootstrap.servers, security...); isolation.level is set
  // to read_committed unless given here.
  KafkaProperties properties;
  std::vector<std::string> topics;
  // Gives up after this long in total (metadata, offsets and reading).
  std::chrono::milliseconds timeout{60000};
};

// Reads every record of every partition of `topics` from the beginning up to
// the end offsets queried when the call starts (read_committed by default:
// records of aborted transactions are skipped by a real broker). Returns the
// records grouped by topic, each topic in (partition, offset) order.
// Errors: InvalidArgument (properties), NotFound (a topic is missing), TimedOut
// (the end was not reached in time; the message lists the lagging partitions).
streams::Result<std::map<std::string, std::vector<ReadRecord>>> ReadTopicsToEnd(
    const ReadOptions& options);

}  // namespace payments::tools
