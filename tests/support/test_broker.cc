#include "support/test_broker.h"

#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "devbroker/broker.h"

namespace streams::test_support {
namespace {

using Clock = std::chrono::steady_clock;

void QuietLog(const rd_kafka_t*, int, const char*, const char*) {}

class DevTestBroker final : public TestBroker {
 public:
  explicit DevTestBroker(std::unique_ptr<devbroker::Broker> broker)
      : broker_(std::move(broker)), bootstrap_(broker_->bootstrap_servers()) {}
  BrokerKind kind() const override { return BrokerKind::kDevbroker; }
  const std::string& bootstrap() const override { return bootstrap_; }
  Status CreateTopic(const std::string& name, int partitions) override {
    devbroker::Status s = broker_->CreateTopic(name, partitions);
    if (s.ok()) return Status::Ok();
    if (s.message().find("TOPIC_ALREADY_EXISTS") != std::string::npos) {
      return Status::AlreadyExists(s.message());
    }
    return Status::Internal(s.message());
  }
  int64_t HighWatermark(const std::string& topic, int32_t partition) override {
    return broker_->HighWatermark(topic, partition);
  }
  int64_t LastStableOffset(const std::string& topic, int32_t partition) override {
    return broker_->LastStableOffset(topic, partition);
  }

 private:
  std::unique_ptr<devbroker::Broker> broker_;
  std::string bootstrap_;
};

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RdKafkaPtr = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;

RdKafkaPtr NewClient(rd_kafka_type_t type, const std::string& bootstrap,
                     const std::vector<std::pair<std::string, std::string>>& extra,
                     std::string* error) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> all = {{"bootstrap.servers", bootstrap}};
  all.insert(all.end(), extra.begin(), extra.end());
  for (const auto& [k, v] : all) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      *error = errstr;
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
  }
  rd_kafka_conf_set_log_cb(conf, QuietLog);
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
  if (rk == nullptr) *error = errstr;
  return RdKafkaPtr(rk);
}

// Apache Kafka through librdkafka: the admin API for CreateTopics, ListOffsets
// (query_watermark_offsets, whose isolation level is the handle's) for the
// offsets.
class KafkaTestBroker final : public TestBroker {
 public:
  // `owned` is null for a broker someone else runs (the ctest fixture's).
  static Result<std::unique_ptr<KafkaTestBroker>> Make(std::unique_ptr<KafkaBroker> owned,
                                                       std::string bootstrap) {
    std::unique_ptr<KafkaTestBroker> b(new KafkaTestBroker(std::move(owned), std::move(bootstrap)));
    std::string error;
    b->admin_ = NewClient(RD_KAFKA_PRODUCER, b->bootstrap_, {}, &error);
    if (b->admin_ != nullptr) {
      b->uncommitted_ = NewClient(RD_KAFKA_CONSUMER, b->bootstrap_,
                                  {{"isolation.level", "read_uncommitted"}}, &error);
    }
    if (b->uncommitted_ != nullptr) {
      b->committed_ = NewClient(RD_KAFKA_CONSUMER, b->bootstrap_,
                                {{"isolation.level", "read_committed"}}, &error);
    }
    if (b->committed_ == nullptr) return Status::Internal("librdkafka client: " + error);
    return b;
  }

  BrokerKind kind() const override { return BrokerKind::kKafka; }
  const std::string& bootstrap() const override { return bootstrap_; }

  Status CreateTopic(const std::string& name, int partitions) override {
    std::lock_guard<std::mutex> lock(mutex_);
    char errstr[512];
    rd_kafka_NewTopic_t* topic =
        rd_kafka_NewTopic_new(name.c_str(), partitions, 1, errstr, sizeof(errstr));
    if (topic == nullptr) return Status::InvalidArgument(errstr);
    rd_kafka_queue_t* queue = rd_kafka_queue_new(admin_.get());
    rd_kafka_AdminOptions_t* options =
        rd_kafka_AdminOptions_new(admin_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(options, 10000, errstr, sizeof(errstr));
    rd_kafka_CreateTopics(admin_.get(), &topic, 1, options, queue);
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 20000);
    Status status = Status::Ok();
    if (event == nullptr) {
      status = Status::TimedOut("CreateTopics " + name + ": no answer");
    } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = Status::Internal("CreateTopics " + name + ": " + rd_kafka_event_error_string(event));
    } else {
      size_t n = 0;
      const rd_kafka_topic_result_t** results =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &n);
      rd_kafka_resp_err_t err =
          n == 1 ? rd_kafka_topic_result_error(results[0]) : RD_KAFKA_RESP_ERR__BAD_MSG;
      if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        status = Status::AlreadyExists("CreateTopics " + name + ": " + rd_kafka_err2name(err));
      } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = Status::Internal("CreateTopics " + name + ": " + rd_kafka_err2name(err));
      }
    }
    if (event != nullptr) rd_kafka_event_destroy(event);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(queue);
    rd_kafka_NewTopic_destroy(topic);
    if (!status.ok()) return status;
    // A new partition can answer NOT_LEADER_OR_FOLLOWER for a moment: wait
    // until the metadata shows a leader for each.
    const auto deadline = Clock::now() + std::chrono::seconds(15);
    while (Clock::now() < deadline) {
      if (AllPartitionsLed(name, partitions)) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Status::TimedOut("CreateTopics " + name + ": partitions without a leader");
  }

  int64_t HighWatermark(const std::string& topic, int32_t partition) override {
    return Latest(uncommitted_.get(), topic, partition);
  }
  int64_t LastStableOffset(const std::string& topic, int32_t partition) override {
    return Latest(committed_.get(), topic, partition);
  }

 private:
  KafkaTestBroker(std::unique_ptr<KafkaBroker> owned, std::string bootstrap)
      : owned_(std::move(owned)), bootstrap_(std::move(bootstrap)) {}

  bool AllPartitionsLed(const std::string& name, int partitions) {
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(admin_.get(), 1, nullptr, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return false;
    }
    bool led = false;
    for (int i = 0; i < md->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& t = md->topics[i];
      if (name != t.topic || t.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      led = t.partition_cnt == partitions;
      for (int p = 0; p < t.partition_cnt; ++p) {
        if (t.partitions[p].leader < 0 || t.partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          led = false;
        }
      }
    }
    rd_kafka_metadata_destroy(md);
    return led;
  }

  // ListOffsets latest; retried for a while on errors (a just-created
  // partition's leader, a metadata cache that does not know the topic yet).
  int64_t Latest(rd_kafka_t* rk, const std::string& topic, int32_t partition) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    for (;;) {
      int64_t low = -1;
      int64_t high = -1;
      rd_kafka_resp_err_t err =
          rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, 5000);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return high;
      if (Clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  std::mutex mutex_;
  std::unique_ptr<KafkaBroker> owned_;
  std::string bootstrap_;
  RdKafkaPtr admin_;
  RdKafkaPtr uncommitted_;
  RdKafkaPtr committed_;
};

// The ctest fixture's broker: PAYMENTS_KAFKA_SHARED_DIR/run.out holds the
// bootstrap line of `kafka-test-server.sh start`. Empty when there is none.
std::string FixtureBootstrap() {
  const char* dir = std::getenv("PAYMENTS_KAFKA_SHARED_DIR");
  if (dir == nullptr || *dir == '\0') return "";
  std::ifstream in(std::string(dir) + "/run.out");
  std::string line;
  const std::string prefix = "bootstrap.servers=";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}

}  // namespace

const char* BrokerKindName(BrokerKind kind) {
  return kind == BrokerKind::kKafka ? "kafka" : "devbroker";
}

Result<std::unique_ptr<TestBroker>> StartDevbroker(devbroker::BrokerOptions options) {
  auto broker = std::make_unique<devbroker::Broker>(std::move(options));
  devbroker::Status started = broker->Start();
  if (!started.ok()) return Status::Unavailable("devbroker: " + started.message());
  return std::unique_ptr<TestBroker>(new DevTestBroker(std::move(broker)));
}

std::vector<std::string> SharedKafkaSettings() {
  // kafka-test-server.sh already sets group.min.session.timeout.ms=1000 and
  // a 1 s timed-out-transaction abort interval.
  return {"auto.create.topics.enable=false", "num.partitions=4"};
}

Result<TestBroker*> SharedKafkaBroker() {
  static std::mutex mutex;
  static std::unique_ptr<TestBroker> shared;
  static Status failure = Status::Ok();
  std::lock_guard<std::mutex> lock(mutex);
  if (shared != nullptr) return shared.get();
  if (!failure.ok()) return failure;
  std::unique_ptr<KafkaBroker> owned;
  std::string bootstrap = FixtureBootstrap();
  if (bootstrap.empty()) {
    KafkaBrokerOptions options;
    options.num_partitions = 4;
    options.server_properties = SharedKafkaSettings();
    auto started = KafkaBroker::Start(std::move(options));
    if (!started.ok()) {
      failure = started.status();
      return failure;
    }
    owned = std::move(*started);
    bootstrap = owned->bootstrap();
  }
  auto made = KafkaTestBroker::Make(std::move(owned), bootstrap);
  if (!made.ok()) {
    failure = made.status();
    return failure;
  }
  shared = std::move(*made);
  return shared.get();
}

Status AcquireTestBroker(BrokerKind kind, const devbroker::BrokerOptions& dev_options,
                         std::unique_ptr<TestBroker>* owned, TestBroker** broker) {
  if (kind == BrokerKind::kDevbroker) {
    STREAMS_ASSIGN_OR_RETURN(*owned, StartDevbroker(dev_options));
    *broker = owned->get();
    return Status::Ok();
  }
  STREAMS_ASSIGN_OR_RETURN(*broker, SharedKafkaBroker());
  return Status::Ok();
}

std::string TestScopedName(const std::string& suffix) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info != nullptr ? info->name() : "test";
  name += "-" + std::to_string(::getpid()) + "-" + suffix;
  for (char& c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return name;
}

}  // namespace streams::test_support
