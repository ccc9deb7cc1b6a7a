#include "sink/outbox_relay.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "sink/payment_row.h"
#include "sink/payments_schema.h"
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

// "p.payment_id, p.idempotency_key, ...": kPaymentColumns of table alias p.
std::string PaymentColumnsOfP() {
  std::string out;
  std::string_view columns = kPaymentColumns;
  size_t start = 0;
  while (start < columns.size()) {
    size_t comma = columns.find(',', start);
    if (comma == std::string_view::npos) comma = columns.size();
    std::string_view col = columns.substr(start, comma - start);
    while (!col.empty() && col.front() == ' ') col.remove_prefix(1);
    if (!out.empty()) out += ", ";
    out += "p." + std::string(col);
    start = comma + 1;
  }
  return out;
}

// "(kafka_partition, kafka_offset, seq) IN (($<first>::INT4, ...), ...)" for
// the keys of `events`, whose values are appended to `params`.
template <typename Event>
std::string KeysIn(const std::vector<const Event*>& events, int first,
                   std::vector<std::string>& params) {
  std::string out = "(kafka_partition, kafka_offset, seq) IN (";
  int n = first;
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) out += ", ";
    out += "($" + std::to_string(n) + "::INT4, $" + std::to_string(n + 1) + "::INT8, $" +
           std::to_string(n + 2) + "::INT4)";
    n += 3;
    params.push_back(std::to_string(events[i]->partition));
    params.push_back(std::to_string(events[i]->offset));
    params.push_back(std::to_string(events[i]->seq));
  }
  return out + ")";
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
    STREAMS_ASSIGN_OR_RETURN(
        relay->webhook_,
        WebhookClient::Create(relay->options_.webhook_url, relay->options_.webhook_keys,
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
  relay->dead_ =
      &prometheus::BuildCounter()
           .Name("payments_sink_cdc_dead_events_total")
           .Help("CDC events given up (too many failures, or payments row gone), by target")
           .Register(registry);
  relay->webhook_disabled_ = &prometheus::BuildGauge()
                                  .Name("payments_sink_webhook_disabled")
                                  .Help("1 when the webhook endpoint answered 410 Gone")
                                  .Register(registry)
                                  .Add({});
  // Every series of an enabled target exists from the start, at 0, so that
  // rates and alerts see the first event (Prometheus's advice for counters).
  const auto start_at_zero = [&](const char* target, std::initializer_list<const char*> outcomes) {
    for (const char* outcome : outcomes) {
      relay->deliveries_->Add({{"target", target}, {"outcome", outcome}});
    }
    relay->dead_->Add({{"target", target}});
  };
  if (relay->producer_ != nullptr) start_at_zero("kafka", {"delivered", "retry", "dead"});
  if (relay->webhook_) start_at_zero("webhook", {"delivered", "retry", "dead", "gone"});
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

Result<std::vector<OutboxRelay::PendingEvent>> OutboxRelay::ReadPending(
    pqxx::connection& conn, std::string_view target, const std::vector<int32_t>& parts) {
  std::vector<PendingEvent> events;
  try {
    pqxx::nontransaction nt(conn);
    std::vector<std::string> params = Texts(parts);
    static const std::string kColumns = PaymentColumnsOfP();
    pqxx::result rows = nt.exec_params(
        "SELECT o.kafka_partition, o.kafka_offset, o.seq, o.customer_id, o.payment_id, o.op,"
        " o.refunded_before_minor, o.refunded_after_minor, o.created_at_ms, o.webhook_attempts,"
        " o.webhook_next_attempt_ms, p.payment_id IS NOT NULL, " +
            kColumns +
            " FROM payments_outbox AS o LEFT JOIN payments AS p ON p.payment_id = o.payment_id"
            " WHERE o." +
            std::string(target) + "_state = 'pending' AND o.kafka_partition IN (" +
            List(parts.size(), 1) + ") ORDER BY o.kafka_partition, o.kafka_offset, o.seq LIMIT " +
            std::to_string(options_.batch_max_events),
        pqxx::prepare::make_dynamic_params(params));
    events.reserve(rows.size());
    for (const auto& r : rows) {
      PendingEvent e;
      e.partition = r[0].as<int32_t>();
      e.offset = r[1].as<int64_t>();
      e.seq = r[2].as<int>();
      e.customer_id = r[3].as<std::string>();
      e.payment_id = r[4].as<std::string>();
      e.webhook_attempts = r[9].as<int>();
      e.webhook_next_attempt_ms = r[10].as<int64_t>();
      const ChangeSource source{options_.connector_name, options_.source_topic, e.partition,
                                e.offset};
      e.id = EventId(source, e.seq);
      if (r[11].as<bool>()) {
        const PaymentRow stored = RowFromFields(r, 12);
        std::optional<PaymentRow> before;
        if (r[5].as<std::string>() == "u") before = RowWithRefunded(stored, r[6].as<int64_t>());
        e.payload = ChangeEnvelope(before, RowWithRefunded(stored, r[7].as<int64_t>()), source,
                                   r[8].as<int64_t>());
      }
      events.push_back(std::move(e));
    }
  } catch (const std::exception& e) {
    return streams::connect::TranslateSqlException(e).WithContext("reading the outbox");
  }
  return events;
}

Status OutboxRelay::DeliverKafka(pqxx::connection& conn, const std::vector<int32_t>& parts,
                                 RelayRound& round) {
  STREAMS_ASSIGN_OR_RETURN(std::vector<PendingEvent> events, ReadPending(conn, "kafka", parts));
  if (events.empty()) return Status::Ok();
  constexpr int kNotProduced = -1;
  constexpr int kUnbuildable = -2;  // The payments row is gone: dead.
  std::vector<int> results(events.size(), kNotProduced);
  for (size_t i = 0; i < events.size(); ++i) {
    const PendingEvent& e = events[i];
    if (!e.payload) {
      results[i] = kUnbuildable;
      continue;
    }
    rd_kafka_headers_t* headers = rd_kafka_headers_new(1);
    rd_kafka_header_add(headers, "id", -1, e.id.data(), static_cast<ssize_t>(e.id.size()));
    void* value = const_cast<char*>(e.payload->data());
    rd_kafka_resp_err_t err =
        rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(options_.kafka_topic.c_str()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(e.payment_id.data(), e.payment_id.size()),
                          RD_KAFKA_V_VALUE(value, e.payload->size()), RD_KAFKA_V_HEADERS(headers),
                          RD_KAFKA_V_OPAQUE(&results[i]), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_headers_destroy(headers);
      results[i] = static_cast<int>(err);
      break;  // Keep the order: later events wait for the next round.
    }
  }
  rd_kafka_flush(producer_, 10000);
  std::vector<const PendingEvent*> delivered, dead;
  for (size_t i = 0; i < events.size(); ++i) {
    if (results[i] == kUnbuildable) {
      dead.push_back(&events[i]);
      continue;
    }
    if (results[i] != 0) break;  // Only an in-order prefix counts as delivered.
    delivered.push_back(&events[i]);
  }
  const int failed = static_cast<int>(events.size() - delivered.size() - dead.size());
  for (const auto& [done, state] :
       {std::make_pair(&delivered, "delivered"), std::make_pair(&dead, "dead")}) {
    if (done->empty()) continue;
    try {
      pqxx::nontransaction nt(conn);
      std::vector<std::string> params{std::to_string(NowMs())};
      const std::string keys = KeysIn(*done, 2, params);
      nt.exec_params("UPDATE payments_outbox SET kafka_state = '" + std::string(state) +
                         "', done_at_ms = CASE WHEN webhook_state <> 'pending' THEN $1::INT8"
                         " ELSE NULL END WHERE " +
                         keys,
                     pqxx::prepare::make_dynamic_params(params));
    } catch (const std::exception& e) {
      return streams::connect::TranslateSqlException(e).WithContext("marking Kafka deliveries");
    }
  }
  for (const PendingEvent* e : dead) {
    spdlog::error(
        "cdc relay: event {} dead for Kafka: payments row {} is gone, the envelope"
        " cannot be rebuilt",
        e->id, e->payment_id);
  }
  if (!dead.empty()) {
    deliveries_->Add({{"target", "kafka"}, {"outcome", "dead"}})
        .Increment(static_cast<double>(dead.size()));
    dead_->Add({{"target", "kafka"}}).Increment(static_cast<double>(dead.size()));
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
  try {
    pqxx::nontransaction nt(conn);
    pqxx::result disabled =
        nt.exec_params("SELECT reason FROM webhook_endpoints WHERE url = $1", options_.webhook_url);
    webhook_disabled_->Set(disabled.empty() ? 0 : 1);
    if (!disabled.empty()) return Status::Ok();
  } catch (const std::exception& e) {
    return streams::connect::TranslateSqlException(e).WithContext("reading the outbox");
  }
  STREAMS_ASSIGN_OR_RETURN(std::vector<PendingEvent> events, ReadPending(conn, "webhook", parts));
  // The key of an event in the UPDATEs below: $1, $2, $3.
  constexpr char kWhereKey[] = " WHERE kafka_partition = $1 AND kafka_offset = $2 AND seq = $3";
  std::set<std::string> blocked;  // Customers with an earlier event not done.
  for (const PendingEvent& e : events) {
    if (blocked.count(e.customer_id) > 0) continue;
    const int64_t now_ms = NowMs();
    if (e.webhook_next_attempt_ms > now_ms) {
      blocked.insert(e.customer_id);
      continue;
    }
    try {
      pqxx::nontransaction nt(conn);
      if (!e.payload) {
        const std::string error = "payments row " + e.payment_id + " is gone";
        nt.exec_params(
            "UPDATE payments_outbox SET webhook_state = 'dead', webhook_last_error ="
            " $4, done_at_ms = CASE WHEN kafka_state <> 'pending' THEN $5::INT8"
            " ELSE NULL END" +
                std::string(kWhereKey),
            e.partition, e.offset, e.seq, error, NowMs());
        deliveries_->Add({{"target", "webhook"}, {"outcome", "dead"}}).Increment();
        dead_->Add({{"target", "webhook"}}).Increment();
        spdlog::error(
            "cdc relay: event {} dead for the webhook: {}, the envelope cannot be"
            " rebuilt",
            e.id, error);
        continue;  // Dead is final: the customer's next events go on.
      }
      WebhookResponse response = webhook_->Send(e.id, now_ms / 1000, *e.payload);
      WebhookOutcome outcome = ClassifyWebhook(response);
      if (outcome == WebhookOutcome::kDelivered) {
        nt.exec_params(
            "UPDATE payments_outbox SET webhook_state = 'delivered', done_at_ms = CASE WHEN"
            " kafka_state <> 'pending' THEN $4::INT8 ELSE NULL END" +
                std::string(kWhereKey),
            e.partition, e.offset, e.seq, NowMs());
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
        spdlog::error(
            "cdc relay: webhook endpoint answered 410 Gone: disabled (delete its row"
            " in webhook_endpoints to enable it again)");
        return Status::Ok();
      }
      ++round.webhook_failed;
      const int attempts = e.webhook_attempts + 1;
      const std::string error = response.http_status == 0
                                    ? "no response: " + response.error
                                    : "HTTP " + std::to_string(response.http_status);
      if (attempts >= options_.webhook_max_attempts) {
        nt.exec_params(
            "UPDATE payments_outbox SET webhook_state = 'dead', webhook_attempts = $4,"
            " webhook_last_error = $5, done_at_ms = CASE WHEN kafka_state <> 'pending' THEN"
            " $6::INT8 ELSE NULL END" +
                std::string(kWhereKey),
            e.partition, e.offset, e.seq, attempts, error, NowMs());
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
          "UPDATE payments_outbox SET webhook_attempts = $4, webhook_next_attempt_ms = $5,"
          " webhook_last_error = $6" +
              std::string(kWhereKey),
          e.partition, e.offset, e.seq, attempts, NowMs() + delay.count(), error);
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
        "DELETE FROM payments_outbox WHERE (kafka_partition, kafka_offset, seq) IN (SELECT"
        " kafka_partition, kafka_offset, seq FROM payments_outbox WHERE kafka_state <> 'pending'"
        " AND webhook_state <> 'pending' AND done_at_ms < $1::INT8 LIMIT 1000)",
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
