#include "paymentd/admin_server.h"

#include <CivetServer.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <exception>
#include <iterator>
#include <string>
#include <vector>

#include "paymentd/process_metrics.h"

namespace paymentd {

namespace {

void Respond(mg_connection* conn, int status, const char* reason, const std::string& content_type,
             const std::string& body) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            status, reason, content_type.c_str(), body.size());
  mg_write(conn, body.data(), body.size());
}

}  // namespace

// One endpoint; `serve` writes the whole response.
class AdminServer::Handler final : public CivetHandler {
 public:
  explicit Handler(std::function<void(mg_connection*)> serve) : serve_(std::move(serve)) {}
  bool handleGet(CivetServer*, mg_connection* conn) override {
    try {
      serve_(conn);
    } catch (const std::exception& e) {
      // Never let an exception cross into civetweb's C code.
      Respond(conn, 500, "Internal Server Error", "text/plain", std::string("error: ") + e.what());
    }
    return true;
  }

 private:
  std::function<void(mg_connection*)> serve_;
};

streams::Result<std::unique_ptr<AdminServer>> AdminServer::Start(
    const ListenAddress& listen, std::shared_ptr<prometheus::Registry> registry,
    AdminProbes probes) {
  if (!probes.unhealthy_reason || !probes.ready || registry == nullptr) {
    return streams::Status::InvalidArgument("the admin server needs a registry and both probes");
  }
  auto admin = std::unique_ptr<AdminServer>(new AdminServer());
  admin->registry_ = std::move(registry);
  admin->probes_ = std::move(probes);
  AdminServer* self = admin.get();

  admin->metrics_handler_ = std::make_unique<Handler>([self](mg_connection* conn) {
    std::vector<prometheus::MetricFamily> families = self->registry_->Collect();
    std::vector<prometheus::MetricFamily> process = ProcessCollector().Collect();
    families.insert(families.end(), std::make_move_iterator(process.begin()),
                    std::make_move_iterator(process.end()));
    prometheus::TextSerializer serializer;
    Respond(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
            serializer.Serialize(families));
  });
  admin->healthz_handler_ = std::make_unique<Handler>([self](mg_connection* conn) {
    std::string reason = self->probes_.unhealthy_reason();
    if (reason.empty()) {
      Respond(conn, 200, "OK", "text/plain", "ok\n");
    } else {
      Respond(conn, 503, "Service Unavailable", "text/plain", "unhealthy: " + reason + "\n");
    }
  });
  admin->readyz_handler_ = std::make_unique<Handler>([self](mg_connection* conn) {
    if (self->probes_.ready()) {
      Respond(conn, 200, "OK", "text/plain", "ready\n");
    } else {
      Respond(conn, 503, "Service Unavailable", "text/plain", "not ready\n");
    }
  });

  // civetweb takes "[v6]:port" and "v4:port"; names are resolved by us first
  // only for "localhost", the common case.
  std::string host = listen.host == "localhost" ? "127.0.0.1" : listen.host;
  ListenAddress spec{host, listen.port};
  std::vector<std::string> options = {
      "listening_ports",    spec.ToString(), "num_threads",       "4",
      "request_timeout_ms", "10000",         "enable_keep_alive", "no"};
  try {
    admin->server_ = std::make_unique<CivetServer>(options);
  } catch (const std::exception& e) {
    return streams::Status::Unavailable("cannot listen on " + listen.ToString() + ": " + e.what());
  }
  if (admin->server_->getContext() == nullptr) {
    return streams::Status::Unavailable("cannot listen on " + listen.ToString());
  }
  admin->server_->addHandler("/metrics", admin->metrics_handler_.get());
  admin->server_->addHandler("/healthz", admin->healthz_handler_.get());
  admin->server_->addHandler("/readyz", admin->readyz_handler_.get());

  std::vector<int> ports = admin->server_->getListeningPorts();
  if (ports.empty() || ports.front() <= 0) {
    return streams::Status::Unavailable("civetweb reports no listening port for " +
                                        listen.ToString());
  }
  admin->bound_ = ListenAddress{listen.host, static_cast<uint16_t>(ports.front())};
  return admin;
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Stop() {
  if (server_) {
    server_->close();
    server_.reset();
  }
}

}  // namespace paymentd
