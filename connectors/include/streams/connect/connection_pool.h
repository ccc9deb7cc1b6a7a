// ConnectionPool: a bounded set of libpq connections to one database, opened
// lazily and replaced when broken.
//
//   STREAMS_ASSIGN_OR_RETURN(auto lease, pool.Acquire(std::chrono::seconds(1)));
//   Status s = RunTransaction(lease.connection(), body);
//   if (s.code() == StatusCode::kUnavailable) lease.MarkBroken();
//
// Thread safety: thread-safe. A Lease and its connection belong to the thread
// that acquired it until the Lease is destroyed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "streams/result.h"
#include "streams/status.h"

namespace streams::connect {

class ConnectionPool {
 public:
  class Lease;

  // `uri` is a libpq connection string or URI (sslmode, sslrootcert... work as
  // in libpq). `size` >= 1 connections at most. Nothing is opened yet.
  ConnectionPool(std::string uri, int size);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Hands out an idle connection (opening one when fewer than `size` exist),
  // waiting up to `timeout` for one to be returned. Errors: TimedOut (all in
  // use), Unavailable / InvalidArgument from Connect (the password is never
  // in the message).
  Result<Lease> Acquire(std::chrono::milliseconds timeout);

  int size() const { return size_; }
  // Connections currently open (idle or leased).
  int open_connections() const;

 private:
  void Release(std::unique_ptr<pqxx::connection> conn, bool broken);

  const std::string uri_;
  const int size_;
  mutable std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;  // Idle + leased + being opened.
};

// Gives back its connection when destroyed; a connection marked broken (or
// found closed) is dropped instead and reopened on a later Acquire.
class ConnectionPool::Lease {
 public:
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&&) = delete;
  ~Lease();

  pqxx::connection& connection() { return *conn_; }
  // The connection failed (e.g. Unavailable): do not reuse it.
  void MarkBroken() { broken_ = true; }

 private:
  friend class ConnectionPool;
  Lease(ConnectionPool* pool, std::unique_ptr<pqxx::connection> conn)
      : pool_(pool), conn_(std::move(conn)) {}
  ConnectionPool* pool_;
  std::unique_ptr<pqxx::connection> conn_;
  bool broken_ = false;
};

}  // namespace streams::connect
