#include "tools/kafka_util.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>
#include <tuple>

namespace payments::tools {
namespace {

using streams::Offset;
using streams::Partition;
using streams::Result;
using streams::Status;

Status FromRdKafka(rd_kafka_resp_err_t err, std::string_view what) {
  std::string message = std::string(what) + ": " + rd_kafka_err2str(err);
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return Status::Ok();
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return Status::TimedOut(std::move(message));
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return Status::NotFound(std::move(message));
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return Status::InvalidArgument(std::move(message));
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
      return Status::Unavailable(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

int TimeoutMs(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

}  // namespace

Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return Status::InvalidArgument("expected key=value, got '" + std::string(text) + "'");
  }
  return std::make_pair(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
}

Result<KafkaConf> MakeConf(const KafkaProperties& properties) {
  KafkaConf conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument("kafka property '" + key + "': " + errstr);
    }
  }
  return conf;
}

Result<KafkaHandle> CreateClient(rd_kafka_type_t type, KafkaConf conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return Status::InvalidArgument(std::string("cannot create kafka client: ") + errstr);
  }
  conf.release();  // Owned by rk now.
  return KafkaHandle(rk);
}

Result<int32_t> PartitionCount(rd_kafka_t* rk, const std::string& topic,
                               std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::chrono::milliseconds backoff(50);
  while (true) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    if (rkt == nullptr) {
      return FromRdKafka(rd_kafka_last_error(), "topic handle for '" + topic + "'");
    }
    const rd_kafka_metadata_t* metadata = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &metadata, TimeoutMs(deadline));
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return FromRdKafka(err, "metadata of topic '" + topic + "'");
    }
    int32_t count = 0;
    rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    // A topic just created has partitions without a leader for a moment
    // (Apache Kafka answers LEADER_NOT_AVAILABLE or NOT_LEADER_OR_FOLLOWER).
    bool leaderless = false;
    for (int i = 0; i < metadata->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& t = metadata->topics[i];
      if (topic != t.topic) continue;
      topic_err = t.err;
      count = t.partition_cnt;
      for (int p = 0; p < t.partition_cnt; ++p) {
        leaderless = leaderless || t.partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
                     t.partitions[p].leader < 0;
      }
    }
    rd_kafka_metadata_destroy(metadata);
    const bool transient = topic_err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                           topic_err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                           (topic_err == RD_KAFKA_RESP_ERR_NO_ERROR && leaderless);
    if (transient && std::chrono::steady_clock::now() + backoff < deadline) {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      continue;
    }
    if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return FromRdKafka(topic_err, "topic '" + topic + "'");
    }
    if (leaderless) {
      return Status::Unavailable("topic '" + topic + "' has partitions without a leader");
    }
    if (count <= 0) return Status::NotFound("topic '" + topic + "' has no partitions");
    return count;
  }
}

Result<std::map<Partition, Offset>> QueryEndOffsets(rd_kafka_t* rk, const std::string& topic,
                                                    std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  STREAMS_ASSIGN_OR_RETURN(int32_t count, PartitionCount(rk, topic, timeout));
  std::map<Partition, Offset> ends;
  for (int32_t p = 0; p < count; ++p) {
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, TimeoutMs(deadline));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return FromRdKafka(err, "end offset of " + topic + "-" + std::to_string(p));
    }
    ends.emplace(Partition(p), Offset(high));
  }
  return ends;
}

Result<std::map<std::string, TopicOutcome>> CreateTopics(const KafkaProperties& properties,
                                                         const std::vector<TopicSpec>& topics,
                                                         std::chrono::milliseconds timeout) {
  std::map<std::string, TopicOutcome> outcomes;
  if (topics.empty()) return outcomes;
  STREAMS_ASSIGN_OR_RETURN(KafkaConf conf, MakeConf(properties));
  STREAMS_ASSIGN_OR_RETURN(KafkaHandle admin, CreateClient(RD_KAFKA_PRODUCER, std::move(conf)));
  char errstr[512];
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  auto destroy_new_topics = [&] {
    rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
  };
  for (const auto& spec : topics) {
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(
        spec.name.c_str(), spec.partitions, spec.replication_factor, errstr, sizeof(errstr));
    if (topic == nullptr) {
      destroy_new_topics();
      return Status::InvalidArgument("topic '" + spec.name + "': " + errstr);
    }
    new_topics.push_back(topic);
  }
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(admin.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), errstr,
                                            sizeof(errstr));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(admin.get());
  rd_kafka_CreateTopics(admin.get(), new_topics.data(), new_topics.size(), options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()) + 1000);
  Status result = Status::Ok();
  if (event == nullptr) {
    result = Status::TimedOut("CreateTopics got no answer");
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = FromRdKafka(rd_kafka_event_error(event),
                         std::string("CreateTopics: ") + rd_kafka_event_error_string(event));
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
    for (size_t i = 0; i < count && result.ok(); ++i) {
      std::string name = rd_kafka_topic_result_name(results[i]);
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        outcomes[name] = TopicOutcome::kCreated;
      } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        outcomes[name] = TopicOutcome::kAlreadyExisted;
      } else {
        const char* reason = rd_kafka_topic_result_error_string(results[i]);
        result = Status::Internal("cannot create topic '" + name + "': " + rd_kafka_err2str(err) +
                                  (reason != nullptr ? std::string(" (") + reason + ")" : ""));
      }
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  destroy_new_topics();
  if (!result.ok()) return result;
  // Created is not yet usable: wait until every partition has a leader, so
  // that the caller's first produce or offset query does not fail.
  for (const auto& [name, outcome] : outcomes) {
    STREAMS_ASSIGN_OR_RETURN(int32_t partitions, PartitionCount(admin.get(), name, timeout));
    (void)partitions;  // Only the wait matters here.
  }
  return outcomes;
}

Result<std::map<std::string, std::vector<ReadRecord>>> ReadTopicsToEnd(const ReadOptions& options) {
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  KafkaProperties properties = {
      {"isolation.level", "read_committed"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      {"auto.offset.reset", "earliest"},
      // assign() needs a group handle but never joins or commits to the group.
      {"group.id", "payments-reader-" + std::to_string(getpid()) + "-" +
                       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count())},
  };
  properties.insert(properties.end(), options.properties.begin(), options.properties.end());
  STREAMS_ASSIGN_OR_RETURN(KafkaConf conf, MakeConf(properties));
  STREAMS_ASSIGN_OR_RETURN(KafkaHandle consumer, CreateClient(RD_KAFKA_CONSUMER, std::move(conf)));

  // Query every end first: the snapshot this call reads up to.
  std::map<streams::TopicPartition, Offset> ends;
  for (const auto& topic : options.topics) {
    STREAMS_ASSIGN_OR_RETURN(
        auto topic_ends,
        QueryEndOffsets(consumer.get(), topic, std::chrono::milliseconds(TimeoutMs(deadline))));
    for (const auto& [partition, end] : topic_ends) {
      ends.emplace(streams::TopicPartition{topic, partition}, end);
    }
  }

  std::map<std::string, std::vector<ReadRecord>> out;
  for (const auto& topic : options.topics) out[topic];
  std::set<streams::TopicPartition> pending;
  PartitionList assignment(rd_kafka_topic_partition_list_new(static_cast<int>(ends.size())));
  for (const auto& [tp, end] : ends) {
    if (end.value() <= 0) continue;
    pending.insert(tp);
    rd_kafka_topic_partition_list_add(assignment.get(), tp.topic.c_str(), tp.partition.value())
        ->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  if (pending.empty()) return out;
  if (auto err = rd_kafka_assign(consumer.get(), assignment.get());
      err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return FromRdKafka(err, "assign");
  }

  // Marks partitions whose consumer position reached the end as done.
  auto check_positions = [&]() -> Status {
    PartitionList positions(rd_kafka_topic_partition_list_new(static_cast<int>(pending.size())));
    for (const auto& tp : pending) {
      rd_kafka_topic_partition_list_add(positions.get(), tp.topic.c_str(), tp.partition.value());
    }
    if (auto err = rd_kafka_position(consumer.get(), positions.get());
        err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return FromRdKafka(err, "position");
    }
    for (int i = 0; i < positions->cnt; ++i) {
      const auto& elem = positions->elems[i];
      streams::TopicPartition tp{elem.topic, Partition(elem.partition)};
      if (elem.offset >= 0 && elem.offset >= ends.at(tp).value()) pending.erase(tp);
    }
    return Status::Ok();
  };

  uint64_t since_check = 0;
  Status result = Status::Ok();
  while (!pending.empty()) {
    if (TimeoutMs(deadline) == 0) {
      std::string lagging;
      for (const auto& tp : pending) {
        if (!lagging.empty()) lagging += ", ";
        lagging += tp.ToString() + " (end " + std::to_string(ends.at(tp).value()) + ")";
      }
      result = Status::TimedOut("did not reach the end of: " + lagging);
      break;
    }
    KafkaMessage message(rd_kafka_consumer_poll(consumer.get(), 100));
    if (!message) {
      result = check_positions();
      if (!result.ok()) break;
      continue;
    }
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      result = check_positions();
      if (!result.ok()) break;
      continue;
    }
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Transient consumer errors (e.g. a broker connection dropped) are retried
      // by librdkafka; only a missing topic is fatal here.
      if (message->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
          message->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        result = FromRdKafka(message->err, "consume");
        break;
      }
      continue;
    }
    streams::TopicPartition tp{rd_kafka_topic_name(message->rkt), Partition(message->partition)};
    auto end = ends.find(tp);
    if (end == ends.end() || message->offset >= end->second.value()) continue;
    ReadRecord record;
    record.topic = tp.topic;
    record.partition = tp.partition;
    record.offset = Offset(message->offset);
    rd_kafka_timestamp_type_t ts_type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    record.timestamp = streams::Timestamp(rd_kafka_message_timestamp(message.get(), &ts_type));
    record.log_append_time = ts_type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME;
    if (message->key != nullptr) {
      record.key.emplace(static_cast<const char*>(message->key), message->key_len);
    }
    if (message->payload != nullptr) {
      record.value.emplace(static_cast<const char*>(message->payload), message->len);
    }
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(message.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        headers != nullptr) {
      const char* name;
      const void* value;
      size_t size;
      for (size_t i = 0;
           rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        record.headers.push_back(streams::Header{
            name, value != nullptr ? std::string(static_cast<const char*>(value), size) : ""});
      }
    }
    out[tp.topic].push_back(std::move(record));
    if (message->offset + 1 >= end->second.value()) pending.erase(tp);
    if (++since_check >= 10000) {
      since_check = 0;
      result = check_positions();
      if (!result.ok()) break;
    }
  }
  rd_kafka_consumer_close(consumer.get());
  if (!result.ok()) return result;
  for (auto& [topic, records] : out) {
    std::stable_sort(records.begin(), records.end(), [](const ReadRecord& a, const ReadRecord& b) {
      return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
    });
  }
  return out;
}

}  // namespace payments::tools
