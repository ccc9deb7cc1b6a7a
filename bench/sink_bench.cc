// sink_bench: rows/s into PostgreSQL of payments-sink's transaction (rows,
// balances, outbox, positions: PaymentsSinkTask::Put with CDC on) beside the
// floor: plain batched multi-row upserts of the same rows into a table of the
// same shape, on the same server, with the same client library (libpqxx,
// exec_params, one statement and one transaction per batch).
//
//   sink_bench [--rows N] [--batch B] [--rounds R] [--refunds PERCENT] [--prepare 0|1]
//              [--uri postgresql://...]
//
// The sink prepares its statements for full batches (B new rows) as
// payments-sink does (PaymentsSinkTaskOptions::full_batch_rows); --prepare 0
// sends every statement unprepared, as the floor does. A second floor,
// printed beside it, prepares its full-batch statement too: the sink's ratio
// to it is the like-for-like figure of the prepared mode.
//
// Without --uri a private PostgreSQL is started (scripts/pg-test-server.sh)
// and stopped. Prints rows/s of each and the ratio (target >= 0.7).
#include <prometheus/registry.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "sink/payment_row.h"
#include "sink/payments_schema.h"
#include "sink/payments_sink_task.h"
#include "streams/connect/connection_pool.h"

namespace {

using payments::v1::PaymentConfirmation;
using Clock = std::chrono::steady_clock;

int g_refund_percent = 10;
bool g_prepare = true;

std::vector<streams::ConsumedRecord> MakeRecords(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<streams::ConsumedRecord> out;
  std::vector<PaymentConfirmation> approved;
  for (int i = 0; i < n; ++i) {
    PaymentConfirmation c;
    std::string id = "pay_";
    for (int k = i; k > 0 || id.size() == 4; k /= 26) id += static_cast<char>('a' + k % 26);
    c.set_payment_id(id);
    c.set_idempotency_key("idem_" + id);
    c.set_customer_id("cust_" + std::string(1, static_cast<char>('a' + rng() % 26)) +
                      std::string(1, static_cast<char>('a' + rng() % 26)));
    c.set_merchant_id("merchant_" + std::string(1, static_cast<char>('a' + rng() % 20)));
    c.set_currency(rng() % 2 ? "EUR" : "USD");
    c.set_decided_at_ms(1700000000000 + i);
    c.set_source_topic("payments.requests");
    c.set_source_partition(static_cast<int>(rng() % 8));
    c.set_source_offset(i);
    c.set_fraud_score(0.1);
    if (!approved.empty() &&
        static_cast<int>(rng() % 100) < g_refund_percent) {  // Refunds of earlier payments.
      const PaymentConfirmation& p = approved[rng() % approved.size()];
      c.set_customer_id(p.customer_id());
      c.set_merchant_id(p.merchant_id());
      c.set_currency(p.currency());
      c.set_kind(payments::v1::REFUND);
      c.set_refund_of(p.idempotency_key());
      c.set_amount_minor(1);
      c.set_decision(payments::v1::APPROVED);
    } else {
      c.set_kind(payments::v1::PAYMENT);
      c.set_amount_minor(100 + static_cast<int64_t>(rng() % 100000));
      bool ok = rng() % 100 < 85;
      c.set_decision(ok ? payments::v1::APPROVED : payments::v1::DECLINED);
      if (!ok) c.set_decline_code("FRAUD_SUSPECTED");
      if (ok) approved.push_back(c);
    }
    streams::ConsumedRecord r;
    r.topic = "payments.confirmations";
    r.partition = streams::Partition(0);
    r.offset = streams::Offset(i);
    r.key = c.customer_id();
    r.value = c.SerializeAsString();
    out.push_back(std::move(r));
  }
  return out;
}

void Exec(const std::string& uri, const std::string& sql) {
  pqxx::connection conn(uri);
  pqxx::nontransaction nt(conn);
  nt.exec(sql);
}

// The floor: the same rows, one multi-row upsert per batch. `prepared`: the
// statement of a full batch is prepared once, as the sink does with --prepare 1
// (the like-for-like floor for that mode).
double RunFloor(const std::string& uri, const std::vector<streams::ConsumedRecord>& records,
                int batch, bool prepared) {
  Exec(uri, "DROP TABLE IF EXISTS floor_payments");
  Exec(uri, "CREATE TABLE floor_payments (LIKE payments INCLUDING ALL)");
  pqxx::connection conn(uri);
  bool floor_prepared = false;
  auto start = Clock::now();
  for (size_t begin = 0; begin < records.size(); begin += static_cast<size_t>(batch)) {
    size_t end = std::min(records.size(), begin + static_cast<size_t>(batch));
    std::vector<std::string> params;
    std::string values;
    int n = 1;
    std::set<std::string> seen;
    for (size_t i = begin; i < end; ++i) {
      auto c = payments_sink::DecodeConfirmation(records[i]);
      if (!seen.insert(c->payment_id()).second) continue;
      for (auto& p : payments_sink::RowParams(payments_sink::RowFromConfirmation(*c, records[i]))) {
        params.push_back(std::move(p));
      }
      values += values.empty() ? "(" : ", (";
      for (int k = 0; k < payments_sink::kPaymentColumnCount; ++k) {
        values += (k ? ", $" : "$") + std::to_string(n++);
      }
      values += ")";
    }
    const std::string sql = "INSERT INTO floor_payments (" +
                            std::string(payments_sink::kPaymentColumns) + ") VALUES " + values +
                            " ON CONFLICT (payment_id) DO UPDATE SET status = excluded.status";
    const bool full = n - 1 == batch * payments_sink::kPaymentColumnCount;
    if (prepared && full && !floor_prepared) {
      conn.prepare("floor_full_batch", sql);
      floor_prepared = true;
    }
    pqxx::work txn(conn);
    if (prepared && full) {
      txn.exec_prepared("floor_full_batch", pqxx::prepare::make_dynamic_params(params));
    } else {
      txn.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
    }
    txn.commit();
  }
  return static_cast<double>(records.size()) /
         std::chrono::duration<double>(Clock::now() - start).count();
}

double RunSink(const std::string& uri, const std::vector<streams::ConsumedRecord>& records,
               int batch, bool outbox) {
  for (const char* t : {"payments", "merchant_balances", "sink_offsets", "payments_outbox"}) {
    Exec(uri, std::string("TRUNCATE ") + t);
  }
  streams::connect::ConnectionPool pool(uri, 1);
  prometheus::Registry registry;
  payments_sink::PaymentsSinkTaskOptions options;
  options.cdc_kafka = outbox;
  options.cdc_webhook = outbox;
  options.full_batch_rows = g_prepare ? static_cast<size_t>(batch) : 0;
  payments_sink::PaymentsSinkTask task(&pool, options, registry, nullptr);
  streams::TopicPartition tp{"payments.confirmations", streams::Partition(0)};
  std::optional<streams::Offset> expected;
  auto start = Clock::now();
  for (size_t begin = 0; begin < records.size(); begin += static_cast<size_t>(batch)) {
    size_t end = std::min(records.size(), begin + static_cast<size_t>(batch));
    std::vector<const streams::ConsumedRecord*> ptrs;
    for (size_t i = begin; i < end; ++i) ptrs.push_back(&records[i]);
    streams::Offset next(static_cast<int64_t>(end));
    streams::Status s = task.Put(ptrs, {{tp, expected, next}});
    if (!s.ok()) {
      std::fprintf(stderr, "sink_bench: Put failed: %s\n", s.ToString().c_str());
      std::exit(1);
    }
    expected = next;
  }
  return static_cast<double>(records.size()) /
         std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int rows = 50000, batch = 500, rounds = 3;
  std::string uri;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--rows")
      rows = std::atoi(argv[i + 1]);
    else if (a == "--batch")
      batch = std::atoi(argv[i + 1]);
    else if (a == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (a == "--uri")
      uri = argv[i + 1];
    else if (a == "--refunds")
      g_refund_percent = std::atoi(argv[i + 1]);
    else if (a == "--prepare")
      g_prepare = std::atoi(argv[i + 1]) != 0;
  }
  std::string dir;
  if (uri.empty()) {
    int port = 26000 + getpid() % 2000;
    dir = (std::filesystem::temp_directory_path() / ("sink_bench_pg_" + std::to_string(getpid())))
              .string();
    std::string cmd = std::string(PG_SERVER_SCRIPT) + " start " + dir + " " + std::to_string(port) +
                      " >/dev/null";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "sink_bench: cannot start PostgreSQL (%s)\n", cmd.c_str());
      return 1;
    }
    uri = "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres";
  }
  int rc = 0;
  try {
    streams::connect::ConnectionPool pool(uri, 1);
    prometheus::Registry registry;
    payments_sink::PaymentsSinkTask migrator(&pool, {}, registry, nullptr);
    if (auto s = migrator.Migrate(); !s.ok()) throw std::runtime_error(s.ToString());
    auto records = MakeRecords(rows, 42);
    double best_floor = 0, best_floor_prepared = 0, best_sink = 0, best_plain = 0;
    for (int r = 0; r < rounds; ++r) {
      best_floor = std::max(best_floor, RunFloor(uri, records, batch, /*prepared=*/false));
      best_floor_prepared =
          std::max(best_floor_prepared, RunFloor(uri, records, batch, /*prepared=*/true));
      best_sink = std::max(best_sink, RunSink(uri, records, batch, /*outbox=*/true));
      best_plain = std::max(best_plain, RunSink(uri, records, batch, /*outbox=*/false));
    }
    std::printf("rows=%d batch=%d rounds=%d refunds=%d%% prepare=%d (best of each)\n", rows, batch,
                rounds, g_refund_percent, g_prepare ? 1 : 0);
    std::printf("floor (multi-row upsert only)        %10.0f rows/s\n", best_floor);
    std::printf("floor, full batches prepared         %10.0f rows/s\n", best_floor_prepared);
    std::printf("sink, outbox off (rows+balances+pos) %10.0f rows/s  %.2f of floor\n", best_plain,
                best_plain / best_floor);
    std::printf(
        "sink, outbox on                      %10.0f rows/s  %.2f of floor (target >= 0.70),"
        " %.2f of the prepared floor\n",
        best_sink, best_sink / best_floor, best_sink / best_floor_prepared);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sink_bench: %s\n", e.what());
    rc = 1;
  }
  if (!dir.empty()) {
    std::system((std::string(PG_SERVER_SCRIPT) + " stop " + dir + " >/dev/null").c_str());
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return rc;
}
