// End to end on librdkafka's mock cluster: paymentd decides requests sent by
// payments-loadgen, and payments-verify checks every invariant of the output.
// The three programs run as real subprocesses; the mock cluster runs in this
// process (see tools/mock_cluster.h for its limitations).
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "payments/payments_topology.h"
#include "streams/topology.h"
#include "test_process.h"
#include "tools/mock_cluster.h"

namespace {

using namespace std::chrono_literals;
using paymentd::testing::HttpGet;
using paymentd::testing::ReadFile;
using paymentd::testing::Subprocess;
using paymentd::testing::SumOf;

class PipelineTest : public ::testing::Test {
 protected:
  static constexpr int kPartitions = 4;
  static constexpr char kApplicationId[] = "pipeline-test";

  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    dir_ = std::filesystem::temp_directory_path() /
           ("paymentd_pipeline_test_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto cluster = payments::tools::MockCluster::Create(3);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    // The mock does not implement CreateTopics: create every topic up front,
    // changelogs included.
    std::vector<std::string> topics = {"payments.requests", "payments.confirmations",
                                       "payments.requests.dlq"};
    for (auto store : {payments::kIdempotencyStoreName, payments::kPaymentsStoreName,
                       payments::kCustomersStoreName}) {
      topics.push_back(streams::Topology::ChangelogTopic(kApplicationId, store));
    }
    for (const auto& topic : topics) {
      ASSERT_TRUE(cluster_->CreateTopic(topic, kPartitions).ok()) << topic;
    }
  }

  void TearDown() override {
    paymentd_.reset();
    cluster_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
    curl_global_cleanup();
  }

  // Starts paymentd and returns its admin base URL once /readyz says 200.
  std::string StartPaymentd() {
    paymentd_ = std::make_unique<Subprocess>(
        std::vector<std::string>{
            PAYMENTD_BIN, "--set", "bootstrap.servers=" + cluster_->bootstrap_servers(), "--set",
            std::string("application.id=") + kApplicationId, "--set",
            "state.dir=" + (dir_ / "state").string(), "--set", "admin.listen=127.0.0.1:0"},
        (dir_ / "paymentd.out").string(), (dir_ / "paymentd.log").string());
    EXPECT_TRUE(paymentd_->started());
    // The admin port is chosen by the OS and logged.
    std::regex listening("admin listening on (127\\.0\\.0\\.1:[0-9]+)");
    std::string base;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (base.empty() && std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      std::string log = ReadFile(dir_ / "paymentd.log");
      if (std::regex_search(log, m, listening)) base = "http://" + m[1].str();
      if (paymentd_->Wait(0ms)) break;
      std::this_thread::sleep_for(50ms);
    }
    if (base.empty()) {
      ADD_FAILURE() << "paymentd did not start its admin server:\n"
                    << ReadFile(dir_ / "paymentd.log");
      return "";
    }
    EXPECT_EQ(HttpGet(base + "/healthz").first, 200);
    deadline = std::chrono::steady_clock::now() + 120s;
    while (HttpGet(base + "/readyz").first != 200) {
      if (std::chrono::steady_clock::now() > deadline || paymentd_->Wait(0ms)) {
        ADD_FAILURE() << "paymentd not ready:\n" << ReadFile(dir_ / "paymentd.log");
        return "";
      }
      std::this_thread::sleep_for(100ms);
    }
    return base;
  }

  // Runs a tool to completion; returns its exit code (-1 on timeout).
  int RunTool(const std::vector<std::string>& argv, const std::string& name,
              std::chrono::milliseconds timeout) {
    Subprocess tool(argv, (dir_ / (name + ".out")).string(), (dir_ / (name + ".err")).string());
    auto code = tool.Wait(timeout);
    return code ? *code : -1;
  }

  std::filesystem::path dir_;
  std::unique_ptr<payments::tools::MockCluster> cluster_;
  std::unique_ptr<Subprocess> paymentd_;
};

TEST_F(PipelineTest, EveryRequestIsDecidedExactlyOnceAndVerifies) {
  const std::string admin = StartPaymentd();
  ASSERT_FALSE(admin.empty());

  const std::string bootstrap = cluster_->bootstrap_servers();
  int loadgen = RunTool({LOADGEN_BIN,
                         "--bootstrap-servers",
                         bootstrap,
                         "--count",
                         "3000",
                         "--customers",
                         "100",
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
                         "11",
                         "--partitions",
                         "4",
                         "--await-confirmations",
                         "--await-timeout-ms",
                         "120000",
                         "--quiet"},
                        "loadgen", 200s);
  std::string loadgen_out = ReadFile(dir_ / "loadgen.out");
  ASSERT_EQ(loadgen, 0) << loadgen_out << ReadFile(dir_ / "loadgen.err")
                        << ReadFile(dir_ / "paymentd.log");
  EXPECT_NE(loadgen_out.find("sent=3000 acked=3000 failed=0"), std::string::npos) << loadgen_out;
  EXPECT_NE(loadgen_out.find("e2e confirmed=3000 expected=3000"), std::string::npos) << loadgen_out;

  int verify =
      RunTool({VERIFY_BIN, "--bootstrap-servers", bootstrap, "--json", "--timeout-ms", "60000"},
              "verify", 120s);
  std::string verify_out = ReadFile(dir_ / "verify.out");
  EXPECT_EQ(verify, 0) << verify_out << ReadFile(dir_ / "verify.err");
  auto report = nlohmann::json::parse(verify_out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(report.is_discarded()) << verify_out;
  EXPECT_EQ(report["requests"], 3000);
  EXPECT_EQ(report["confirmations"], 3000);
  EXPECT_EQ(report["violation_count"], 0) << report["violations"].dump(2);
  EXPECT_EQ(report["ok"], true);
  EXPECT_GT(report["approved"].get<int>(), 1000);
  EXPECT_GT(report["replays"].get<int>(), 0);
  EXPECT_GT(report["key_reused"].get<int>(), 0);
  EXPECT_GT(report["approved_refunds"].get<int>(), 0);
  for (const char* code : {"RATE_LIMITED", "PAN_NOT_ALLOWED", "UNKNOWN_PAYMENT",
                           "REFUND_EXCEEDS_PAYMENT", "IDEMPOTENCY_KEY_REUSED"}) {
    EXPECT_GT(report["declined_by_code"].value(code, 0), 0) << code << "\n" << verify_out;
  }

  auto [status, metrics] = HttpGet(admin + "/metrics");
  ASSERT_EQ(status, 200);
  EXPECT_GE(SumOf(metrics, "payments_requests_total"), 3000) << metrics;
  EXPECT_GE(SumOf(metrics, "streams_records_processed_total"), 3000) << metrics;
  EXPECT_GT(SumOf(metrics, "payments_replays_total"), 0) << metrics;

  // Graceful stop on SIGTERM.
  paymentd_->Signal(SIGTERM);
  auto code = paymentd_->Wait(60s);
  ASSERT_TRUE(code.has_value()) << "paymentd did not stop";
  EXPECT_EQ(*code, 0) << ReadFile(dir_ / "paymentd.log");
  std::string log = ReadFile(dir_ / "paymentd.log");
  EXPECT_NE(log.find("stopping gracefully"), std::string::npos) << log;
  for (const char* pan : {"4111111111111111", "5555 5555 5555 4444", "4012-8888-8888-1881",
                          "378282246310005", "6011111111111117"}) {
    EXPECT_EQ(log.find(pan), std::string::npos) << "a card number in the log";
  }
}

}  // namespace
