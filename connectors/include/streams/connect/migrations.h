// Versioned schema migrations that are safe when several instances start at
// once, on PostgreSQL and CockroachDB (no advisory locks, which CockroachDB
// lacks).
//
// Each migration runs in its own transaction together with a compare-and-set
// on the migrations table: INSERT of its version ... ON CONFLICT DO NOTHING.
// The instance whose insert took effect (one row affected) runs the
// migration's statements in that same transaction; a concurrent instance's
// insert waits for it (PostgreSQL) or is retried with 40001 (CockroachDB) and
// then affects no row, so it skips the statements. A failed migration rolls
// back its version row too, so the next start tries it again.
//
// Thread safety: stateless functions; the connection belongs to the caller's
// thread.
#pragma once

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "streams/connect/sql_transaction.h"
#include "streams/result.h"
#include "streams/status.h"

namespace streams::connect {

struct Migration {
  // > 0, strictly increasing in a list.
  int version = 0;
  // Stored with the version; a different name for an applied version is an
  // error (two binaries disagree about the schema).
  std::string name;
  // SQL statements accepted by PostgreSQL and CockroachDB.
  std::vector<std::string> statements;
};

struct MigrationReport {
  std::vector<int> applied;         // Versions this call applied.
  std::vector<int> already_applied;  // Versions found applied.
  int newest_in_database = 0;        // Highest version recorded (may exceed the list's).
};

// Creates `table` (version INT PRIMARY KEY, name TEXT, applied_at_ms INT8)
// when missing and applies every migration of `migrations` not recorded there,
// in version order. Errors: InvalidArgument (bad table name, versions not
// increasing), FailedPrecondition (an applied version carries another name),
// SQL errors as TranslateSqlException.
Result<MigrationReport> ApplyMigrations(pqxx::connection& conn,
                                        const std::vector<Migration>& migrations,
                                        const std::string& table = "schema_migrations",
                                        const RetryPolicy& policy = {});

// True for a plain SQL identifier: [a-z_][a-z0-9_]{0,62}.
bool IsPlainSqlIdentifier(const std::string& name);

}  // namespace streams::connect
