#include "sink/payments_sink_task.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_set>

#include "sink/payment_row.h"
#include "sink/payments_schema.h"
#include "streams/connect/migrations.h"

namespace payments_sink {

using streams::ConsumedRecord;
using streams::Offset;
using streams::Result;
using streams::Status;
using streams::StatusCode;
using streams::TopicPartition;
using streams::connect::PositionUpdate;

namespace {

// 20 parameters per payments row: 1000 rows stay far below libpq's 65535.
constexpr size_t kMaxRowsPerStatement = 1000;
// Parameters per outbox row besides the three shared by every row.
constexpr size_t kOutboxParamsPerRow = 8;
// Outbox inserts skip a key that exists. An event is written only by the
// transaction that inserts its record's row (c) or applies its refund (u), and
// keys are unique within a batch (one c and at most one u per record), so an
// existing key means a transaction that fails its position compare-and-set
// later (a zombie's): it must end Fenced, not with a constraint error that
// would dead-letter its records.
constexpr std::string_view kOutboxConflict =
    " ON CONFLICT (kafka_partition, kafka_offset, seq) DO NOTHING";
// SQL texts kept by PaymentsSinkTask::Sql.
constexpr size_t kMaxCachedSql = 16;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "($1, $2, ...), (...)" for `rows` rows of `columns` parameters numbered from
// `first`, each cast with casts[c] when not empty; `constants` (e.g. "$1")
// are appended to every row after its parameters.
std::string Placeholders(size_t rows, const std::vector<std::string_view>& casts, int first = 1,
                         std::string_view constants = "") {
  std::string out;
  out.reserve(rows * casts.size() * 8);
  int n = first;
  for (size_t r = 0; r < rows; ++r) {
    out += r == 0 ? "(" : ", (";
    for (size_t c = 0; c < casts.size(); ++c) {
      if (c > 0) out += ", ";
      out += "$" + std::to_string(n++);
      if (!casts[c].empty()) out += "::" + std::string(casts[c]);
    }
    if (!constants.empty()) out += ", " + std::string(constants);
    out += ")";
  }
  return out;
}

struct Candidate {
  PaymentRow row;
  int32_t partition;  // Where the confirmation was read (sink topic).
  int64_t offset;
};

}  // namespace

std::string PaymentsSinkTask::BuildSql(SqlKind kind, size_t rows) {
  switch (kind) {
    case SqlKind::kInsertPayments:
    case SqlKind::kInsertPaymentsAndEvents: {
      static const std::vector<std::string_view> kCasts(kPaymentColumnCount, "");
      std::string insert = "INSERT INTO payments (" + std::string(kPaymentColumns) + ") VALUES " +
                           Placeholders(rows, kCasts) +
                           " ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id";
      if (kind == SqlKind::kInsertPayments) return insert;
      // The c event of each inserted row, written by the same statement: its
      // coordinates are the row's confirmation_partition and
      // confirmation_offset, so it costs no parameters of its own. The three
      // after the rows' are created_at_ms, kafka_state and webhook_state. The
      // result is every inserted payment_id (whatever the outbox insert did)
      // and the number of events written.
      const std::string first = std::to_string(rows * kPaymentColumnCount + 1);
      const std::string second = std::to_string(rows * kPaymentColumnCount + 2);
      const std::string third = std::to_string(rows * kPaymentColumnCount + 3);
      return "WITH inserted AS (" + insert +
             ", customer_id, confirmation_partition, confirmation_offset), events AS (INSERT INTO"
             " payments_outbox (kafka_partition, kafka_offset, seq, customer_id, payment_id, op,"
             " refunded_before_minor, refunded_after_minor, created_at_ms, kafka_state,"
             " webhook_state) SELECT confirmation_partition, confirmation_offset, 0, customer_id,"
             " payment_id, 'c', 0, 0, $" +
             first + "::INT8, $" + second + "::TEXT, $" + third + "::TEXT FROM inserted" +
             std::string(kOutboxConflict) +
             " RETURNING 1) SELECT payment_id, (SELECT count(*) FROM events) FROM inserted";
    }
    case SqlKind::kRefundPayments:
      // The LATERAL point lookup keeps the plan an index lookup per key even
      // before the table has statistics. Only the columns the outbox needs
      // come back.
      return "UPDATE payments AS p SET refunded_amount_minor = p.refunded_amount_minor + "
             "d.amount, status = CASE WHEN p.refunded_amount_minor + d.amount >= p.amount_minor "
             "THEN 'REFUNDED' ELSE 'PARTIALLY_REFUNDED' END FROM (VALUES " +
             Placeholders(rows, {"TEXT", "TEXT", "INT8"}) +
             ") AS d (customer_id, idempotency_key, amount), LATERAL (SELECT q.payment_id"
             " FROM payments AS q WHERE q.customer_id = d.customer_id AND"
             " q.idempotency_key = d.idempotency_key AND q.kind = 'PAYMENT' AND"
             " q.decision = 'APPROVED' LIMIT 1) AS x WHERE p.payment_id = x.payment_id"
             " RETURNING p.payment_id, p.customer_id, p.idempotency_key,"
             " p.refunded_amount_minor";
    case SqlKind::kBalances:
      return "INSERT INTO merchant_balances (merchant_id, currency, balance_minor) VALUES " +
             Placeholders(rows, {"", "", "INT8"}) +
             " ON CONFLICT (merchant_id, currency) DO UPDATE SET balance_minor = "
             "merchant_balances.balance_minor + excluded.balance_minor";
    case SqlKind::kInsertUpdateEvents:
      // $1..$3 (created_at_ms, kafka_state, webhook_state) are shared by
      // every row.
      return "INSERT INTO payments_outbox (kafka_partition, kafka_offset, seq, customer_id,"
             " payment_id, op, refunded_before_minor, refunded_after_minor, created_at_ms,"
             " kafka_state, webhook_state) VALUES " +
             Placeholders(rows, std::vector<std::string_view>(kOutboxParamsPerRow, ""), 4,
                          "$1::INT8, $2, $3") +
             std::string(kOutboxConflict);
  }
  return "";
}

const std::string& PaymentsSinkTask::Sql(SqlKind kind, size_t rows) {
  auto it = sql_.find({kind, rows});
  if (it != sql_.end()) return it->second;
  // Batches mostly repeat a few sizes; the bound keeps odd sizes from piling up.
  if (sql_.size() >= kMaxCachedSql) sql_.clear();
  return sql_.emplace(std::make_pair(kind, rows), BuildSql(kind, rows)).first->second;
}

template <typename... Params>
pqxx::result PaymentsSinkTask::Exec(pqxx::work& txn, SqlKind kind, size_t rows,
                                    Params&&... params) {
  const std::string& sql = Sql(kind, rows);
  if (options_.full_batch_rows == 0 ||
      rows != std::min(options_.full_batch_rows, kMaxRowsPerStatement)) {
    return txn.exec_params(sql, std::forward<Params>(params)...);
  }
  // The name stands for one text (kind and rows make it), so registering it
  // again on a connection that has it is a no-op; a new connection (after a
  // broken one) prepares it on first use.
  const std::string name =
      "payments_sink_" + std::to_string(static_cast<int>(kind)) + "_" + std::to_string(rows);
  txn.conn().prepare(name, sql);
  return txn.exec_prepared(name, std::forward<Params>(params)...);
}

namespace {

// A u event to write to the outbox (seq 1 at its refund's coordinates): the
// refunded payment and its refunded amount before and after the refund.
struct UpdateEvent {
  int32_t partition;
  int64_t offset;
  std::string customer_id;
  std::string payment_id;
  int64_t refunded_before;
  int64_t refunded_after;
};

}  // namespace

PaymentsSinkTask::PaymentsSinkTask(streams::connect::ConnectionPool* pool,
                                   PaymentsSinkTaskOptions options, prometheus::Registry& registry,
                                   streams::connect::SinkMetrics* metrics)
    : pool_(pool),
      options_(std::move(options)),
      metrics_(metrics),
      offsets_(std::string(kOffsetsTable)),
      rows_upserted_(prometheus::BuildCounter()
                         .Name("payments_sink_rows_upserted_total")
                         .Help("Rows inserted or updated, by table")
                         .Register(registry)),
      replays_skipped_(prometheus::BuildCounter()
                           .Name("payments_sink_replays_skipped_total")
                           .Help("Replay confirmations skipped (they change nothing)")
                           .Register(registry)
                           .Add({})),
      duplicate_decisions_(prometheus::BuildCounter()
                               .Name("payments_sink_duplicate_decisions_total")
                               .Help("Non-replay confirmations of a payment_id that already had "
                                     "a row (key reuse, repeated invalid request): row kept")
                               .Register(registry)
                               .Add({})),
      refunds_without_payment_(prometheus::BuildCounter()
                                   .Name("payments_sink_refunds_without_payment_total")
                                   .Help("Approved refunds whose payment has no row")
                                   .Register(registry)
                                   .Add({})) {
  if (!options_.retry.on_retry && metrics_ != nullptr) {
    auto* m = metrics_;
    options_.retry.on_retry = [m](std::string_view state, int) { m->CountDatabaseRetry(state); };
  }
}

Status PaymentsSinkTask::Migrate() {
  STREAMS_ASSIGN_OR_RETURN(auto lease, pool_->Acquire(options_.acquire_timeout));
  auto report = streams::connect::ApplyMigrations(lease.connection(), SinkMigrations(),
                                                  std::string(kMigrationsTable), options_.retry);
  if (!report.ok()) {
    if (report.status().code() == StatusCode::kUnavailable) lease.MarkBroken();
    return report.status();
  }
  return Status::Ok();
}

Result<std::map<TopicPartition, Offset>> PaymentsSinkTask::LoadPositions(
    const std::vector<TopicPartition>& partitions) {
  STREAMS_ASSIGN_OR_RETURN(auto lease, pool_->Acquire(options_.acquire_timeout));
  std::map<TopicPartition, Offset> out;
  std::map<std::string, std::vector<streams::Partition>> by_topic;
  for (const auto& tp : partitions) by_topic[tp.topic].push_back(tp.partition);
  try {
    pqxx::work txn(lease.connection());
    for (const auto& [topic, wanted] : by_topic) {
      auto stored = offsets_.Load(txn, options_.group_id, topic);
      if (!stored.ok()) {
        if (stored.status().code() == StatusCode::kUnavailable) lease.MarkBroken();
        return stored.status();
      }
      for (const auto& p : wanted) {
        auto it = stored->find(p);
        if (it != stored->end()) out.emplace(TopicPartition{topic, p}, it->second);
      }
    }
    txn.commit();
  } catch (const std::exception& e) {
    Status s = streams::connect::TranslateSqlException(e);
    if (s.code() == StatusCode::kUnavailable) lease.MarkBroken();
    return s;
  }
  return out;
}

Status PaymentsSinkTask::Validate(const ConsumedRecord& record) {
  return DecodeConfirmation(record).status();
}

Status PaymentsSinkTask::Put(const std::vector<const ConsumedRecord*>& records,
                             const std::vector<PositionUpdate>& positions) {
  std::vector<Candidate> candidates;
  candidates.reserve(records.size());
  std::unordered_set<std::string> seen;
  int64_t replays = 0;
  int64_t duplicates_in_batch = 0;
  for (const ConsumedRecord* record : records) {
    auto c = DecodeConfirmation(*record);
    if (!c.ok()) return Status::FailedPrecondition(c.status().message());
    if (c->replay()) {
      ++replays;
      continue;
    }
    if (!seen.insert(c->payment_id()).second) {
      ++duplicates_in_batch;
      continue;
    }
    candidates.push_back(Candidate{RowFromConfirmation(*c, *record), record->partition.value(),
                                   record->offset.value()});
  }
  const bool outbox = options_.cdc_kafka || options_.cdc_webhook;

  // The payments rows as parameters: the same in every attempt.
  std::vector<std::string> row_params;
  row_params.reserve(candidates.size() * kPaymentColumnCount);
  for (const Candidate& c : candidates) {
    for (auto& p : RowParams(c.row)) row_params.push_back(std::move(p));
  }

  STREAMS_ASSIGN_OR_RETURN(auto lease, pool_->Acquire(options_.acquire_timeout));
  // Outcomes of the attempt that committed.
  int64_t inserted_rows = 0, refunded_rows = 0, balance_rows = 0, outbox_rows = 0;
  int64_t duplicates = 0, missing_payments = 0;

  Status status = streams::connect::RunTransaction(
      lease.connection(),
      [&](pqxx::work& txn) -> Status {
        inserted_rows = refunded_rows = balance_rows = outbox_rows = 0;
        duplicates = duplicates_in_batch;
        missing_payments = 0;
        const int64_t now_ms = NowMs();

        // 1. New payments rows; an existing payment_id keeps its row. With
        // CDC on, the same statement writes the c event of each new row.
        const std::string kafka_state = options_.cdc_kafka ? "pending" : "off";
        const std::string webhook_state = options_.cdc_webhook ? "pending" : "off";
        std::unordered_set<std::string> inserted;
        for (size_t begin = 0; begin < candidates.size(); begin += kMaxRowsPerStatement) {
          const size_t end = std::min(candidates.size(), begin + kMaxRowsPerStatement);
          auto rows = pqxx::prepare::make_dynamic_params(
              row_params.begin() + static_cast<std::ptrdiff_t>(begin * kPaymentColumnCount),
              row_params.begin() + static_cast<std::ptrdiff_t>(end * kPaymentColumnCount));
          pqxx::result res = outbox ? Exec(txn, SqlKind::kInsertPaymentsAndEvents, end - begin,
                                           rows, now_ms, kafka_state, webhook_state)
                                    : Exec(txn, SqlKind::kInsertPayments, end - begin, rows);
          for (const auto& row : res) inserted.insert(row[0].as<std::string>());
          if (outbox && !res.empty()) outbox_rows += res[0][1].as<int64_t>();
        }

        std::map<std::pair<std::string, std::string>, int64_t> deltas;
        struct RefundGroup {
          int64_t total = 0;
          std::vector<size_t> refunds;  // Indexes into candidates, in order.
        };
        std::map<std::pair<std::string, std::string>, RefundGroup> refunds;
        std::vector<UpdateEvent> updates;
        for (size_t i = 0; i < candidates.size(); ++i) {
          const Candidate& c = candidates[i];
          const PaymentRow& row = c.row;
          if (inserted.count(row.payment_id) == 0) {
            ++duplicates;
            continue;
          }
          ++inserted_rows;
          if (row.decision == "APPROVED") {
            if (row.kind == "PAYMENT") {
              deltas[{row.merchant_id, row.currency}] += row.amount_minor;
            } else if (row.kind == "REFUND") {
              deltas[{row.merchant_id, row.currency}] -= row.amount_minor;
              RefundGroup& g = refunds[{row.customer_id, row.refund_of}];
              g.total += row.amount_minor;
              g.refunds.push_back(i);
            }
          }
        }

        // 2. Refunded payments: one aggregated update per payment.
        if (!refunds.empty()) {
          std::vector<std::string> params;
          params.reserve(refunds.size() * 3);
          for (const auto& [key, group] : refunds) {
            params.push_back(key.first);
            params.push_back(key.second);
            params.push_back(std::to_string(group.total));
          }
          pqxx::result res = Exec(txn, SqlKind::kRefundPayments, refunds.size(),
                                  pqxx::prepare::make_dynamic_params(params));
          refunded_rows = static_cast<int64_t>(res.size());
          missing_payments = static_cast<int64_t>(refunds.size()) - refunded_rows;
          if (outbox) {
            for (const auto& r : res) {
              const std::string payment_id = r[0].as<std::string>();
              auto it = refunds.find({r[1].as<std::string>(), r[2].as<std::string>()});
              if (it == refunds.end()) {
                return Status::Internal("refund update returned a payment it was not asked for");
              }
              const RefundGroup& g = it->second;
              // The refunds of the batch, in order, each one step from the
              // amount refunded before the batch to the stored one.
              int64_t refunded = r[3].as<int64_t>() - g.total;
              for (size_t index : g.refunds) {
                const Candidate& refund = candidates[index];
                const int64_t before = refunded;
                refunded += refund.row.amount_minor;
                updates.push_back(UpdateEvent{refund.partition, refund.offset, it->first.first,
                                              payment_id, before, refunded});
              }
            }
          }
        }

        // 3. Balances: one upsert, one row per (merchant, currency).
        std::vector<std::string> balance_params;
        for (const auto& [key, delta] : deltas) {
          if (delta == 0) continue;
          balance_params.push_back(key.first);
          balance_params.push_back(key.second);
          balance_params.push_back(std::to_string(delta));
        }
        if (!balance_params.empty()) {
          balance_rows = static_cast<int64_t>(balance_params.size() / 3);
          Exec(txn, SqlKind::kBalances, balance_params.size() / 3,
               pqxx::prepare::make_dynamic_params(balance_params));
        }

        // 4. The u events: coordinates and refunded amounts only (the relay
        // rebuilds the envelopes).
        for (size_t begin = 0; begin < updates.size(); begin += kMaxRowsPerStatement) {
          const size_t end = std::min(updates.size(), begin + kMaxRowsPerStatement);
          std::vector<std::string> params;
          params.reserve(3 + (end - begin) * kOutboxParamsPerRow);
          params.push_back(std::to_string(now_ms));
          params.push_back(kafka_state);
          params.push_back(webhook_state);
          for (size_t i = begin; i < end; ++i) {
            const UpdateEvent& e = updates[i];
            params.push_back(std::to_string(e.partition));
            params.push_back(std::to_string(e.offset));
            params.push_back("1");
            params.push_back(e.customer_id);
            params.push_back(e.payment_id);
            params.push_back("u");
            params.push_back(std::to_string(e.refunded_before));
            params.push_back(std::to_string(e.refunded_after));
          }
          pqxx::result res = Exec(txn, SqlKind::kInsertUpdateEvents, end - begin,
                                  pqxx::prepare::make_dynamic_params(params));
          outbox_rows += static_cast<int64_t>(res.affected_rows());
        }

        // 5. Positions, compare-and-set.
        for (const PositionUpdate& p : positions) {
          STREAMS_RETURN_IF_ERROR(
              offsets_.Advance(txn, options_.group_id, p.tp, p.expected, p.next));
        }
        return Status::Ok();
      },
      options_.retry);
  if (status.code() == StatusCode::kUnavailable) lease.MarkBroken();
  if (!status.ok()) return status;
  rows_upserted_.Add({{"table", "payments"}})
      .Increment(static_cast<double>(inserted_rows + refunded_rows));
  rows_upserted_.Add({{"table", "merchant_balances"}}).Increment(static_cast<double>(balance_rows));
  rows_upserted_.Add({{"table", "payments_outbox"}}).Increment(static_cast<double>(outbox_rows));
  rows_upserted_.Add({{"table", "sink_offsets"}}).Increment(static_cast<double>(positions.size()));
  replays_skipped_.Increment(static_cast<double>(replays));
  duplicate_decisions_.Increment(static_cast<double>(duplicates));
  refunds_without_payment_.Increment(static_cast<double>(missing_payments));
  return Status::Ok();
}

}  // namespace payments_sink
