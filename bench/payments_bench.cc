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
//   BM_DecisionMix/N/C, BM_DecisionMix1M, BM_Restore1M: the realistic mix
//     through a StreamTask as the runtime drives it; see their section below.
//     BM_DecisionMix/300000/0 is the headline figure (decisions per CPU second).
//
// Run: build-<name>/bench/payments_bench  (or --benchmark_filter=Hot)
// Counters: decisions_per_s = confirmations / wall time of piping and
// committing (driver creation, input encoding and reading outputs excluded);
// decisions_per_cpu_s = the same per second of process CPU time (steadier on
// a shared machine); last5k_per_s / last5k_per_cpu_s = the same over the last
// 5,000 records only (flat in N when the cost per request does not grow with
// the customer's history).
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "payments/pan.h"
#include "payments/payments_config.h"
#include "payments/payments_topology.h"
#include "payments/v1/payments.pb.h"
#include "payments/validation.h"
#include "streams/clock.h"
#include "streams/record_collector.h"
#include "streams/state/key_value_store.h"
#include "streams/state/state_resources.h"
#include "streams/stream_task.h"
#include "streams/test_driver.h"
#include "tools/request_generator.h"

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

// ---------------------------------------------------------------- the realistic mix
//
// The decision topology alone, driven the way the runtime's StreamThread
// drives a task (no broker, no TopologyTestDriver): one StreamTask with the
// default StateOptions (the runtime's defaults: 64 MiB block cache, 64 MiB
// write buffers, 8 MiB per store), records handed over in polls of
// max.poll.records = 500, and a cycle committed when commit.interval.ms = 100
// (the exactly_once_v2 default) of wall time has passed since the cycle
// started, checked after every poll (StreamThread::CommitDue), or every C
// records when C > 0 (deterministic, for callgrind). A commit is the
// runtime's: PrepareCommit (TTL purge + changelog records to the collector),
// then the "Kafka commit" (the collector numbers the changelog records per
// partition as the broker would), then StreamTask::Commit with the changelog
// end offsets (staged state + checkpoint in one WriteBatch).
//
// Requests: payments-loadgen's RequestGenerator (deterministic) with 10,000
// customers, 5% exact duplicates (replays), 1% invalid, 2% refunds, the rest
// ordinary PAYMENTs, 10 ms of event time apart.
//
// CPU time: the whole process (every thread, RocksDB's background flushes and
// compactions included, clock_gettime(CLOCK_PROCESS_CPUTIME_ID)) from the
// first record to the last commit, minus the main thread's CPU time spent
// generating and encoding the requests (CLOCK_THREAD_CPUTIME_ID around it).
// Counters: decisions_per_cpu_s, decisions_per_s (wall), cycles and
// records_per_cycle, changelog_records (sent to the collector),
// peak_rss_mib (VmHWM, reset at the start of the benchmark).
//
//   BM_DecisionMix/300000/0: 300,000 requests, 100 ms cycles (the headline).
//   BM_DecisionMix/300000/1000: the same, a commit every 1,000 records.
//   BM_DecisionMix/100000/1000: a shorter run of that, for quick comparisons.
//   BM_DecisionMix1M: 1,050,000 requests (about 1,000,000 idempotency keys),
//     100 ms cycles; writes the changelog to a temporary file for BM_Restore1M.
//   BM_Restore1M: restores a new task from that changelog in batches of
//     restore.batch.records = 10,000 (as the runtime's changelog reader does),
//     reading the file excluded from the CPU time; records_per_s (wall) and
//     records_per_cpu_s over all changelog records, and peak RSS of the restore.

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Resets the peak RSS (VmHWM) of the process (Linux: clear_refs "5").
void ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

// VmHWM in MiB, or 0 when unknown.
double PeakRssMib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

constexpr int64_t kMaxPollRecords = 500;
constexpr double kCommitIntervalSeconds = 0.100;
constexpr size_t kRestoreBatchRecords = 10'000;

// Counts the confirmations and numbers the records per partition as a broker
// would (the offsets the runtime gets back as acked changelog end offsets).
// With `changelog_out`, changelog records are appended to it as
// <u32 store len><store><u32 key len><key><u8 has value>[<u32 len><value>]<i64 ts>.
class BenchCollector final : public streams::RecordCollector {
 public:
  BenchCollector(std::string confirmations_topic, std::ofstream* changelog_out)
      : confirmations_topic_(std::move(confirmations_topic)), changelog_out_(changelog_out) {}

  streams::Result<int32_t> PartitionCount(const std::string&) override { return 1; }

  streams::Status Send(streams::ProducedRecord record) override {
    const int32_t partition = record.partition ? record.partition->value() : 0;
    int64_t& end = ends_[streams::TopicPartition{record.topic, streams::Partition(partition)}];
    ++end;
    if (record.topic == confirmations_topic_) {
      ++confirmations_;
    } else if (record.topic.ends_with("-changelog")) {
      ++changelog_records_;
      if (changelog_out_ != nullptr) WriteChangelog(record);
    }
    bytes_ += record.value ? record.value->size() : 0;
    return streams::Status::Ok();
  }

  // The changelog end offsets of the task's stores (as acked by the broker).
  std::map<std::string, streams::Offset> ChangelogEnds(const std::string& application_id,
                                                       const streams::Topology& topology) const {
    std::map<std::string, streams::Offset> out;
    for (const auto& spec : topology.stores()) {
      auto it = ends_.find(streams::TopicPartition{
          streams::Topology::ChangelogTopic(application_id, spec.name), streams::Partition(0)});
      if (it != ends_.end()) out.emplace(spec.name, streams::Offset(it->second));
    }
    return out;
  }

  int64_t confirmations() const { return confirmations_; }
  int64_t changelog_records() const { return changelog_records_; }

 private:
  void WriteU32(uint32_t v) { changelog_out_->write(reinterpret_cast<const char*>(&v), 4); }
  void WriteBytes(std::string_view s) {
    WriteU32(static_cast<uint32_t>(s.size()));
    changelog_out_->write(s.data(), static_cast<std::streamsize>(s.size()));
  }
  void WriteChangelog(const streams::ProducedRecord& record) {
    // "<app>-<store>-changelog" -> store
    std::string_view topic = record.topic;
    topic.remove_suffix(std::string_view("-changelog").size());
    topic.remove_prefix(topic.find('-') + 1);
    WriteBytes(topic);
    WriteBytes(record.key.value_or(""));
    const char has_value = record.value ? 1 : 0;
    changelog_out_->write(&has_value, 1);
    if (record.value) WriteBytes(*record.value);
    const int64_t ts = record.timestamp.millis();
    changelog_out_->write(reinterpret_cast<const char*>(&ts), 8);
  }

  std::string confirmations_topic_;
  std::ofstream* changelog_out_;
  std::map<streams::TopicPartition, int64_t> ends_;
  int64_t confirmations_ = 0;
  int64_t changelog_records_ = 0;
  uint64_t bytes_ = 0;
};

// A fresh temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "payments-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct MixResult {
  int64_t requests = 0;
  int64_t confirmations = 0;
  int64_t cycles = 0;
  int64_t changelog_records = 0;
  double wall_seconds = 0;
  double cpu_seconds = 0;
  double peak_rss_mib = 0;
  uint64_t idempotency_entries = 0;
  std::string error;
};

// Runs `requests` requests of the mix through one task in `directory`;
// commit every `records_per_cycle` records, or every 100 ms when 0.
MixResult RunMix(int64_t requests, int64_t records_per_cycle, const std::string& directory,
                 std::ofstream* changelog_out) {
  MixResult result;
  ResetPeakRss();
  const PaymentsConfig config;
  auto topology = BuildPaymentsTopology(config);
  if (!topology.ok()) {
    result.error = topology.status().ToString();
    return result;
  }
  auto resources = streams::state::StateResources::Create(streams::state::StateOptions{});
  if (!resources.ok()) {
    result.error = resources.status().ToString();
    return result;
  }
  tools::GeneratorOptions options;
  options.count = static_cast<uint64_t>(requests);
  options.customers = 10'000;
  options.shares.duplicates = 0.05;
  options.shares.invalid = 0.01;
  options.shares.refunds = 0.02;
  options.seed = 12;
  auto generator = tools::RequestGenerator::Create(options);
  if (!generator.ok()) {
    result.error = generator.status().ToString();
    return result;
  }
  BenchCollector collector(config.confirmations_topic, changelog_out);
  streams::ManualClock clock(streams::Timestamp(1'700'000'000'000));
  const std::string application_id = "paymentd";
  streams::TaskConfig task_config;
  task_config.application_id = application_id;
  task_config.state_directory = directory;
  auto task = streams::StreamTask::Create(**topology, streams::TaskId{streams::Partition(0)},
                                          task_config, resources->get(), &collector, &clock);
  if (!task.ok()) {
    result.error = task.status().ToString();
    return result;
  }
  streams::StreamTask& t = **task;
  if (streams::Status s = t.InitializeProcessors(); !s.ok()) {
    result.error = s.ToString();
    return result;
  }

  auto commit = [&]() -> streams::Status {
    STREAMS_RETURN_IF_ERROR(t.PrepareCommit());
    ++result.cycles;
    return t.Commit(collector.ChangelogEnds(application_id, **topology));
  };

  std::vector<streams::ConsumedRecord> poll;
  poll.reserve(kMaxPollRecords);
  int64_t offset = 0;
  int64_t in_cycle = 0;
  double generate_cpu = 0;
  const double wall_start = WallSeconds();
  const double cpu_start = ProcessCpuSeconds();
  double cycle_start = wall_start;
  while (!generator->Done()) {
    // "Poll": generating and encoding the records is not the topology's work.
    const double gen_start = ThreadCpuSeconds();
    poll.clear();
    const int64_t batch = records_per_cycle > 0
                              ? std::min(kMaxPollRecords, records_per_cycle - in_cycle)
                              : kMaxPollRecords;
    for (int64_t i = 0; i < batch && !generator->Done(); ++i) {
      tools::GeneratedRequest g = generator->Next();
      streams::ConsumedRecord& r = poll.emplace_back();
      r.topic = config.requests_topic;
      r.partition = streams::Partition(0);
      r.offset = streams::Offset(offset++);
      r.timestamp = streams::Timestamp(g.timestamp_ms);
      r.key = std::move(g.record_key);
      r.value = tools::SerializeRequest(g.request);
    }
    generate_cpu += ThreadCpuSeconds() - gen_start;

    for (const streams::ConsumedRecord& r : poll) {
      if (streams::Status s = t.Process(r); !s.ok()) {
        result.error = s.ToString();
        return result;
      }
    }
    in_cycle += static_cast<int64_t>(poll.size());
    result.requests += static_cast<int64_t>(poll.size());
    const double now = WallSeconds();
    const bool due = records_per_cycle > 0 ? in_cycle >= records_per_cycle
                                           : now - cycle_start >= kCommitIntervalSeconds;
    if (due || generator->Done()) {
      if (streams::Status s = commit(); !s.ok()) {
        result.error = s.ToString();
        return result;
      }
      in_cycle = 0;
      cycle_start = WallSeconds();
    }
  }
  result.wall_seconds = WallSeconds() - wall_start;
  result.cpu_seconds = ProcessCpuSeconds() - cpu_start - generate_cpu;
  result.peak_rss_mib = PeakRssMib();
  result.confirmations = collector.confirmations();
  result.changelog_records = collector.changelog_records();
  if (auto* store = t.GetStore(kIdempotencyStoreName)) {
    result.idempotency_entries = store->ApproximateNumEntries();
  }
  if (streams::Status s = t.Close(/*clean=*/true); !s.ok()) result.error = s.ToString();
  return result;
}

void ReportMix(benchmark::State& st, const MixResult& r) {
  if (!r.error.empty()) {
    st.SkipWithError(r.error.c_str());
    return;
  }
  if (r.confirmations != r.requests) {
    st.SkipWithError("not every request was confirmed");
    return;
  }
  st.SetIterationTime(r.wall_seconds);
  const auto n = static_cast<double>(r.confirmations);
  st.counters["decisions_per_cpu_s"] = n / r.cpu_seconds;
  st.counters["decisions_per_s"] = n / r.wall_seconds;
  st.counters["cycles"] = static_cast<double>(r.cycles);
  st.counters["records_per_cycle"] = n / static_cast<double>(r.cycles);
  st.counters["changelog_records"] = static_cast<double>(r.changelog_records);
  st.counters["peak_rss_mib"] = r.peak_rss_mib;
  st.SetItemsProcessed(r.confirmations);
}

// Args: requests, records per cycle (0: a cycle per 100 ms of wall time).
void BM_DecisionMix(benchmark::State& st) {
  for (auto _ : st) {
    TempDir dir;
    ReportMix(st, RunMix(st.range(0), st.range(1), dir.path() + "/0_0", nullptr));
  }
}
BENCHMARK(BM_DecisionMix)
    ->Args({300'000, 0})
    ->Args({300'000, 1000})
    ->Args({100'000, 1000})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

// The changelog of BM_DecisionMix1M, for BM_Restore1M.
std::string& ChangelogFile() {
  static std::string path;
  return path;
}
TempDir& SharedDir() {
  static TempDir dir;
  return dir;
}

void BM_DecisionMix1M(benchmark::State& st) {
  for (auto _ : st) {
    TempDir dir;
    ChangelogFile() = SharedDir().path() + "/changelog.bin";
    std::ofstream out(ChangelogFile(), std::ios::binary | std::ios::trunc);
    MixResult r = RunMix(1'050'000, 0, dir.path() + "/0_0", &out);
    out.close();
    ReportMix(st, r);
    st.counters["idempotency_entries"] = static_cast<double>(r.idempotency_entries);
  }
}
BENCHMARK(BM_DecisionMix1M)->Iterations(1)->Unit(benchmark::kMillisecond)->UseManualTime();

bool ReadU32(std::ifstream& in, uint32_t* v) {
  return static_cast<bool>(in.read(reinterpret_cast<char*>(v), 4));
}
bool ReadBytes(std::ifstream& in, std::string* s) {
  uint32_t n = 0;
  if (!ReadU32(in, &n)) return false;
  s->resize(n);
  return static_cast<bool>(in.read(s->data(), n));
}
// The next changelog record of the file, or false at its end.
bool ReadChangelog(std::ifstream& in, streams::state::ChangelogRecord* record) {
  if (!ReadBytes(in, &record->store) || !ReadBytes(in, &record->key)) return false;
  char has_value = 0;
  if (!in.read(&has_value, 1)) return false;
  if (has_value != 0) {
    record->value.emplace();
    if (!ReadBytes(in, &*record->value)) return false;
  } else {
    record->value.reset();
  }
  int64_t ts = 0;
  if (!in.read(reinterpret_cast<char*>(&ts), 8)) return false;
  record->timestamp = streams::Timestamp(ts);
  return true;
}

void BM_Restore1M(benchmark::State& st) {
  if (ChangelogFile().empty()) {
    st.SkipWithError("needs BM_DecisionMix1M first (its changelog)");
    return;
  }
  for (auto _ : st) {
    ResetPeakRss();
    TempDir dir;
    const PaymentsConfig config;
    auto topology = BuildPaymentsTopology(config);
    auto resources = streams::state::StateResources::Create(streams::state::StateOptions{});
    BenchCollector collector(config.confirmations_topic, nullptr);
    streams::ManualClock clock(streams::Timestamp(0));
    streams::TaskConfig task_config;
    task_config.application_id = "paymentd";
    task_config.state_directory = dir.path() + "/0_0";
    auto task = streams::StreamTask::Create(**topology, streams::TaskId{streams::Partition(0)},
                                            task_config, resources->get(), &collector, &clock);
    if (!task.ok()) {
      st.SkipWithError(task.status().ToString().c_str());
      return;
    }
    // The changelog reader's batches: per store, consecutive records.
    std::ifstream in(ChangelogFile(), std::ios::binary);
    std::map<std::string, std::vector<streams::state::ChangelogRecord>> batches;
    std::map<std::string, int64_t> next_offset;
    int64_t restored = 0;
    double read_cpu = 0;
    const double wall_start = WallSeconds();
    const double cpu_start = ProcessCpuSeconds();
    auto apply = [&](const std::string& store) -> streams::Status {
      auto& batch = batches[store];
      if (batch.empty()) return streams::Status::Ok();
      next_offset[store] += static_cast<int64_t>(batch.size());
      restored += static_cast<int64_t>(batch.size());
      STREAMS_RETURN_IF_ERROR(
          (*task)->ApplyRestoreBatch(store, batch, streams::Offset(next_offset[store])));
      batch.clear();
      return streams::Status::Ok();
    };
    streams::Status status = streams::Status::Ok();
    while (status.ok()) {
      const double read_start = ThreadCpuSeconds();
      streams::state::ChangelogRecord record;
      const bool more = ReadChangelog(in, &record);
      std::string store = record.store;
      if (more) batches[store].push_back(std::move(record));
      read_cpu += ThreadCpuSeconds() - read_start;
      if (!more) break;
      if (batches[store].size() >= kRestoreBatchRecords) status = apply(store);
    }
    for (auto& [store, batch] : batches) {
      if (status.ok()) status = apply(store);
    }
    const double wall = WallSeconds() - wall_start;
    const double cpu = ProcessCpuSeconds() - cpu_start - read_cpu;
    if (!status.ok()) {
      st.SkipWithError(status.ToString().c_str());
      return;
    }
    uint64_t idempotency = 0;
    if (auto* store = (*task)->GetStore(kIdempotencyStoreName)) {
      idempotency = store->ApproximateNumEntries();
    }
    st.SetIterationTime(wall);
    st.counters["records"] = static_cast<double>(restored);
    st.counters["records_per_s"] = static_cast<double>(restored) / wall;
    st.counters["records_per_cpu_s"] = static_cast<double>(restored) / cpu;
    st.counters["idempotency_entries"] = static_cast<double>(idempotency);
    st.counters["peak_rss_mib"] = PeakRssMib();
  }
}
BENCHMARK(BM_Restore1M)->Iterations(1)->Unit(benchmark::kMillisecond)->UseManualTime();

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
  ScanStrings(
      st,
      {"order 2024-01-15 12345678 qty 3", "+1 555 0100 ext. 42", "DE89 3704 0044 0532 0130 00",
       "ref 41111111111111111315 end", "invoice 2024/0001/000123", "10.00 20.00 30.00 40.00",
       "2024-01-15T10:30:00.123Z", "ord-123456", "tel 030 1234 5678", "12345678901234567890123"},
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
