// Event-time TTL: expiry on read by stream time, purge tombstones, restore of
// TTL'd values keeping their expiry. Both store kinds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "state_test_util.h"
#include "streams/state/task_state.h"

namespace streams::state {
namespace {

using testing::Drain;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using testing::TempDir;

constexpr std::chrono::milliseconds kTtl(1000);

// The stored form: 8-byte big-endian write time + value.
std::string Stored(int64_t write_time, std::string_view value) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>(static_cast<uint64_t>(write_time) >> shift));
  }
  out.append(value);
  return out;
}

class TtlTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    resources_ = testing::SmallResources();
    state_ = Open(dir_.Sub("task"));
    ASSERT_NE(state_, nullptr);
    store_ = state_->GetStore("ttl");
  }

  std::unique_ptr<TaskState> Open(const std::string& dir) {
    auto opened = TaskState::Open(
        dir, {testing::Spec("ttl", GetParam(), kTtl), testing::Spec("plain")}, resources_.get());
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  static std::optional<std::string> Get(KeyValueStore* store, std::string_view key) {
    auto r = store->Get(key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  std::vector<std::pair<std::string, std::string>> All(KeyValueStore* store) {
    auto it = store->Range("", "");
    EXPECT_TRUE(it.ok());
    return Drain(it->get());
  }

  TempDir dir_;
  std::unique_ptr<StateResources> resources_;
  std::unique_ptr<TaskState> state_;
  KeyValueStore* store_ = nullptr;
};

TEST_P(TtlTest, EntryExpiresForReadsWhenStreamTimeReachesWriteTimePlusTtl) {
  state_->AdvanceStreamTime(Timestamp(100));
  ASSERT_OK(store_->Put("k", "v"));
  ASSERT_OK(state_->Commit(testing::AtStreamTime(100)));
  state_->AdvanceStreamTime(Timestamp(1099));
  EXPECT_EQ(Get(store_, "k"), "v");  // value returned without the timestamp prefix
  EXPECT_THAT(All(store_), ElementsAre(Pair("k", "v")));
  state_->AdvanceStreamTime(Timestamp(1100));
  EXPECT_EQ(Get(store_, "k"), std::nullopt);
  EXPECT_THAT(All(store_), IsEmpty());
  auto scan = store_->PrefixScan("k");
  ASSERT_TRUE(scan.ok());
  EXPECT_THAT(Drain(scan->get()), IsEmpty());
}

TEST_P(TtlTest, ExpiryAppliesToStagedWritesAndIteratorsSkipExpiredEntries) {
  state_->AdvanceStreamTime(Timestamp(0));
  ASSERT_OK(store_->Put("a-old", "1"));
  state_->AdvanceStreamTime(Timestamp(600));
  ASSERT_OK(store_->Put("b-new", "2"));
  ASSERT_OK(store_->Put("c-old-rewritten", "3"));
  state_->AdvanceStreamTime(Timestamp(1000));
  EXPECT_EQ(Get(store_, "a-old"), std::nullopt);
  EXPECT_THAT(All(store_), ElementsAre(Pair("b-new", "2"), Pair("c-old-rewritten", "3")));
}

TEST_P(TtlTest, RewriteRefreshesTheWriteTime) {
  state_->AdvanceStreamTime(Timestamp(0));
  ASSERT_OK(store_->Put("k", "first"));
  ASSERT_OK(state_->Commit(Checkpoint{}));
  state_->AdvanceStreamTime(Timestamp(900));
  ASSERT_OK(store_->Put("k", "second"));
  ASSERT_OK(state_->Commit(Checkpoint{}));
  state_->AdvanceStreamTime(Timestamp(1500));
  EXPECT_EQ(Get(store_, "k"), "second");
  EXPECT_EQ(state_->TakeChangelog().size(), 1u);  // commits keep untaken records
  auto purged = state_->PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 0u);  // the index entry of "first" is stale
  EXPECT_THAT(state_->TakeChangelog(), IsEmpty());
  state_->AdvanceStreamTime(Timestamp(1900));
  purged = state_->PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1u);
}

TEST_P(TtlTest, PurgeStagesTombstonesForExpiredEntries) {
  KeyValueStore* plain = state_->GetStore("plain");
  state_->AdvanceStreamTime(Timestamp(0));
  ASSERT_OK(store_->Put("committed-expired", "1"));
  ASSERT_OK(plain->Put("no-ttl", "kept"));
  ASSERT_OK(state_->Commit(Checkpoint{}));
  ASSERT_OK(store_->Put("staged-expired", "2"));
  ASSERT_OK(store_->Put("deleted", "3"));
  ASSERT_OK(store_->Delete("deleted"));
  state_->AdvanceStreamTime(Timestamp(500));
  ASSERT_OK(store_->Put("alive", "4"));
  (void)state_->TakeChangelog();

  state_->AdvanceStreamTime(Timestamp(1200));
  auto purged = state_->PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 2u);
  std::vector<std::string> tombstones;
  for (const auto& r : state_->TakeChangelog()) {
    EXPECT_EQ(r.store, "ttl");
    EXPECT_EQ(r.value, std::nullopt);
    EXPECT_EQ(r.timestamp, Timestamp(1200));
    tombstones.push_back(r.key);
  }
  EXPECT_THAT(tombstones, ::testing::UnorderedElementsAre("committed-expired", "staged-expired"));
  ASSERT_OK(state_->Commit(testing::AtStreamTime(1200)));
  EXPECT_EQ(Get(store_, "alive"), "4");
  EXPECT_EQ(Get(plain, "no-ttl"), "kept");
  EXPECT_EQ(store_->ApproximateNumEntries() <= 2, true);

  // Nothing left to purge until "alive" expires; then exactly it.
  purged = state_->PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 0u);
  state_->AdvanceStreamTime(Timestamp(1500));
  purged = state_->PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1u);
  ASSERT_OK(state_->Commit(Checkpoint{}));
  // Even with stream time rewound by a reopen, purged entries stay gone.
  EXPECT_THAT(All(store_), IsEmpty());
}

TEST_P(TtlTest, AbortedPurgeLeavesEntriesInPlace) {
  state_->AdvanceStreamTime(Timestamp(0));
  ASSERT_OK(store_->Put("k", "v"));
  ASSERT_OK(state_->Commit(testing::AtStreamTime(0)));
  state_->AdvanceStreamTime(Timestamp(5000));
  auto purged = state_->PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1u);
  state_->Abort();
  EXPECT_EQ(state_->stream_time(), Timestamp(0));
  EXPECT_EQ(Get(store_, "k"), "v");
  state_->AdvanceStreamTime(Timestamp(5000));
  purged = state_->PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1u);
}

TEST_P(TtlTest, ChangelogCarriesStoredBytesWithWriteTime) {
  state_->AdvanceStreamTime(Timestamp(0x0102030405));
  ASSERT_OK(store_->Put("k", "value"));
  std::vector<ChangelogRecord> records = state_->TakeChangelog();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value, Stored(0x0102030405, "value"));
  EXPECT_EQ(records[0].timestamp, Timestamp(0x0102030405));
}

TEST_P(TtlTest, RestoreOfTtlValuesKeepsTheirExpiry) {
  // The source task writes at two stream times and logs them.
  state_->AdvanceStreamTime(Timestamp(100));
  ASSERT_OK(store_->Put("early", "1"));
  state_->AdvanceStreamTime(Timestamp(800));
  ASSERT_OK(store_->Put("late", "2"));
  std::vector<ChangelogRecord> log = state_->TakeChangelog();
  ASSERT_OK(state_->Commit(Checkpoint{}));

  auto restored = Open(dir_.Sub("restored"));
  ASSERT_NE(restored, nullptr);
  ASSERT_OK(restored->ApplyRestoreBatch("ttl", log, Offset(2)));
  KeyValueStore* store = restored->GetStore("ttl");
  EXPECT_EQ(restored->stream_time(), Timestamp(800));
  EXPECT_EQ(Get(store, "early"), "1");
  EXPECT_EQ(Get(store, "late"), "2");
  restored->AdvanceStreamTime(Timestamp(1100));  // early (100 + 1000) expired
  EXPECT_EQ(Get(store, "early"), std::nullopt);
  EXPECT_EQ(Get(store, "late"), "2");
  // Restored entries are purgeable too.
  auto purged = restored->PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 1u);
  std::vector<ChangelogRecord> tombstones = restored->TakeChangelog();
  ASSERT_EQ(tombstones.size(), 1u);
  EXPECT_EQ(tombstones[0].key, "early");
  EXPECT_EQ(tombstones[0].value, std::nullopt);
}

TEST_P(TtlTest, RestoreBatchKeepsTheLastRecordOfEachKeyAndItsExpiry) {
  // One batch, keys out of order, several records per key (the restore
  // writes each key once, sorted): the last record of a key wins, and its
  // write time, not an earlier one's, decides expiry and purge.
  std::vector<ChangelogRecord> records = {
      {"ttl", "z", Stored(100, "z1"), Timestamp(100)},
      {"ttl", "a", Stored(100, "a1"), Timestamp(100)},
      {"ttl", "z", std::nullopt, Timestamp(200)},
      {"ttl", "m", Stored(200, "m1"), Timestamp(200)},
      {"ttl", "a", Stored(700, "a2"), Timestamp(700)},
      {"ttl", "m", std::nullopt, Timestamp(700)},
      {"ttl", "z", Stored(800, "z2"), Timestamp(800)},
  };
  ASSERT_OK(state_->ApplyRestoreBatch("ttl", records, Offset(7)));
  EXPECT_THAT(All(store_), ElementsAre(Pair("a", "a2"), Pair("z", "z2")));
  state_->AdvanceStreamTime(Timestamp(1100));  // a1, z1 and m1 would be expired.
  EXPECT_THAT(All(store_), ElementsAre(Pair("a", "a2"), Pair("z", "z2")));
  auto purged = state_->PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 0u);
  EXPECT_THAT(state_->TakeChangelog(), IsEmpty());
  state_->AdvanceStreamTime(Timestamp(1700));  // a2 (700 + 1000) expired, z2 not.
  purged = state_->PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 1u);
  std::vector<ChangelogRecord> tombstones = state_->TakeChangelog();
  ASSERT_EQ(tombstones.size(), 1u);
  EXPECT_EQ(tombstones[0].key, "a");
  EXPECT_THAT(All(store_), ElementsAre(Pair("z", "z2")));
}

TEST_P(TtlTest, RestoreRejectsValuesWithoutTimestampAndAppliesNothing) {
  std::vector<ChangelogRecord> records = {{"ttl", "good", Stored(0, "v"), Timestamp(0)},
                                          {"ttl", "bad", std::string("short"), Timestamp(0)}};
  Status s = state_->ApplyRestoreBatch("ttl", records, Offset(2));
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_EQ(Get(store_, "good"), std::nullopt);
  EXPECT_EQ(state_->checkpoint().changelog_offsets.count("ttl"), 0u);
}

TEST_P(TtlTest, StreamTimeFromCheckpointGovernsExpiryAfterReopen) {
  state_->AdvanceStreamTime(Timestamp(0));
  ASSERT_OK(store_->Put("k", "v"));
  state_->AdvanceStreamTime(Timestamp(2000));
  ASSERT_OK(state_->Commit(testing::AtStreamTime(2000)));
  state_.reset();
  state_ = Open(dir_.Sub("task"));
  ASSERT_NE(state_, nullptr);
  EXPECT_EQ(state_->stream_time(), Timestamp(2000));
  // A persistent entry is on disk but expired; an in-memory one is simply gone.
  EXPECT_EQ(Get(state_->GetStore("ttl"), "k"), std::nullopt);
}

INSTANTIATE_TEST_SUITE_P(BothKinds, TtlTest,
                         ::testing::Values(StoreKind::kPersistent, StoreKind::kInMemory),
                         [](const auto& info) { return testing::KindName(info.param); });

}  // namespace
}  // namespace streams::state
