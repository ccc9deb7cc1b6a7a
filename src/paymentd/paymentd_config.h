// paymentd's configuration: the runtime's StreamsConfig (Kafka Streams keys,
// kafka./consumer./producer./admin. pass-through) extended with the payments.*
// keys of the decision topology and admin.listen, loaded from a properties
// file, PAYMENTD_* environment variables and --set overrides (in increasing
// precedence).
//
// admin.listen is an application key of the runtime's builder (it wins over the
// "admin." pass-through prefix of the Kafka admin client); the environment
// variable PAYMENTD_ADMIN_LISTEN sets it too. Every key is validated by the
// runtime's builder.
//
// paymentd's defaults (below every source): application.id=paymentd,
// auto.offset.reset=earliest, dead.letter.topic=<payments.requests.topic>.dlq
// (payments.requests.dlq), admin.listen=127.0.0.1:8080, and the defaults of
// payments::kPaymentsConfigKeys (topics payments.requests and
// payments.confirmations). An unknown key fails with a message naming it.
//
// Thread safety: the functions are thread-safe (no shared state);
// PaymentdConfig is a plain value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "payments/payments_config.h"
#include "streams/result.h"
#include "streams/runtime/streams_config.h"

namespace paymentd {

inline constexpr std::string_view kAdminListenKey = "admin.listen";
inline constexpr std::string_view kDefaultAdminListen = "127.0.0.1:8080";
inline constexpr std::string_view kDefaultApplicationId = "paymentd";
inline constexpr std::string_view kEnvironmentPrefix = "PAYMENTD_";

// host:port of the admin HTTP server. Port 0 picks a free port.
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
  // "host:port" ("[::1]:port" for an IPv6 host).
  std::string ToString() const;
  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

// Parses "host:port" or "[v6-host]:port" with a port in 0..65535.
// Errors: InvalidArgument naming the value.
streams::Result<ListenAddress> ParseListenAddress(std::string_view text);

// Where the configuration comes from.
struct ConfigSources {
  // A Java .properties file; absent: defaults, environment and overrides only.
  std::optional<std::string> properties_file;
  // "key=value" assignments (--set), highest precedence, in order.
  std::vector<std::string> overrides;
  // Variables NAME -> value to read with kEnvironmentPrefix. Absent: the
  // process environment. (Tests pass an explicit map.)
  std::optional<std::map<std::string, std::string>> environment;
};

struct PaymentdConfig {
  streams::runtime::StreamsConfig streams;
  payments::PaymentsConfig payments;
  ListenAddress admin_listen;
  // Where admin.listen came from: "default", "file <path>:<line>", "env
  // PAYMENTD_ADMIN_LISTEN" or "--set".
  std::string admin_listen_origin;
};

// Defines the payments.* keys (from payments::kPaymentsConfigKeys, as strings
// validated by PaymentsConfig::FromProperties) on `builder`.
void DefinePaymentdKeys(streams::runtime::StreamsConfig::Builder& builder);

// Loads, validates and returns the whole configuration. Errors:
// InvalidArgument listing every problem with its key and origin (unknown key,
// bad value, missing bootstrap.servers, ...), IoError when the file cannot be
// read (the path named).
streams::Result<PaymentdConfig> LoadPaymentdConfig(const ConfigSources& sources);

// True when the value of `key` must not be logged: the key contains
// "password", "secret", "key", "token", "jaas" or "credential" (case
// insensitive), except known-safe keys (a *.location path, *.type,
// *.algorithm, payments.* keys, admin.listen).
bool IsSensitiveKey(std::string_view key);

// One "key = value (origin)" line per effective key, sorted, with the value
// of every sensitive key (IsSensitiveKey or defined as secret) shown as "***".
std::string DescribeConfigMasked(const streams::runtime::StreamsConfig& config);
// The same, plus the admin.listen line.
std::string DescribeConfigMasked(const PaymentdConfig& config);

}  // namespace paymentd
