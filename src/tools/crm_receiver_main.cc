// payments-crm-receiver: a CRM webhook receiver for payments-sink's CDC
// events, written as a receiver should be (Standard Webhooks):
//   1. verify webhook-signature (HMAC-SHA256 of "<id>.<timestamp>.<body>" with
//      the endpoint's key; any of the space-separated v1 entries may match,
//      so a secret rotation needs no coordination) and reject a
//      webhook-timestamp further than --tolerance-s from the receiver's clock
//      (replay protection): 401, the sender retries;
//   2. dedupe on webhook-id: an event seen before is answered 200 and ignored
//      (delivery is at least once);
//   3. answer 2xx quickly.
// It also checks the order promised per customer (events arrive in the order
// of their source records, per source partition) and counts what it saw; GET /stats returns the
// counts as JSON, and they are printed as JSON on stdout when it stops
// (SIGTERM, SIGINT). --fail-percent answers 503 to that share of first
// attempts (chosen from the event id, so the same ones every run) to show the
// sender's retries.
//
//   payments-crm-receiver --listen 127.0.0.1:0 [--path /hook] [--tolerance-s 300]
//                         [--fail-percent 0] [--events-out FILE]
//   The secret: PAYMENTS_CRM_SECRET (whsec_...; several separated by spaces),
//   or --secret-file FILE (never on the command line, where ps shows it).
//
// Exit status: 0 stopped by a signal, 2 usage or start-up error.
#include <CivetServer.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sink/webhook.h"
#include "streams/runtime/signals.h"

namespace {

class Receiver : public CivetHandler {
 public:
  Receiver(std::vector<std::string> keys, int64_t tolerance_s, int fail_percent,
           std::ofstream* events_out)
      : keys_(std::move(keys)),
        tolerance_s_(tolerance_s),
        fail_percent_(fail_percent),
        events_out_(events_out) {}

  bool handlePost(CivetServer*, mg_connection* conn) override {
    std::string body;
    char buf[8192];
    int n;
    while ((n = mg_read(conn, buf, sizeof(buf))) > 0) body.append(buf, static_cast<size_t>(n));
    const char* id = mg_get_header(conn, "webhook-id");
    const char* ts = mg_get_header(conn, "webhook-timestamp");
    const char* sig = mg_get_header(conn, "webhook-signature");
    std::lock_guard<std::mutex> lock(mu_);
    ++received_;
    // 1. Authenticity and freshness.
    int64_t timestamp = 0;
    if (id == nullptr || ts == nullptr || sig == nullptr || !ParseInt(ts, timestamp)) {
      ++rejected_signature_;
      return Reply(conn, 400);
    }
    bool valid = false;
    for (const std::string& key : keys_)
      valid = valid || payments_sink::VerifyWebhook(key, id, timestamp, body, sig);
    if (!valid) {
      ++rejected_signature_;
      return Reply(conn, 401);
    }
    const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    if (std::llabs(now_s - timestamp) > tolerance_s_) {
      ++rejected_timestamp_;
      return Reply(conn, 401);
    }
    // 2. Dedupe.
    if (accepted_ids_.count(id) > 0) {
      ++duplicates_;
      return Reply(conn, 200);
    }
    if (fail_percent_ > 0 && failed_once_.count(id) == 0 &&
        static_cast<int>(std::hash<std::string>{}(id) % 100) < fail_percent_) {
      failed_once_.insert(id);
      ++failed_on_purpose_;
      return Reply(conn, 503);
    }
    nlohmann::json event;
    try {
      event = nlohmann::json::parse(body);
      const nlohmann::json& after = event.at("after");
      const nlohmann::json& source = event.at("source");
      const std::string customer = after.at("customer_id").get<std::string>();
      // The order a customer's events must arrive in: (source offset, seq);
      // seq is the last part of the id "<topic>-<partition>-<offset>-<seq>".
      const std::string id_text(id);
      const int seq = std::atoi(id_text.substr(id_text.rfind('-') + 1).c_str());
      // A customer's confirmations share a partition, except a declined
      // request whose record key was not its customer_id (KEY_MISMATCH):
      // order is promised per customer within a source partition.
      const std::pair<std::string, int> stream{customer, source.at("partition").get<int>()};
      const std::pair<int64_t, int> position{source.at("offset").get<int64_t>(), seq};
      auto last = last_position_.find(stream);
      if (last != last_position_.end() && position <= last->second) ++out_of_order_;
      last_position_[stream] = position;
      customers_.insert(customer);
      ++by_op_[event.at("op").get<std::string>()];
      if (events_out_ != nullptr) {
        *events_out_ << nlohmann::json{{"id", id_text},
                                       {"op", event["op"]},
                                       {"customer_id", customer},
                                       {"payment_id", after.value("payment_id", "")},
                                       {"refunded_amount_minor",
                                        after.value("refunded_amount_minor", int64_t{0})}}
                            .dump()
                     << "\n";
      }
    } catch (const std::exception&) {
      ++malformed_;
      return Reply(conn, 400);  // Signed but not an envelope: a sender bug.
    }
    accepted_ids_.insert(id);
    return Reply(conn, 200);
  }

  bool handleGet(CivetServer*, mg_connection* conn) override {
    const std::string body = Stats().dump() + "\n";
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n%s",
              body.size(), body.c_str());
    return true;
  }

  nlohmann::json Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {{"received", received_},
            {"accepted", accepted_ids_.size()},
            {"duplicates", duplicates_},
            {"rejected_signature", rejected_signature_},
            {"rejected_timestamp", rejected_timestamp_},
            {"malformed", malformed_},
            {"failed_on_purpose", failed_on_purpose_},
            {"out_of_order", out_of_order_},
            {"customers", customers_.size()},
            {"by_op", by_op_}};
  }

 private:
  static bool ParseInt(const char* text, int64_t& out) {
    char* end = nullptr;
    out = std::strtoll(text, &end, 10);
    return end != text && *end == '\0';
  }
  static bool Reply(mg_connection* conn, int status) {
    mg_printf(conn, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status,
              status / 100 == 2 ? "OK" : "Error");
    return true;
  }

  const std::vector<std::string> keys_;
  const int64_t tolerance_s_;
  const int fail_percent_;
  std::ofstream* const events_out_;
  std::mutex mu_;
  uint64_t received_ = 0, duplicates_ = 0, rejected_signature_ = 0, rejected_timestamp_ = 0;
  uint64_t malformed_ = 0, failed_on_purpose_ = 0, out_of_order_ = 0;
  std::set<std::string> accepted_ids_;
  std::set<std::string> failed_once_;
  std::map<std::pair<std::string, int>, std::pair<int64_t, int>> last_position_;
  std::set<std::string> customers_;
  std::map<std::string, uint64_t> by_op_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"payments-crm-receiver: verifies and counts payments-sink's webhook events"};
  std::string listen = "127.0.0.1:0";
  std::string path = "/hook";
  std::string secret_file;
  std::string events_out_path;
  int64_t tolerance_s = 300;
  int fail_percent = 0;
  app.add_option("--listen", listen, "host:port (port 0: a free one)")->capture_default_str();
  app.add_option("--path", path, "path of the webhook")->capture_default_str();
  app.add_option("--secret-file", secret_file, "file holding the whsec_ secret(s)");
  app.add_option("--tolerance-s", tolerance_s, "largest webhook-timestamp skew accepted")
      ->capture_default_str();
  app.add_option("--fail-percent", fail_percent, "answer 503 to this share of first attempts")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--events-out", events_out_path, "append accepted events as JSON lines");
  CLI11_PARSE(app, argc, argv);

  std::string secret;
  if (!secret_file.empty()) {
    std::ifstream in(secret_file);
    if (!in) {
      std::fprintf(stderr, "payments-crm-receiver: cannot read --secret-file %s\n",
                   secret_file.c_str());
      return 2;
    }
    std::stringstream text;
    text << in.rdbuf();
    secret = text.str();
  } else if (const char* env = std::getenv("PAYMENTS_CRM_SECRET")) {
    secret = env;
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  auto keys = payments_sink::ParseWebhookSecrets(secret);
  if (secret.empty() || !keys.ok()) {
    std::fprintf(stderr,
                 "payments-crm-receiver: the secret (PAYMENTS_CRM_SECRET or --secret-file): %s\n",
                 secret.empty() ? "not set" : keys.status().message().c_str());
    return 2;
  }
  std::ofstream events_out;
  if (!events_out_path.empty()) {
    events_out.open(events_out_path, std::ios::app);
    if (!events_out) {
      std::fprintf(stderr, "payments-crm-receiver: cannot open --events-out %s\n",
                   events_out_path.c_str());
      return 2;
    }
  }
  if (auto s = streams::runtime::InstallSignalHandlers(); !s.ok()) {
    std::fprintf(stderr, "payments-crm-receiver: signals: %s\n", s.ToString().c_str());
    return 2;
  }
  Receiver receiver(*keys, tolerance_s, fail_percent,
                    events_out_path.empty() ? nullptr : &events_out);
  std::unique_ptr<CivetServer> server;
  try {
    server = std::make_unique<CivetServer>(
        std::vector<std::string>{"listening_ports", listen, "num_threads", "8"});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "payments-crm-receiver: cannot listen on %s: %s\n", listen.c_str(),
                 e.what());
    return 2;
  }
  server->addHandler(path, receiver);
  server->addHandler("/stats", receiver);
  const auto ports = server->getListeningPorts();
  std::fprintf(stderr, "payments-crm-receiver listening on %s:%d%s\n",
               listen.substr(0, listen.rfind(':')).c_str(), ports.empty() ? 0 : ports.front(),
               path.c_str());
  std::fflush(stderr);
  while (!streams::runtime::WaitForShutdownSignal(std::chrono::seconds(1))) {
  }
  server->close();
  events_out.flush();
  std::printf("%s\n", receiver.Stats().dump().c_str());
  return 0;
}
