// Throughput of the state library: staged puts committed in cycles of N writes,
// point reads of committed keys, and prefix scans over staged + committed data.
//
// Run: state_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "streams/state/task_state.h"

namespace streams::state {
namespace {

struct Fixture {
  explicit Fixture(StoreKind kind) {
    std::string pattern = (std::filesystem::temp_directory_path() / "state_bench_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    dir = pattern;
    resources = std::move(StateResources::Create(StateOptions{})).value();
    StoreSpec spec;
    spec.name = "accounts";
    spec.kind = kind;
    auto opened = TaskState::Open(dir + "/task", {spec}, resources.get());
    if (!opened.ok()) std::abort();
    state = std::move(opened).value();
    store = state->GetStore("accounts");
  }
  ~Fixture() {
    state.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir;
  std::unique_ptr<StateResources> resources;
  std::unique_ptr<TaskState> state;
  KeyValueStore* store = nullptr;
};

std::string Key(int64_t i) {
  char buf[32];
  snprintf(buf, sizeof(buf), "acct:%012lld", static_cast<long long>(i));
  return buf;
}

// Args: store kind (0 persistent, 1 in-memory), writes per commit.
void BM_PutCommit(benchmark::State& st) {
  Fixture f(st.range(0) == 0 ? StoreKind::kPersistent : StoreKind::kInMemory);
  const int64_t per_commit = st.range(1);
  const std::string value(100, 'v');
  int64_t i = 0;
  for (auto _ : st) {
    for (int64_t n = 0; n < per_commit; ++n, ++i) {
      if (!f.store->Put(Key(i % 100000), value).ok()) st.SkipWithError("put failed");
    }
    benchmark::DoNotOptimize(f.state->TakeChangelog());
    Checkpoint cp;
    cp.input_offsets.emplace(TopicPartition{"payments", Partition(0)}, Offset(i));
    if (!f.state->Commit(cp).ok()) st.SkipWithError("commit failed");
  }
  st.SetItemsProcessed(st.iterations() * per_commit);
}
BENCHMARK(BM_PutCommit)->Args({0, 100})->Args({0, 1000})->Args({1, 100})->Args({1, 1000});

void BM_GetCommitted(benchmark::State& st) {
  Fixture f(st.range(0) == 0 ? StoreKind::kPersistent : StoreKind::kInMemory);
  constexpr int kKeys = 50000;
  for (int i = 0; i < kKeys; ++i) (void)f.store->Put(Key(i), std::string(100, 'v'));
  if (!f.state->Commit(Checkpoint{}).ok()) st.SkipWithError("commit failed");
  (void)f.state->TakeChangelog();
  int64_t i = 0;
  for (auto _ : st) {
    auto r = f.store->Get(Key((i++ * 7919) % kKeys));
    benchmark::DoNotOptimize(r);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_GetCommitted)->Arg(0)->Arg(1);

// Prefix scan of 100 committed entries with 10 staged overwrites.
void BM_PrefixScan(benchmark::State& st) {
  Fixture f(st.range(0) == 0 ? StoreKind::kPersistent : StoreKind::kInMemory);
  for (int p = 0; p < 100; ++p) {
    for (int k = 0; k < 100; ++k) {
      (void)f.store->Put("p" + std::to_string(p) + ":" + std::to_string(k), "v");
    }
  }
  if (!f.state->Commit(Checkpoint{}).ok()) st.SkipWithError("commit failed");
  for (int k = 0; k < 100; k += 10) (void)f.store->Put("p42:" + std::to_string(k), "staged");
  int64_t entries = 0;
  for (auto _ : st) {
    auto it = f.store->PrefixScan("p42:");
    for (; (*it)->Valid(); (*it)->Next()) ++entries;
  }
  st.SetItemsProcessed(entries);
}
BENCHMARK(BM_PrefixScan)->Arg(0)->Arg(1);

}  // namespace
}  // namespace streams::state

BENCHMARK_MAIN();
