// Throughput of the Kafka runtime: a stateful count-per-key topology against
// librdkafka's mock cluster (in-process brokers, so this measures the runtime,
// librdkafka and RocksDB, not a network).
//
// Usage: runtime_bench [records=50000] [keys=1000] [guarantee=exactly_once_v2|at_least_once]
//                      [commit.interval.ms=100]
// The mock trims partition logs at about 100k records: keep records/4 below that.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "streams/processor.h"
#include "streams/runtime/kafka_streams.h"
#include "streams/runtime/streams_config.h"
#include "streams/serde.h"
#include "streams/topology.h"

namespace {

using streams::Status;

class CountProcessor final : public streams::Processor<std::string, std::string> {
 public:
  Status Init(streams::ProcessorContext<std::string, std::string>& context) override {
    context_ = &context;
    store_ = context.GetStateStore("counts");
    return store_ != nullptr ? Status::Ok() : Status::NotFound("counts");
  }
  Status Process(const streams::Record<std::string, std::string>& record) override {
    auto current = store_->Get(record.key);
    if (!current.ok()) return current.status();
    int64_t count = current->has_value() ? std::stoll(**current) + 1 : 1;
    STREAMS_RETURN_IF_ERROR(store_->Put(record.key, std::to_string(count)));
    return context_->Forward({record.key, std::to_string(count), record.timestamp, {}});
  }

 private:
  streams::ProcessorContext<std::string, std::string>* context_ = nullptr;
  streams::state::KeyValueStore* store_ = nullptr;
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "runtime_bench: %s\n", what.c_str());
  return 1;
}

void QuietLog(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  if (level <= 3) std::fprintf(stderr, "rdkafka %s: %s\n", fac, buf);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t records = argc > 1 ? std::stoll(argv[1]) : 50000;
  const int keys = argc > 2 ? std::stoi(argv[2]) : 1000;
  const std::string guarantee = argc > 3 ? argv[3] : "exactly_once_v2";
  const std::string interval = argc > 4 ? argv[4] : "100";
  const int partitions = 4;
  spdlog::set_level(spdlog::level::warn);

  char errstr[256];
  rd_kafka_conf_t* helper_conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(helper_conf, QuietLog);
  rd_kafka_t* helper = rd_kafka_new(RD_KAFKA_PRODUCER, helper_conf, errstr, sizeof(errstr));
  if (helper == nullptr) return Fail(errstr);
  rd_kafka_mock_cluster_t* mock = rd_kafka_mock_cluster_new(helper, 1);
  const std::string bootstraps = rd_kafka_mock_cluster_bootstraps(mock);
  const std::string app = "bench";
  for (const std::string& topic : {std::string("input"), std::string("output"),
                                   streams::Topology::ChangelogTopic(app, "counts")}) {
    rd_kafka_mock_topic_create(mock, topic.c_str(), partitions, 1);
  }

  // Input first, so the measured time is processing only.
  {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps.c_str(), errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "linger.ms", "20", errstr, sizeof(errstr));
    rd_kafka_conf_set_log_cb(conf, QuietLog);
    rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (producer == nullptr) return Fail(errstr);
    for (int64_t i = 0; i < records; ++i) {
      std::string key = "key-" + std::to_string(i % keys);
      std::string value = "value-" + std::to_string(i);
      int32_t partition = streams::DefaultPartitionForKey(key, partitions).value();
      while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("input"), RD_KAFKA_V_PARTITION(partition),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_KEY(key.data(), key.size()),
                               RD_KAFKA_V_VALUE(value.data(), value.size()),
                               RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(producer, 10);
      }
    }
    rd_kafka_flush(producer, 60000);
    rd_kafka_destroy(producer);
  }

  streams::TopologyBuilder builder;
  builder.AddSource<std::string, std::string>("source", {"input"}, streams::StringSerdeInstance(),
                                              streams::StringSerdeInstance());
  builder.AddProcessor<CountProcessor>("count", [] { return std::make_unique<CountProcessor>(); },
                                       {"source"});
  streams::state::StoreSpec spec;
  spec.name = "counts";
  builder.AddStateStore(spec, {"count"});
  builder.AddSink<std::string, std::string>("sink", "output", streams::StringSerdeInstance(),
                                            streams::StringSerdeInstance(), {"count"});
  auto topology = std::move(builder).Build();
  if (!topology.ok()) return Fail(topology.status().ToString());

  const std::string state_dir =
      (std::filesystem::temp_directory_path() / ("runtime_bench_" + std::to_string(::getpid())))
          .string();
  streams::runtime::StreamsConfig::Builder cb;
  cb.Set("application.id", app)
      .Set("bootstrap.servers", bootstraps)
      .Set("state.dir", state_dir)
      .Set("instance.id", "bench")
      .Set("processing.guarantee", guarantee)
      .Set("commit.interval.ms", interval);
  auto config = cb.Build();
  if (!config.ok()) return Fail(config.status().ToString());
  auto streams = streams::runtime::KafkaStreams::Create(**topology, std::move(*config), nullptr);
  if (!streams.ok()) return Fail(streams.status().ToString());
  Status started = (*streams)->Start();
  if (!started.ok()) return Fail(started.ToString());
  Status ready = (*streams)->AwaitReady(std::chrono::seconds(60));
  if (!ready.ok()) return Fail(ready.ToString());
  const auto begin = std::chrono::steady_clock::now();
  while ((*streams)->stats().records_processed < static_cast<uint64_t>(records)) {
    if ((*streams)->state() == streams::runtime::KafkaStreams::State::kError) {
      return Fail((*streams)->error().ToString());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  streams::runtime::KafkaStreamsStats stats = (*streams)->stats();
  Status stopped = (*streams)->Stop();
  std::filesystem::remove_all(state_dir);

  std::printf("guarantee=%s records=%lld keys=%d partitions=%d commit.interval.ms=%s\n",
              guarantee.c_str(), static_cast<long long>(records), keys, partitions,
              interval.c_str());
  std::printf("processed %llu records in %.3f s: %.0f records/s\n",
              static_cast<unsigned long long>(stats.records_processed), seconds,
              stats.records_processed / seconds);
  std::printf("commits=%llu aborted=%llu avg_commit=%.2f ms max_commit=%.2f ms stop=%s\n",
              static_cast<unsigned long long>(stats.transactions_committed),
              static_cast<unsigned long long>(stats.transactions_aborted),
              stats.transactions_committed > 0
                  ? 1000.0 * stats.commit_seconds_total / stats.transactions_committed
                  : 0.0,
              1000.0 * stats.commit_seconds_max, stopped.ToString().c_str());
  streams->reset();
  rd_kafka_mock_cluster_destroy(mock);
  rd_kafka_destroy(helper);
  return stopped.ok() ? 0 : 1;
}
