// payments-sink's configuration, in paymentd's style: a Java .properties file
// (--config), PAYMENTS_SINK_* environment variables (PAYMENTS_SINK_SINK_TOPIC
// -> sink.topic; see runtime/include/streams/runtime/streams_config.h for the
// mapping) and --set key=value, in increasing precedence. Keys are the table
// kSinkConfigKeys plus librdkafka pass-through under kafka. / consumer. /
// producer.; an unknown key or a bad value fails naming the key and where it
// was set. Kafka Streams keys that mean nothing to the sink (state.dir,
// num.stream.threads, ...) are rejected too.
//
// Thread safety: the functions are thread-safe; SinkConfig is a plain value.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "paymentd/paymentd_config.h"
#include "streams/result.h"
#include "streams/runtime/streams_config.h"

namespace payments_sink {

enum class KeyType { kString, kInt, kBool, kEnum };

struct SinkConfigKey {
  std::string_view key;
  KeyType type;
  std::string_view default_value;  // "" with required: must be set.
  bool required;
  int64_t min;
  int64_t max;
  std::string_view description;
  bool secret;
};

inline constexpr std::string_view kEnvironmentPrefix = "PAYMENTS_SINK_";

// Every setting of payments-sink (also the table of src/sink/README.md).
inline constexpr SinkConfigKey kSinkConfigKeys[] = {
    {"bootstrap.servers", KeyType::kString, "", true, 0, 0,
     "Kafka bootstrap servers (host:port,...).", false},
    {"application.id", KeyType::kString, "payments-sink", false, 0, 0,
     "The consumer group; also names this sink's positions in sink_offsets.", false},
    {"auto.offset.reset", KeyType::kEnum, "earliest", false, 0, 0,
     "Where a partition without a stored position starts: earliest or latest.", false},
    {"sink.topic", KeyType::kString, "payments.confirmations", false, 0, 0,
     "Topic of the PaymentConfirmation records.", false},
    {"sink.dlq.topic", KeyType::kString, "payments.confirmations.dlq", false, 0, 0,
     "Dead-letter topic for records that can never be written.", false},
    {"sink.database.url", KeyType::kString, "", true, 0, 0,
     "libpq connection URI of CockroachDB or PostgreSQL (sslmode, sslrootcert... as in libpq).",
     true},
    {"sink.database.pool.size", KeyType::kInt, "4", false, 1, 64,
     "Database connections at most (the writer and the CDC relay each hold one while working).",
     false},
    {"sink.batch.max.records", KeyType::kInt, "500", false, 1, 5000,
     "Records written per database transaction at most.", false},
    {"sink.batch.max.wait.ms", KeyType::kInt, "100", false, 1, 60000,
     "Longest wait for a batch to fill before it is written.", false},
    {"sink.retry.initial.ms", KeyType::kInt, "100", false, 1, 600000,
     "First backoff after a failed batch or transaction (then doubled, with jitter).", false},
    {"sink.retry.max.ms", KeyType::kInt, "5000", false, 1, 3600000,
     "Largest backoff between attempts while the database is unavailable.", false},
    {"sink.retry.max.attempts", KeyType::kInt, "10", false, 1, 1000,
     "Attempts of one transaction on SQLSTATE 40001/40P01 before the batch is paused and replayed.",
     false},
    {"sink.circuit.open.after", KeyType::kInt, "3", false, 1, 1000,
     "Consecutive failed batches that open the circuit breaker (not ready, unhealthy).", false},
    {"sink.kafka.commit.offsets", KeyType::kBool, "true", false, 0, 0,
     "Also commit positions to Kafka after the database commit (for lag monitoring only).", false},
    {"cdc.kafka.topic", KeyType::kString, "payments.cdc", false, 0, 0,
     "Topic of the CDC events (Debezium-style envelope); empty disables.", false},
    {"cdc.webhook.url", KeyType::kString, "", false, 0, 0,
     "CRM webhook URL (Standard Webhooks); empty disables.", false},
    {"cdc.webhook.secret", KeyType::kString, "", false, 0, 0,
     "whsec_ followed by base64; several separated by spaces are all used to sign (rotation).",
     true},
    {"cdc.webhook.timeout.ms", KeyType::kInt, "5000", false, 1, 600000,
     "Timeout of one webhook request.", false},
    {"cdc.webhook.max.attempts", KeyType::kInt, "8", false, 1, 1000,
     "Failed deliveries after which an event is marked dead.", false},
    {"cdc.webhook.retry.initial.ms", KeyType::kInt, "500", false, 1, 3600000,
     "First webhook retry delay (then doubled, with jitter; Retry-After wins when longer).",
     false},
    {"cdc.webhook.retry.max.ms", KeyType::kInt, "60000", false, 1, 86400000,
     "Largest webhook retry delay.", false},
    {"cdc.relay.interval.ms", KeyType::kInt, "200", false, 1, 60000,
     "Pause of the CDC relay when there is nothing to deliver.", false},
    {"cdc.relay.batch.max.events", KeyType::kInt, "500", false, 1, 10000,
     "Outbox events read per relay round.", false},
    {"cdc.outbox.retention.ms", KeyType::kInt, "86400000", false, 0, INT64_MAX,
     "How long delivered (or dead) outbox rows are kept before they are pruned.", false},
    {"admin.listen", KeyType::kString, "127.0.0.1:8081", false, 0, 0,
     "host:port of /metrics, /healthz and /readyz; port 0 picks a free port.", false},
};

struct SinkConfig {
  streams::runtime::StreamsConfig raw;  // Every value with its origin.
  std::string bootstrap_servers;
  std::string application_id;
  bool start_from_earliest = true;
  std::string topic;
  std::string dlq_topic;
  std::string database_url;
  int database_pool_size = 4;
  int batch_max_records = 500;
  std::chrono::milliseconds batch_max_wait{100};
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{5000};
  int retry_max_attempts = 10;
  int circuit_open_after = 3;
  bool commit_offsets_to_kafka = true;
  std::string cdc_kafka_topic;
  std::string cdc_webhook_url;
  std::vector<std::string> cdc_webhook_keys;  // Decoded secrets, current first.
  std::chrono::milliseconds cdc_webhook_timeout{5000};
  int cdc_webhook_max_attempts = 8;
  std::chrono::milliseconds cdc_webhook_retry_initial{500};
  std::chrono::milliseconds cdc_webhook_retry_max{60000};
  std::chrono::milliseconds cdc_relay_interval{200};
  int cdc_relay_batch_max_events = 500;
  std::chrono::milliseconds cdc_outbox_retention{86400000};
  paymentd::ListenAddress admin_listen;
  // librdkafka properties (kafka.* overlaid with consumer.* / producer.*).
  std::map<std::string, std::string> consumer_properties;
  std::map<std::string, std::string> producer_properties;
};

// Loads and validates everything. Errors: InvalidArgument naming each bad key
// and its origin (unknown key, bad value, missing required key, a webhook URL
// without a valid secret), IoError when the properties file cannot be read.
streams::Result<SinkConfig> LoadSinkConfig(const paymentd::ConfigSources& sources);

// "key = value (origin)" per effective key, sorted; secrets (and any password
// in the database URL) masked. Safe to log.
std::string DescribeSinkConfig(const SinkConfig& config);

}  // namespace payments_sink
