// Broker configuration.

#ifndef DEVBROKER_CONFIG_H_
#define DEVBROKER_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace devbroker {

struct BrokerOptions {
  // Address to listen on; port 0 picks a free port.
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  // Host advertised in Metadata/FindCoordinator; empty = `host` (or
  // 127.0.0.1 when listening on 0.0.0.0).
  std::string advertised_host;
  // Partition count for auto-created topics (and CreateTopics with -1).
  int32_t default_partitions = 4;
  // Create unknown topics on Metadata (when the client allows it) and Produce.
  bool auto_create_topics = true;
  // Upper bound for a producer's transaction.timeout.ms.
  int32_t transaction_timeout_max_ms = 900000;
  // Allowed consumer session.timeout.ms range.
  int32_t group_session_min_ms = 1000;
  int32_t group_session_max_ms = 1800000;
  // Delay before the first rebalance of an empty group completes (lets
  // members that start together land in one generation).
  int32_t group_initial_rebalance_delay_ms = 0;
  // Largest accepted request frame.
  size_t max_request_bytes = 100 * 1024 * 1024;
  // spdlog level name: trace, debug, info, warn, error, critical, off.
  std::string log_level = "info";
};

}  // namespace devbroker

#endif  // DEVBROKER_CONFIG_H_
