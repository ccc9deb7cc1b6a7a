#include "devbroker/broker.h"

#include <future>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "devbroker/server.h"

namespace devbroker {

namespace {

std::shared_ptr<spdlog::logger> MakeLogger(const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>(
      "devbroker", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [devbroker] [%l] %v");
  logger->set_level(spdlog::level::from_str(level));
  return logger;
}

}  // namespace

Broker::Broker(BrokerOptions options)
    : options_(std::move(options)),
      server_(std::make_unique<Server>(options_, MakeLogger(options_.log_level))) {}

Broker::~Broker() { Stop(); }

Status Broker::Start() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (running_.load() || thread_.joinable()) {
    return Status::Error("broker already started");
  }
  Status s = server_->Bind();
  if (!s.ok()) return s;
  port_.store(server_->port());
  running_.store(true);
  thread_ = std::thread([this] { server_->Run(); });
  return Status::Ok();
}

void Broker::Stop() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (!running_.load()) return;
  server_->RequestStop();
  thread_.join();
  running_.store(false);
}

std::string Broker::bootstrap_servers() const {
  return server_->advertised_host() + ":" + std::to_string(port_.load());
}

void Broker::RunOnLoop(const std::function<void()>& fn) {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (!running_.load()) {
    fn();
    return;
  }
  std::promise<void> done;
  std::future<void> f = done.get_future();
  server_->Post([&fn, &done] {
    fn();
    done.set_value();
  });
  f.wait();
}

Status Broker::CreateTopic(const std::string& name, int32_t partitions) {
  Err err = Err::kNone;
  RunOnLoop([&] { err = server_->logs().CreateTopic(name, partitions); });
  if (err != Err::kNone) return Status::Error(ErrName(err));
  return Status::Ok();
}

int64_t Broker::HighWatermark(const std::string& topic, int32_t partition) {
  int64_t v = -1;
  RunOnLoop([&] {
    PartitionLog* log = server_->logs().GetPartition(topic, partition);
    if (log != nullptr) v = log->high_watermark();
  });
  return v;
}

int64_t Broker::LastStableOffset(const std::string& topic, int32_t partition) {
  int64_t v = -1;
  RunOnLoop([&] {
    PartitionLog* log = server_->logs().GetPartition(topic, partition);
    if (log != nullptr) v = log->last_stable_offset();
  });
  return v;
}

}  // namespace devbroker
