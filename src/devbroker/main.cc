// devbroker: single-node in-memory Kafka-protocol broker for development and
// tests. Prints "devbroker listening on HOST:PORT" once ready.

#include <signal.h>

#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "devbroker/broker.h"

namespace {

bool SplitHostPort(const std::string& s, std::string* host, uint16_t* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  try {
    int p = std::stoi(s.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"devbroker: single-node in-memory Kafka broker (dev/test only)"};
  devbroker::BrokerOptions options;
  std::string listen = "127.0.0.1:9092";
  app.add_option("--listen", listen, "host:port to listen on (port 0 = any)")
      ->capture_default_str();
  app.add_option("--advertised-host", options.advertised_host,
                 "host advertised to clients (default: listen host)");
  app.add_option("--default-partitions", options.default_partitions,
                 "partitions of auto-created topics")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app.add_option("--auto-create", options.auto_create_topics,
                 "auto-create topics on Metadata/Produce (true/false)")
      ->capture_default_str();
  app.add_option("--transaction-timeout-max-ms",
                 options.transaction_timeout_max_ms,
                 "largest transaction.timeout.ms accepted")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--group-session-min,--group-session-min-ms",
                 options.group_session_min_ms,
                 "smallest consumer session.timeout.ms accepted")
      ->capture_default_str();
  app.add_option("--group-session-max,--group-session-max-ms",
                 options.group_session_max_ms,
                 "largest consumer session.timeout.ms accepted")
      ->capture_default_str();
  app.add_option("--group-initial-rebalance-delay-ms",
                 options.group_initial_rebalance_delay_ms,
                 "delay before the first rebalance of an empty group completes")
      ->capture_default_str();
  app.add_option("--log-level", options.log_level,
                 "trace, debug, info, warn, error, off")
      ->capture_default_str()
      ->check(CLI::IsMember(
          {"trace", "debug", "info", "warn", "error", "critical", "off"}));
  CLI11_PARSE(app, argc, argv);

  if (!SplitHostPort(listen, &options.host, &options.port)) {
    std::cerr << "invalid --listen value '" << listen << "', want host:port\n";
    return 2;
  }
  if (options.group_session_min_ms > options.group_session_max_ms) {
    std::cerr << "--group-session-min must not exceed --group-session-max\n";
    return 2;
  }

  // Block termination signals before starting threads; wait for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  devbroker::Broker broker(options);
  devbroker::Status s = broker.Start();
  if (!s.ok()) {
    std::cerr << "devbroker: " << s.message() << "\n";
    return 1;
  }
  std::cout << "devbroker listening on " << broker.bootstrap_servers()
            << std::endl;  // flushes

  int sig = 0;
  sigwait(&signals, &sig);
  broker.Stop();
  return 0;
}
