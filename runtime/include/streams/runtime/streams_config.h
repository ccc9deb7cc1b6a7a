// StreamsConfig: the configuration of a KafkaStreams instance, in Kafka Streams
// vocabulary, plus librdkafka pass-through properties and application keys.
//
// Sources, from lowest to highest precedence (whatever the order of the calls):
//   1. Java .properties files        (StreamsConfig::Builder::LoadPropertiesFile)
//   2. environment variables          (StreamsConfig::Builder::LoadEnvironment)
//   3. explicit overrides, `--set k=v` (StreamsConfig::Builder::Set / SetAssignment)
// Within one layer the last assignment of a key wins.
//
// Environment mapping (prefix "PAYMENTD_" for example): a variable
// PAYMENTD_COMMIT_INTERVAL_MS names the key "commit.interval.ms": the prefix is
// removed, the rest is lower-cased, every '_' becomes '.', and "__" (two
// underscores) becomes one literal '_' (e.g. PAYMENTD_KAFKA_SASL_OAUTHBEARER__CLIENT__ID
// -> kafka.sasl.oauthbearer_client_id). Variables not starting with the prefix
// are ignored; variables with the prefix must name a known key.
//
// Built-in keys (see runtime/README.md for the full table):
//   application.id (required)        bootstrap.servers (required)
//   processing.guarantee             exactly_once_v2 (default) | at_least_once
//   commit.interval.ms               100 under exactly_once_v2, 30000 otherwise
//   commit.max.records               optional cap of input records per cycle
//   commit.adaptive                  true (commit once caught up and the cycle is as
//                                    old as the last commit took)
//   num.stream.threads               1
//   num.standby.replicas             0 (warm copies of each task on other instances)
//   state.dir                        /tmp/kafka-streams
//   instance.id                      the host name (part of transactional.id)
//   dead.letter.topic                "" (= "<source topic>.dlq")
//   auto.offset.reset                earliest | latest
//   replication.factor               1 (for created changelog topics)
//   statestore.cache.max.bytes       64 MiB (StateOptions::block_cache_bytes)
//   state.write.buffer.bytes         64 MiB (StateOptions::write_buffer_bytes)
//   transaction.timeout.ms           10000
//   poll.ms                          100 (max blocking time of one consumer poll)
//   restore.batch.records            10000 (changelog records applied per batch)
//   max.poll.records                 500 (records handled per poll round)
// Pass-through prefixes (any librdkafka property, e.g. TLS/SASL):
//   kafka.<p>    every client (consumer, producer, restore consumer, admin)
//   consumer.<p> the group consumer and the restore consumer
//   producer.<p> the transactional / idempotent producer
//   admin.<p>    the admin client that creates changelog topics
// A more specific prefix wins over `kafka.`. Properties the runtime must own
// for correctness (group.id, enable.auto.commit, isolation.level,
// transactional.id, enable.idempotence, ...) are rejected with an error.
//
// Thread safety: StreamsConfig is an immutable value after Build(); its const
// methods may be called from any thread. Builder is not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "streams/result.h"
#include "streams/state/state_resources.h"
#include "streams/status.h"
#include "streams/task_id.h"

namespace streams::runtime {

enum class ProcessingGuarantee {
  kExactlyOnceV2,  // "exactly_once_v2": transactional producer, read_committed.
  kAtLeastOnce,    // "at_least_once": idempotent producer, synchronous offset commits.
};

enum class OffsetReset { kEarliest, kLatest };

// What happens to a record whose processing fails for good (the error is
// InvalidArgument or Corruption: a corrupt stored value, a record too large for
// the producer). Other errors (broker, transaction, I/O) abort and retry the cycle.
enum class ProcessingExceptionHandler {
  // "dead_letter": the cycle is aborted and replayed with that record sent to
  // the dead-letter topic (headers name the error) instead of being processed,
  // so none of its partial outputs or state survive; processing goes on.
  kDeadLetter,
  // "fail": the stream thread fails with the error (the instance goes to kError).
  kFail,
};

// The kind of librdkafka client a pass-through property is meant for.
enum class ClientKind { kConsumer, kRestoreConsumer, kProducer, kAdmin };

enum class ConfigType { kString, kInt, kBool, kEnum };

// The definition of one key: its type, default and constraints.
// Thread safety: a plain value.
struct ConfigKeyDef {
  std::string name;
  ConfigType type = ConfigType::kString;
  // Absent and `required`: the key must be set. Absent and not required: the
  // key has no value unless set (optional).
  std::optional<std::string> default_value;
  bool required = false;
  // kInt: inclusive bounds.
  int64_t min = INT64_MIN;
  int64_t max = INT64_MAX;
  // kEnum: the accepted values.
  std::vector<std::string> allowed;
  // Values are secrets: never printed (Describe shows "***").
  bool secret = false;
  std::string doc;
};

class StreamsConfig {
 public:
  class Builder;

  // --- Built-in keys, typed. ---
  const std::string& application_id() const { return application_id_; }
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  ProcessingGuarantee processing_guarantee() const { return guarantee_; }
  bool exactly_once() const { return guarantee_ == ProcessingGuarantee::kExactlyOnceV2; }
  std::chrono::milliseconds commit_interval() const { return commit_interval_; }
  // Absent: no cap.
  std::optional<int64_t> commit_max_records() const { return commit_max_records_; }
  // commit.adaptive: commit as soon as the input is caught up and the cycle is
  // as old as the previous commit took (commit_interval() stays the bound).
  bool adaptive_commit() const { return adaptive_commit_; }
  int num_stream_threads() const { return num_stream_threads_; }
  // Standby copies of each task kept by other instances (0: none).
  int num_standby_replicas() const { return num_standby_replicas_; }
  const std::string& state_dir() const { return state_dir_; }
  const std::string& instance_id() const { return instance_id_; }
  // Each stream thread's consumer joins as a static member (group.instance.id).
  bool static_membership() const { return static_membership_; }
  // rebalance.protocol=cooperative (cooperative-sticky) rather than eager (range).
  bool cooperative_rebalancing() const { return cooperative_rebalancing_; }
  // Empty: "<source topic>.dlq".
  const std::string& dead_letter_topic() const { return dead_letter_topic_; }
  OffsetReset auto_offset_reset() const { return auto_offset_reset_; }
  int replication_factor() const { return replication_factor_; }
  std::chrono::milliseconds transaction_timeout() const { return transaction_timeout_; }
  std::chrono::milliseconds poll_timeout() const { return poll_timeout_; }
  int64_t restore_batch_records() const { return restore_batch_records_; }
  int64_t max_poll_records() const { return max_poll_records_; }
  ProcessingExceptionHandler processing_exception_handler() const {
    return processing_exception_handler_;
  }
  // Timeout of one committed-offset or watermark lookup at assignment.
  std::chrono::milliseconds offsets_lookup_timeout() const { return offsets_lookup_timeout_; }
  const state::StateOptions& state_options() const { return state_options_; }

  // "<state.dir>/<application.id>": the directory locked by an instance.
  std::string ApplicationStateDir() const;
  // "<state.dir>/<application.id>/<task id>": the directory of a task's state.
  std::string TaskStateDir(const TaskId& task) const;

  // librdkafka properties for a client of `kind`: `kafka.*` overlaid with the
  // kind's own prefix (consumer.* for both consumers, producer.*, admin.*),
  // prefixes removed. bootstrap.servers is always included. The runtime adds
  // its own mandatory properties on top.
  std::map<std::string, std::string> KafkaProperties(ClientKind kind) const;

  // --- Any key (built-in or application-defined), by name. ---
  // The effective value as text; std::nullopt when unset and without default.
  // Pass-through keys ("kafka.x") are found too.
  std::optional<std::string> GetRaw(std::string_view key) const;
  // Typed getters for keys defined with the matching type. Errors: NotFound
  // (unknown key or no value), InvalidArgument (key defined with another type).
  Result<std::string> GetString(std::string_view key) const;
  Result<int64_t> GetInt(std::string_view key) const;
  Result<bool> GetBool(std::string_view key) const;

  // Where the effective value of `key` came from: "default", "file <path>:<line>",
  // "env <VAR>", "--set". std::nullopt when unset.
  std::optional<std::string> Origin(std::string_view key) const;

  // One "key = value (origin)" line per set key, sorted; secret keys and
  // pass-through keys that look secret (password, secret, key, token, jaas)
  // are shown as "***". Safe to log.
  std::string Describe() const;

 private:
  friend class Builder;
  StreamsConfig() = default;

  std::map<std::string, ConfigKeyDef, std::less<>> defs_;
  // Effective values (after defaults) and their origins.
  std::map<std::string, std::string, std::less<>> values_;
  std::map<std::string, std::string, std::less<>> origins_;

  std::string application_id_;
  std::string bootstrap_servers_;
  ProcessingGuarantee guarantee_ = ProcessingGuarantee::kExactlyOnceV2;
  std::chrono::milliseconds commit_interval_{100};
  std::optional<int64_t> commit_max_records_;
  int num_stream_threads_ = 1;
  std::string state_dir_;
  std::string instance_id_;
  bool static_membership_ = true;
  int num_standby_replicas_ = 0;
  bool adaptive_commit_ = true;
  bool cooperative_rebalancing_ = false;
  std::string dead_letter_topic_;
  OffsetReset auto_offset_reset_ = OffsetReset::kEarliest;
  int replication_factor_ = 1;
  std::chrono::milliseconds transaction_timeout_{10000};
  std::chrono::milliseconds poll_timeout_{100};
  int64_t restore_batch_records_ = 10000;
  int64_t max_poll_records_ = 500;
  ProcessingExceptionHandler processing_exception_handler_ =
      ProcessingExceptionHandler::kDeadLetter;
  std::chrono::milliseconds offsets_lookup_timeout_{5000};
  state::StateOptions state_options_;
};

// Collects definitions and values, then validates everything in Build().
//
//   StreamsConfig::Builder b;
//   b.DefineInt("payments.max.amount.minor", 100000000, 1, INT64_MAX, "cap");
//   STREAMS_RETURN_IF_ERROR(b.LoadPropertiesFile("/etc/paymentd.properties"));
//   b.LoadEnvironment("PAYMENTD_");
//   STREAMS_RETURN_IF_ERROR(b.SetAssignment("commit.interval.ms=50"));  // --set
//   STREAMS_ASSIGN_OR_RETURN(StreamsConfig config, b.Build());
//
// Thread safety: not thread-safe.
class StreamsConfig::Builder {
 public:
  // A builder that knows the built-in keys.
  Builder();

  // --- Application keys. A name must be [a-z0-9._-]+, not a built-in key and
  // not shadow a librdkafka property under a pass-through prefix (an
  // application key such as "admin.listen" wins over the "admin." prefix and is
  // not passed to librdkafka); a bad or duplicate definition makes Build() fail
  // naming the key. ---
  Builder& Define(ConfigKeyDef def);
  Builder& DefineString(std::string name, std::optional<std::string> default_value, std::string doc,
                        bool secret = false);
  Builder& DefineInt(std::string name, std::optional<int64_t> default_value, int64_t min,
                     int64_t max, std::string doc);
  Builder& DefineBool(std::string name, std::optional<bool> default_value, std::string doc);
  Builder& DefineEnum(std::string name, std::optional<std::string> default_value,
                      std::vector<std::string> allowed, std::string doc);
  // Marks an application key as required (must be set by some source).
  Builder& Require(std::string name);
  // Accepts any key under `prefix` (e.g. "payments.db.") as an untyped string.
  Builder& DefinePrefix(std::string prefix, std::string doc);

  // --- Sources. ---
  // Reads a Java .properties file: "key=value" or "key: value" lines, '#' or
  // '!' comments, blank lines; whitespace around keys and values is trimmed; a
  // line ending in '\' continues on the next. Errors: IoError (cannot read, the
  // path named), InvalidArgument "<path>:<line>: ..." for a line without '=' or
  // ':' or with an empty key. Unknown keys are reported by Build().
  Status LoadPropertiesFile(const std::string& path);
  // The same, from text; `origin` names it in messages (e.g. a file name).
  Status LoadPropertiesText(std::string_view text, std::string_view origin);

  // Reads variables starting with `prefix` from the process environment (see
  // the mapping at the top of this file).
  void LoadEnvironment(std::string_view prefix);
  // The same, from an explicit NAME -> value map (for tests).
  void LoadEnvironment(std::string_view prefix, const std::map<std::string, std::string>& env);

  // Highest precedence: sets `key` to `value`.
  Builder& Set(std::string key, std::string value);
  // Parses "key=value" (the argument of --set). Errors: InvalidArgument when
  // there is no '=' or the key is empty.
  Status SetAssignment(std::string_view assignment);

  // Validates every value and returns the configuration. Errors:
  // InvalidArgument whose message lists every problem, each naming its key and
  // origin: unknown key, missing required key, bad integer, out of range, bad
  // boolean, bad enum value (listing the accepted ones), runtime-owned
  // pass-through property, bad definition.
  Result<StreamsConfig> Build() const;

 private:
  struct Value {
    std::string value;
    std::string origin;
  };
  std::map<std::string, ConfigKeyDef, std::less<>> defs_;
  std::vector<std::string> prefixes_;
  std::vector<std::string> definition_errors_;
  std::map<std::string, Value, std::less<>> file_layer_;
  std::map<std::string, Value, std::less<>> env_layer_;
  std::map<std::string, Value, std::less<>> set_layer_;
};

// "exactly_once_v2" / "at_least_once".
std::string_view ProcessingGuaranteeName(ProcessingGuarantee guarantee);

}  // namespace streams::runtime
