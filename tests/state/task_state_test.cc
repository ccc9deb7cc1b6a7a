// TaskState: atomic commit of stores and checkpoint, abort, crash recovery,
// locking, restore, column families of unknown stores, changelog records.
#include "streams/state/task_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "state_test_util.h"

namespace streams::state {
namespace {

using testing::Drain;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using testing::TempDir;

std::vector<StoreSpec> ThreeStores() {
  return {testing::Spec("balances"), testing::Spec("dedup"),
          testing::Spec("cache", StoreKind::kInMemory)};
}

Checkpoint MakeCheckpoint(int64_t input_offset, int64_t changelog_offset, int64_t stream_time) {
  Checkpoint cp;
  cp.input_offsets.emplace(TopicPartition{"payments", Partition(3)}, Offset(input_offset));
  cp.input_offsets.emplace(TopicPartition{"refunds", Partition(3)}, Offset(input_offset + 7));
  cp.changelog_offsets.emplace("balances", Offset(changelog_offset));
  cp.changelog_offsets.emplace("dedup", Offset(changelog_offset + 1));
  cp.changelog_offsets.emplace("cache", Offset(99));  // in-memory: never checkpointed
  cp.stream_time = Timestamp(stream_time);
  return cp;
}

class TaskStateTest : public ::testing::Test {
 protected:
  void SetUp() override { resources_ = testing::SmallResources(); }

  std::unique_ptr<TaskState> OpenOrDie(const std::vector<StoreSpec>& specs,
                                       const std::string& dir = "") {
    auto opened = TaskState::Open(dir.empty() ? dir_.Sub("task") : dir, specs, resources_.get());
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  static std::optional<std::string> Get(TaskState* state, std::string_view store,
                                        std::string_view key) {
    KeyValueStore* s = state->GetStore(store);
    EXPECT_NE(s, nullptr) << store;
    if (s == nullptr) return std::nullopt;
    auto r = s->Get(key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  TempDir dir_;
  std::unique_ptr<StateResources> resources_;
};

TEST_F(TaskStateTest, NewDatabaseHasEmptyCheckpoint) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->checkpoint(), Checkpoint{});
  EXPECT_EQ(state->stream_time(), Timestamp(0));
  EXPECT_FALSE(state->HasStagedWrites());
  EXPECT_EQ(state->specs().size(), 3u);
  EXPECT_NE(state->GetStore("balances"), nullptr);
  EXPECT_EQ(state->GetStore("nope"), nullptr);
}

TEST_F(TaskStateTest, CommitAppliesAllStoresAndCheckpointTogether) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  ASSERT_OK(state->GetStore("balances")->Put("acct-1", "100"));
  ASSERT_OK(state->GetStore("dedup")->Put("tx-1", ""));
  ASSERT_OK(state->GetStore("cache")->Put("c", "x"));
  ASSERT_OK(state->Commit(MakeCheckpoint(42, 10, 5000)));

  Checkpoint expected = MakeCheckpoint(42, 10, 5000);
  expected.changelog_offsets.erase("cache");
  EXPECT_EQ(state->checkpoint(), expected);
  EXPECT_EQ(state->stream_time(), Timestamp(5000));
  EXPECT_EQ(Get(state.get(), "cache", "c"), "x");

  state.reset();
  state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->checkpoint(), expected);
  EXPECT_EQ(state->stream_time(), Timestamp(5000));
  EXPECT_EQ(Get(state.get(), "balances", "acct-1"), "100");
  EXPECT_EQ(Get(state.get(), "dedup", "tx-1"), "");
  EXPECT_EQ(Get(state.get(), "cache", "c"), std::nullopt);  // in-memory: restored from changelog
}

TEST_F(TaskStateTest, SecondCommitReplacesCheckpoint) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  ASSERT_OK(state->Commit(MakeCheckpoint(1, 1, 1)));
  Checkpoint second;
  second.input_offsets.emplace(TopicPartition{"payments", Partition(3)}, Offset(2));
  ASSERT_OK(state->Commit(second));
  state.reset();
  state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->checkpoint(), second);
}

TEST_F(TaskStateTest, AbortDropsStagedWritesChangelogAndStreamTime) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  state->AdvanceStreamTime(Timestamp(100));
  ASSERT_OK(state->GetStore("balances")->Put("a", "1"));
  ASSERT_OK(state->Commit(MakeCheckpoint(1, 1, 100)));

  state->AdvanceStreamTime(Timestamp(200));
  ASSERT_OK(state->GetStore("balances")->Put("a", "2"));
  ASSERT_OK(state->GetStore("dedup")->Put("b", "1"));
  ASSERT_OK(state->GetStore("cache")->Put("c", "1"));
  EXPECT_TRUE(state->HasStagedWrites());
  state->Abort();

  EXPECT_FALSE(state->HasStagedWrites());
  EXPECT_THAT(state->TakeChangelog(), IsEmpty());
  EXPECT_EQ(state->stream_time(), Timestamp(100));
  EXPECT_EQ(Get(state.get(), "balances", "a"), "1");
  EXPECT_EQ(Get(state.get(), "dedup", "b"), std::nullopt);
  EXPECT_EQ(Get(state.get(), "cache", "c"), std::nullopt);
}

TEST_F(TaskStateTest, ReopenAfterCrashEqualsLastCommit) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  ASSERT_OK(state->GetStore("balances")->Put("acct-1", "100"));
  ASSERT_OK(state->GetStore("balances")->Put("acct-2", "200"));
  ASSERT_OK(state->Commit(MakeCheckpoint(10, 5, 1000)));
  // The next cycle stages writes, then the process "crashes": no Commit.
  state->AdvanceStreamTime(Timestamp(2000));
  ASSERT_OK(state->GetStore("balances")->Put("acct-1", "999"));
  ASSERT_OK(state->GetStore("balances")->Delete("acct-2"));
  ASSERT_OK(state->GetStore("dedup")->Put("tx", "1"));
  state.reset();

  state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  Checkpoint expected = MakeCheckpoint(10, 5, 1000);
  expected.changelog_offsets.erase("cache");
  EXPECT_EQ(state->checkpoint(), expected);
  EXPECT_EQ(state->stream_time(), Timestamp(1000));
  auto it = state->GetStore("balances")->Range("", "");
  ASSERT_TRUE(it.ok());
  EXPECT_THAT(Drain(it->get()), ElementsAre(Pair("acct-1", "100"), Pair("acct-2", "200")));
  it->reset();
  EXPECT_EQ(Get(state.get(), "dedup", "tx"), std::nullopt);
}

// Every commit writes the checkpoint column family, whose memtable never
// fills: without the WAL bound its entries kept every write-ahead log file
// alive, and a reopen after a crash replayed all of them.
TEST_F(TaskStateTest, WriteAheadLogStaysBoundedAcrossManyCommits) {
  const std::string dir = dir_.Sub("wal");
  auto state = OpenOrDie(ThreeStores(), dir);
  ASSERT_NE(state, nullptr);
  const std::string value(1000, 'v');
  constexpr int kCommits = 200;
  constexpr int kKeysPerCommit = 100;  // 20 MB in all
  for (int c = 0; c < kCommits; ++c) {
    for (int k = 0; k < kKeysPerCommit; ++k) {
      ASSERT_OK(state->GetStore("balances")
                    ->Put("acct-" + std::to_string(c * kKeysPerCommit + k), value));
    }
    ASSERT_OK(state->Commit(MakeCheckpoint(c, c, 1000 + c)));
  }
  uint64_t wal_bytes = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".log") wal_bytes += entry.file_size();
  }
  // The bound is 4 x write_buffer_size_per_store (1 MiB here), checked when a
  // log file is switched: at most about twice that remains.
  EXPECT_LE(wal_bytes, uint64_t{8} << 20) << "write-ahead log files in " << dir;
  state.reset();

  state = OpenOrDie(ThreeStores(), dir);
  ASSERT_NE(state, nullptr);
  Checkpoint expected = MakeCheckpoint(kCommits - 1, kCommits - 1, 1000 + kCommits - 1);
  expected.changelog_offsets.erase("cache");
  EXPECT_EQ(state->checkpoint(), expected);
  EXPECT_EQ(Get(state.get(), "balances", "acct-0"), value);
  EXPECT_EQ(Get(state.get(), "balances", "acct-" + std::to_string(kCommits * kKeysPerCommit - 1)),
            value);
}

// With the default budgets, 8 tasks of 3 TTL stores (7 column families each,
// as paymentd's) share one write-buffer manager. A few small commits per task
// must not flush anything: with RocksDB's default 1 MB arena blocks and a
// memtable bloom on every column family, the empty memtables alone exceeded
// the 64 MB budget and every commit flushed a tiny memtable to an SST file.
TEST_F(TaskStateTest, ManyTasksWithDefaultBudgetsDoNotFlushSmallMemtables) {
  auto resources = StateResources::Create(StateOptions{});
  ASSERT_TRUE(resources.ok()) << resources.status().ToString();
  const std::chrono::milliseconds ttl(24 * 3600 * 1000);
  const std::vector<StoreSpec> specs = {testing::Spec("idempotency", StoreKind::kPersistent, ttl),
                                        testing::Spec("payments", StoreKind::kPersistent, ttl),
                                        testing::Spec("customers", StoreKind::kPersistent, ttl)};
  std::vector<std::unique_ptr<TaskState>> tasks;
  for (int t = 0; t < 8; ++t) {
    auto opened = TaskState::Open(dir_.Sub("task-" + std::to_string(t)), specs, resources->get());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    tasks.push_back(std::move(opened).value());
  }
  for (int c = 0; c < 20; ++c) {
    for (auto& task : tasks) {
      task->AdvanceStreamTime(Timestamp(1000 + c));
      for (const StoreSpec& spec : specs) {
        for (int k = 0; k < 10; ++k) {
          ASSERT_OK(task->GetStore(spec.name)->Put("key-" + std::to_string(c * 10 + k), "value"));
        }
      }
      ASSERT_OK(task->Commit(testing::AtStreamTime(1000 + c)));
    }
  }
  for (int t = 0; t < 8; ++t) {
    const std::string dir = dir_.Sub("task-" + std::to_string(t));
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      EXPECT_NE(entry.path().extension(), ".sst") << "a memtable was flushed: " << entry.path();
    }
  }
}

TEST_F(TaskStateTest, OpeningALockedDirectoryFailsWithClearMessage) {
  auto first = OpenOrDie(ThreeStores());
  ASSERT_NE(first, nullptr);
  auto second = TaskState::Open(dir_.Sub("task"), ThreeStores(), resources_.get());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIoError);
  EXPECT_THAT(second.status().message(),
              HasSubstr("state directory " + dir_.Sub("task") + " is locked by another process"));
  // Destroying a directory in use fails the same way and leaves it intact.
  Status destroyed = DestroyTaskState(dir_.Sub("task"));
  EXPECT_EQ(destroyed.code(), StatusCode::kIoError) << destroyed.ToString();
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("task")));
  // Once closed, the directory opens again.
  ASSERT_OK(first->Close());
  auto third = TaskState::Open(dir_.Sub("task"), ThreeStores(), resources_.get());
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST_F(TaskStateTest, RejectsInvalidStoreSpecs) {
  const std::vector<std::vector<StoreSpec>> invalid = {
      {testing::Spec("")},
      {testing::Spec("has space")},
      {testing::Spec("a/b")},
      {testing::Spec(std::string("nul\0", 4))},
      {testing::Spec("__checkpoint")},
      {testing::Spec("__x")},
      {testing::Spec("dup"), testing::Spec("dup", StoreKind::kInMemory)},
      {testing::Spec("ttl", StoreKind::kPersistent, std::chrono::milliseconds(0))},
  };
  for (const auto& specs : invalid) {
    auto opened = TaskState::Open(dir_.Sub("invalid"), specs, resources_.get());
    ASSERT_FALSE(opened.ok()) << specs[0].name;
    EXPECT_EQ(opened.status().code(), StatusCode::kInvalidArgument) << opened.status().ToString();
  }
  auto valid = TaskState::Open(dir_.Sub("valid"),
                               {testing::Spec("Ok.name_with-all-1"), testing::Spec("_one")},
                               resources_.get());
  EXPECT_TRUE(valid.ok()) << valid.status().ToString();
  EXPECT_FALSE(TaskState::Open(dir_.Sub("x"), {}, nullptr).ok());
}

TEST_F(TaskStateTest, ColumnFamiliesOfUnknownStoresArePreserved) {
  {
    auto state = OpenOrDie({testing::Spec("kept"), testing::Spec("dropped")});
    ASSERT_NE(state, nullptr);
    ASSERT_OK(state->GetStore("dropped")->Put("k", "old-data"));
    ASSERT_OK(state->Commit(Checkpoint{}));
  }
  {
    // A topology without "dropped": it is not a store, but its data stays.
    auto state = OpenOrDie({testing::Spec("kept")});
    ASSERT_NE(state, nullptr);
    EXPECT_EQ(state->GetStore("dropped"), nullptr);
    ASSERT_OK(state->GetStore("kept")->Put("k", "v"));
    ASSERT_OK(state->Commit(Checkpoint{}));
  }
  auto state = OpenOrDie({testing::Spec("kept"), testing::Spec("dropped")});
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(Get(state.get(), "dropped", "k"), "old-data");
  EXPECT_EQ(Get(state.get(), "kept", "k"), "v");
}

TEST_F(TaskStateTest, ApplyRestoreBatchWritesDirectlyWithChangelogOffset) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  std::vector<ChangelogRecord> records = {
      {"balances", "a", "1", Timestamp(10)},
      {"balances", "b", "2", Timestamp(30)},
      {"balances", "a", std::nullopt, Timestamp(20)},
  };
  ASSERT_OK(state->ApplyRestoreBatch("balances", records, Offset(3)));
  EXPECT_FALSE(state->HasStagedWrites());
  EXPECT_THAT(state->TakeChangelog(), IsEmpty());  // not re-logged
  EXPECT_EQ(Get(state.get(), "balances", "a"), std::nullopt);
  EXPECT_EQ(Get(state.get(), "balances", "b"), "2");
  EXPECT_EQ(state->checkpoint().changelog_offsets.at("balances"), Offset(3));
  EXPECT_EQ(state->stream_time(), Timestamp(30));

  ASSERT_OK(
      state->ApplyRestoreBatch("balances", {{"balances", "c", "3", Timestamp(5)}}, Offset(4)));
  EXPECT_EQ(state->stream_time(), Timestamp(30));  // never goes back
  state.reset();

  state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(Get(state.get(), "balances", "b"), "2");
  EXPECT_EQ(Get(state.get(), "balances", "c"), "3");
  EXPECT_EQ(state->checkpoint().changelog_offsets.at("balances"), Offset(4));
  EXPECT_EQ(state->checkpoint().stream_time, Timestamp(30));
  EXPECT_EQ(state->stream_time(), Timestamp(30));
}

TEST_F(TaskStateTest, ApplyRestoreBatchToInMemoryStoreKeepsNoOffset) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  ASSERT_OK(state->ApplyRestoreBatch("cache", {{"cache", "k", "v", Timestamp(7)}}, Offset(1)));
  EXPECT_EQ(Get(state.get(), "cache", "k"), "v");
  EXPECT_EQ(state->checkpoint().changelog_offsets.count("cache"), 0u);
  EXPECT_EQ(state->stream_time(), Timestamp(7));
  // Restored entries are committed: Abort keeps them.
  state->Abort();
  EXPECT_EQ(Get(state.get(), "cache", "k"), "v");
}

TEST_F(TaskStateTest, ApplyRestoreBatchPreconditions) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->ApplyRestoreBatch("unknown", {}, Offset(0)).code(), StatusCode::kNotFound);
  ASSERT_OK(state->GetStore("cache")->Put("staged", "x"));
  EXPECT_EQ(state->ApplyRestoreBatch("balances", {{"balances", "k", "v", Timestamp(1)}}, Offset(1))
                .code(),
            StatusCode::kFailedPrecondition);
  state->Abort();
  EXPECT_EQ(Get(state.get(), "balances", "k"), std::nullopt);
  ASSERT_OK(
      state->ApplyRestoreBatch("balances", {{"balances", "k", "v", Timestamp(1)}}, Offset(1)));
  EXPECT_EQ(Get(state.get(), "balances", "k"), "v");
}

TEST_F(TaskStateTest, ChangelogHasARecordPerWriteWithStreamTime) {
  std::vector<StoreSpec> specs = ThreeStores();
  specs.push_back(testing::Spec("scratch", StoreKind::kPersistent, std::nullopt, false));
  auto state = OpenOrDie(specs);
  ASSERT_NE(state, nullptr);
  state->AdvanceStreamTime(Timestamp(100));
  ASSERT_OK(state->GetStore("balances")->Put("a", "1"));
  ASSERT_OK(state->GetStore("scratch")->Put("s", "not logged"));
  state->AdvanceStreamTime(Timestamp(150));
  ASSERT_OK(state->GetStore("cache")->Put("c", "2"));
  ASSERT_OK(state->GetStore("dedup")->Delete("gone"));

  std::vector<ChangelogRecord> records = state->TakeChangelog();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].store, "balances");
  EXPECT_EQ(records[0].key, "a");
  EXPECT_EQ(records[0].value, "1");
  EXPECT_EQ(records[0].timestamp, Timestamp(100));
  EXPECT_EQ(records[1].store, "cache");
  EXPECT_EQ(records[1].value, "2");
  EXPECT_EQ(records[1].timestamp, Timestamp(150));
  EXPECT_EQ(records[2].store, "dedup");
  EXPECT_EQ(records[2].key, "gone");
  EXPECT_EQ(records[2].value, std::nullopt);
  EXPECT_THAT(state->TakeChangelog(), IsEmpty());  // moved out
}

TEST_F(TaskStateTest, ChangelogKeepsOnlyTheLastWritePerKeyInWriteOrder) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  ASSERT_OK(state->GetStore("balances")->Put("a", "1"));
  ASSERT_OK(state->GetStore("balances")->Put("b", "1"));
  ASSERT_OK(state->GetStore("dedup")->Put("a", "other store"));
  ASSERT_OK(state->GetStore("balances")->Put("a", "2"));
  ASSERT_OK(state->GetStore("balances")->Delete("b"));
  std::vector<std::tuple<std::string, std::string, std::optional<std::string>>> got;
  for (auto& r : state->TakeChangelog()) got.emplace_back(r.store, r.key, r.value);
  EXPECT_THAT(got,
              ElementsAre(std::make_tuple("dedup", "a", std::optional<std::string>("other store")),
                          std::make_tuple("balances", "a", std::optional<std::string>("2")),
                          std::make_tuple("balances", "b", std::optional<std::string>())));
}

TEST_F(TaskStateTest, ChangelogCoalescingStaysCorrectForManyRewrites) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  // Enough rewrites to trigger internal compaction of superseded records.
  for (int round = 0; round < 50; ++round) {
    for (int k = 0; k < 100; ++k) {
      ASSERT_OK(state->GetStore("balances")->Put("k" + std::to_string(k), std::to_string(round)));
    }
  }
  ASSERT_OK(state->GetStore("balances")->Put("k0", "last"));
  std::vector<ChangelogRecord> records = state->TakeChangelog();
  ASSERT_EQ(records.size(), 100u);
  EXPECT_EQ(records[0].key, "k1");
  EXPECT_EQ(records[0].value, "49");
  EXPECT_EQ(records[98].key, "k99");
  EXPECT_EQ(records[99].key, "k0");
  EXPECT_EQ(records[99].value, "last");
}

TEST_F(TaskStateTest, ChangelogReplayedIntoAnotherTaskReproducesState) {
  auto source = OpenOrDie(ThreeStores(), dir_.Sub("source"));
  auto replica = OpenOrDie(ThreeStores(), dir_.Sub("replica"));
  ASSERT_NE(source, nullptr);
  ASSERT_NE(replica, nullptr);
  std::vector<ChangelogRecord> log;
  for (int cycle = 0; cycle < 3; ++cycle) {
    source->AdvanceStreamTime(Timestamp(cycle * 10));
    for (int k = 0; k < 20; ++k) {
      std::string key = "k" + std::to_string((k * 7 + cycle) % 13);
      if ((k + cycle) % 4 == 0) {
        ASSERT_OK(source->GetStore("balances")->Delete(key));
      } else {
        ASSERT_OK(source->GetStore("balances")->Put(key, std::to_string(cycle * 100 + k)));
      }
    }
    for (auto& r : source->TakeChangelog()) log.push_back(std::move(r));
    ASSERT_OK(source->Commit(Checkpoint{}));
  }
  ASSERT_OK(replica->ApplyRestoreBatch("balances", log, Offset(static_cast<int64_t>(log.size()))));
  auto a = source->GetStore("balances")->Range("", "");
  auto b = replica->GetStore("balances")->Range("", "");
  ASSERT_TRUE(a.ok() && b.ok());
  auto expected = Drain(a->get());
  EXPECT_FALSE(expected.empty());
  EXPECT_EQ(Drain(b->get()), expected);
}

TEST_F(TaskStateTest, StreamTimeNeverGoesBack) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  state->AdvanceStreamTime(Timestamp(500));
  state->AdvanceStreamTime(Timestamp(100));
  EXPECT_EQ(state->stream_time(), Timestamp(500));
}

TEST_F(TaskStateTest, CommitWithOpenIteratorFailsAndKeepsStagedWrites) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  ASSERT_OK(state->GetStore("balances")->Put("a", "1"));
  {
    auto it = state->GetStore("balances")->Range("", "");
    ASSERT_TRUE(it.ok());
    Status s = state->Commit(Checkpoint{});
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
    EXPECT_EQ(state->Close().code(), StatusCode::kFailedPrecondition);
  }
  EXPECT_TRUE(state->HasStagedWrites());
  EXPECT_EQ(state->checkpoint(), Checkpoint{});
  ASSERT_OK(state->Commit(Checkpoint{}));
  EXPECT_EQ(Get(state.get(), "balances", "a"), "1");
}

TEST_F(TaskStateTest, CloseDropsStagedWritesAndIsIdempotent) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  ASSERT_OK(state->GetStore("balances")->Put("committed", "1"));
  ASSERT_OK(state->Commit(Checkpoint{}));
  ASSERT_OK(state->GetStore("balances")->Put("staged", "1"));
  ASSERT_OK(state->Close());
  ASSERT_OK(state->Close());
  EXPECT_EQ(state->PurgeExpired().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(state->ApplyRestoreBatch("balances", {}, Offset(0)).code(),
            StatusCode::kFailedPrecondition);
  state.reset();
  state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(Get(state.get(), "balances", "committed"), "1");
  EXPECT_EQ(Get(state.get(), "balances", "staged"), std::nullopt);
}

TEST_F(TaskStateTest, DestroyTaskStateRemovesEverything) {
  {
    auto state = OpenOrDie(ThreeStores());
    ASSERT_NE(state, nullptr);
    ASSERT_OK(state->GetStore("balances")->Put("a", "1"));
    ASSERT_OK(state->Commit(MakeCheckpoint(1, 1, 1)));
  }
  ASSERT_OK(DestroyTaskState(dir_.Sub("task")));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("task")));
  ASSERT_OK(DestroyTaskState(dir_.Sub("task")));  // absent: fine
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->checkpoint(), Checkpoint{});
  EXPECT_EQ(Get(state.get(), "balances", "a"), std::nullopt);
}

TEST_F(TaskStateTest, ApproximateSizeGrowsWithCommittedData) {
  auto state = OpenOrDie(ThreeStores());
  ASSERT_NE(state, nullptr);
  uint64_t before = state->ApproximateSizeBytes();
  std::string value(1000, 'x');
  for (int i = 0; i < 200; ++i) {
    ASSERT_OK(state->GetStore("balances")->Put("k" + std::to_string(i), value));
    ASSERT_OK(state->GetStore("cache")->Put("k" + std::to_string(i), value));
  }
  ASSERT_OK(state->Commit(Checkpoint{}));
  // Both stores hold ~200 KB of values.
  EXPECT_GE(state->ApproximateSizeBytes(), before + 2 * 200 * 1000);
}

TEST_F(TaskStateTest, StateResourcesRejectZeroSizes) {
  StateOptions options;
  options.block_cache_bytes = 0;
  EXPECT_EQ(StateResources::Create(options).status().code(), StatusCode::kInvalidArgument);
  options = StateOptions{};
  options.write_buffer_bytes = 0;
  EXPECT_EQ(StateResources::Create(options).status().code(), StatusCode::kInvalidArgument);
  auto ok = StateResources::Create(StateOptions{});
  ASSERT_TRUE(ok.ok());
  EXPECT_NE((*ok)->block_cache(), nullptr);
  EXPECT_NE((*ok)->write_buffer_manager(), nullptr);
}

}  // namespace
}  // namespace streams::state
