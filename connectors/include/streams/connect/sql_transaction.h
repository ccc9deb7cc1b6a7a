// SQL transactions with CockroachDB-style retries, for exactly-once sinks.
//
// CockroachDB runs SERIALIZABLE transactions and asks clients to retry them
// (SQLSTATE 40001, "restart transaction"); PostgreSQL does the same for
// serialization failures and deadlocks (40001, 40P01). RunTransaction runs a
// body in a fresh transaction and retries it on those errors with capped
// exponential backoff, so a sink's writes and its stored offsets commit together
// or not at all.
//
// libpqxx exceptions never escape: they are translated to Status here.
//
// Thread safety: a pqxx::connection is not thread-safe; use one per thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <pqxx/pqxx>

#include "streams/result.h"
#include "streams/status.h"

namespace streams::connect {

struct RetryPolicy {
  // Attempts in all, the first one included (>= 1).
  int max_attempts = 10;
  std::chrono::milliseconds initial_backoff{10};
  std::chrono::milliseconds max_backoff{1000};
};

// Sleeps between retries; injectable so tests need not wait.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual void Sleep(std::chrono::milliseconds duration) = 0;
};

// Sleeps for real. Thread-safe.
Sleeper* RealSleeper();

// True for SQLSTATEs that mean "run the whole transaction again":
// 40001 (serialization failure / CockroachDB restart), 40P01 (deadlock).
bool IsRetryableSqlState(std::string_view sqlstate);

// Translates a libpqxx (or std) exception to a Status: broken connection ->
// Unavailable; 40001/40P01 -> Aborted; 23xxx -> FailedPrecondition (constraint);
// 42xxx -> InvalidArgument (syntax, undefined object); others -> Internal. The
// message carries the SQLSTATE and the server's text.
Status TranslateSqlException(const std::exception& e);

// Opens a connection. Errors: Unavailable (server unreachable), InvalidArgument
// (bad connection string). The password never appears in the error message.
Result<std::unique_ptr<pqxx::connection>> Connect(const std::string& uri);

// Runs `body` inside a transaction on `conn` and commits it. If the body or the
// commit fails with a retryable SQLSTATE, the transaction is rolled back and the
// body runs again (it must therefore be idempotent up to the database state it
// reads), up to policy.max_attempts. A non-OK Status returned by the body rolls
// back and is returned as is, without retry.
// Errors: Aborted when attempts are exhausted; others as TranslateSqlException.
// `conn` and `sleeper` are borrowed.
Status RunTransaction(pqxx::connection& conn, const std::function<Status(pqxx::work&)>& body,
                      const RetryPolicy& policy = {}, Sleeper* sleeper = RealSleeper());

}  // namespace streams::connect
