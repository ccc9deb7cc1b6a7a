// SinkOffsetStore: Kafka consumer positions of a sink, kept in the target
// database and written in the same transaction as the sink's rows.
//
// This is what makes a sink exactly-once: after a crash the sink seeks to the
// stored positions, so each record's effect is committed together with the
// position after it, exactly once. Consumer-group offsets in Kafka are then only
// informational.
//
// The SQL is accepted by PostgreSQL and CockroachDB alike.
//
// Thread safety: stateless apart from its table name; safe to share, but each
// call runs on the caller's transaction, which belongs to one thread.
#pragma once

#include <map>
#include <optional>
#include <string>

#include <pqxx/pqxx>

#include "streams/kafka_types.h"
#include "streams/result.h"
#include "streams/status.h"

namespace streams::connect {

class SinkOffsetStore {
 public:
  // `table` must be a plain SQL identifier ([a-z_][a-z0-9_]*); checked by EnsureSchema.
  explicit SinkOffsetStore(std::string table = "kafka_sink_offsets") : table_(std::move(table)) {}

  const std::string& table() const { return table_; }

  // Creates the table when missing. Errors: InvalidArgument for a bad table
  // name; SQL errors as TranslateSqlException.
  Status EnsureSchema(pqxx::work& txn) const;

  // The stored next offsets of `sink` for `topic`, by partition (empty when none).
  Result<std::map<Partition, Offset>> Load(pqxx::work& txn, const std::string& sink,
                                           const std::string& topic) const;

  // Moves the position of `sink` on `tp` from `expected` (std::nullopt: no row
  // yet) to `next`, as a compare-and-set inside `txn`. Errors:
  // Fenced when the stored position is not `expected` (another
  // instance advanced it, or an earlier commit whose outcome was unknown did
  // succeed: the caller must roll back, reload and seek);
  // InvalidArgument when next < expected; SQL errors as TranslateSqlException.
  Status Advance(pqxx::work& txn, const std::string& sink, const TopicPartition& tp,
                 std::optional<Offset> expected, Offset next) const;

 private:
  std::string table_;
};

}  // namespace streams::connect
