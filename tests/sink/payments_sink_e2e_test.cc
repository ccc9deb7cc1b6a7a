// payments-sink end to end: devbroker (in process, real transactions and
// consumer groups), PostgreSQL, and payments-sink as a subprocess.
//   * every confirmation applied exactly once, CDC delivered, clean SIGTERM;
//   * a poison record (undecodable, with a card number) and an unwritable one
//     are dead-lettered with context headers and no card number;
//   * SIGKILL at random points in a loop, then rows and balances equal the
//     expected state of a run without kills;
//   * the database stopped and restarted mid-stream (a private server):
//     paused, not ready, nothing lost;
//   * two instances sharing the partitions with a rebalance in the middle.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <thread>

#include "devbroker/broker.h"
#include "sink_test_util.h"
#include "support/subprocess.h"

namespace payments_sink {
namespace {

using namespace std::chrono_literals;
using namespace payments_sink::testing;
using streams::test_support::Command;
using streams::test_support::OutputStream;
using streams::test_support::Subprocess;

constexpr char kTopic[] = "payments.confirmations";
constexpr int kPartitions = 4;

// A deterministic stream of confirmations as paymentd writes them: payments,
// refunds of earlier approved payments, replays and key-reuse declines.
class Workload {
 public:
  explicit Workload(uint64_t seed, int customers = 40) : rng_(seed), customers_(customers) {}

  std::vector<PaymentConfirmation> Next(int n) {
    std::vector<PaymentConfirmation> out;
    for (int i = 0; i < n; ++i) out.push_back(One());
    all_.insert(all_.end(), out.begin(), out.end());
    return out;
  }
  const std::vector<PaymentConfirmation>& all() const { return all_; }

 private:
  PaymentConfirmation One() {
    const std::string customer = "cust_" + Letters(rng_() % customers_);
    auto& history = by_customer_[customer];
    const int r = static_cast<int>(rng_() % 100);
    if (r < 10 && !history.empty()) return Replay(history[rng_() % history.size()]);
    if (r < 15 && !history.empty()) {
      PaymentConfirmation reuse = history[rng_() % history.size()];
      reuse.set_decision(payments::v1::DECLINED);
      reuse.set_decline_code("IDEMPOTENCY_KEY_REUSED");
      reuse.set_amount_minor(reuse.amount_minor() + 1);
      return reuse;
    }
    auto& open = refundable_[customer];
    if (r < 35 && !open.empty()) {
      auto& [payment, left] = open[rng_() % open.size()];
      int64_t amount = std::max<int64_t>(1, std::min<int64_t>(left, 1 + rng_() % 3000));
      bool approved = rng_() % 10 != 0;
      PaymentConfirmation refund = Refund("pay_r" + Letters(++next_id_), payment, amount, approved);
      if (approved) left -= amount;
      std::erase_if(open, [](const auto& e) { return e.second <= 0; });
      history.push_back(refund);
      return refund;
    }
    bool approved = rng_() % 100 < 85;
    PaymentConfirmation pay =
        Confirmation("pay_p" + Letters(++next_id_), customer, "merchant_" + Letters(rng_() % 5),
                     1 + static_cast<int64_t>(rng_() % 10000), approved);
    if (rng_() % 2 == 0) pay.set_currency("USD");
    if (approved) open.emplace_back(pay, pay.amount_minor());
    history.push_back(pay);
    return pay;
  }

  // Digit-free ids, as paymentd's (no id can look like a card number).
  static std::string Letters(uint64_t n) {
    std::string s;
    do {
      s += static_cast<char>('a' + n % 26);
      n /= 26;
    } while (n > 0);
    return s;
  }

  std::mt19937_64 rng_;
  int customers_;
  uint64_t next_id_ = 0;
  std::vector<PaymentConfirmation> all_;
  std::map<std::string, std::vector<PaymentConfirmation>> by_customer_;
  std::map<std::string, std::vector<std::pair<PaymentConfirmation, int64_t>>> refundable_;
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::pair<long, std::string> HttpGet(const std::string& url) {
  std::string body;
  long status = 0;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 3000L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  return {status, body};
}

double MetricValue(const std::string& metrics, const std::string& name) {
  double total = 0;
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0) continue;
    char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

struct ReadRecord {
  std::string key, value;
  std::map<std::string, std::string> headers;
};

class PaymentsSinkE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* server = std::getenv("PG_TEST_URI");
    if (server == nullptr) GTEST_SKIP() << "PG_TEST_URI not set: run through ctest -L postgres";
    server_uri_ = server;
    devbroker::BrokerOptions options;
    options.log_level = "warn";
    broker_ = std::make_unique<devbroker::Broker>(options);
    ASSERT_TRUE(broker_->Start().ok());
    ASSERT_TRUE(broker_->CreateTopic(kTopic, kPartitions).ok());
    ASSERT_TRUE(broker_->CreateTopic("payments.confirmations.dlq", 1).ok());
    ASSERT_TRUE(broker_->CreateTopic("payments.cdc", kPartitions).ok());
    auto dir = streams::test_support::MakeTempDir("payments_sink_e2e-");
    ASSERT_TRUE(dir.ok());
    log_dir_ = *dir;
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", broker_->bootstrap_servers().c_str(), err,
                      sizeof(err));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err));
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ASSERT_NE(producer_, nullptr) << err;
  }

  void TearDown() override {
    sinks_.clear();
    if (producer_ != nullptr) rd_kafka_destroy(producer_);
    if (broker_) broker_->Stop();
    if (HasFailure()) {
      std::cerr << "logs kept in " << log_dir_ << "\n";
    } else if (!log_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(log_dir_, ec);
    }
  }

  void ProduceRaw(const std::string& key, const std::string& value) {
    ASSERT_EQ(rd_kafka_producev(
                  producer_, RD_KAFKA_V_TOPIC(kTopic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                  RD_KAFKA_V_KEY(key.data(), key.size()),
                  RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    ++produced_;
  }
  void Produce(const std::vector<PaymentConfirmation>& confirmations) {
    for (const auto& c : confirmations) ProduceRaw(c.customer_id(), c.SerializeAsString());
    ASSERT_EQ(rd_kafka_flush(producer_, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // Starts payments-sink against `db_uri`; returns its admin base URL.
  Subprocess* StartSink(const std::string& name, const std::string& db_uri,
                        std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {SINK_BIN,
                                     "--set",
                                     "bootstrap.servers=" + broker_->bootstrap_servers(),
                                     "--set",
                                     "sink.database.url=" + db_uri,
                                     "--set",
                                     "admin.listen=127.0.0.1:0",
                                     "--set",
                                     "sink.batch.max.records=50",
                                     "--set",
                                     "sink.batch.max.wait.ms=20",
                                     "--set",
                                     "sink.retry.initial.ms=50",
                                     "--set",
                                     "sink.retry.max.ms=400",
                                     "--set",
                                     "cdc.relay.interval.ms=50",
                                     "--set",
                                     "consumer.session.timeout.ms=1500",
                                     "--set",
                                     "consumer.heartbeat.interval.ms=300",
                                     "--set",
                                     "consumer.max.poll.interval.ms=6000"};
    for (auto& e : extra) {
      argv.push_back("--set");
      argv.push_back(std::move(e));
    }
    auto process = Subprocess::Start(Command(argv, name, log_dir_));
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return nullptr;
    auto line = (*process)->WaitForLine(OutputStream::kStderr,
                                        std::regex("admin listening on (\\S+)"), 20s);
    EXPECT_TRUE(line.ok()) << line.status();
    if (line.ok()) admin_[name] = "http://" + line->groups[1];
    sinks_.push_back(std::move(*process));
    return sinks_.back().get();
  }

  int64_t Position(const std::string& db_uri) {
    try {
      return ScalarQuery(db_uri, "SELECT COALESCE(SUM(next_offset), 0) FROM sink_offsets");
    } catch (const std::exception&) {
      return -1;  // Not migrated yet, or the server is down.
    }
  }

  // Waits until the stored positions cover every produced record.
  bool WaitForAll(const std::string& db_uri, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Position(db_uri) == produced_) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  std::vector<ReadRecord> ReadTopic(const std::string& topic, int partitions, int64_t count) {
    std::vector<ReadRecord> out;
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", broker_->bootstrap_servers().c_str(), err,
                      sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "reader", err, sizeof(err));
    rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (static_cast<int64_t>(out.size()) < count &&
           std::chrono::steady_clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ReadRecord r;
        if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
        if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
        rd_kafka_headers_t* headers = nullptr;
        if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const char* name;
          const void* value;
          size_t size;
          for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == 0; ++i) {
            r.headers[name] = value ? std::string(static_cast<const char*>(value), size) : "";
          }
        }
        out.push_back(std::move(r));
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    return out;
  }

  int64_t HighWatermarks(const std::string& topic, int partitions) {
    int64_t total = 0;
    for (int p = 0; p < partitions; ++p)
      total += std::max<int64_t>(0, broker_->HighWatermark(topic, p));
    return total;
  }

  std::string server_uri_;
  std::unique_ptr<devbroker::Broker> broker_;
  std::filesystem::path log_dir_;
  rd_kafka_t* producer_ = nullptr;
  int64_t produced_ = 0;
  std::vector<std::unique_ptr<Subprocess>> sinks_;
  std::map<std::string, std::string> admin_;
};

TEST_F(PaymentsSinkE2eTest, AppliesEveryConfirmationOnceDeliversCdcAndStopsCleanly) {
  std::string db = FreshDatabase(server_uri_);
  Workload workload(11);
  Produce(workload.Next(1500));
  Subprocess* sink = StartSink("sink", db);
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(WaitForAll(db, 60s)) << Position(db) << " of " << produced_ << "\n"
                                   << sink->Describe();
  ExpectedState expected = Expect(workload.all());
  EXPECT_EQ(Actual(db), expected) << "actual: " << Actual(db);
  // The relay delivers every change to payments.cdc.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (ScalarQuery(db, "SELECT count(*) FROM payments_outbox WHERE kafka_state = 'delivered'") <
             expected.changes &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  auto cdc = ReadTopic("payments.cdc", kPartitions, expected.changes);
  std::set<std::string> ids;
  for (const auto& r : cdc) {
    const std::string id = r.headers.count("id") ? r.headers.at("id") : "";
    ids.insert(id);
    EXPECT_EQ(r.key.rfind("pay_", 0), 0u) << r.key;
    // The envelope the relay rebuilt: of the keyed payment, from the
    // confirmation the id names.
    auto json = nlohmann::json::parse(r.value);
    EXPECT_EQ(json["after"]["payment_id"], r.key);
    const auto& source = json["source"];
    EXPECT_EQ(id, source["topic"].get<std::string>() + "-" +
                      std::to_string(source["partition"].get<int>()) + "-" +
                      std::to_string(source["offset"].get<int64_t>()) +
                      (json["op"] == "c" ? "-0" : "-1"))
        << r.value;
    EXPECT_EQ(json["before"].is_null(), json["op"] == "c") << r.value;
  }
  EXPECT_EQ(static_cast<int64_t>(ids.size()), expected.changes);
  auto [status, body] = HttpGet(admin_["sink"] + "/readyz");
  EXPECT_EQ(status, 200) << body;
  auto metrics = HttpGet(admin_["sink"] + "/metrics").second;
  EXPECT_GT(MetricValue(metrics, "payments_sink_rows_upserted_total"), 0);
  EXPECT_GT(MetricValue(metrics, "payments_sink_replays_skipped_total"), 0);
  auto exit = sink->Stop(SIGTERM, 20s);
  EXPECT_TRUE(exit.Succeeded()) << exit.ToString() << "\n" << sink->Describe();
  EXPECT_NE(sink->ReadOutput(OutputStream::kStderr).find("stopped gracefully"), std::string::npos);
}

TEST_F(PaymentsSinkE2eTest, PoisonRecordsAreDeadLetteredWithoutCardNumbers) {
  std::string db = FreshDatabase(server_uri_);
  Workload workload(12);
  Produce(workload.Next(100));
  ProduceRaw("cust_x", "\x0a\xffgarbage with card 4111 1111 1111 1111 inside");
  PaymentConfirmation unwritable = Confirmation("pay_zero", "cust_y", "merchant_a", 0);
  ProduceRaw("cust_y", unwritable.SerializeAsString());
  Produce(workload.Next(100));
  Subprocess* sink = StartSink("sink", db);
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(WaitForAll(db, 60s)) << sink->Describe();
  EXPECT_EQ(Actual(db), Expect(workload.all())) << Actual(db);
  auto dlq = ReadTopic("payments.confirmations.dlq", 1, 2);
  ASSERT_EQ(dlq.size(), 2u);
  std::set<std::string> stages;
  for (const auto& r : dlq) {
    EXPECT_EQ(r.headers.at("__connect.errors.topic"), kTopic);
    EXPECT_TRUE(r.headers.count("__connect.errors.partition"));
    EXPECT_TRUE(r.headers.count("__connect.errors.offset"));
    EXPECT_TRUE(r.headers.count("__connect.errors.class.name"));
    EXPECT_FALSE(r.headers.at("__connect.errors.exception.message").empty());
    stages.insert(r.headers.at("__connect.errors.stage"));
    EXPECT_EQ(r.value.find("4111 1111 1111 1111"), std::string::npos);
  }
  EXPECT_EQ(stages, (std::set<std::string>{"VALUE_CONVERTER", "TASK_PUT"}));
  EXPECT_EQ(sink->ReadOutput(OutputStream::kStderr).find("4111 1111 1111 1111"), std::string::npos);
}

TEST_F(PaymentsSinkE2eTest, SigkillAtRandomPointsLosesNothingAndAppliesNothingTwice) {
  std::string db = FreshDatabase(server_uri_);
  Workload workload(13);
  std::mt19937_64 rng(std::random_device{}());
  for (int round = 0; round < 5; ++round) {
    Produce(workload.Next(400));
    Subprocess* sink = StartSink("sink-" + std::to_string(round), db);
    ASSERT_NE(sink, nullptr);
    auto consuming = sink->WaitForLine(OutputStream::kStderr, std::regex("consuming"), 20s);
    ASSERT_TRUE(consuming.ok()) << consuming.status();
    // Wait until this instance has written something, then kill it at a random point.
    const int64_t before = Position(db);
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (Position(db) <= before && Position(db) != produced_ &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
    ASSERT_TRUE(sink->Kill(SIGKILL).ok());
    sink->Wait(10s);
  }
  Subprocess* last = StartSink("sink-final", db);
  ASSERT_NE(last, nullptr);
  ASSERT_TRUE(WaitForAll(db, 60s)) << Position(db) << " of " << produced_;
  EXPECT_EQ(Actual(db), Expect(workload.all())) << Actual(db);
}

// A private server: this test stops and restarts it.
class PrivatePostgres {
 public:
  PrivatePostgres() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    close(fd);
    const char* base = std::getenv("PG_PRIVATE_DIR");
    dir_ = std::string(base != nullptr ? base : "/tmp/payments-sink-pg") + "-" +
           std::to_string(getpid());
    ok_ = Run(std::string(PG_SERVER_SCRIPT) + " start " + dir_ + " " + std::to_string(port_));
  }
  ~PrivatePostgres() {
    Run(std::string(PG_SERVER_SCRIPT) + " stop " + dir_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  std::string uri() const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres";
  }
  bool Stop() { return PgCtl("-m immediate stop"); }
  bool Start() {
    return PgCtl("-l " + dir_ + "/server.log -w -t 30 -o \"-p " + std::to_string(port_) +
                 " -c listen_addresses=127.0.0.1 -k " + dir_ + " -c fsync=off\" start");
  }

 private:
  static bool Run(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
  }
  bool PgCtl(const std::string& args) {
    std::string bin = "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pg_ctl";
    std::string cmd = bin + " -D " + dir_ + "/data " + args;
    if (getuid() == 0)
      cmd = "runuser -u postgres -- sh -c '" + std::regex_replace(cmd, std::regex("'"), "") + "'";
    return Run("sh -c \"" + std::regex_replace(cmd, std::regex("\""), "\\\"") + "\"");
  }
  int port_ = 0;
  std::string dir_;
  bool ok_ = false;
};

TEST_F(PaymentsSinkE2eTest, DatabaseStoppedAndRestartedMidStreamLosesNothing) {
  PrivatePostgres pg;
  ASSERT_TRUE(pg.ok());
  std::string db = FreshDatabase(pg.uri(), "sink_restart");
  Workload workload(14);
  Produce(workload.Next(300));
  Subprocess* sink = StartSink("sink", db, {"sink.circuit.open.after=2"});
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(WaitForAll(db, 30s)) << sink->Describe();
  ASSERT_TRUE(pg.Stop());
  Produce(workload.Next(300));
  // Paused and not ready while the database is down.
  bool paused = false;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!paused && std::chrono::steady_clock::now() < deadline) {
    auto metrics = HttpGet(admin_["sink"] + "/metrics").second;
    // Not ready at once; unhealthy once the circuit breaker opened (2 failures).
    paused = MetricValue(metrics, "payments_sink_paused") == 1 &&
             HttpGet(admin_["sink"] + "/readyz").first == 503 &&
             HttpGet(admin_["sink"] + "/healthz").first == 503;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(paused) << sink->Describe();
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(pg.Start());
  ASSERT_TRUE(WaitForAll(db, 30s)) << Position(db) << " of " << produced_ << "\n"
                                   << sink->Describe();
  EXPECT_EQ(Actual(db), Expect(workload.all())) << Actual(db);
  deadline = std::chrono::steady_clock::now() + 10s;
  while (HttpGet(admin_["sink"] + "/readyz").first != 200 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  auto metrics = HttpGet(admin_["sink"] + "/metrics").second;
  EXPECT_EQ(HttpGet(admin_["sink"] + "/readyz").first, 200);
  EXPECT_GT(MetricValue(metrics, "payments_sink_paused_seconds_total"), 0);
  EXPECT_GT(MetricValue(metrics, "payments_sink_database_retries_total"), 0);
  EXPECT_TRUE(sink->Stop(SIGTERM, 20s).Succeeded()) << sink->Describe();
}

TEST_F(PaymentsSinkE2eTest, TwoInstancesShareThePartitionsThroughARebalance) {
  std::string db = FreshDatabase(server_uri_);
  Workload workload(15);
  Subprocess* a = StartSink("sink-a", db);
  ASSERT_NE(a, nullptr);
  Produce(workload.Next(600));
  Subprocess* b = StartSink("sink-b", db);
  ASSERT_NE(b, nullptr);
  Produce(workload.Next(600));
  ASSERT_TRUE(WaitForAll(db, 60s)) << a->Describe() << b->Describe();
  // a leaves: b takes every partition.
  EXPECT_TRUE(a->Stop(SIGTERM, 20s).Succeeded()) << a->Describe();
  Produce(workload.Next(600));
  ASSERT_TRUE(WaitForAll(db, 60s)) << Position(db) << " of " << produced_ << "\n" << b->Describe();
  EXPECT_EQ(Actual(db), Expect(workload.all())) << Actual(db);
  std::smatch m;
  std::string a_log = a->ReadOutput(OutputStream::kStderr);
  ASSERT_TRUE(std::regex_search(a_log, m, std::regex("stopped: (\\d+) records written")));
  EXPECT_GT(std::stoll(m[1]), 0) << "instance a wrote nothing";
  EXPECT_NE(b->ReadOutput(OutputStream::kStderr).find("assigned 4 partitions"), std::string::npos)
      << b->Describe();
}

}  // namespace
}  // namespace payments_sink
