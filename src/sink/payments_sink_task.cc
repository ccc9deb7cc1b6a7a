#include "sink/payments_sink_task.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string_view>

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
// Outbox inserts have no ON CONFLICT clause (which would double their cost):
// an event key cannot exist when a transaction gets to write it. Put moves
// its positions first, with a compare-and-set, so a transaction that writes
// events is the one current writer of their partitions, and the positions
// are at or before its records (positions never move back): no committed
// transaction of this group wrote events of these records. Another group
// reading the same topic cannot have either: an event is written only with
// the insert of its record's payments row (c, and u for a refund row), and a
// row is inserted once, by whichever writer gets there first. Within a batch
// keys are unique (one c and at most one u per record, at the record's
// coordinates). Only what the outbox contract excludes (two sink topics in
// one outbox, deleting payments rows or rewinding sink_offsets while the
// outbox still holds their events) could hit an existing key: a constraint
// error (FailedPrecondition), never a silently lost event.

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

// A PostgreSQL array literal of `values` ('{"a","b"}'), for a TEXT[]
// parameter: every element quoted, '"' and '\\' escaped.
std::string TextArray(const std::vector<std::string_view>& values) {
  std::string out = "{";
  for (std::string_view v : values) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char ch : v) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

// An array literal of integers ("{1,2}"), for an INT4[] or INT8[] parameter.
template <typename Int>
std::string IntArray(const std::vector<Int>& values) {
  std::string out = "{";
  for (Int v : values) {
    if (out.size() > 1) out += ',';
    out += std::to_string(v);
  }
  return out + "}";
}

struct Candidate {
  PaymentRow row;
  int32_t partition;  // Where the confirmation was read (sink topic).
  int64_t offset;
};

// Removes every candidate whose payment_id an earlier one has, keeping the
// order of the others. Returns how many were removed.
int64_t DropLaterDuplicates(std::vector<Candidate>& candidates) {
  std::vector<size_t> order(candidates.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return candidates[a].row.payment_id < candidates[b].row.payment_id;
  });
  std::vector<bool> drop(candidates.size(), false);
  int64_t dropped = 0;
  for (size_t k = 1; k < order.size(); ++k) {
    if (candidates[order[k]].row.payment_id == candidates[order[k - 1]].row.payment_id) {
      drop[order[k]] = true;  // Stable: order[k - 1] came earlier in the batch.
      ++dropped;
    }
  }
  if (dropped == 0) return 0;
  size_t kept = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (drop[i]) continue;
    if (kept != i) candidates[kept] = std::move(candidates[i]);
    ++kept;
  }
  candidates.resize(kept);
  return dropped;
}

// The candidates' payment_ids (views into them, valid while they are not
// changed) with their indexes, sorted by payment_id.
std::vector<std::pair<std::string_view, size_t>> SortedIds(
    const std::vector<Candidate>& candidates) {
  std::vector<std::pair<std::string_view, size_t>> out;
  out.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) out.emplace_back(candidates[i].row.payment_id, i);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string PaymentsSinkTask::BuildSql(SqlKind kind, size_t rows) {
  // A statement modifies each table at most once (CockroachDB refuses two
  // modifications of one table in a statement), and the refund update needs
  // the rows of the insert (a CTE does not see its siblings' rows): the
  // insert writes payments and the c events; the apply statement
  // merchant_balances, the refunded payments and the u events.
  auto param = [](int i, std::string_view type) {
    return "$" + std::to_string(i) + "::" + std::string(type);
  };
  switch (kind) {
    case SqlKind::kInsertPayments:
    case SqlKind::kInsertPaymentsAndEvents: {
      static const std::vector<std::string_view> kCasts(kPaymentColumnCount, "");
      // The result: one row of counts (payment_id NULL: rows inserted, events
      // written) and, only when some rows were not inserted (their
      // payment_id had a row), one row per inserted payment_id, so that a
      // batch of new rows sends back one row instead of one per row.
      const std::string n = std::to_string(rows);
      const std::string result =
          " SELECT NULL, (SELECT count(*) FROM inserted), (SELECT count(*) FROM events) UNION ALL"
          " SELECT payment_id, NULL, NULL FROM inserted WHERE (SELECT count(*) FROM inserted) < " +
          n;
      std::string insert = "WITH inserted AS (INSERT INTO payments (" +
                           std::string(kPaymentColumns) + ") VALUES " + Placeholders(rows, kCasts) +
                           " ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id";
      if (kind == SqlKind::kInsertPayments) {
        return insert + "), events AS (SELECT 1 WHERE false)" + result;
      }
      // The c event of each inserted row, written by the same statement: its
      // coordinates are the row's confirmation_partition and
      // confirmation_offset, so it costs no parameters of its own. The three
      // after the rows' are created_at_ms, kafka_state and webhook_state.
      const int first = static_cast<int>(rows) * kPaymentColumnCount + 1;
      return insert +
             ", customer_id, confirmation_partition, confirmation_offset), events AS (INSERT INTO"
             " payments_outbox (kafka_partition, kafka_offset, seq, customer_id, payment_id, op,"
             " refunded_before_minor, refunded_after_minor, created_at_ms, kafka_state,"
             " webhook_state) SELECT confirmation_partition, confirmation_offset, 0, customer_id,"
             " payment_id, 'c', 0, 0, " +
             param(first, "INT8") + ", " + param(first + 1, "TEXT") + ", " +
             param(first + 2, "TEXT") + " FROM inserted RETURNING 1)" + result;
    }
    case SqlKind::kApply:
    case SqlKind::kApplyAndEvents: {
      // Arrays, one element per row, so that one text serves every batch:
      // $1..$3 the balance changes per (merchant_id, currency), keys unique
      // and in order (every instance takes the row locks in key order, so
      // that two batches do not deadlock on them); $4..$6 the refunded
      // amount per refunded payment (customer_id, idempotency_key = refund_of),
      // keys unique. The LATERAL point lookup keeps the plan an index lookup
      // per key even before the table has statistics.
      std::string sql =
          "WITH balances AS (INSERT INTO merchant_balances (merchant_id, currency, balance_minor)"
          " SELECT * FROM unnest(" +
          param(1, "TEXT[]") + ", " + param(2, "TEXT[]") + ", " + param(3, "INT8[]") +
          ") ON CONFLICT (merchant_id, currency) DO UPDATE SET balance_minor ="
          " merchant_balances.balance_minor + excluded.balance_minor RETURNING 1),"
          " updated AS (UPDATE payments AS p SET refunded_amount_minor ="
          " p.refunded_amount_minor + d.amount, status = CASE WHEN p.refunded_amount_minor +"
          " d.amount >= p.amount_minor THEN 'REFUNDED' ELSE 'PARTIALLY_REFUNDED' END FROM"
          " unnest(" +
          param(4, "TEXT[]") + ", " + param(5, "TEXT[]") + ", " + param(6, "INT8[]") +
          ") AS d (customer_id, idempotency_key, amount), LATERAL (SELECT q.payment_id FROM"
          " payments AS q WHERE q.customer_id = d.customer_id AND q.idempotency_key ="
          " d.idempotency_key AND q.kind = 'PAYMENT' AND q.decision = 'APPROVED' LIMIT 1) AS x"
          " WHERE p.payment_id = x.payment_id RETURNING p.payment_id, p.customer_id,"
          " p.idempotency_key, p.refunded_amount_minor)";
      // The result: balance rows upserted, payments updated, events written.
      constexpr std::string_view kResult =
          " SELECT (SELECT count(*) FROM balances), (SELECT count(*) FROM updated),";
      if (kind == SqlKind::kApply) return sql + std::string(kResult) + " 0";
      // $7..$13 the u event of each refund (one element per refund, in the
      // batch's order): the amount refunded before it is the stored one after
      // the update, minus the payment's total refunded in this batch, plus
      // the refunds before it in this batch. $14..$16: created_at_ms,
      // kafka_state, webhook_state.
      return sql +
             ", events AS (INSERT INTO payments_outbox (kafka_partition, kafka_offset, seq,"
             " customer_id, payment_id, op, refunded_before_minor, refunded_after_minor,"
             " created_at_ms, kafka_state, webhook_state) SELECT e.kafka_partition,"
             " e.kafka_offset, 1, u.customer_id, u.payment_id, 'u', u.refunded_amount_minor -"
             " e.total + e.earlier, u.refunded_amount_minor - e.total + e.earlier + e.amount, " +
             param(14, "INT8") + ", " + param(15, "TEXT") + ", " + param(16, "TEXT") +
             " FROM unnest(" + param(7, "INT4[]") + ", " + param(8, "INT8[]") + ", " +
             param(9, "TEXT[]") + ", " + param(10, "TEXT[]") + ", " + param(11, "INT8[]") + ", " +
             param(12, "INT8[]") + ", " + param(13, "INT8[]") +
             ") AS e (kafka_partition, kafka_offset, customer_id, idempotency_key, amount,"
             " earlier, total) JOIN updated AS u ON u.customer_id = e.customer_id AND"
             " u.idempotency_key = e.idempotency_key RETURNING 1)" +
             std::string(kResult) + " (SELECT count(*) FROM events)";
    }
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
  const bool apply = kind == SqlKind::kApply || kind == SqlKind::kApplyAndEvents;
  // An apply statement's text does not depend on its number of rows.
  if (apply) rows = 0;
  const std::string& sql = Sql(kind, rows);
  const bool prepare = options_.full_batch_rows != 0 &&
                       (apply || rows == std::min(options_.full_batch_rows, kMaxRowsPerStatement));
  if (!prepare) return txn.exec_params(sql, std::forward<Params>(params)...);
  // The name stands for one text (kind and rows make it), so registering it
  // again on a connection that has it is a no-op; a new connection (after a
  // broken one) prepares it on first use.
  const std::string name =
      "payments_sink_" + std::to_string(static_cast<int>(kind)) + "_" + std::to_string(rows);
  txn.conn().prepare(name, sql);
  return txn.exec_prepared(name, std::forward<Params>(params)...);
}

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
  int64_t replays = 0;
  for (const ConsumedRecord* record : records) {
    auto c = DecodeConfirmation(*record);
    if (!c.ok()) return Status::FailedPrecondition(c.status().message());
    if (c->replay()) {
      ++replays;
      continue;
    }
    candidates.push_back(Candidate{RowFromConfirmation(*c, *record), record->partition.value(),
                                   record->offset.value()});
  }
  // Keys unique within the statement: the first confirmation of each
  // payment_id in the batch is kept. Sorting (no hash table) keeps the batch
  // cheap to index: by_id is the candidates' payment_ids in order, each with
  // its index into candidates (views of the candidates' strings).
  const int64_t duplicates_in_batch = DropLaterDuplicates(candidates);
  const std::vector<std::pair<std::string_view, size_t>> by_id = SortedIds(candidates);
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

        // 1. Positions, compare-and-set, first: a transaction that is not
        // the current writer of its partitions (a zombie, or a retry after a
        // commit whose outcome was unknown) ends Fenced before it writes
        // anything, and it holds the positions' row locks, so a concurrent
        // writer of the same partitions waits and then fails its own.
        for (const PositionUpdate& p : positions) {
          STREAMS_RETURN_IF_ERROR(
              offsets_.Advance(txn, options_.group_id, p.tp, p.expected, p.next));
        }

        // 2. New payments rows; an existing payment_id keeps its row. With
        // CDC on, the same statement writes the c event of each new row.
        const std::string kafka_state = options_.cdc_kafka ? "pending" : "off";
        const std::string webhook_state = options_.cdc_webhook ? "pending" : "off";
        std::vector<bool> inserted(candidates.size(), false);
        for (size_t begin = 0; begin < candidates.size(); begin += kMaxRowsPerStatement) {
          const size_t end = std::min(candidates.size(), begin + kMaxRowsPerStatement);
          auto rows = pqxx::prepare::make_dynamic_params(
              row_params.begin() + static_cast<std::ptrdiff_t>(begin * kPaymentColumnCount),
              row_params.begin() + static_cast<std::ptrdiff_t>(end * kPaymentColumnCount));
          pqxx::result res = outbox ? Exec(txn, SqlKind::kInsertPaymentsAndEvents, end - begin,
                                           rows, now_ms, kafka_state, webhook_state)
                                    : Exec(txn, SqlKind::kInsertPayments, end - begin, rows);
          // The counts row, and the inserted payment_ids unless all were.
          std::optional<size_t> inserted_here;
          size_t listed = 0;
          for (const auto& row : res) {
            if (row[0].is_null()) {
              inserted_here = row[1].as<size_t>();
              outbox_rows += row[2].as<int64_t>();
              continue;
            }
            const std::string_view id(row[0].c_str(), row[0].size());
            auto it =
                std::lower_bound(by_id.begin(), by_id.end(), id,
                                 [](const auto& e, std::string_view v) { return e.first < v; });
            if (it == by_id.end() || it->first != id) {
              return Status::Internal("the insert returned a payment_id it was not given");
            }
            inserted[it->second] = true;
            ++listed;
          }
          const size_t given = end - begin;
          if (inserted_here == given && listed == 0) {
            std::fill(inserted.begin() + static_cast<std::ptrdiff_t>(begin),
                      inserted.begin() + static_cast<std::ptrdiff_t>(end), true);
          } else if (!inserted_here || *inserted_here != listed) {
            return Status::Internal("the insert's result does not match its rows");
          }
        }

        // What the inserted rows change: balances, and refunded payments
        // (the approved refunds, per payment, in the batch's order).
        // Keys are views of the candidates' strings.
        using Key = std::pair<std::string_view, std::string_view>;
        std::map<Key, int64_t> deltas;
        struct RefundGroup {
          int64_t total = 0;
          std::vector<size_t> refunds;  // Indexes into candidates, in order.
        };
        std::map<Key, RefundGroup> refunds;
        for (size_t i = 0; i < candidates.size(); ++i) {
          const PaymentRow& row = candidates[i].row;
          if (!inserted[i]) {
            ++duplicates;
            continue;
          }
          ++inserted_rows;
          if (row.decision != "APPROVED") continue;
          if (row.kind == "PAYMENT") {
            deltas[{row.merchant_id, row.currency}] += row.amount_minor;
          } else if (row.kind == "REFUND") {
            deltas[{row.merchant_id, row.currency}] -= row.amount_minor;
            RefundGroup& g = refunds[{row.customer_id, row.refund_of}];
            g.total += row.amount_minor;
            g.refunds.push_back(i);
          }
        }

        // 3. One statement: the balances (one upsert, one row per merchant
        // and currency), the refunded payments (one update per payment) and,
        // with CDC on, the u event of each refund, one step from the amount
        // refunded before it to the amount after it.
        std::vector<std::string_view> merchants, currencies;
        std::vector<int64_t> balance_deltas;
        for (const auto& [key, delta] : deltas) {
          if (delta == 0) continue;
          merchants.push_back(key.first);
          currencies.push_back(key.second);
          balance_deltas.push_back(delta);
        }
        if (!balance_deltas.empty() || !refunds.empty()) {
          std::vector<std::string_view> customers, keys;
          std::vector<int64_t> totals;
          std::vector<int32_t> event_partitions;
          std::vector<int64_t> event_offsets, amounts, earlier, event_totals;
          std::vector<std::string_view> event_customers, event_keys;
          for (const auto& [key, group] : refunds) {
            customers.push_back(key.first);
            keys.push_back(key.second);
            totals.push_back(group.total);
            int64_t before = 0;
            for (size_t index : group.refunds) {
              const Candidate& refund = candidates[index];
              event_partitions.push_back(refund.partition);
              event_offsets.push_back(refund.offset);
              event_customers.push_back(key.first);
              event_keys.push_back(key.second);
              amounts.push_back(refund.row.amount_minor);
              earlier.push_back(before);
              event_totals.push_back(group.total);
              before += refund.row.amount_minor;
            }
          }
          const std::string m = TextArray(merchants), c = TextArray(currencies),
                            b = IntArray(balance_deltas), rc = TextArray(customers),
                            rk = TextArray(keys), rt = IntArray(totals);
          pqxx::result res = outbox
                                 ? Exec(txn, SqlKind::kApplyAndEvents, 0, m, c, b, rc, rk, rt,
                                        IntArray(event_partitions), IntArray(event_offsets),
                                        TextArray(event_customers), TextArray(event_keys),
                                        IntArray(amounts), IntArray(earlier),
                                        IntArray(event_totals), now_ms, kafka_state, webhook_state)
                                 : Exec(txn, SqlKind::kApply, 0, m, c, b, rc, rk, rt);
          balance_rows = res[0][0].as<int64_t>();
          refunded_rows = res[0][1].as<int64_t>();
          missing_payments = static_cast<int64_t>(refunds.size()) - refunded_rows;
          outbox_rows += res[0][2].as<int64_t>();
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
