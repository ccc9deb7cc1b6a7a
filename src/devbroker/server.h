// Internal: the single-threaded poll() event loop that owns sockets and all
// broker state. Used through devbroker::Broker.

#ifndef DEVBROKER_SERVER_H_
#define DEVBROKER_SERVER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "devbroker/config.h"
#include "devbroker/group_coordinator.h"
#include "devbroker/log_manager.h"
#include "devbroker/request_handler.h"
#include "devbroker/status.h"
#include "devbroker/txn_coordinator.h"

namespace spdlog {
class logger;
}

namespace devbroker {

// Thread-safety: Post() and RequestStop() are thread-safe; everything else
// must be called on the loop thread (the thread running Run()), or before
// Run() starts / after it returns.
//
// Requests of one connection are handled strictly in order, one at a time
// (like Kafka): while a request is deferred (long-poll fetch, JoinGroup,
// SyncGroup) later requests of that connection wait, while other
// connections are served normally.
class Server : public ResponseSink {
 public:
  Server(BrokerOptions options, std::shared_ptr<spdlog::logger> logger);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Creates the listening socket. On success port() is the bound port.
  Status Bind();
  uint16_t port() const { return port_; }
  const std::string& advertised_host() const { return advertised_host_; }

  // Serves until RequestStop(); then closes every connection.
  void Run();
  void RequestStop();
  // Queues fn to run on the loop thread.
  void Post(std::function<void()> fn);

  LogManager& logs() { return logs_; }

  void Deliver(uint64_t conn_id, std::string frame) override;

 private:
  struct Connection {
    uint64_t id = 0;
    int fd = -1;
    std::string peer;
    std::string in;
    size_t in_off = 0;
    std::string out;
    size_t out_off = 0;
    bool awaiting = false;  // a request is in flight
    bool dead = false;
  };

  void AcceptAll();
  void ReadFrom(Connection& c);
  void ProcessFrames(Connection& c);
  void Flush(Connection& c);
  void RunTasks();
  size_t PendingOutput(const Connection& c) const {
    return c.out.size() - c.out_off;
  }

  BrokerOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  LogManager logs_;
  GroupCoordinator groups_;
  TxnCoordinator txns_;
  std::unique_ptr<RequestHandler> handler_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  uint16_t port_ = 0;
  std::string advertised_host_;
  uint64_t next_conn_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::set<uint64_t> resume_;
  std::atomic<bool> stop_{false};
  std::mutex tasks_mu_;
  std::deque<std::function<void()>> tasks_;
};

// Monotonic milliseconds.
int64_t SteadyNowMs();

}  // namespace devbroker

#endif  // DEVBROKER_SERVER_H_
