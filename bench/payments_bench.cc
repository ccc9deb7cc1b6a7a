// Decisions per second of the payments topology (payments_core) run in the
// engine's TopologyTestDriver (real RocksDB stores in a temporary directory,
// changelogs, commits), default fraud scorer. Cycles are committed every 1000
// records (TestDriverOptions::auto_commit = false + Commit()).
//
//   BM_ManyCustomers/50000/1000: 50,000 PAYMENTs over 1,000 customers (~100 s of
//     event time apart per customer on average), default limits.
//   BM_HotCustomer/N: N PAYMENTs of one customer, 1 s of event time apart (all
//     inside the rolling 24 h window), rate and amount limits raised so every
//     payment is approved (checked). With the per-customer history read and
//     rewritten on every request this got slower as N grew; now it must not.
//   BM_NoHistoryControl/N: the same requests, each from a different customer:
//     the same store traffic and store sizes without per-customer history.
//   BM_RateLimitedFlood, BM_PanScan*: see their sections below.
//
// Run: build-<name>/bench/payments_bench  (or --benchmark_filter=Hot)
// Counters: decisions_per_s = confirmations / wall time of piping and
// committing (driver creation, input encoding and reading outputs excluded);
// decisions_per_cpu_s = the same per second of process CPU time (steadier on
// a shared machine); last5k_per_s / last5k_per_cpu_s = the same over the last
// 5,000 records only (flat in N when the cost per request does not grow with
// the customer's history).
#include <benchmark/benchmark.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "payments/pan.h"
#include "payments/payments_config.h"
#include "payments/payments_topology.h"
#include "payments/validation.h"
#include "payments/v1/payments.pb.h"
#include "streams/state/key_value_store.h"
#include "streams/test_driver.h"

namespace payments {
namespace {

constexpr int kRecordsPerCommit = 1000;

struct Input {
  std::string key;
  std::string value;
  int64_t ts = 0;
};

// Fixed-seed LCG: the same workload on every run.
class Lcg {
 public:
  uint64_t Next(uint64_t bound) {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state_ >> 33) % bound;
  }

 private:
  uint64_t state_ = 7;
};

Input MakeInput(const std::string& customer, int64_t n, int64_t amount, const std::string& merchant,
                int64_t ts) {
  payments::v1::PaymentRequest r;
  r.set_idempotency_key("k" + std::to_string(n));
  r.set_customer_id(customer);
  r.set_merchant_id(merchant);
  r.set_kind(payments::v1::PAYMENT);
  r.set_amount_minor(amount);
  r.set_currency(n % 5 == 0 ? "USD" : "EUR");
  r.set_payment_method_token("tok_bench");
  r.set_created_at_ms(ts);
  return Input{customer, r.SerializeAsString(), ts};
}

// Process CPU time (every thread, RocksDB's background threads included), in
// seconds: on a shared machine it varies less than wall time.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Pipes `inputs`, committing every kRecordsPerCommit records, and counts the
// confirmations and approvals. Times (wall and process CPU) cover PipeInput
// and Commit only: driver creation and reading the outputs back are excluded.
// The `last_*` times cover the last kLastRecords records only.
constexpr size_t kLastRecords = 5000;

struct RunResult {
  int64_t confirmations = 0;
  int64_t approved = 0;
  double seconds = 0;
  double cpu_seconds = 0;
  double last_seconds = 0;
  double last_cpu_seconds = 0;
  std::string error;  // empty: success
};

RunResult Run(const PaymentsConfig& config, const std::vector<Input>& inputs) {
  RunResult result;
  auto topology = BuildPaymentsTopology(config);
  if (!topology.ok()) {
    result.error = topology.status().ToString();
    return result;
  }
  streams::TestDriverOptions options;
  options.auto_commit = false;
  auto driver = streams::TopologyTestDriver::Create(**topology, options);
  if (!driver.ok()) {
    result.error = driver.status().ToString();
    return result;
  }
  double wall = WallSeconds();
  double cpu = ProcessCpuSeconds();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Input& in = inputs[i];
    streams::Status s =
        (*driver)->PipeInput(config.requests_topic, in.key, in.value, streams::Timestamp(in.ts));
    const bool end_of_cycle = (i + 1) % kRecordsPerCommit == 0 || i + 1 == inputs.size();
    if (s.ok() && end_of_cycle) s = (*driver)->Commit();
    if (!s.ok()) {
      result.error = s.ToString();
      return result;
    }
    if (end_of_cycle) {
      const double wall_spent = WallSeconds() - wall;
      const double cpu_spent = ProcessCpuSeconds() - cpu;
      result.seconds += wall_spent;
      result.cpu_seconds += cpu_spent;
      if (i + 1 > inputs.size() - std::min(inputs.size(), kLastRecords)) {
        result.last_seconds += wall_spent;
        result.last_cpu_seconds += cpu_spent;
      }
      for (const auto& record : (*driver)->ReadOutput(config.confirmations_topic)) {
        payments::v1::PaymentConfirmation c;
        if (record.value && c.ParseFromString(*record.value)) {
          ++result.confirmations;
          result.approved += c.decision() == payments::v1::APPROVED ? 1 : 0;
        }
      }
      wall = WallSeconds();
      cpu = ProcessCpuSeconds();
    }
  }
  return result;
}

// Runs the workload once per benchmark iteration and reports decisions/s
// (wall), decisions per CPU second, and both for the last kLastRecords
// records. `all_approved`: fail unless every request was approved.
void RunBenchmark(benchmark::State& st, const PaymentsConfig& config,
                  const std::vector<Input>& inputs, bool all_approved) {
  const auto n = static_cast<int64_t>(inputs.size());
  RunResult total;
  for (auto _ : st) {
    RunResult r = Run(config, inputs);
    if (!r.error.empty()) {
      st.SkipWithError(r.error.c_str());
      return;
    }
    if (r.confirmations != n) {
      st.SkipWithError("not every request was confirmed");
      return;
    }
    if (all_approved && r.approved != n) {
      st.SkipWithError("not every payment was approved");
      return;
    }
    st.SetIterationTime(r.seconds);
    total.confirmations += r.confirmations;
    total.approved += r.approved;
    total.seconds += r.seconds;
    total.cpu_seconds += r.cpu_seconds;
    total.last_seconds += r.last_seconds;
    total.last_cpu_seconds += r.last_cpu_seconds;
  }
  const auto confirmations = static_cast<double>(total.confirmations);
  const auto last = static_cast<double>(std::min<int64_t>(n, kLastRecords)) *
                    static_cast<double>(st.iterations());
  st.counters["decisions_per_s"] = confirmations / total.seconds;
  st.counters["decisions_per_cpu_s"] = confirmations / total.cpu_seconds;
  st.counters["last5k_per_s"] = last / total.last_seconds;
  st.counters["last5k_per_cpu_s"] = last / total.last_cpu_seconds;
  st.counters["approved_pct"] = 100.0 * static_cast<double>(total.approved) / confirmations;
  st.SetItemsProcessed(total.confirmations);
}

// Args: requests, customers.
void BM_ManyCustomers(benchmark::State& st) {
  const int64_t n = st.range(0);
  const int64_t customers = st.range(1);
  Lcg rng;
  std::vector<Input> inputs;
  inputs.reserve(static_cast<size_t>(n));
  int64_t ts = 1'700'000'000'000;
  for (int64_t i = 0; i < n; ++i) {
    ts += 1 + static_cast<int64_t>(rng.Next(200));  // ~100 ms apart: ~100 s per customer
    const std::string customer = "cust-" + std::to_string(rng.Next(customers));
    inputs.push_back(MakeInput(customer, i, 100 + static_cast<int64_t>(rng.Next(900)),
                               "merchant-" + std::to_string(rng.Next(20)), ts));
  }
  RunBenchmark(st, PaymentsConfig{}, inputs, /*all_approved=*/false);
}
BENCHMARK(BM_ManyCustomers)
    ->Args({50'000, 1'000})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

// The hot customer's workload: N PAYMENTs 1 s apart, limits raised so every
// one is approved. `one_customer` false: every request from another customer
// (the same store traffic without per-customer history, as a control).
std::vector<Input> HotWorkload(int64_t n, bool one_customer) {
  Lcg rng;
  std::vector<Input> inputs;
  inputs.reserve(static_cast<size_t>(n));
  const int64_t t0 = 1'700'000'000'000;
  for (int64_t i = 0; i < n; ++i) {
    // 1 s apart: 20,000 requests span 5.6 h, all inside the 24 h window.
    inputs.push_back(MakeInput(one_customer ? "hot-customer" : "customer-" + std::to_string(i), i,
                               100 + static_cast<int64_t>(rng.Next(100)),
                               "merchant-" + std::to_string(rng.Next(3)), t0 + i * 1000));
  }
  return inputs;
}

PaymentsConfig RaisedLimits() {
  PaymentsConfig config;
  config.rate_limit_per_minute = 1'000'000;
  config.rate_limit_burst = 1'000'000;
  config.daily_amount_limit_minor = 1'000'000'000'000;
  return config;
}

// Args: requests of the one customer.
void BM_HotCustomer(benchmark::State& st) {
  RunBenchmark(st, RaisedLimits(), HotWorkload(st.range(0), true), /*all_approved=*/true);
}
BENCHMARK(BM_HotCustomer)
    ->Arg(5'000)
    ->Arg(20'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

// Control for BM_HotCustomer: the same requests, each from another customer.
void BM_NoHistoryControl(benchmark::State& st) {
  RunBenchmark(st, RaisedLimits(), HotWorkload(st.range(0), false), /*all_approved=*/true);
}
BENCHMARK(BM_NoHistoryControl)
    ->Arg(20'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();


// ---------------------------------------------------------------- state under a flood
//
//   BM_RateLimitedFlood/1000000: one customer spends its burst (20 approvals),
//     then sends 1,000,000 PAYMENTs with distinct idempotency keys within one
//     second of event time: every one is RATE_LIMITED (checked). 100 other
//     customers hold some state. Counters: live entries and bytes (key + value)
//     of the three stores, and changelog records, before and after the flood.
//     Before this version each of those declines stored an idempotency record.

struct StateSize {
  int64_t entries = 0;
  int64_t bytes = 0;
  int64_t changelog_records = 0;
  std::map<std::string, int64_t> entries_by_store;
};

StateSize MeasureState(streams::TopologyTestDriver& driver) {
  StateSize size;
  for (std::string_view name : {kIdempotencyStoreName, kPaymentsStoreName, kCustomersStoreName}) {
    const std::string store_name(name);
    int64_t entries = 0;
    if (streams::state::KeyValueStore* store = driver.GetStore(store_name)) {
      auto it = store->Range("", "");
      if (it.ok()) {
        for (auto& i = *it; i->Valid(); i->Next()) {
          ++entries;
          size.bytes += static_cast<int64_t>(i->key().size() + i->value().size());
        }
      }
    }
    size.entries += entries;
    size.entries_by_store[store_name] = entries;
    size.changelog_records += static_cast<int64_t>(
        driver.AllRecords(streams::Topology::ChangelogTopic("test-app", store_name)).size());
  }
  return size;
}

void BM_RateLimitedFlood(benchmark::State& st) {
  const int64_t flood = st.range(0);
  const PaymentsConfig config;  // defaults: burst 20, 60 per minute
  const int64_t t0 = 1'700'000'000'000;
  StateSize before;
  StateSize after;
  int64_t rate_limited = 0;
  double seconds = 0;
  for (auto _ : st) {
    auto topology = BuildPaymentsTopology(config);
    if (!topology.ok()) {
      st.SkipWithError(topology.status().ToString().c_str());
      return;
    }
    streams::TestDriverOptions options;
    options.auto_commit = false;
    auto driver = streams::TopologyTestDriver::Create(**topology, options);
    if (!driver.ok()) {
      st.SkipWithError(driver.status().ToString().c_str());
      return;
    }
    auto& d = **driver;
    auto pipe = [&](const Input& in) {
      return d.PipeInput(config.requests_topic, in.key, in.value, streams::Timestamp(in.ts));
    };
    // Some state: 100 other customers, and the flooding customer's burst.
    streams::Status warm_up = streams::Status::Ok();
    for (int64_t i = 0; i < 100 && warm_up.ok(); ++i) {
      warm_up = pipe(MakeInput("other-" + std::to_string(i), i, 500, "merchant-1", t0));
    }
    for (int64_t i = 0; i < config.rate_limit_burst && warm_up.ok(); ++i) {
      warm_up = pipe(MakeInput("flooder", 1000 + i, 500, "merchant-1", t0));
    }
    if (warm_up.ok()) warm_up = d.Commit();
    if (!warm_up.ok()) {
      st.SkipWithError(warm_up.ToString().c_str());
      return;
    }
    d.ReadOutput(config.confirmations_topic);
    before = MeasureState(d);

    const double wall = WallSeconds();
    for (int64_t i = 0; i < flood; ++i) {
      // 1,000 requests per millisecond: the bucket gets no whole token back.
      streams::Status s = pipe(MakeInput("flooder", 10'000 + i, 500, "merchant-1", t0 + i / 1000));
      if (s.ok() && (i + 1) % kRecordsPerCommit == 0) {
        s = d.Commit();
        for (const auto& record : d.ReadOutput(config.confirmations_topic)) {
          payments::v1::PaymentConfirmation c;
          if (record.value && c.ParseFromString(*record.value) &&
              c.decline_code() == "RATE_LIMITED") {
            ++rate_limited;
          }
        }
      }
      if (!s.ok()) {
        st.SkipWithError(s.ToString().c_str());
        return;
      }
    }
    if (streams::Status s = d.Commit(); !s.ok()) {
      st.SkipWithError(s.ToString().c_str());
      return;
    }
    seconds = WallSeconds() - wall;
    st.SetIterationTime(seconds);
    after = MeasureState(d);
  }
  if (rate_limited != flood) {
    st.SkipWithError("not every flood request was rate limited");
    return;
  }
  st.counters["entries_before"] = static_cast<double>(before.entries);
  st.counters["entries_after"] = static_cast<double>(after.entries);
  st.counters["bytes_before"] = static_cast<double>(before.bytes);
  st.counters["bytes_after"] = static_cast<double>(after.bytes);
  st.counters["changelog_before"] = static_cast<double>(before.changelog_records);
  st.counters["changelog_after"] = static_cast<double>(after.changelog_records);
  st.counters["decisions_per_s"] = static_cast<double>(flood) / seconds;
  std::printf(
      "BM_RateLimitedFlood: %lld rate-limited requests; live entries (idempotency/payments/"
      "customers) before %lld/%lld/%lld = %lld (%lld bytes), after %lld/%lld/%lld = %lld (%lld "
      "bytes); changelog records before %lld, after %lld\n",
      static_cast<long long>(rate_limited),
      static_cast<long long>(before.entries_by_store["idempotency"]),
      static_cast<long long>(before.entries_by_store["payments"]),
      static_cast<long long>(before.entries_by_store["customers"]),
      static_cast<long long>(before.entries), static_cast<long long>(before.bytes),
      static_cast<long long>(after.entries_by_store["idempotency"]),
      static_cast<long long>(after.entries_by_store["payments"]),
      static_cast<long long>(after.entries_by_store["customers"]),
      static_cast<long long>(after.entries), static_cast<long long>(after.bytes),
      static_cast<long long>(before.changelog_records),
      static_cast<long long>(after.changelog_records));
}
BENCHMARK(BM_RateLimitedFlood)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

// ---------------------------------------------------------------- PAN detector
//
//   BM_PanScanTypicalRequest: FindPanField over a typical valid request (ids,
//     token, two metadata entries): the cost every request pays.
//   BM_PanScanDigitHeavy: ContainsPan over digit-heavy strings without a card
//     number (dates, phone numbers, IBANs, order ids, a 20-digit id, amounts).
//   BM_PanScanWithPan: ContainsPan over strings that hold a card number in
//     the formats the detector recognises.
// Counter time_per_item: wall time per request / string.

payments::v1::PaymentRequest TypicalRequest() {
  payments::v1::PaymentRequest r;
  r.set_idempotency_key("kabcx00012345");
  r.set_customer_id("cust-000123");
  r.set_merchant_id("m-0042");
  r.set_kind(payments::v1::PAYMENT);
  r.set_amount_minor(12345);
  r.set_currency("EUR");
  r.set_payment_method_token("tok_qwertyuiopasdfgh");
  (*r.mutable_metadata())["channel"] = "web";
  (*r.mutable_metadata())["order"] = "ord-123456";
  return r;
}

// Wall time per item (shown in seconds with an SI prefix, e.g. 130n = 130 ns).
benchmark::Counter NanosPerItem(double items) {
  return benchmark::Counter(items, static_cast<benchmark::Counter::Flags>(
                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert));
}

void BM_PanScanTypicalRequest(benchmark::State& st) {
  const payments::v1::PaymentRequest request = TypicalRequest();
  int64_t found = 0;
  for (auto _ : st) {
    auto field = FindPanField(request, request.customer_id());
    found += field.has_value() ? 1 : 0;
    benchmark::DoNotOptimize(field);
  }
  if (found != 0) st.SkipWithError("a typical request was flagged");
  st.SetItemsProcessed(st.iterations());
  st.counters["time_per_item"] = NanosPerItem(static_cast<double>(st.iterations()));
}
BENCHMARK(BM_PanScanTypicalRequest);

void ScanStrings(benchmark::State& st, const std::vector<std::string>& strings, bool expect_pan) {
  int64_t mismatches = 0;
  for (auto _ : st) {
    for (const std::string& s : strings) {
      const bool pan = ContainsPan(s);
      mismatches += pan != expect_pan ? 1 : 0;
      benchmark::DoNotOptimize(pan);
    }
  }
  if (mismatches != 0) st.SkipWithError("unexpected detector result");
  const auto items = static_cast<double>(st.iterations() * strings.size());
  st.SetItemsProcessed(static_cast<int64_t>(items));
  st.counters["time_per_item"] = NanosPerItem(items);
}

void BM_PanScanDigitHeavy(benchmark::State& st) {
  ScanStrings(st,
              {"order 2024-01-15 12345678 qty 3", "+1 555 0100 ext. 42",
               "DE89 3704 0044 0532 0130 00", "ref 41111111111111111315 end",
               "invoice 2024/0001/000123", "10.00 20.00 30.00 40.00", "2024-01-15T10:30:00.123Z",
               "ord-123456", "tel 030 1234 5678", "12345678901234567890123"},
              false);
}
BENCHMARK(BM_PanScanDigitHeavy);

void BM_PanScanWithPan(benchmark::State& st) {
  ScanStrings(st,
              {"4111111111111111", "card 4111 1111 1111 1111 ok", "4111-1111-1111-1111",
               "x5555555555554444y", "378282246310005"},
              true);
}
BENCHMARK(BM_PanScanWithPan);

}  // namespace
}  // namespace payments

BENCHMARK_MAIN();
