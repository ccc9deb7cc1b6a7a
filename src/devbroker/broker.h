// devbroker::Broker — a single-node, in-memory Kafka-protocol broker with
// real transaction semantics, for development and tests only.

#ifndef DEVBROKER_BROKER_H_
#define DEVBROKER_BROKER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "devbroker/config.h"
#include "devbroker/status.h"

namespace devbroker {

class Server;

// Thread-safety: all public methods are thread-safe. Requests are served by
// one internal event-loop thread that owns all broker state; the accessors
// below hop onto that thread and wait for the answer.
class Broker {
 public:
  explicit Broker(BrokerOptions options);
  ~Broker();  // Calls Stop().
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Binds, listens and starts the event-loop thread. Fails if already
  // started or the address cannot be bound. After success, port() is the
  // real port (also when options.port was 0).
  Status Start();

  // Closes every connection and the listener and joins the loop thread.
  // Idempotent; all in-memory data is discarded with the Broker object.
  void Stop();

  bool running() const { return running_.load(); }
  // The bound port (0 before Start()).
  uint16_t port() const { return port_.load(); }
  // The address clients should use, "host:port" (advertised host).
  std::string bootstrap_servers() const;

  // Creates a topic (like CreateTopics). Errors name the Kafka error.
  Status CreateTopic(const std::string& name, int32_t partitions);
  // High watermark / last stable offset of a partition, -1 if unknown.
  int64_t HighWatermark(const std::string& topic, int32_t partition);
  int64_t LastStableOffset(const std::string& topic, int32_t partition);

 private:
  // Runs fn on the loop thread (or inline when not running) and waits.
  void RunOnLoop(const std::function<void()>& fn);

  BrokerOptions options_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::mutex lifecycle_mu_;
  std::atomic<bool> running_{false};
  std::atomic<uint16_t> port_{0};
};

}  // namespace devbroker

#endif  // DEVBROKER_BROKER_H_
