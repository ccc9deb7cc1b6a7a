// Test helpers for the runtime: a Kafka client for tests (produce, read whole
// topics, metadata), librdkafka's mock cluster, a small stateful topology
// (count per key), configurations, readers of task state and of metrics.
// Shared by the mock-cluster tests and the devbroker tests.
#pragma once

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "streams/processor.h"
#include "streams/record.h"
#include "streams/runtime/kafka_streams.h"
#include "streams/runtime/streams_config.h"
#include "streams/serde.h"
#include "streams/state/state_resources.h"
#include "streams/state/task_state.h"
#include "streams/topology.h"

namespace streams::runtime::testing {

// Kafka protocol API keys (not exported by rdkafka.h).
inline constexpr int16_t kApiProduce = 0;
inline constexpr int16_t kApiInitProducerId = 22;
inline constexpr int16_t kApiAddPartitionsToTxn = 24;
inline constexpr int16_t kApiAddOffsetsToTxn = 25;
inline constexpr int16_t kApiEndTxn = 26;
inline constexpr int16_t kApiTxnOffsetCommit = 28;

// Polls `predicate` every 20 ms until it holds or `timeout` passes.
inline bool WaitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

inline void QuietLogger(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  if (level <= 3) fprintf(stderr, "rdkafka %s: %s\n", fac, buf);
}

using KeyValues = std::vector<std::pair<std::string, std::string>>;

// A Kafka client for tests against any bootstrap address (mock cluster or
// devbroker): produces keyed records, reads whole topics, reads metadata.
// Thread safety: not thread-safe.
class TopicClient {
 public:
  explicit TopicClient(std::string bootstrap) : bootstrap_(std::move(bootstrap)) {}
  ~TopicClient() {
    if (producer_ != nullptr) rd_kafka_destroy(producer_);
  }
  TopicClient(const TopicClient&) = delete;
  TopicClient& operator=(const TopicClient&) = delete;

  // Produces records (plain idempotent producer) and waits for delivery.
  // The partition is chosen by the key, as the runtime does, among `partitions`.
  void Produce(const std::string& topic, int32_t partitions, const KeyValues& kvs,
               int64_t timestamp_ms = 0) {
    if (producer_ == nullptr) {
      char errstr[256];
      rd_kafka_conf_t* conf = rd_kafka_conf_new();
      rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_.c_str(), errstr, sizeof(errstr));
      rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
      rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
      rd_kafka_conf_set_log_cb(conf, QuietLogger);
      producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
      ASSERT_NE(producer_, nullptr) << errstr;
    }
    for (const auto& [key, value] : kvs) {
      int32_t partition = DefaultPartitionForKey(key, partitions).value();
      int64_t ts = timestamp_ms > 0 ? timestamp_ms
                                    : std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count();
      rd_kafka_resp_err_t err;
      do {
        err = rd_kafka_producev(
            producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key.data(), key.size()),
            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
            RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(producer_, 10);
      } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
      ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
    }
    ASSERT_EQ(rd_kafka_flush(producer_, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // Every record of `topic` (partitions [0, partitions), from the beginning
  // to the end) with `isolation_level` "read_uncommitted" or "read_committed"
  // (which stops at the last stable offset and drops aborted records).
  std::vector<ConsumedRecord> ReadAll(const std::string& topic, int32_t partitions,
                                      const std::string& isolation_level = "read_uncommitted") {
    std::vector<ConsumedRecord> out;
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_.c_str(), errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "test-reader", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "isolation.level", isolation_level.c_str(), errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set_log_cb(conf, QuietLogger);
    rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    EXPECT_NE(consumer, nullptr) << errstr;
    if (consumer == nullptr) return out;
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int32_t p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    int eofs = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (eofs < partitions && std::chrono::steady_clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        ++eofs;
      } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ConsumedRecord r;
        r.topic = topic;
        r.partition = Partition(m->partition);
        r.offset = Offset(m->offset);
        if (m->key) r.key.emplace(static_cast<const char*>(m->key), m->key_len);
        if (m->payload) r.value.emplace(static_cast<const char*>(m->payload), m->len);
        rd_kafka_headers_t* hdrs = nullptr;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const char* name;
          const void* value;
          size_t size;
          for (size_t i = 0;
               rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
               ++i) {
            r.headers.push_back(
                Header{name, value ? std::string(static_cast<const char*>(value), size) : ""});
          }
        }
        out.push_back(std::move(r));
      }
      rd_kafka_message_destroy(m);
    }
    EXPECT_EQ(eofs, partitions) << "did not reach the end of " << topic << " (" << isolation_level
                                << ")";
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    return out;
  }

  // Partition count per topic, from a metadata request for all topics.
  std::map<std::string, int32_t> PartitionCounts() {
    std::map<std::string, int32_t> counts;
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_.c_str(), errstr, sizeof(errstr));
    rd_kafka_conf_set_log_cb(conf, QuietLogger);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    EXPECT_NE(rk, nullptr) << errstr;
    if (rk == nullptr) return counts;
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, 10000);
    EXPECT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; i < md->topic_cnt; ++i) {
        if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          counts[md->topics[i].topic] = md->topics[i].partition_cnt;
        }
      }
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return counts;
  }

 private:
  std::string bootstrap_;
  rd_kafka_t* producer_ = nullptr;
};

// A librdkafka mock cluster with helpers to create topics, produce and read.
class MockCluster {
 public:
  explicit MockCluster(int brokers = 3) {
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, QuietLogger);
    helper_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (helper_ == nullptr) throw std::runtime_error(errstr);
    mock_ = rd_kafka_mock_cluster_new(helper_, brokers);
    if (mock_ == nullptr) throw std::runtime_error("rd_kafka_mock_cluster_new failed");
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(mock_);
    client_ = std::make_unique<TopicClient>(bootstraps_);
  }
  ~MockCluster() {
    client_.reset();
    rd_kafka_mock_cluster_destroy(mock_);
    rd_kafka_destroy(helper_);
  }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  const std::string& bootstraps() const { return bootstraps_; }
  rd_kafka_mock_cluster_t* mock() { return mock_; }

  void CreateTopic(const std::string& topic, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(mock_, topic.c_str(), partitions, 1),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    partitions_[topic] = partitions;
  }

  // Produces records (see TopicClient::Produce) to a topic made by CreateTopic.
  void Produce(const std::string& topic, const KeyValues& kvs, int64_t timestamp_ms = 0) {
    client_->Produce(topic, partitions_.at(topic), kvs, timestamp_ms);
  }

  // Every record of `topic` (all partitions, read_uncommitted: the mock does
  // not filter aborted records anyway).
  std::vector<ConsumedRecord> ReadAll(const std::string& topic) {
    return client_->ReadAll(topic, partitions_.at(topic));
  }

 private:
  rd_kafka_t* helper_ = nullptr;
  rd_kafka_mock_cluster_t* mock_ = nullptr;
  std::string bootstraps_;
  std::unique_ptr<TopicClient> client_;
  std::map<std::string, int> partitions_;
};

// A string serde that rejects null values and values starting with '!'.
class CheckedStringSerde final : public Serde<std::string> {
 public:
  std::string Serialize(std::string_view, const std::string& value) const override { return value; }
  Result<std::string> Deserialize(std::string_view topic,
                                  std::optional<std::string_view> data) const override {
    if (!data) return Status::Corruption("null value on " + std::string(topic));
    if (!data->empty() && data->front() == '!') {
      return Status::Corruption("malformed value on " + std::string(topic));
    }
    return std::string(*data);
  }
};

// Optional behaviour of CountProcessor.
struct CountOptions {
  // Forward "<count>|<input value>" instead of "<count>", so that each output
  // names the input record it was made from.
  bool echo_input = false;
  // Called after the output of a record was forwarded (sent to the
  // collector); an error fails the record, and the runtime aborts the cycle.
  std::function<Status(const Record<std::string, std::string>&)> after_forward;
  // Records whose value starts with this prefix are not counted: nothing is
  // written (no changelog record) and the current count is forwarded.
  std::string read_only_prefix;
  // Appends "@<stream time>" (the task's, after this record) to the output.
  bool echo_stream_time = false;
};

// Counts records per key in store "counts" and forwards "<count>" per record.
class CountProcessor final : public Processor<std::string, std::string> {
 public:
  explicit CountProcessor(CountOptions options = {}) : options_(std::move(options)) {}

  Status Init(ProcessorContext<std::string, std::string>& context) override {
    context_ = &context;
    store_ = context.GetStateStore("counts");
    if (store_ == nullptr) return Status::NotFound("store 'counts'");
    return Status::Ok();
  }
  Status Process(const Record<std::string, std::string>& record) override {
    auto current = store_->Get(record.key);
    if (!current.ok()) return current.status();
    const bool read_only = !options_.read_only_prefix.empty() &&
                           record.value.rfind(options_.read_only_prefix, 0) == 0;
    int64_t count = current->has_value() ? std::stoll(**current) : 0;
    if (!read_only) {
      ++count;
      STREAMS_RETURN_IF_ERROR(store_->Put(record.key, std::to_string(count)));
    }
    std::string value = std::to_string(count);
    if (options_.echo_input) value += "|" + record.value;
    if (options_.echo_stream_time) value += "@" + std::to_string(context_->stream_time().millis());
    STREAMS_RETURN_IF_ERROR(context_->Forward(
        Record<std::string, std::string>{record.key, std::move(value), record.timestamp, {}}));
    return options_.after_forward ? options_.after_forward(record) : Status::Ok();
  }

 private:
  CountOptions options_;
  ProcessorContext<std::string, std::string>* context_ = nullptr;
  state::KeyValueStore* store_ = nullptr;
};

// source(input) -> count (store "counts", logged) -> sink(output).
inline std::unique_ptr<Topology> BuildCountTopology(const std::string& input,
                                                    const std::string& output,
                                                    CountOptions options = {}) {
  static const auto checked = std::make_shared<const CheckedStringSerde>();
  TopologyBuilder b;
  b.AddSource<std::string, std::string>("source", {input}, StringSerdeInstance(), checked);
  b.AddProcessor<CountProcessor>(
      "count", [options] { return std::make_unique<CountProcessor>(options); }, {"source"});
  state::StoreSpec spec;
  spec.name = "counts";
  b.AddStateStore(spec, {"count"});
  b.AddSink<std::string, std::string>("sink", output, StringSerdeInstance(), StringSerdeInstance(),
                                      {"count"});
  auto built = std::move(b).Build();
  EXPECT_TRUE(built.ok()) << built.status();
  return built.ok() ? std::move(*built) : nullptr;
}

// The committed content of store "counts" in the directories of `tasks` of
// `config` (read with the state library; the instance must be stopped).
inline std::map<std::string, int64_t> ReadCounts(const StreamsConfig& config,
                                                 const Topology& topology,
                                                 const std::vector<TaskId>& tasks) {
  std::map<std::string, int64_t> counts;
  auto resources = state::StateResources::Create(state::StateOptions{});
  EXPECT_TRUE(resources.ok());
  for (const TaskId& task : tasks) {
    std::string dir = KafkaStreams::TaskDirectory(config, task);
    if (!std::filesystem::exists(dir)) continue;
    auto task_state = state::TaskState::Open(dir, topology.stores(), resources->get());
    EXPECT_TRUE(task_state.ok()) << task_state.status();
    if (!task_state.ok()) continue;
    state::KeyValueStore* store = (*task_state)->GetStore("counts");
    auto it = store->Range("", "");
    EXPECT_TRUE(it.ok());
    for (; (*it)->Valid(); (*it)->Next()) {
      std::string key((*it)->key());
      EXPECT_EQ(counts.count(key), 0u) << "key " << key << " in two tasks";
      counts[key] = std::stoll(std::string((*it)->value()));
    }
    it->reset();
    EXPECT_TRUE((*task_state)->Close().ok());
  }
  return counts;
}

// The same over every task directory 0_0 .. 0_<partitions - 1>.
inline std::map<std::string, int64_t> ReadCounts(const StreamsConfig& config,
                                                 const Topology& topology, int partitions) {
  std::vector<TaskId> tasks;
  for (int p = 0; p < partitions; ++p) tasks.push_back(TaskId{Partition(p)});
  return ReadCounts(config, topology, tasks);
}

// The last value per key of a topic (the latest count written per key).
inline std::map<std::string, int64_t> MaxCountPerKey(const std::vector<ConsumedRecord>& records) {
  std::map<std::string, int64_t> out;
  for (const auto& r : records) {
    if (!r.key || !r.value) continue;
    int64_t v = std::stoll(*r.value);
    auto& slot = out[*r.key];
    slot = std::max(slot, v);
  }
  return out;
}

// Input records for the count topology: `n` records over `keys` keys
// ("key-<i % keys>", values "v<i>", i counting over every call), remembered
// per key in production order.
struct CountInput {
  std::map<std::string, int64_t> expected;                 // Records per key.
  std::map<std::string, std::vector<std::string>> values;  // Values per key, in order.
  int produced = 0;

  KeyValues Next(int n, int keys) {
    KeyValues kvs;
    for (int i = 0; i < n; ++i) {
      std::string key = "key-" + std::to_string((produced + i) % keys);
      std::string value = "v" + std::to_string(produced + i);
      kvs.emplace_back(key, value);
      ++expected[key];
      values[key].push_back(value);
    }
    produced += n;
    return kvs;
  }
};

// The configuration of the count application used by the tests: short commit
// interval and polls, small caches. `extra` keys win.
inline StreamsConfig TestConfig(const std::string& application_id, const std::string& bootstrap,
                                const std::string& state_dir, const std::string& instance,
                                ProcessingGuarantee guarantee,
                                const std::map<std::string, std::string>& extra = {}) {
  StreamsConfig::Builder b;
  b.Set("application.id", application_id)
      .Set("bootstrap.servers", bootstrap)
      .Set("state.dir", state_dir)
      .Set("instance.id", instance)
      .Set("processing.guarantee", std::string(ProcessingGuaranteeName(guarantee)))
      .Set("commit.interval.ms", "50")
      .Set("poll.ms", "50")
      .Set("consumer.heartbeat.interval.ms", "200")
      .Set("consumer.session.timeout.ms", "6000")
      .Set("statestore.cache.max.bytes", "8388608")
      .Set("state.write.buffer.bytes", "8388608");
  for (const auto& [k, v] : extra) b.Set(k, v);
  auto config = b.Build();
  EXPECT_TRUE(config.ok()) << config.status();
  return std::move(*config);
}

inline std::unique_ptr<KafkaStreams> MakeStreams(
    const Topology& topology, StreamsConfig config,
    std::shared_ptr<prometheus::Registry> registry = {}) {
  auto streams = KafkaStreams::Create(topology, std::move(config), std::move(registry));
  EXPECT_TRUE(streams.ok()) << streams.status();
  return streams.ok() ? std::move(*streams) : nullptr;
}

// Input records of committed cycles, over several instances.
inline uint64_t Processed(const std::vector<KafkaStreams*>& all) {
  uint64_t n = 0;
  for (auto* s : all) n += s->stats().records_processed;
  return n;
}

// Sum over the series of metric `name` matching `labels` (counter + gauge +
// histogram sample count).
inline double MetricValue(prometheus::Registry& registry, const std::string& name,
                          const std::map<std::string, std::string>& labels = {}) {
  double total = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const auto& l : metric.label) found |= (l.name == k && l.value == v);
        match &= found;
      }
      if (!match) continue;
      total += metric.counter.value + metric.gauge.value +
               static_cast<double>(metric.histogram.sample_count);
    }
  }
  return total;
}

inline size_t SeriesCount(prometheus::Registry& registry, const std::string& name) {
  for (const auto& family : registry.Collect()) {
    if (family.name == name) return family.metric.size();
  }
  return 0;
}

// A fresh temporary directory removed at destruction.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("runtime_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace streams::runtime::testing
