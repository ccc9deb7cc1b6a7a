#include "streams/connect/sink_offset_store.h"

#include <regex>

#include "streams/connect/sql_transaction.h"

namespace streams::connect {
namespace {

bool IsPlainIdentifier(const std::string& name) {
  static const std::regex kIdentifier("[a-z_][a-z0-9_]{0,62}");
  return std::regex_match(name, kIdentifier);
}

}  // namespace

Status SinkOffsetStore::EnsureSchema(pqxx::work& txn) const {
  if (!IsPlainIdentifier(table_)) {
    return Status::InvalidArgument("offset table name '" + table_ +
                                   "' is not a plain SQL identifier ([a-z_][a-z0-9_]*)");
  }
  try {
    txn.exec("CREATE TABLE IF NOT EXISTS " + table_ +
             " (sink_name TEXT NOT NULL, topic TEXT NOT NULL, kafka_partition INT NOT NULL,"
             " next_offset BIGINT NOT NULL,"
             " PRIMARY KEY (sink_name, topic, kafka_partition))");
  } catch (const std::exception& e) {
    return TranslateSqlException(e).WithContext("creating " + table_);
  }
  return Status::Ok();
}

Result<std::map<Partition, Offset>> SinkOffsetStore::Load(pqxx::work& txn,
                                                          const std::string& sink,
                                                          const std::string& topic) const {
  std::map<Partition, Offset> positions;
  try {
    const pqxx::result rows = txn.exec_params(
        "SELECT kafka_partition, next_offset FROM " + table_ +
            " WHERE sink_name = $1 AND topic = $2",
        sink, topic);
    for (const auto& row : rows) {
      positions.emplace(Partition(row[0].as<int32_t>()), Offset(row[1].as<int64_t>()));
    }
  } catch (const std::exception& e) {
    return TranslateSqlException(e).WithContext("loading offsets of sink " + sink);
  }
  return positions;
}

Status SinkOffsetStore::Advance(pqxx::work& txn, const std::string& sink,
                                const TopicPartition& tp, std::optional<Offset> expected,
                                Offset next) const {
  if (expected && next < *expected) {
    return Status::InvalidArgument("position of " + tp.ToString() + " would move back from " +
                                   std::to_string(expected->value()) + " to " +
                                   std::to_string(next.value()));
  }
  try {
    pqxx::result changed;
    if (expected) {
      changed = txn.exec_params("UPDATE " + table_ +
                                    " SET next_offset = $4 WHERE sink_name = $1 AND topic = $2"
                                    " AND kafka_partition = $3 AND next_offset = $5",
                                sink, tp.topic, tp.partition.value(), next.value(),
                                expected->value());
    } else {
      changed = txn.exec_params("INSERT INTO " + table_ +
                                    " (sink_name, topic, kafka_partition, next_offset)"
                                    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                                sink, tp.topic, tp.partition.value(), next.value());
    }
    if (changed.affected_rows() != 1) {
      return Status::Fenced("position of sink " + sink + " on " + tp.ToString() +
                                        " was moved by another instance");
    }
  } catch (const std::exception& e) {
    return TranslateSqlException(e).WithContext("storing offset of sink " + sink);
  }
  return Status::Ok();
}

}  // namespace streams::connect
