#include "sink/outbox_relay.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "streams/connect/sql_transaction.h"

namespace payments_sink {

using streams::Result;
using streams::Status;
using streams::StatusCode;

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "$<first>, $<first+1>, ..." for `n` parameters.
std::string List(size_t n, int first) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    out += "$" + std::to_string(first + static_cast<int>(i));
  }
  return out;
}

std::vector<std::string> Texts(const std::vector<int32_t>& parts) {
  std::vector<std::string> out;
  for (int32_t p : parts) out.push_back(std::to_string(p));
  return out;
}

}  // namespace

Result<std::unique_ptr<OutboxRelay>> OutboxRelay::Create(streams::connect::ConnectionPool* pool,
                                                         OutboxRelayOptions options,
                                                         prometheus::Registry& registry) {
  auto relay = std::unique_ptr<OutboxRelay>(new OutboxRelay());
  relay->pool_ = pool;
  relay->options_ = std::move(options);
  if (!relay->options_.owned_partitions) {
    return Status::InvalidArgument("the relay needs the owned partitions");
  }
  if (!relay->options_.kafka_topic.empty()) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    auto props = relay->options_.producer_properties;
    props["enable.idempotence"] = "true";
    for (const auto& [k, v] : props) {
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return Status::InvalidArgument("cdc producer property '" + k + "': " + err);
      }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
      *static_cast<int*>(m->_private) = static_cast<int>(m->err);
    });
    relay->producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (relay->producer_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument(std::string("cdc producer: ") + err);
    }
  }
  if (!relay->options_.webhook_url.empty()) {
    STREAMS_ASSIGN_OR_RETURN(relay->webhook_,
                             WebhookClient::Create(relay->options_.webhook_url,
                                                   relay->options_.webhook_keys,
                                                   relay->options_.webhook_timeout));
  }
  relay->backlog_ = &prometheus::BuildGauge()
                         .Name("payments_sink_outbox_backlog")
                         .Help("Outbox events not yet delivered, by target (owned partitions)")
                         .Register(registry);
  relay->oldest_age_ = &prometheus::BuildGauge()
                            .Name("payments_sink_outbox_oldest_age_seconds")
                            .Help("Age of the oldest undelivered outbox event, by target")
                            .Register(registry);
  relay->deliveries_ = &prometheus::BuildCounter()
                            .Name("payments_sink_cdc_deliveries_total")
                            .Help("CDC delivery attempts by target and outcome")
                            .Register(registry);
  relay->dead_ = &prometheus::BuildCounter()
                      .Name("payments_sink_cdc_dead_events_total")
                      .Help("CDC events given up after too many failures, by target")
                      .Register(registry);
  relay->webhook_disabled_ = &prometheus::BuildGauge()
                                  .Name("payments_sink_webhook_disabled")
                                  .Help("1 when the webhook endpoint answered 410 Gone")
                                  .Register(registry)
                                  .Add({});
  return relay;
}

OutboxRelay::~OutboxRelay() {
  Stop();
  if (producer_ != nullptr) {
    rd_kafka_flush(producer_, 2000);
    rd_kafka_destroy(producer_);
  }
}

void OutboxRelay::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    streams::connect::CircuitBreaker breaker(
        {std::chrono::milliseconds(200), std::chrono::milliseconds(5000), 0.5}, 3);
    while (true) {
      std::chrono::milliseconds wait = options_.interval;
      auto round = RunOnce();
      if (!round.ok()) {
        wait = breaker.RecordFailure(std::chrono::steady_clock::now());
        spdlog::warn("cdc relay: {} (retry in {} ms)", round.status().ToString(), wait.count());
      } else {
        breaker.RecordSuccess();
        // A full round may have more waiting: go again at once.
        if (round->kafka_delivered + round->webhook_delivered >= options_.batch_max_events) {
          wait = std::chrono::milliseconds(0);
        }
      }
      std::unique_lock<std::mutex> lock(mu_);
      if (wake_.wait_for(lock, wait, [this] { return stop_; })) break;
    }
  });
}

void OutboxRelay::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<RelayRound> OutboxRelay::RunOnce() {
  RelayRound round;
  std::vector<int32_t> parts = options_.owned_partitions();
  std::sort(parts.begin(), parts.end());
  parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
  STREAMS_ASSIGN_OR_RETURN(auto lease, pool_->Acquire(std::chrono::milliseconds(2000)));
  Status status;
  if (!parts.empty()) {
    if (producer_ != nullptr) status = DeliverKafka(lease.connection(), parts, round);
    if (status.ok() && webhook_ != nullptr) {
      status = DeliverWebhook(lease.connection(), parts, round);
    }
  }
  if (status.ok()) status = Prune(lease.connection(), round);
  if (status.ok() && std::chrono::steady_clock::now() >= next_gauges_) {
    status = UpdateGauges(lease.connection(), parts);
    next_gauges_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  }
  if (status.code() == StatusCode::kUnavailable) lease.MarkBroken();
  if (!status.ok()) return status;
  return round;
}

Status OutboxRelay::DeliverKafka(pqxx::connection& conn, const std::vector<int32_t>& parts,
                                 RelayRound& round) {
  struct Event {
    std::string id, payment_id, payload;
  };
  std::vector<Event> events;
  try {
    pqxx::nontransaction nt(conn);
    std::vector<std::string> params = Texts(parts);
    pqxx::result rows = nt.exec_params(
        "SELECT event_id, payment_id, payload FROM payments_outbox WHERE kafka_state = 'pending'"
        " AND kafka_partition IN (" + List(parts.size(), 1) + ") ORDER BY kafka_partition,"
        " kafka_offset, seq LIMIT " + std::to_string(options_.batch_max_events),
        pqxx::prepare::make_dynamic_params(params));
    for (const auto& r : rows) {
      events.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>()});
    }
  } catch (const std::exception& e) {
    return streams::connect::TranslateSqlException(e).WithContext("reading the outbox");
  }
  if (events.empty()) return Status::Ok();
  std::vector<int> results(events.size(), -1);
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    rd_kafka_headers_t* headers = rd_kafka_headers_new(1);
    rd_kafka_header_add(headers, "id", -1, e.id.data(), static_cast<ssize_t>(e.id.size()));
    void* value = const_cast<char*>(e.payload.data());
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(options_.kafka_topic.c_str()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(e.payment_id.data(), e.payment_id.size()),
        RD_KAFKA_V_VALUE(value, e.payload.size()), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE(&results[i]), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_headers_destroy(headers);
      results[i] = static_cast<int>(err);
      break;  // Keep the order: later events wait for the next round.
    }
  }
  rd_kafka_flush(producer_, 10000);
  std::vector<std::string> delivered;
  for (size_t i = 0; i < events.size(); ++i) {
    if (results[i] != 0) break;  // Only an in-order prefix counts as delivered.
    delivered.push_back(events[i].id);
  }
  const int failed = static_cast<int>(events.size() - delivered.size());
  if (!delivered.empty()) {
    try {
      pqxx::nontransaction nt(conn);
      std::vector<std::string> params{std::to_string(NowMs())};
      for (auto& id : delivered) params.push_back(id);
      nt.exec_params(
          "UPDATE payments_outbox SET kafka_state = 'delivered', done_at_ms = CASE WHEN"
          " webhook_state <> 'pending' THEN $1::INT8 ELSE NULL END WHERE event_id IN (" +
              List(delivered.size(), 2) + ")",
          pqxx::prepare::make_dynamic_params(params));
    } catch (const std::exception& e) {
      return streams::connect::TranslateSqlException(e).WithContext("marking Kafka deliveries");
    }
  }
  deliveries_->Add({{"target", "kafka"}, {"outcome", "delivered"}})
      .Increment(static_cast<double>(delivered.size()));
  round.kafka_delivered += static_cast<int>(delivered.size());
  if (failed > 0) {
    deliveries_->Add({{"target", "kafka"}, {"outcome", "retry"}}).Increment(failed);
    return Status::Unavailable("CDC produce to " + options_.kafka_topic + " failed for " +
                               std::to_string(failed) + " events");
  }
  return Status::Ok();
}

Status OutboxRelay::DeliverWebhook(pqxx::connection& conn, const std::vector<int32_t>& parts,
                                   RelayRound& round) {
  struct Event {
    std::string id, customer_id, payload;
    int attempts;
    int64_t next_attempt_ms;
  };
  std::vector<Event> events;
  try {
    pqxx::nontransaction nt(conn);
    pqxx::result disabled = nt.exec_params(
        "SELECT reason FROM webhook_endpoints WHERE url = $1", options_.webhook_url);
    webhook_disabled_->Set(disabled.empty() ? 0 : 1);
    if (!disabled.empty()) return Status::Ok();
    std::vector<std::string> params = Texts(parts);
    pqxx::result rows = nt.exec_params(
        "SELECT event_id, customer_id, payload, webhook_attempts, webhook_next_attempt_ms FROM"
        " payments_outbox WHERE webhook_state = 'pending' AND kafka_partition IN (" +
            List(parts.size(), 1) + ") ORDER BY kafka_partition, kafka_offset, seq LIMIT " +
            std::to_string(options_.batch_max_events),
        pqxx::prepare::make_dynamic_params(params));
    for (const auto& r : rows) {
      events.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(),
                        r[3].as<int>(), r[4].as<int64_t>()});
    }
  } catch (const std::exception& e) {
    return streams::connect::TranslateSqlException(e).WithContext("reading the outbox");
  }
  std::set<std::string> blocked;  // Customers with an earlier event not done.
  for (const Event& e : events) {
    if (blocked.count(e.customer_id) > 0) continue;
    const int64_t now_ms = NowMs();
    if (e.next_attempt_ms > now_ms) {
      blocked.insert(e.customer_id);
      continue;
    }
    WebhookResponse response = webhook_->Send(e.id, now_ms / 1000, e.payload);
    WebhookOutcome outcome = ClassifyWebhook(response);
    try {
      pqxx::nontransaction nt(conn);
      if (outcome == WebhookOutcome::kDelivered) {
        nt.exec_params(
            "UPDATE payments_outbox SET webhook_state = 'delivered', done_at_ms = CASE WHEN"
            " kafka_state <> 'pending' THEN $2::INT8 ELSE NULL END WHERE event_id = $1",
            e.id, NowMs());
        deliveries_->Add({{"target", "webhook"}, {"outcome", "delivered"}}).Increment();
        ++round.webhook_delivered;
        continue;
      }
      if (outcome == WebhookOutcome::kGone) {
        nt.exec_params(
            "INSERT INTO webhook_endpoints (url, disabled_at_ms, reason) VALUES ($1, $2, $3)"
            " ON CONFLICT (url) DO NOTHING",
            options_.webhook_url, NowMs(), std::string("410 Gone for event ") + e.id);
        deliveries_->Add({{"target", "webhook"}, {"outcome", "gone"}}).Increment();
        webhook_disabled_->Set(1);
        spdlog::error("cdc relay: webhook endpoint answered 410 Gone: disabled (delete its row"
                      " in webhook_endpoints to enable it again)");
        return Status::Ok();
      }
      ++round.webhook_failed;
      const int attempts = e.attempts + 1;
      const std::string error = response.http_status == 0
                                    ? "no response: " + response.error
                                    : "HTTP " + std::to_string(response.http_status);
      if (attempts >= options_.webhook_max_attempts) {
        nt.exec_params(
            "UPDATE payments_outbox SET webhook_state = 'dead', webhook_attempts = $2,"
            " webhook_last_error = $3, done_at_ms = CASE WHEN kafka_state <> 'pending' THEN"
            " $4::INT8 ELSE NULL END WHERE event_id = $1",
            e.id, attempts, error, NowMs());
        deliveries_->Add({{"target", "webhook"}, {"outcome", "dead"}}).Increment();
        dead_->Add({{"target", "webhook"}}).Increment();
        spdlog::error("cdc relay: event {} dead after {} webhook attempts ({})", e.id, attempts,
                      error);
        continue;  // Dead is final: the customer's next events go on.
      }
      std::chrono::milliseconds delay =
          streams::connect::BackoffDelay(options_.webhook_backoff, attempts, rng_);
      if (response.retry_after) {
        delay = std::max<std::chrono::milliseconds>(delay, *response.retry_after);
      }
      nt.exec_params(
          "UPDATE payments_outbox SET webhook_attempts = $2, webhook_next_attempt_ms = $3,"
          " webhook_last_error = $4 WHERE event_id = $1",
          e.id, attempts, NowMs() + delay.count(), error);
      deliveries_->Add({{"target", "webhook"}, {"outcome", "retry"}}).Increment();
      blocked.insert(e.customer_id);
    } catch (const std::exception& ex) {
      return streams::connect::TranslateSqlException(ex).WithContext("marking a webhook delivery");
    }
  }
  return Status::Ok();
}

Status OutboxRelay::Prune(pqxx::connection& conn, RelayRound& round) {
  try {
    pqxx::nontransaction nt(conn);
    pqxx::result res = nt.exec_params(
        "DELETE FROM payments_outbox WHERE event_id IN (SELECT event_id FROM payments_outbox"
        " WHERE kafka_state <> 'pending' AND webhook_state <> 'pending' AND done_at_ms < $1::INT8"
        " LIMIT 1000)",
        NowMs() - options_.retention.count());
    round.pruned = static_cast<int>(res.affected_rows());
  } catch (const std::exception& e) {
    return streams::connect::TranslateSqlException(e).WithContext("pruning the outbox");
  }
  return Status::Ok();
}

Status OutboxRelay::UpdateGauges(pqxx::connection& conn, const std::vector<int32_t>& parts) {
  const int64_t now_ms = NowMs();
  for (const char* target : {"kafka", "webhook"}) {
    double count = 0, age = 0;
    if (!parts.empty()) {
      try {
        pqxx::nontransaction nt(conn);
        std::vector<std::string> params = Texts(parts);
        pqxx::result r = nt.exec_params(
            std::string("SELECT count(*), COALESCE(min(created_at_ms), 0) FROM payments_outbox"
                        " WHERE ") +
                target + "_state = 'pending' AND kafka_partition IN (" + List(parts.size(), 1) +
                ")",
            pqxx::prepare::make_dynamic_params(params));
        count = r[0][0].as<double>();
        int64_t oldest = r[0][1].as<int64_t>();
        age = oldest > 0 ? static_cast<double>(now_ms - oldest) / 1000.0 : 0;
      } catch (const std::exception& e) {
        return streams::connect::TranslateSqlException(e).WithContext("outbox backlog");
      }
    }
    backlog_->Add({{"target", target}}).Set(count);
    oldest_age_->Add({{"target", target}}).Set(age);
  }
  return Status::Ok();
}

}  // namespace payments_sink
