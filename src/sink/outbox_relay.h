// OutboxRelay: delivers the CDC events of payments_outbox, at least once with
// stable ids, in order per customer, for the source partitions this instance
// owns (a customer's confirmations all live in one partition).
//
// An outbox row holds only the event's coordinates (partition and offset of
// the confirmation in the sink topic, seq) and what changed (op, refunded
// amount before and after); the relay rebuilds the envelope at delivery from
// the payments row (whose other columns never change, RowWithRefunded), the
// sink topic and the connector name: the same bytes the sink would have built
// when it wrote the row, and the id EventId of the coordinates. An event whose
// payments row is gone (deleted by hand) cannot be rebuilt: it is marked dead
// for every pending target, logged and counted, and later events go on.
//
//   Kafka (cdc.kafka.topic): one record per event, key payment_id, value the
//     Debezium-style envelope, header "id" = event id; idempotent producer,
//     produced in outbox order, marked delivered once acknowledged.
//   Webhook (cdc.webhook.url): Standard Webhooks POST per event (webhook.h).
//     2xx: delivered. 410: the endpoint is disabled (stored in
//     webhook_endpoints; nothing more is sent to it until that row is
//     deleted). Anything else, a timeout or no connection: retried after an
//     exponential backoff with jitter, or after Retry-After when that is
//     longer; after cdc.webhook.max.attempts failures the event is marked dead
//     and counted. A customer's later events wait while an earlier one is
//     being retried.
// Rows finished for every enabled target are deleted after the retention.
//
// Thread safety: Start/Stop from one thread; RunOnce must not run
// concurrently with the relay thread (tests call it without Start).
#pragma once

#include <librdkafka/rdkafka.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sink/webhook.h"
#include "streams/connect/backoff.h"
#include "streams/connect/connection_pool.h"
#include "streams/result.h"
#include "streams/status.h"

namespace payments_sink {

struct OutboxRelayOptions {
  std::string kafka_topic;  // Empty: the Kafka target is off.
  std::map<std::string, std::string> producer_properties;
  std::string webhook_url;  // Empty: the webhook target is off.
  std::vector<std::string> webhook_keys;
  std::chrono::milliseconds webhook_timeout{5000};
  int webhook_max_attempts = 8;
  streams::connect::BackoffPolicy webhook_backoff{std::chrono::milliseconds(500),
                                                  std::chrono::milliseconds(60000), 0.5};
  std::chrono::milliseconds interval{200};
  int batch_max_events = 500;
  std::chrono::milliseconds retention{86400000};
  // The sink topic (sink.topic) and the connector name (application.id): with
  // a row's coordinates they make the event id and the envelope's source.
  std::string source_topic = "payments.confirmations";
  std::string connector_name = "payments-sink";
  // The source partitions (of the sink topic) owned by this instance.
  std::function<std::vector<int32_t>()> owned_partitions;
};

struct RelayRound {
  int kafka_delivered = 0;
  int webhook_delivered = 0;
  int webhook_failed = 0;
  int pruned = 0;
};

class OutboxRelay {
 public:
  // `pool` is borrowed. Metrics (registered in `registry`):
  // payments_sink_outbox_backlog{target}, payments_sink_outbox_oldest_age_seconds{target},
  // payments_sink_cdc_deliveries_total{target,outcome},
  // payments_sink_cdc_dead_events_total{target}, payments_sink_webhook_disabled. Errors:
  // InvalidArgument (producer properties, libcurl).
  static streams::Result<std::unique_ptr<OutboxRelay>> Create(
      streams::connect::ConnectionPool* pool, OutboxRelayOptions options,
      prometheus::Registry& registry);
  ~OutboxRelay();  // Stops.
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // One round: deliver what is due for each target, prune, update gauges.
  // Errors: database errors (Unavailable...), Kafka delivery timeouts.
  streams::Result<RelayRound> RunOnce();

  // Runs rounds on a thread until Stop() (which finishes the round in hand).
  void Start();
  void Stop();

 private:
  // A pending outbox event with its envelope rebuilt.
  struct PendingEvent {
    int32_t partition = 0;
    int64_t offset = 0;
    int seq = 0;
    std::string id;  // EventId of the coordinates.
    std::string customer_id;
    std::string payment_id;
    std::optional<std::string> payload;  // Empty: the payments row is gone.
    int webhook_attempts = 0;
    int64_t webhook_next_attempt_ms = 0;
  };

  OutboxRelay() = default;
  // Up to batch_max_events events pending for `target` ("kafka" or
  // "webhook") in `parts`, in outbox order. Errors: database errors.
  streams::Result<std::vector<PendingEvent>> ReadPending(pqxx::connection& conn,
                                                         std::string_view target,
                                                         const std::vector<int32_t>& parts);
  streams::Status DeliverKafka(pqxx::connection& conn, const std::vector<int32_t>& parts,
                               RelayRound& round);
  streams::Status DeliverWebhook(pqxx::connection& conn, const std::vector<int32_t>& parts,
                                 RelayRound& round);
  streams::Status Prune(pqxx::connection& conn, RelayRound& round);
  streams::Status UpdateGauges(pqxx::connection& conn, const std::vector<int32_t>& parts);

  streams::connect::ConnectionPool* pool_ = nullptr;
  OutboxRelayOptions options_;
  rd_kafka_t* producer_ = nullptr;
  std::unique_ptr<WebhookClient> webhook_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::chrono::steady_clock::time_point next_gauges_{};

  prometheus::Family<prometheus::Gauge>* backlog_ = nullptr;
  prometheus::Family<prometheus::Gauge>* oldest_age_ = nullptr;
  prometheus::Family<prometheus::Counter>* deliveries_ = nullptr;
  prometheus::Family<prometheus::Counter>* dead_ = nullptr;
  prometheus::Gauge* webhook_disabled_ = nullptr;

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
};

}  // namespace payments_sink
