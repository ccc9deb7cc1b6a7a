#include "paymentd/admin_server.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "paymentd/decision_metrics.h"

namespace paymentd {
namespace {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

HttpResponse Get(const std::string& url) {
  HttpResponse response;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    char* type = nullptr;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    if (type != nullptr) response.content_type = type;
  }
  curl_easy_cleanup(curl);
  return response;
}

payments::v1::PaymentConfirmation Decision(payments::v1::Decision decision, std::string code,
                                           bool replay = false) {
  payments::v1::PaymentConfirmation c;
  c.set_decision(decision);
  c.set_decline_code(std::move(code));
  c.set_replay(replay);
  c.set_kind(payments::v1::PAYMENT);
  c.set_amount_minor(1250);
  c.set_currency("EUR");
  return c;
}

class AdminServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  static void TearDownTestSuite() { curl_global_cleanup(); }

  void SetUp() override {
    registry_ = std::make_shared<prometheus::Registry>();
    probes_.ready = [this] { return ready_.load(); };
    probes_.unhealthy_reason = [this] {
      std::lock_guard lock(mu_);
      return unhealthy_;
    };
  }

  std::unique_ptr<AdminServer> StartServer() {
    auto server = AdminServer::Start(ListenAddress{"127.0.0.1", 0}, registry_, probes_);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  std::string Url(const AdminServer& server, const std::string& path) {
    return "http://" + server.bound().ToString() + path;
  }

  std::shared_ptr<prometheus::Registry> registry_;
  AdminProbes probes_;
  std::atomic<bool> ready_{false};
  std::mutex mu_;
  std::string unhealthy_;
};

TEST_F(AdminServerTest, PortZeroPicksAFreePort) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->bound().host, "127.0.0.1");
  EXPECT_NE(server->bound().port, 0);
}

TEST_F(AdminServerTest, ReadyzIs503UntilReadyThen200) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpResponse before = Get(Url(*server, "/readyz"));
  EXPECT_EQ(before.status, 503);
  EXPECT_EQ(before.body, "not ready\n");
  ready_ = true;
  HttpResponse after = Get(Url(*server, "/readyz"));
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(after.body, "ready\n");
  ready_ = false;
  EXPECT_EQ(Get(Url(*server, "/readyz")).status, 503);
}

TEST_F(AdminServerTest, HealthzReportsTheRuntimeError) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpResponse healthy = Get(Url(*server, "/healthz"));
  EXPECT_EQ(healthy.status, 200);
  EXPECT_EQ(healthy.body, "ok\n");
  {
    std::lock_guard lock(mu_);
    unhealthy_ = "Fenced: producer fenced";
  }
  HttpResponse unhealthy = Get(Url(*server, "/healthz"));
  EXPECT_EQ(unhealthy.status, 503);
  EXPECT_NE(unhealthy.body.find("Fenced: producer fenced"), std::string::npos);
}

TEST_F(AdminServerTest, MetricsExposeBusinessCountersInTextFormat) {
  DecisionMetrics decisions(*registry_);
  decisions.OnDecision(Decision(payments::v1::APPROVED, ""));
  decisions.OnDecision(Decision(payments::v1::APPROVED, ""));
  decisions.OnDecision(Decision(payments::v1::DECLINED, "RATE_LIMITED"));
  decisions.OnDecision(Decision(payments::v1::APPROVED, "", /*replay=*/true));
  decisions.OnDecision(Decision(payments::v1::DECLINED, "NOT_A_REAL_CODE"));
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpResponse metrics = Get(Url(*server, "/metrics"));
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.content_type.find("text/plain"), std::string::npos);
  const std::string& body = metrics.body;
  EXPECT_NE(body.find("# TYPE payments_requests_total counter"), std::string::npos) << body;
  EXPECT_NE(body.find("payments_requests_total{decision=\"approved\",decline_code=\"\"} 3"),
            std::string::npos)
      << body;
  EXPECT_NE(
      body.find("payments_requests_total{decision=\"declined\",decline_code=\"RATE_LIMITED\"} 1"),
      std::string::npos)
      << body;
  // Unknown codes do not create new label values.
  EXPECT_NE(body.find("payments_requests_total{decision=\"declined\",decline_code=\"OTHER\"} 1"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("payments_replays_total 1"), std::string::npos) << body;
  // Replays are not counted twice in amounts.
  EXPECT_NE(
      body.find("payments_approved_amount_minor_total{currency=\"EUR\",kind=\"payment\"} 2500"),
      std::string::npos)
      << body;
  // The process metrics follow the registry's.
  EXPECT_NE(body.find("# TYPE process_cpu_seconds_total counter"), std::string::npos) << body;
  EXPECT_NE(body.find("\nprocess_resident_memory_bytes "), std::string::npos) << body;
  EXPECT_NE(body.find("\nprocess_start_time_seconds "), std::string::npos) << body;
}

TEST_F(AdminServerTest, DecisionMetricsAreThreadSafe) {
  DecisionMetrics decisions(*registry_);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&decisions, t] {
      for (int i = 0; i < 1000; ++i) {
        decisions.OnDecision(Decision(i % 2 ? payments::v1::APPROVED : payments::v1::DECLINED,
                                      i % 2 ? "" : (t % 2 ? "RATE_LIMITED" : "FRAUD_SUSPECTED")));
      }
    });
  }
  for (auto& t : threads) t.join();
  double total = 0;
  for (const auto& family : registry_->Collect()) {
    if (family.name != "payments_requests_total") continue;
    for (const auto& metric : family.metric) total += metric.counter.value;
  }
  EXPECT_EQ(total, 4000);
}

TEST_F(AdminServerTest, UnknownPathIs404) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Get(Url(*server, "/nope")).status, 404);
}

TEST_F(AdminServerTest, BusyPortIsAnError) {
  auto first = StartServer();
  ASSERT_NE(first, nullptr);
  auto second = AdminServer::Start(first->bound(), registry_, probes_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), streams::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find(first->bound().ToString()), std::string::npos)
      << second.status();
}

TEST_F(AdminServerTest, StopIsIdempotentAndClosesThePort) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::string url = Url(*server, "/healthz");
  EXPECT_EQ(Get(url).status, 200);
  server->Stop();
  server->Stop();
  EXPECT_EQ(Get(url).status, 0);  // Connection refused.
}

TEST_F(AdminServerTest, NeedsProbes) {
  AdminProbes none;
  auto server = AdminServer::Start(ListenAddress{"127.0.0.1", 0}, registry_, none);
  EXPECT_FALSE(server.ok());
}

}  // namespace
}  // namespace paymentd
