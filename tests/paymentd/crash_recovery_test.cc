// Exactly-once across failures, on devbroker and on Apache Kafka (both with
// real transaction semantics, unlike librdkafka's mock): paymentd is killed
// (SIGKILL) and later stopped (SIGTERM) while payments-loadgen is sending, and
// restarted each time; payments-verify must then find exactly one decision per
// request and no other violation. paymentd, payments-loadgen, payments-verify,
// payments-topics and devbroker run as subprocesses; Apache Kafka is a
// KafkaBroker (tests/support/kafka_broker.h; the CrashRecoveryKafkaTest case,
// label kafka, skipped when its jars are not fetched unless
// PAYMENTS_REQUIRE_KAFKA is set). The topics are created with the Admin API
// (payments-topics) on both; paymentd creates its changelog topics itself.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/kafka_broker.h"
#include "test_process.h"
#include "tools/kafka_util.h"

namespace {

using namespace std::chrono_literals;
using paymentd::testing::HttpGet;
using paymentd::testing::ReadFile;
using paymentd::testing::Subprocess;
using paymentd::testing::WaitForMatch;

class CrashRecoveryTest : public ::testing::Test {
 protected:
  // Apache Kafka instead of devbroker (CrashRecoveryKafkaTest).
  virtual bool UseKafka() const { return false; }

  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    dir_ = std::filesystem::temp_directory_path() /
           ("paymentd_crash_test_" + std::to_string(getpid()) + (UseKafka() ? "_kafka" : ""));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (UseKafka()) {
      streams::test_support::KafkaBrokerOptions options;
      options.dir = dir_ / "kafka";
      options.num_partitions = 4;
      START_KAFKA_BROKER_OR_SKIP(kafka_, options);
      bootstrap_ = kafka_->bootstrap();
    } else {
      broker_ = std::make_unique<Subprocess>(
          std::vector<std::string>{DEVBROKER_BIN, "--listen", "127.0.0.1:0", "--default-partitions",
                                   "4"},
          (dir_ / "broker.out").string(), (dir_ / "broker.log").string());
      bootstrap_ = WaitForMatch(dir_ / "broker.out", std::regex("devbroker listening on (\\S+)"),
                                30s, broker_.get());
      ASSERT_FALSE(bootstrap_.empty()) << ReadFile(dir_ / "broker.log");
    }
    Subprocess topics({TOPICS_BIN, "--bootstrap-servers", bootstrap_, "--partitions", "4",
                       "--topic", "payments.requests", "--topic", "payments.confirmations",
                       "--topic", "payments.requests.dlq"},
                      (dir_ / "topics.out").string(), (dir_ / "topics.err").string());
    ASSERT_EQ(topics.Wait(60s), 0) << ReadFile(dir_ / "topics.err");
    ASSERT_NO_FATAL_FAILURE(WaitUntilPartitionsAnswer());
  }

  // Waits until every partition of the two topics answers an end-offset query:
  // right after CreateTopics, Apache Kafka can answer NOT_LEADER_OR_FOLLOWER for
  // a moment (and payments-loadgen does not retry that).
  void WaitUntilPartitionsAnswer() {
    auto conf = payments::tools::MakeConf({{"bootstrap.servers", bootstrap_},
                                           {"group.id", "crash-recovery-test"},
                                           {"log_level", "3"}});
    ASSERT_TRUE(conf.ok()) << conf.status();
    auto client = payments::tools::CreateClient(RD_KAFKA_CONSUMER, std::move(*conf));
    ASSERT_TRUE(client.ok()) << client.status();
    auto deadline = std::chrono::steady_clock::now() + 60s;
    for (const char* topic : {"payments.requests", "payments.confirmations"}) {
      while (true) {
        auto ends = payments::tools::QueryEndOffsets(client->get(), topic, 5s);
        if (ends.ok() && ends->size() == 4) break;
        ASSERT_LT(std::chrono::steady_clock::now(), deadline)
            << topic << ": " << (ends.ok() ? "not 4 partitions" : ends.status().ToString());
        std::this_thread::sleep_for(200ms);
      }
    }
  }

  void TearDown() override {
    paymentd_.reset();
    for (auto& instance : instances_) instance.reset();
    broker_.reset();
    if (kafka_ && HasFailure()) {
      std::printf("Apache Kafka server.log:\n%s\n", kafka_->LogTail().c_str());
    }
    kafka_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
    curl_global_cleanup();
  }

  // Starts (or restarts) paymentd on the same state directory and waits until
  // it is ready. Each run logs to its own file.
  void StartPaymentd() {
    ++runs_;
    log_ = dir_ / ("paymentd-" + std::to_string(runs_) + ".log");
    paymentd_ = std::make_unique<Subprocess>(
        std::vector<std::string>{PAYMENTD_BIN, "--set", "bootstrap.servers=" + bootstrap_, "--set",
                                 "state.dir=" + (dir_ / "state").string(), "--set",
                                 "admin.listen=127.0.0.1:0",
                                 // A killed member leaves the group after this long.
                                 "--set", "consumer.session.timeout.ms=6000"},
        (dir_ / "paymentd.out").string(), log_.string());
    std::string admin =
        WaitForMatch(log_, std::regex("admin listening on (\\S+)"), 30s, paymentd_.get());
    ASSERT_FALSE(admin.empty()) << ReadFile(log_);
    auto deadline = std::chrono::steady_clock::now() + 120s;
    while (HttpGet("http://" + admin + "/readyz").first != 200) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "not ready:\n" << ReadFile(log_);
      ASSERT_FALSE(paymentd_->Wait(0ms).has_value()) << "paymentd exited:\n" << ReadFile(log_);
      std::this_thread::sleep_for(100ms);
    }
  }

  // Starts (or restarts) instance `slot` of a group of instances, each on
  // its own state directory (so with its own default instance.id), with the
  // default session timeout; returns its admin address once it is ready.
  std::string StartInstance(int slot, const std::filesystem::path& state_dir) {
    const std::filesystem::path log =
        dir_ / ("instance-" + std::to_string(slot) + "-" + std::to_string(++runs_) + ".log");
    instance_logs_[slot] = log;
    instances_[slot] = std::make_unique<Subprocess>(
        std::vector<std::string>{PAYMENTD_BIN, "--set", "bootstrap.servers=" + bootstrap_, "--set",
                                 "state.dir=" + state_dir.string(), "--set",
                                 "admin.listen=127.0.0.1:0"},
        (dir_ / ("instance-" + std::to_string(slot) + ".out")).string(), log.string());
    std::string admin =
        WaitForMatch(log, std::regex("admin listening on (\\S+)"), 30s, instances_[slot].get());
    EXPECT_FALSE(admin.empty()) << ReadFile(log);
    auto deadline = std::chrono::steady_clock::now() + 120s;
    while (!admin.empty() && HttpGet("http://" + admin + "/readyz").first != 200) {
      if (std::chrono::steady_clock::now() > deadline || instances_[slot]->Wait(0ms).has_value()) {
        ADD_FAILURE() << "instance " << slot << " not ready:\n" << ReadFile(log);
        return std::string();
      }
      std::this_thread::sleep_for(100ms);
    }
    return admin;
  }

  // payments-verify over the whole topics: `requests` requests, one
  // confirmation each, no violation.
  void ExpectVerified(int requests) {
    Subprocess verify({VERIFY_BIN, "--bootstrap-servers", bootstrap_, "--json"},
                      (dir_ / "verify.out").string(), (dir_ / "verify.err").string());
    auto verify_code = verify.Wait(120s);
    std::string verify_out = ReadFile(dir_ / "verify.out");
    EXPECT_EQ(verify_code, 0) << verify_out << ReadFile(dir_ / "verify.err");
    auto report = nlohmann::json::parse(verify_out, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(report.is_discarded()) << verify_out;
    EXPECT_EQ(report["requests"], requests);
    EXPECT_EQ(report["confirmations"], requests);
    EXPECT_EQ(report["violation_count"], 0) << report["violations"].dump(2);
  }

  // The value of an unlabelled metric of the instance at `admin` (-1: absent).
  static double Metric(const std::string& admin, const std::string& name) {
    std::istringstream lines(HttpGet("http://" + admin + "/metrics").second);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
  }

  std::unique_ptr<Subprocess> instances_[3];
  std::filesystem::path instance_logs_[3];

  std::filesystem::path dir_;
  std::filesystem::path log_;
  std::string bootstrap_;
  int runs_ = 0;
  std::unique_ptr<Subprocess> broker_;                         // devbroker
  std::unique_ptr<streams::test_support::KafkaBroker> kafka_;  // Apache Kafka
  std::unique_ptr<Subprocess> paymentd_;

  void KillAndStopMidStream();
  void KilledStaticMemberRestartsWithoutARebalance();
};

// The same on Apache Kafka (label kafka).
class CrashRecoveryKafkaTest : public CrashRecoveryTest {
 protected:
  bool UseKafka() const override { return true; }
};

TEST_F(CrashRecoveryTest, KillAndStopMidStreamStillDecideEveryRequestExactlyOnce) {
  KillAndStopMidStream();
}

TEST_F(CrashRecoveryKafkaTest, KillAndStopMidStreamStillDecideEveryRequestExactlyOnce) {
  KillAndStopMidStream();
}

TEST_F(CrashRecoveryTest, KilledStaticMemberRestartsWithoutARebalanceAndADuplicateIdIsFenced) {
  KilledStaticMemberRestartsWithoutARebalance();
}

TEST_F(CrashRecoveryKafkaTest, KilledStaticMemberRestartsWithoutARebalanceAndADuplicateIdIsFenced) {
  KilledStaticMemberRestartsWithoutARebalance();
}

// Two instances with default settings (static membership, the default 45 s
// session timeout). One is killed and restarted at once: it rejoins as the
// same static member, so the other one gets no new assignment, and every
// request is still decided exactly once. Then a third process starts on a
// copy of the first one's state directory, so with the same instance.id: its
// join fences the first one, which stops with an error naming instance.id.
void CrashRecoveryTest::KilledStaticMemberRestartsWithoutARebalance() {
  const std::filesystem::path state_a = dir_ / "state-a";
  const std::filesystem::path state_b = dir_ / "state-b";
  const std::string admin_a = StartInstance(0, state_a);
  ASSERT_FALSE(admin_a.empty());
  const std::string admin_b = StartInstance(1, state_b);
  ASSERT_FALSE(admin_b.empty());
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (Metric(admin_a, "streams_tasks_assigned") != 2 ||
         Metric(admin_b, "streams_tasks_assigned") != 2) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "tasks not spread over both instances:\n"
        << ReadFile(instance_logs_[0]) << ReadFile(instance_logs_[1]);
    std::this_thread::sleep_for(100ms);
  }
  // The cooperative protocol ends a join with a second, empty assignment
  // round: the group is settled once B's count stays put for 3 heartbeats.
  double b_rebalances = Metric(admin_b, "streams_rebalances_total");
  for (auto since = std::chrono::steady_clock::now();
       std::chrono::steady_clock::now() - since < 3s;) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the group does not settle";
    std::this_thread::sleep_for(100ms);
    const double now = Metric(admin_b, "streams_rebalances_total");
    if (now != b_rebalances) {
      b_rebalances = now;
      since = std::chrono::steady_clock::now();
    }
  }
  ASSERT_GE(b_rebalances, 1);

  Subprocess loadgen(
      {LOADGEN_BIN, "--bootstrap-servers", bootstrap_, "--count", "4000", "--customers", "100",
       "--rate", "1000", "--duplicates", "0.05", "--refunds", "0.05", "--seed", "11",
       "--await-confirmations", "--await-timeout-ms", "240000", "--quiet"},
      (dir_ / "loadgen.out").string(), (dir_ / "loadgen.err").string());
  std::this_thread::sleep_for(1500ms);
  instances_[0]->Signal(SIGKILL);
  ASSERT_TRUE(instances_[0]->Wait(10s).has_value());
  const std::string admin_a2 = StartInstance(0, state_a);
  ASSERT_FALSE(admin_a2.empty());
  EXPECT_EQ(Metric(admin_a2, "streams_tasks_assigned"), 2) << ReadFile(instance_logs_[0]);

  auto loadgen_code = loadgen.Wait(300s);
  std::string loadgen_out = ReadFile(dir_ / "loadgen.out");
  ASSERT_EQ(loadgen_code, 0) << loadgen_out << ReadFile(dir_ / "loadgen.err");
  EXPECT_NE(loadgen_out.find("e2e confirmed=4000 expected=4000"), std::string::npos) << loadgen_out;
  // B noticed nothing: no assignment since before the kill.
  EXPECT_EQ(Metric(admin_b, "streams_rebalances_total"), b_rebalances)
      << ReadFile(instance_logs_[1]);

  ExpectVerified(4000);

  // A copy of A's state directory carries A's instance.id.
  const std::filesystem::path state_c = dir_ / "state-c";
  std::filesystem::create_directories(state_c / "paymentd");
  std::filesystem::copy_file(state_a / "paymentd" / "instance.id",
                             state_c / "paymentd" / "instance.id");
  const std::string admin_c = StartInstance(2, state_c);
  ASSERT_FALSE(admin_c.empty());
  auto a_exit = instances_[0]->Wait(60s);
  ASSERT_TRUE(a_exit.has_value()) << "the older instance with the same instance.id runs on:\n"
                                  << ReadFile(instance_logs_[0]);
  EXPECT_NE(*a_exit, 0);
  EXPECT_NE(ReadFile(instance_logs_[0]).find("two live instances share instance.id"),
            std::string::npos)
      << ReadFile(instance_logs_[0]);
  EXPECT_EQ(HttpGet("http://" + admin_c + "/readyz").first, 200);
}

void CrashRecoveryTest::KillAndStopMidStream() {
  ASSERT_NO_FATAL_FAILURE(StartPaymentd());
  // 6000 requests over 4 s; loadgen waits for every confirmation.
  Subprocess loadgen({LOADGEN_BIN,
                      "--bootstrap-servers",
                      bootstrap_,
                      "--count",
                      "6000",
                      "--customers",
                      "100",
                      "--rate",
                      "1500",
                      "--duplicates",
                      "0.05",
                      "--key-reuse",
                      "0.03",
                      "--invalid",
                      "0.05",
                      "--refunds",
                      "0.08",
                      "--bursts",
                      "0.05",
                      "--seed",
                      "5",
                      "--await-confirmations",
                      "--await-timeout-ms",
                      "240000",
                      "--quiet"},
                     (dir_ / "loadgen.out").string(), (dir_ / "loadgen.err").string());

  std::this_thread::sleep_for(1500ms);
  paymentd_->Signal(SIGKILL);  // A crash: uncommitted work is lost and redone.
  ASSERT_TRUE(paymentd_->Wait(10s).has_value());
  ASSERT_NO_FATAL_FAILURE(StartPaymentd());

  std::this_thread::sleep_for(1000ms);
  paymentd_->Signal(SIGTERM);  // A graceful stop in the middle of the load.
  auto stopped = paymentd_->Wait(60s);
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(*stopped, 0) << ReadFile(log_);
  ASSERT_NO_FATAL_FAILURE(StartPaymentd());

  auto loadgen_code = loadgen.Wait(300s);
  std::string loadgen_out = ReadFile(dir_ / "loadgen.out");
  ASSERT_EQ(loadgen_code, 0) << loadgen_out << ReadFile(dir_ / "loadgen.err");
  EXPECT_NE(loadgen_out.find("e2e confirmed=6000 expected=6000"), std::string::npos) << loadgen_out;

  ExpectVerified(6000);
}

}  // namespace
