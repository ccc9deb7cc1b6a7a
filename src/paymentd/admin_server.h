// AdminServer: paymentd's HTTP admin endpoints, served by civetweb.
//
//   GET /metrics  200, Prometheus text format (0.0.4) of every metric family
//                 of the registry (engine metrics from the runtime and the
//                 business metrics of DecisionMetrics), then the process_*
//                 metrics of ProcessCollector (process_metrics.h)
//   GET /healthz  200 "ok" while healthy() is true, else 503 with the reason
//   GET /readyz   200 "ready" once ready() is true, else 503 "not ready"
//
// Thread safety: thread-safe. civetweb calls the probes and Collect() from its
// worker threads, so the probes must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "paymentd/paymentd_config.h"
#include "streams/result.h"
#include "streams/status.h"

class CivetServer;
namespace prometheus {
class Registry;
}  // namespace prometheus

namespace paymentd {

struct AdminProbes {
  // An empty string when healthy, otherwise why not (e.g. the runtime error).
  std::function<std::string()> unhealthy_reason;
  // True when the daemon is ready to serve (KafkaStreams::IsReady()).
  std::function<bool()> ready;
};

class AdminServer {
 public:
  // Starts listening on `listen` (port 0: a free port, see bound()). The
  // registry is shared; the probes are copied. Errors: InvalidArgument (no
  // probe), Unavailable (the address cannot be bound; the message names it).
  static streams::Result<std::unique_ptr<AdminServer>> Start(
      const ListenAddress& listen, std::shared_ptr<prometheus::Registry> registry,
      AdminProbes probes);

  // Stops as Stop().
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // The address actually listened on (the chosen port when 0 was asked for).
  const ListenAddress& bound() const { return bound_; }

  // Stops accepting and waits for running requests to finish. Idempotent.
  void Stop();

 private:
  class Handler;
  AdminServer() = default;

  ListenAddress bound_;
  std::shared_ptr<prometheus::Registry> registry_;
  AdminProbes probes_;
  std::unique_ptr<Handler> metrics_handler_;
  std::unique_ptr<Handler> healthz_handler_;
  std::unique_ptr<Handler> readyz_handler_;
  std::unique_ptr<CivetServer> server_;
};

}  // namespace paymentd
