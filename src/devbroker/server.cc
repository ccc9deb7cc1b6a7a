#include "devbroker/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "devbroker/wire.h"

namespace devbroker {

namespace {

constexpr int kTickMs = 20;
constexpr size_t kMaxPendingOutput = 64 * 1024 * 1024;
constexpr size_t kMaxReadPerWakeup = 8 * 1024 * 1024;
constexpr int32_t kMinFrameSize = 10;  // api key, version, correlation, client id

}  // namespace

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Server::Server(BrokerOptions options, std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      logger_(std::move(logger)),
      groups_(GroupCoordinator::Options{options_.group_session_min_ms,
                                        options_.group_session_max_ms,
                                        options_.group_initial_rebalance_delay_ms},
              logger_.get()),
      txns_(TxnCoordinator::Options{options_.transaction_timeout_max_ms}, &logs_,
            &groups_, logger_.get()) {}

Server::~Server() {
  for (auto& [id, c] : conns_) ::close(c->fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status Server::Bind() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_str = std::to_string(options_.port);
  const char* host = options_.host.empty() ? nullptr : options_.host.c_str();
  int rc = ::getaddrinfo(host, port_str.c_str(), &hints, &res);
  if (rc != 0) {
    return Status::Error("cannot resolve listen address " + options_.host +
                         ": " + gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    listen_fd_ = fd;
    break;
  }
  ::freeaddrinfo(res);
  if (listen_fd_ < 0) {
    return Status::Error("cannot listen on " + options_.host + ":" + port_str +
                         ": " + last_error);
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  if (addr.ss_family == AF_INET) {
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  } else {
    port_ = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::Error("eventfd failed");

  advertised_host_ = options_.advertised_host;
  if (advertised_host_.empty()) {
    advertised_host_ = options_.host;
    if (advertised_host_.empty() || advertised_host_ == "0.0.0.0" ||
        advertised_host_ == "::") {
      advertised_host_ = "127.0.0.1";
    }
  }
  handler_ = std::make_unique<RequestHandler>(options_, advertised_host_, port_,
                                              &logs_, &groups_, &txns_, this,
                                              logger_.get());
  return Status::Ok();
}

void Server::RequestStop() {
  stop_.store(true);
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    (void)n;
  }
}

void Server::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(tasks_mu_);
    tasks_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  (void)n;
}

void Server::RunTasks() {
  std::deque<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(tasks_mu_);
    tasks.swap(tasks_);
  }
  for (auto& fn : tasks) fn();
}

void Server::Deliver(uint64_t conn_id, std::string frame) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  Connection& c = *it->second;
  c.out.append(frame);
  c.awaiting = false;
  resume_.insert(conn_id);
}

void Server::AcceptAll() {
  while (true) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        logger_->warn("accept failed: {}", std::strerror(errno));
      }
      return;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char host[NI_MAXHOST] = "?";
    char serv[NI_MAXSERV] = "?";
    ::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof(host),
                  serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
    auto c = std::make_unique<Connection>();
    c->id = next_conn_id_++;
    c->fd = fd;
    c->peer = std::string(host) + ":" + serv;
    logger_->debug("conn {}: accepted from {}", c->id, c->peer);
    conns_.emplace(c->id, std::move(c));
  }
}

void Server::ReadFrom(Connection& c) {
  char buf[65536];
  size_t total = 0;
  while (total < kMaxReadPerWakeup) {
    ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      total += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      logger_->debug("conn {}: closed by peer", c.id);
      c.dead = true;
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    logger_->debug("conn {}: recv error: {}", c.id, std::strerror(errno));
    c.dead = true;
    return;
  }
}

void Server::ProcessFrames(Connection& c) {
  ConnectionInfo info{c.id, c.peer};
  while (!c.dead && !c.awaiting && PendingOutput(c) < kMaxPendingOutput) {
    size_t avail = c.in.size() - c.in_off;
    if (avail < 4) break;
    int32_t size = LoadInt32(c.in.data() + c.in_off);
    if (size < kMinFrameSize ||
        static_cast<size_t>(size) > options_.max_request_bytes) {
      logger_->warn("conn {} ({}): invalid request size {}: closing", c.id,
                    c.peer, size);
      c.dead = true;
      break;
    }
    if (avail < 4 + static_cast<size_t>(size)) break;
    std::string_view frame(c.in.data() + c.in_off + 4,
                           static_cast<size_t>(size));
    c.awaiting = true;
    HandleResult r = handler_->Handle(info, frame, SteadyNowMs());
    c.in_off += 4 + static_cast<size_t>(size);
    switch (r.outcome) {
      case HandleOutcome::kResponded:
        c.out.append(r.frame);
        c.awaiting = false;
        break;
      case HandleOutcome::kNoResponse:
        c.awaiting = false;
        break;
      case HandleOutcome::kDeferred:
        break;  // Deliver() clears `awaiting` (possibly already did)
      case HandleOutcome::kClose:
        c.dead = true;
        break;
    }
  }
  if (c.in_off == c.in.size()) {
    c.in.clear();
    c.in_off = 0;
  } else if (c.in_off > (1 << 20)) {
    c.in.erase(0, c.in_off);
    c.in_off = 0;
  }
}

void Server::Flush(Connection& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                       MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    logger_->debug("conn {}: send error: {}", c.id, std::strerror(errno));
    c.dead = true;
    return;
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  } else if (c.out_off > (4 << 20)) {
    c.out.erase(0, c.out_off);
    c.out_off = 0;
  }
}

void Server::Run() {
  std::vector<pollfd> pfds;
  std::vector<uint64_t> ids;
  while (!stop_.load()) {
    pfds.clear();
    ids.clear();
    pfds.push_back(pollfd{wake_fd_, POLLIN, 0});
    pfds.push_back(pollfd{listen_fd_, POLLIN, 0});
    for (auto& [id, c] : conns_) {
      short events = 0;
      if (PendingOutput(*c) < kMaxPendingOutput) events |= POLLIN;
      if (PendingOutput(*c) > 0) events |= POLLOUT;
      pfds.push_back(pollfd{c->fd, events, 0});
      ids.push_back(id);
    }
    int timeout = kTickMs;
    int64_t next = handler_->NextDeadlineMs();
    if (next >= 0) {
      timeout = static_cast<int>(
          std::clamp<int64_t>(next - SteadyNowMs(), 0, kTickMs));
    }
    if (!resume_.empty()) timeout = 0;
    int rc = ::poll(pfds.data(), pfds.size(), timeout);
    if (rc < 0 && errno != EINTR) {
      logger_->error("poll failed: {}", std::strerror(errno));
      break;
    }
    if (rc > 0) {
      if (pfds[0].revents & POLLIN) {
        uint64_t v;
        while (::read(wake_fd_, &v, sizeof(v)) > 0) {
        }
        RunTasks();
      }
      if (pfds[1].revents & POLLIN) AcceptAll();
      for (size_t i = 0; i < ids.size(); ++i) {
        short rev = pfds[i + 2].revents;
        if (rev == 0) continue;
        auto it = conns_.find(ids[i]);
        if (it == conns_.end()) continue;
        Connection& c = *it->second;
        if (rev & (POLLIN | POLLHUP | POLLERR)) ReadFrom(c);
        ProcessFrames(c);
        if (rev & POLLOUT) Flush(c);
      }
    }
    handler_->Tick(SteadyNowMs());
    while (!resume_.empty()) {
      std::set<uint64_t> resume;
      resume.swap(resume_);
      for (uint64_t id : resume) {
        auto it = conns_.find(id);
        if (it != conns_.end()) ProcessFrames(*it->second);
      }
      // Frames processed above may complete deferred work of others.
      if (!resume_.empty()) handler_->Tick(SteadyNowMs());
    }
    for (auto it = conns_.begin(); it != conns_.end();) {
      Connection& c = *it->second;
      if (!c.dead && PendingOutput(c) > 0) Flush(c);
      if (c.dead) {
        logger_->debug("conn {}: closing", c.id);
        ::close(c.fd);
        handler_->OnConnectionClosed(c.id);
        resume_.erase(c.id);
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }
  RunTasks();
  for (auto& [id, c] : conns_) {
    ::close(c->fd);
    handler_->OnConnectionClosed(id);
  }
  conns_.clear();
}

}  // namespace devbroker
