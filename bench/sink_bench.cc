// sink_bench: rows/s into PostgreSQL of payments-sink's transaction (rows,
// balances, outbox, positions: PaymentsSinkTask::Put with CDC on) beside the
// floor: plain batched multi-row upserts of the same rows into a table of the
// same shape, on the same server, with the same client library (libpqxx,
// exec_params, one statement and one transaction per batch).
//
//   sink_bench [--rows N] [--batch B] [--rounds R] [--refunds PERCENT] [--prepare 0|1]
//              [--uri postgresql://...]
//
// The sink prepares its statements as payments-sink does (the insert of a
// full batch of B new rows: PaymentsSinkTaskOptions::full_batch_rows; the
// statement of balances and refunds, which takes arrays, always); --prepare 0
// sends every statement unprepared, as the floor does. A second floor,
// printed beside it, prepares its full-batch statement too: the sink's ratio
// to it is the like-for-like figure of the prepared mode.
//
// Fairness: the four writers (floor, prepared floor, sink with and without
// the outbox) write the same records, each into empty tables of its own
// (the sinks each in a database of their own, sink_bench_outbox and
// sink_bench_plain, created when missing) on the same server, connected
// before their clocks start. A round interleaves them batch by batch, in an
// order rotated per batch and round, after one CHECKPOINT, so that they run
// under the same conditions (load of other processes, caches, checkpoints);
// an untimed warm-up round comes first. Each writer's rows/s is its rows over
// the sum of its batch times. Every writer builds its SQL texts once per
// round and pays for decoding the records and building its parameters.
//
// Prints each round, then the medians of the rounds: rows/s of each writer,
// the sink's ratios (median of the per-round ratios, with their min-max;
// target >= 0.7 of the like-for-like floor) and this process's CPU time per
// batch of each writer.
// Without --uri a private PostgreSQL is started (scripts/pg-test-server.sh)
// and stopped.
#include <prometheus/registry.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
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

// `uri` with its database name replaced by `database`.
std::string WithDatabase(const std::string& uri, const std::string& database) {
  const size_t host = uri.find("://");
  const size_t slash = uri.find('/', host == std::string::npos ? 0 : host + 3);
  const size_t query = uri.find('?');
  std::string rest = query == std::string::npos ? "" : uri.substr(query);
  std::string base = uri.substr(0, std::min(slash, query));
  return base + "/" + database + rest;
}

// One of the compared writers: Setup (untimed) empties its tables and
// connects; Batch writes records [begin, end) in one transaction.
class Writer {
 public:
  virtual ~Writer() = default;
  virtual void Setup() = 0;
  virtual void Batch(size_t begin, size_t end) = 0;
};

// The floor: the same rows, one multi-row upsert per batch, into a table of
// the shape of payments. `prepared`: the statement of a full batch is
// prepared once, as the sink does with --prepare 1 (the like-for-like floor
// for that mode).
class Floor final : public Writer {
 public:
  Floor(std::string uri, const std::vector<streams::ConsumedRecord>& records, int batch,
        bool prepared)
      : uri_(std::move(uri)),
        records_(records),
        batch_(static_cast<size_t>(batch)),
        prepared_(prepared),
        table_(prepared ? "floor_payments_prepared" : "floor_payments") {}

  void Setup() override {
    conn_.reset();
    Exec(uri_, "DROP TABLE IF EXISTS " + table_);
    Exec(uri_, "CREATE TABLE " + table_ + " (LIKE payments INCLUDING ALL)");
    conn_ = std::make_unique<pqxx::connection>(uri_);
    statement_prepared_ = false;
    texts_.clear();  // Built again in each round, as a new sink task does.
  }

  void Batch(size_t begin, size_t end) override {
    // Keys unique within the statement, as the sink makes them: the first
    // row of each payment_id, found by sorting.
    std::vector<payments_sink::PaymentRow> decoded;
    decoded.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) {
      auto c = payments_sink::DecodeConfirmation(records_[i]);
      decoded.push_back(payments_sink::RowFromConfirmation(*c, records_[i]));
    }
    std::vector<size_t> order(decoded.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return decoded[a].payment_id < decoded[b].payment_id;
    });
    std::vector<bool> keep(decoded.size(), true);
    for (size_t k = 1; k < order.size(); ++k) {
      if (decoded[order[k]].payment_id == decoded[order[k - 1]].payment_id) keep[order[k]] = false;
    }
    std::vector<std::string> params;
    params.reserve(decoded.size() * payments_sink::kPaymentColumnCount);
    size_t rows = 0;
    for (size_t i = 0; i < decoded.size(); ++i) {
      if (!keep[i]) continue;
      for (auto& p : payments_sink::RowParams(decoded[i])) params.push_back(std::move(p));
      ++rows;
    }
    const std::string& sql = Text(rows);
    const bool full = rows == batch_;
    if (prepared_ && full && !statement_prepared_) {
      conn_->prepare(table_, sql);
      statement_prepared_ = true;
    }
    pqxx::work txn(*conn_);
    if (prepared_ && full) {
      txn.exec_prepared(table_, pqxx::prepare::make_dynamic_params(params));
    } else {
      txn.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
    }
    txn.commit();
  }

 private:
  // The statement text of `rows` rows, built once (as the sink keeps its
  // texts): the floor pays for its statements, not for building them.
  const std::string& Text(size_t rows) {
    std::string& sql = texts_[rows];
    if (!sql.empty()) return sql;
    std::string values;
    int n = 1;
    for (size_t r = 0; r < rows; ++r) {
      values += values.empty() ? "(" : ", (";
      for (int k = 0; k < payments_sink::kPaymentColumnCount; ++k) {
        values += (k ? ", $" : "$") + std::to_string(n++);
      }
      values += ")";
    }
    sql = "INSERT INTO " + table_ + " (" + std::string(payments_sink::kPaymentColumns) +
          ") VALUES " + values + " ON CONFLICT (payment_id) DO UPDATE SET status = excluded.status";
    return sql;
  }

  const std::string uri_;
  const std::vector<streams::ConsumedRecord>& records_;
  const size_t batch_;
  const bool prepared_;
  const std::string table_;
  std::unique_ptr<pqxx::connection> conn_;
  bool statement_prepared_ = false;
  std::map<size_t, std::string> texts_;
};

// The sink: PaymentsSinkTask::Put of each batch with its position, in a
// database of its own (`uri`, migrated) so that the two sink writers can
// interleave their batches.
class Sink final : public Writer {
 public:
  Sink(std::string uri, const std::vector<streams::ConsumedRecord>& records, int batch, bool outbox)
      : uri_(std::move(uri)), records_(records), batch_(batch), outbox_(outbox) {}

  void Setup() override {
    task_.reset();
    pool_.reset();
    for (const char* t : {"payments", "merchant_balances", "sink_offsets", "payments_outbox"}) {
      Exec(uri_, std::string("TRUNCATE ") + t);
    }
    pool_ = std::make_unique<streams::connect::ConnectionPool>(uri_, 1);
    registry_ = std::make_unique<prometheus::Registry>();
    payments_sink::PaymentsSinkTaskOptions options;
    options.cdc_kafka = outbox_;
    options.cdc_webhook = outbox_;
    options.full_batch_rows = g_prepare ? static_cast<size_t>(batch_) : 0;
    task_ = std::make_unique<payments_sink::PaymentsSinkTask>(pool_.get(), options, *registry_,
                                                              nullptr);
    expected_.reset();
    // Connected before the clock starts, as the floor is.
    auto lease = pool_->Acquire(std::chrono::seconds(10));
    if (!lease.ok()) {
      std::fprintf(stderr, "sink_bench: %s\n", lease.status().ToString().c_str());
      std::exit(1);
    }
  }

  void Batch(size_t begin, size_t end) override {
    std::vector<const streams::ConsumedRecord*> ptrs;
    for (size_t i = begin; i < end; ++i) ptrs.push_back(&records_[i]);
    const streams::TopicPartition tp{"payments.confirmations", streams::Partition(0)};
    const streams::Offset next(static_cast<int64_t>(end));
    streams::Status s = task_->Put(ptrs, {{tp, expected_, next}});
    if (!s.ok()) {
      std::fprintf(stderr, "sink_bench: Put failed: %s\n", s.ToString().c_str());
      std::exit(1);
    }
    expected_ = next;
  }

 private:
  const std::string uri_;
  const std::vector<streams::ConsumedRecord>& records_;
  const int batch_;
  const bool outbox_;
  std::unique_ptr<streams::connect::ConnectionPool> pool_;
  std::unique_ptr<prometheus::Registry> registry_;
  std::unique_ptr<payments_sink::PaymentsSinkTask> task_;
  std::optional<streams::Offset> expected_;
};

// Creates `database` on the server of `uri` unless it exists, and migrates it.
void PrepareDatabase(const std::string& uri, const std::string& database) {
  {
    pqxx::connection conn(uri);
    pqxx::nontransaction nt(conn);
    if (nt.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", database).empty()) {
      nt.exec("CREATE DATABASE " + database);
    }
  }
  streams::connect::ConnectionPool pool(WithDatabase(uri, database), 1);
  prometheus::Registry registry;
  payments_sink::PaymentsSinkTask migrator(&pool, {}, registry, nullptr);
  if (auto s = migrator.Migrate(); !s.ok()) throw std::runtime_error(s.ToString());
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// One round: every writer set up, a CHECKPOINT, then the batches, each
// writer's batch i next to the others' (in an order rotated per batch and
// round), so that all of them run under the same conditions (another
// process's load, the server's caches and checkpoints). Returns each
// writer's rows/s (rows over the sum of its batch times).
struct RoundResult {
  std::vector<double> rate;    // Rows/s of each writer.
  std::vector<double> cpu_ms;  // This process's CPU time per batch of each writer.
};
RoundResult Round(const std::string& uri, std::vector<std::unique_ptr<Writer>>& writers,
                  size_t rows, int batch, int round) {
  for (auto& w : writers) w->Setup();
  Exec(uri, "CHECKPOINT");
  std::vector<double> seconds(writers.size(), 0), cpu(writers.size(), 0);
  size_t index = 0;
  for (size_t begin = 0; begin < rows; begin += static_cast<size_t>(batch), ++index) {
    const size_t end = std::min(rows, begin + static_cast<size_t>(batch));
    for (size_t k = 0; k < writers.size(); ++k) {
      const size_t which = (static_cast<size_t>(round) + index + k) % writers.size();
      const double cpu_start = ThreadCpuSeconds();
      const auto start = Clock::now();
      writers[which]->Batch(begin, end);
      seconds[which] += std::chrono::duration<double>(Clock::now() - start).count();
      cpu[which] += ThreadCpuSeconds() - cpu_start;
    }
  }
  RoundResult out;
  for (size_t w = 0; w < writers.size(); ++w) {
    out.rate.push_back(static_cast<double>(rows) / seconds[w]);
    out.cpu_ms.push_back(cpu[w] * 1000 / static_cast<double>(index));
  }
  return out;
}

// The median of `v` (the mean of the middle two for an even size).
double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t mid = v.size() / 2;
  return v.size() % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

// "median (min-max)" of `v`, two decimals: a ratio over the rounds.
std::string Spread(std::vector<double> v) {
  if (v.empty()) return "-";
  std::sort(v.begin(), v.end());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f (%.2f-%.2f)", Median(v), v.front(), v.back());
  return buf;
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
    // The floors in the database of `uri` (tables shaped as payments), each
    // sink writer in a database of its own on the same server.
    PrepareDatabase(uri, "sink_bench_outbox");
    PrepareDatabase(uri, "sink_bench_plain");
    {
      streams::connect::ConnectionPool pool(uri, 1);
      prometheus::Registry registry;
      payments_sink::PaymentsSinkTask migrator(&pool, {}, registry, nullptr);
      if (auto s = migrator.Migrate(); !s.ok()) throw std::runtime_error(s.ToString());
    }
    auto records = MakeRecords(rows, 42);
    enum Run { kFloor, kFloorPrepared, kSinkOutbox, kSinkPlain, kRuns };
    std::vector<std::unique_ptr<Writer>> writers;
    writers.push_back(std::make_unique<Floor>(uri, records, batch, /*prepared=*/false));
    writers.push_back(std::make_unique<Floor>(uri, records, batch, /*prepared=*/true));
    writers.push_back(std::make_unique<Sink>(WithDatabase(uri, "sink_bench_outbox"), records, batch,
                                             /*outbox=*/true));
    writers.push_back(std::make_unique<Sink>(WithDatabase(uri, "sink_bench_plain"), records, batch,
                                             /*outbox=*/false));
    Round(uri, writers, records.size(), batch, 0);  // Warm-up, not counted.
    std::vector<std::vector<double>> rate(kRuns), cpu_ms(kRuns);
    std::vector<double> ratio_floor, ratio_prepared, ratio_plain;
    for (int r = 0; r < rounds; ++r) {
      const RoundResult result = Round(uri, writers, records.size(), batch, r);
      const std::vector<double>& got = result.rate;
      for (int which = 0; which < kRuns; ++which) {
        rate[which].push_back(got[which]);
        cpu_ms[which].push_back(result.cpu_ms[which]);
      }
      ratio_floor.push_back(got[kSinkOutbox] / got[kFloor]);
      ratio_prepared.push_back(got[kSinkOutbox] / got[kFloorPrepared]);
      ratio_plain.push_back(got[kSinkPlain] / got[g_prepare ? kFloorPrepared : kFloor]);
      std::printf(
          "round %d: floor %.0f, prepared floor %.0f, sink outbox off %.0f, outbox on %.0f rows/s"
          " (%.2f of floor, %.2f of the prepared floor)\n",
          r + 1, got[kFloor], got[kFloorPrepared], got[kSinkPlain], got[kSinkOutbox],
          ratio_floor.back(), ratio_prepared.back());
    }
    const double like_for_like = Median(g_prepare ? ratio_prepared : ratio_floor);
    std::printf("rows=%d batch=%d rounds=%d refunds=%d%% prepare=%d (medians of the rounds)\n",
                rows, batch, rounds, g_refund_percent, g_prepare ? 1 : 0);
    std::printf("floor (multi-row upsert only)        %10.0f rows/s\n", Median(rate[kFloor]));
    std::printf("floor, full batches prepared         %10.0f rows/s\n",
                Median(rate[kFloorPrepared]));
    std::printf("sink, outbox off (rows+balances+pos) %10.0f rows/s  %s of the %s floor\n",
                Median(rate[kSinkPlain]), Spread(ratio_plain).c_str(),
                g_prepare ? "prepared" : "plain");
    std::printf(
        "sink, outbox on                      %10.0f rows/s  %s of floor, %s of the prepared"
        " floor; like-for-like (%s) %.2f (target >= 0.70)\n",
        Median(rate[kSinkOutbox]), Spread(ratio_floor).c_str(), Spread(ratio_prepared).c_str(),
        g_prepare ? "prepared" : "plain", like_for_like);
    std::printf(
        "client CPU per batch (ms): floor %.2f, prepared floor %.2f, sink outbox off %.2f,"
        " outbox on %.2f\n",
        Median(cpu_ms[kFloor]), Median(cpu_ms[kFloorPrepared]), Median(cpu_ms[kSinkPlain]),
        Median(cpu_ms[kSinkOutbox]));
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
