#include "streams/connect/migrations.h"

#include <chrono>
#include <regex>
#include <thread>

namespace streams::connect {

bool IsPlainSqlIdentifier(const std::string& name) {
  static const std::regex kIdentifier("[a-z_][a-z0-9_]{0,62}");
  return std::regex_match(name, kIdentifier);
}

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// CREATE TABLE IF NOT EXISTS is not atomic in PostgreSQL: two sessions creating
// the same table at once can fail with 23505 (pg_type), 42P07 or 42710 (the
// row type). The table exists afterwards either way, so those are retried.
Status CreateMigrationsTable(pqxx::connection& conn, const std::string& table,
                             const RetryPolicy& policy) {
  Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    last = RunTransaction(
        conn,
        [&](pqxx::work& txn) {
          try {
            txn.exec("CREATE TABLE IF NOT EXISTS " + table +
                     " (version INT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INT8 NOT NULL)");
          } catch (const std::exception& e) {
            return TranslateSqlException(e);
          }
          return Status::Ok();
        },
        policy);
    if (last.ok()) return last;
    const std::string state = SqlStateOf(last);
    if (state != "23505" && state != "42P07" && state != "42710") return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
  }
  return last;
}

}  // namespace

Result<MigrationReport> ApplyMigrations(pqxx::connection& conn,
                                        const std::vector<Migration>& migrations,
                                        const std::string& table, const RetryPolicy& policy) {
  if (!IsPlainSqlIdentifier(table)) {
    return Status::InvalidArgument("migrations table name '" + table +
                                   "' is not a plain SQL identifier");
  }
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version <= 0 || (i > 0 && migrations[i].version <= migrations[i - 1].version)) {
      return Status::InvalidArgument("migration versions must be positive and increasing (at " +
                                     std::to_string(migrations[i].version) + ")");
    }
  }
  STREAMS_RETURN_IF_ERROR(
      CreateMigrationsTable(conn, table, policy).WithContext("creating " + table));

  MigrationReport report;
  for (const Migration& migration : migrations) {
    bool applied_here = false;
    Status status = RunTransaction(
        conn,
        [&](pqxx::work& txn) -> Status {
          applied_here = false;
          try {
            pqxx::result inserted = txn.exec_params(
                "INSERT INTO " + table +
                    " (version, name, applied_at_ms) VALUES ($1, $2, $3) ON CONFLICT (version) "
                    "DO NOTHING",
                migration.version, migration.name, NowMs());
            if (inserted.affected_rows() == 0) {
              pqxx::result row =
                  txn.exec_params("SELECT name FROM " + table + " WHERE version = $1",
                                  migration.version);
              if (!row.empty() && row[0][0].as<std::string>() != migration.name) {
                return Status::FailedPrecondition(
                    "schema version " + std::to_string(migration.version) + " is '" +
                    row[0][0].as<std::string>() + "' in the database but '" + migration.name +
                    "' in this binary");
              }
              return Status::Ok();
            }
            for (const std::string& sql : migration.statements) txn.exec(sql);
            applied_here = true;
          } catch (const std::exception& e) {
            return TranslateSqlException(e);
          }
          return Status::Ok();
        },
        policy);
    if (!status.ok()) {
      return status.WithContext("migration " + std::to_string(migration.version) + " (" +
                                migration.name + ")");
    }
    (applied_here ? report.applied : report.already_applied).push_back(migration.version);
  }
  try {
    pqxx::nontransaction nt(conn);
    pqxx::result newest = nt.exec("SELECT COALESCE(MAX(version), 0) FROM " + table);
    report.newest_in_database = newest[0][0].as<int>();
  } catch (const std::exception& e) {
    return TranslateSqlException(e).WithContext("reading " + table);
  }
  return report;
}

}  // namespace streams::connect
