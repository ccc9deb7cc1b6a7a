// An in-process HTTP receiver (civetweb) of Standard Webhooks for tests: it
// verifies every signature with its own key, dedupes on webhook-id as a real
// receiver should, records what arrived, and answers as scripted (500, 429
// with Retry-After, a stall longer than the client's timeout, 410).
//
// Thread safety: thread-safe (civetweb calls the handler from its threads).
#pragma once

#include <CivetServer.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sink/webhook.h"

namespace payments_sink::testing {

struct Delivery {
  std::string id;
  std::string customer_id;
  std::string op;
  int64_t refunded = 0;
  std::string body;  // The envelope as received.
  std::chrono::steady_clock::time_point at;
  int status = 0;
};

// What to answer: status, optional Retry-After seconds, optional stall.
struct Answer {
  int status = 200;
  int retry_after_s = -1;
  std::chrono::milliseconds stall{0};
};

class WebhookReceiver : public CivetHandler {
 public:
  explicit WebhookReceiver(std::string key) : key_(std::move(key)) {
    std::vector<std::string> options = {"listening_ports", "127.0.0.1:0", "num_threads", "4"};
    server_ = std::make_unique<CivetServer>(options);
    server_->addHandler("/hook", this);
    port_ = server_->getListeningPorts().front();
  }
  ~WebhookReceiver() override { server_->close(); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

  // Answers for the next requests, in order (then `fallback`).
  void Script(std::deque<Answer> answers) {
    std::lock_guard<std::mutex> lock(mu_);
    script_ = std::move(answers);
  }
  // Answers for requests whose customer_id matches, whatever the script says.
  void AlwaysFor(const std::string& customer, Answer answer) {
    std::lock_guard<std::mutex> lock(mu_);
    per_customer_[customer] = answer;
  }
  void SetFallback(Answer answer) {
    std::lock_guard<std::mutex> lock(mu_);
    fallback_ = answer;
  }

  std::vector<Delivery> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // Accepted (2xx) events, deduplicated on webhook-id, in arrival order.
  std::vector<Delivery> accepted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return accepted_;
  }
  int bad_signatures() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bad_signatures_;
  }

  bool handlePost(CivetServer*, mg_connection* conn) override {
    std::string body;
    char buf[4096];
    int n;
    while ((n = mg_read(conn, buf, sizeof(buf))) > 0) body.append(buf, static_cast<size_t>(n));
    const char* id = mg_get_header(conn, "webhook-id");
    const char* ts = mg_get_header(conn, "webhook-timestamp");
    const char* sig = mg_get_header(conn, "webhook-signature");
    Delivery d;
    d.id = id ? id : "";
    d.body = body;
    d.at = std::chrono::steady_clock::now();
    bool valid = id && ts && sig && VerifyWebhook(key_, id, std::stoll(ts), body, sig);
    try {
      auto json = nlohmann::json::parse(body);
      d.customer_id = json["after"]["customer_id"].get<std::string>();
      d.op = json["op"].get<std::string>();
      d.refunded = json["after"]["refunded_amount_minor"].get<int64_t>();
    } catch (const std::exception&) {
      valid = false;
    }
    Answer answer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!valid) {
        ++bad_signatures_;
        answer.status = 400;
      } else if (auto it = per_customer_.find(d.customer_id); it != per_customer_.end()) {
        answer = it->second;
      } else if (!script_.empty()) {
        answer = script_.front();
        script_.pop_front();
      } else {
        answer = fallback_;
      }
      d.status = answer.status;
      requests_.push_back(d);
      if (answer.status / 100 == 2 && answer.stall.count() == 0 && seen_.insert(d.id).second) {
        accepted_.push_back(d);
      }
    }
    if (answer.stall.count() > 0) std::this_thread::sleep_for(answer.stall);
    std::string extra;
    if (answer.retry_after_s >= 0)
      extra = "Retry-After: " + std::to_string(answer.retry_after_s) + "\r\n";
    mg_printf(conn, "HTTP/1.1 %d X\r\nContent-Length: 0\r\n%sConnection: close\r\n\r\n",
              answer.status, extra.c_str());
    return true;
  }

 private:
  std::string key_;
  std::unique_ptr<CivetServer> server_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::deque<Answer> script_;
  std::map<std::string, Answer> per_customer_;
  Answer fallback_;
  std::vector<Delivery> requests_;
  std::vector<Delivery> accepted_;
  std::set<std::string> seen_;
  int bad_signatures_ = 0;
};

}  // namespace payments_sink::testing
