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

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "($1, $2, ...), (...)" for `rows` rows of `columns` parameters, each cast
// with casts[c] when not empty.
std::string Placeholders(size_t rows, const std::vector<std::string_view>& casts) {
  std::string out;
  int n = 1;
  for (size_t r = 0; r < rows; ++r) {
    out += r == 0 ? "(" : ", (";
    for (size_t c = 0; c < casts.size(); ++c) {
      if (c > 0) out += ", ";
      out += "$" + std::to_string(n++);
      if (!casts[c].empty()) out += "::" + std::string(casts[c]);
    }
    out += ")";
  }
  return out;
}

std::string Prefixed(std::string_view columns, std::string_view prefix) {
  std::string out;
  size_t start = 0;
  while (start < columns.size()) {
    size_t comma = columns.find(',', start);
    if (comma == std::string_view::npos) comma = columns.size();
    std::string_view col = columns.substr(start, comma - start);
    while (!col.empty() && col.front() == ' ') col.remove_prefix(1);
    if (!out.empty()) out += ", ";
    out += std::string(prefix) + std::string(col);
    start = comma + 1;
  }
  return out;
}

PaymentRow RowFromResult(const pqxx::row& r) {
  PaymentRow row;
  row.payment_id = r[0].as<std::string>();
  row.idempotency_key = r[1].as<std::string>();
  row.customer_id = r[2].as<std::string>();
  row.merchant_id = r[3].as<std::string>();
  row.kind = r[4].as<std::string>();
  row.amount_minor = r[5].as<int64_t>();
  row.currency = r[6].as<std::string>();
  row.decision = r[7].as<std::string>();
  row.decline_code = r[8].as<std::string>();
  row.decline_message = r[9].as<std::string>();
  row.fraud_score = r[10].as<double>();
  row.refund_of = r[11].as<std::string>();
  row.refunded_amount_minor = r[12].as<int64_t>();
  row.status = r[13].as<std::string>();
  row.decided_at_ms = r[14].as<int64_t>();
  row.source_topic = r[15].as<std::string>();
  row.source_partition = r[16].as<int32_t>();
  row.source_offset = r[17].as<int64_t>();
  row.confirmation_partition = r[18].as<int32_t>();
  row.confirmation_offset = r[19].as<int64_t>();
  return row;
}

struct Candidate {
  PaymentRow row;
  ChangeSource source;
};

struct OutboxEvent {
  std::string event_id;
  int32_t partition;
  int64_t offset;
  int seq;
  std::string customer_id;
  std::string payment_id;
  std::string op;
  std::string payload;
};

}  // namespace

PaymentsSinkTask::PaymentsSinkTask(streams::connect::ConnectionPool* pool,
                                   PaymentsSinkTaskOptions options,
                                   prometheus::Registry& registry,
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
    candidates.push_back(Candidate{
        RowFromConfirmation(*c, *record),
        ChangeSource{options_.group_id, record->topic, record->partition.value(),
                     record->offset.value()}});
  }
  const bool outbox = options_.cdc_kafka || options_.cdc_webhook;

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

        // 1. New payments rows; an existing payment_id keeps its row.
        std::unordered_set<std::string> inserted;
        static const std::vector<std::string_view> kRowCasts(kPaymentColumnCount, "");
        for (size_t begin = 0; begin < candidates.size(); begin += kMaxRowsPerStatement) {
          const size_t end = std::min(candidates.size(), begin + kMaxRowsPerStatement);
          std::vector<std::string> params;
          params.reserve((end - begin) * kPaymentColumnCount);
          for (size_t i = begin; i < end; ++i) {
            for (auto& p : RowParams(candidates[i].row)) params.push_back(std::move(p));
          }
          pqxx::result res = txn.exec_params(
              "INSERT INTO payments (" + std::string(kPaymentColumns) + ") VALUES " +
                  Placeholders(end - begin, kRowCasts) +
                  " ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id",
              pqxx::prepare::make_dynamic_params(params));
          for (const auto& row : res) inserted.insert(row[0].as<std::string>());
        }

        std::map<std::pair<std::string, std::string>, int64_t> deltas;
        struct RefundGroup {
          int64_t total = 0;
          std::vector<size_t> refunds;  // Indexes into candidates, in order.
        };
        std::map<std::pair<std::string, std::string>, RefundGroup> refunds;
        std::vector<OutboxEvent> events;
        for (size_t i = 0; i < candidates.size(); ++i) {
          const PaymentRow& row = candidates[i].row;
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
          if (outbox) {
            const ChangeSource& src = candidates[i].source;
            events.push_back(OutboxEvent{EventId(src, 0), src.partition, src.offset, 0,
                                         row.customer_id, row.payment_id, "c",
                                         ChangeEnvelope(std::nullopt, row, src, now_ms)});
          }
        }

        // 2. Refunded payments: one aggregated update per payment.
        if (!refunds.empty()) {
          std::vector<std::string> params;
          for (const auto& [key, group] : refunds) {
            params.push_back(key.first);
            params.push_back(key.second);
            params.push_back(std::to_string(group.total));
          }
          pqxx::result res = txn.exec_params(
              // The LATERAL point lookup keeps the plan an index lookup per key
              // even before the table has statistics.
              "UPDATE payments AS p SET refunded_amount_minor = p.refunded_amount_minor + "
              "d.amount, status = CASE WHEN p.refunded_amount_minor + d.amount >= p.amount_minor "
              "THEN 'REFUNDED' ELSE 'PARTIALLY_REFUNDED' END FROM (VALUES " +
                  Placeholders(refunds.size(), {"TEXT", "TEXT", "INT8"}) +
                  ") AS d (customer_id, idempotency_key, amount), LATERAL (SELECT q.payment_id"
                  " FROM payments AS q WHERE q.customer_id = d.customer_id AND"
                  " q.idempotency_key = d.idempotency_key AND q.kind = 'PAYMENT' AND"
                  " q.decision = 'APPROVED' LIMIT 1) AS x WHERE p.payment_id = x.payment_id"
                  " RETURNING " +
                  Prefixed(kPaymentColumns, "p."),
              pqxx::prepare::make_dynamic_params(params));
          refunded_rows = static_cast<int64_t>(res.size());
          missing_payments = static_cast<int64_t>(refunds.size()) - refunded_rows;
          if (outbox) {
            for (const auto& r : res) {
              PaymentRow after = RowFromResult(r);
              const RefundGroup& g = refunds.at({after.customer_id, after.idempotency_key});
              int64_t refunded = after.refunded_amount_minor - g.total;
              for (size_t index : g.refunds) {
                PaymentRow before = after;
                before.refunded_amount_minor = refunded;
                before.status = RefundStatus(refunded, after.amount_minor);
                refunded += candidates[index].row.amount_minor;
                PaymentRow step = after;
                step.refunded_amount_minor = refunded;
                step.status = RefundStatus(refunded, after.amount_minor);
                const ChangeSource& src = candidates[index].source;
                events.push_back(OutboxEvent{EventId(src, 1), src.partition, src.offset, 1,
                                             step.customer_id, step.payment_id, "u",
                                             ChangeEnvelope(before, step, src, now_ms)});
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
          txn.exec_params(
              "INSERT INTO merchant_balances (merchant_id, currency, balance_minor) VALUES " +
                  Placeholders(balance_params.size() / 3, {"", "", "INT8"}) +
                  " ON CONFLICT (merchant_id, currency) DO UPDATE SET balance_minor = "
                  "merchant_balances.balance_minor + excluded.balance_minor",
              pqxx::prepare::make_dynamic_params(balance_params));
        }

        // 4. Outbox, in source order (partition, offset, seq).
        std::sort(events.begin(), events.end(), [](const OutboxEvent& a, const OutboxEvent& b) {
          return std::tie(a.partition, a.offset, a.seq) < std::tie(b.partition, b.offset, b.seq);
        });
        const std::string kafka_state = options_.cdc_kafka ? "pending" : "off";
        const std::string webhook_state = options_.cdc_webhook ? "pending" : "off";
        for (size_t begin = 0; begin < events.size(); begin += kMaxRowsPerStatement) {
          const size_t end = std::min(events.size(), begin + kMaxRowsPerStatement);
          std::vector<std::string> params;
          params.reserve((end - begin) * 11);
          for (size_t i = begin; i < end; ++i) {
            const OutboxEvent& e = events[i];
            params.push_back(e.event_id);
            params.push_back(std::to_string(e.partition));
            params.push_back(std::to_string(e.offset));
            params.push_back(std::to_string(e.seq));
            params.push_back(e.customer_id);
            params.push_back(e.payment_id);
            params.push_back(e.op);
            params.push_back(e.payload);
            params.push_back(std::to_string(now_ms));
            params.push_back(kafka_state);
            params.push_back(webhook_state);
          }
          txn.exec_params(
              "INSERT INTO payments_outbox (event_id, kafka_partition, kafka_offset, seq, "
              "customer_id, payment_id, op, payload, created_at_ms, kafka_state, webhook_state) "
              "VALUES " +
                  Placeholders(end - begin, std::vector<std::string_view>(11, "")) +
                  " ON CONFLICT (event_id) DO NOTHING",
              pqxx::prepare::make_dynamic_params(params));
          outbox_rows += static_cast<int64_t>(end - begin);
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
  rows_upserted_.Add({{"table", "payments"}}).Increment(static_cast<double>(inserted_rows + refunded_rows));
  rows_upserted_.Add({{"table", "merchant_balances"}}).Increment(static_cast<double>(balance_rows));
  rows_upserted_.Add({{"table", "payments_outbox"}}).Increment(static_cast<double>(outbox_rows));
  rows_upserted_.Add({{"table", "sink_offsets"}}).Increment(static_cast<double>(positions.size()));
  replays_skipped_.Increment(static_cast<double>(replays));
  duplicate_decisions_.Increment(static_cast<double>(duplicates));
  refunds_without_payment_.Increment(static_cast<double>(missing_payments));
  return Status::Ok();
}

}  // namespace payments_sink
