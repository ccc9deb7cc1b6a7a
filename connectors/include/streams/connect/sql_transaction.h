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
  // Each sleep is the capped exponential delay scaled by a uniformly random
  // factor in [1 - jitter, 1] (0: no jitter; clamped to [0, 1]), so that
  // conflicting clients do not retry in lockstep (CockroachDB's guidance).
  double jitter = 0.5;
  // Called before each retry with the SQLSTATE that caused it (e.g. "40001")
  // and the number of the attempt that failed; may be empty. For metrics.
  std::function<void(std::string_view sqlstate, int failed_attempt)> on_retry;
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

// Translates a libpqxx (or std) exception to a Status: broken connection or
// 08xxx -> Unavailable; 40001/40P01 -> Aborted; 23xxx (constraint) and 22xxx
// (data exception, e.g. numeric overflow) -> FailedPrecondition: the rows
// themselves can never be written; 42xxx -> InvalidArgument (syntax,
// undefined object); others -> Internal. The message starts with
// "SQLSTATE <code>: " when the server sent one, then the server's text.
Status TranslateSqlException(const std::exception& e);

// The SQLSTATE carried by a Status from TranslateSqlException ("40001"), or ""
// when it has none (then a broken connection is reported as "08006").
std::string SqlStateOf(const Status& status);

// Opens a connection. Errors: Unavailable (server unreachable), InvalidArgument
// (bad connection string). The password never appears in the error message.
Result<std::unique_ptr<pqxx::connection>> Connect(const std::string& uri);

// Runs `body` inside a transaction on `conn` and commits it. Retries sleep as
// described by RetryPolicy (capped exponential backoff with jitter). If the body or the
// commit fails with a retryable SQLSTATE, the transaction is rolled back and the
// body runs again (it must therefore be idempotent up to the database state it
// reads), up to policy.max_attempts. A non-OK Status returned by the body rolls
// back and is returned as is, without retry, except an Aborted status carrying
// a retryable SQLSTATE (the body translated a 40001 itself), which is retried.
// Errors: Aborted when attempts are exhausted; others as TranslateSqlException.
// `conn` and `sleeper` are borrowed.
Status RunTransaction(pqxx::connection& conn, const std::function<Status(pqxx::work&)>& body,
                      const RetryPolicy& policy = {}, Sleeper* sleeper = RealSleeper());

}  // namespace streams::connect
