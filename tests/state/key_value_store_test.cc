// KeyValueStore semantics shared by both store kinds: point reads and writes,
// staging, ranges, prefix scans and the merge of staged and committed entries.
#include "streams/state/key_value_store.h"

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

class KeyValueStoreTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    resources_ = testing::SmallResources();
    Reopen();
  }

  void Reopen() {
    state_.reset();
    auto opened = TaskState::Open(dir_.path(), {testing::Spec("kv", GetParam())}, resources_.get());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    state_ = std::move(opened).value();
    store_ = state_->GetStore("kv");
    ASSERT_NE(store_, nullptr);
  }

  std::optional<std::string> Get(std::string_view key) {
    auto r = store_->Get(key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  std::vector<std::pair<std::string, std::string>> RangeOf(std::string_view from,
                                                           std::string_view to) {
    auto it = store_->Range(from, to);
    EXPECT_TRUE(it.ok()) << it.status().ToString();
    return Drain(it->get());
  }

  std::vector<std::pair<std::string, std::string>> PrefixOf(std::string_view prefix) {
    auto it = store_->PrefixScan(prefix);
    EXPECT_TRUE(it.ok()) << it.status().ToString();
    return Drain(it->get());
  }

  void PutAll(const std::vector<std::string>& keys) {
    for (const auto& k : keys) ASSERT_OK(store_->Put(k, "v" + k));
  }

  void CommitNow() { ASSERT_OK(state_->Commit(Checkpoint{})); }

  TempDir dir_;
  std::unique_ptr<StateResources> resources_;
  std::unique_ptr<TaskState> state_;
  KeyValueStore* store_ = nullptr;
};

TEST_P(KeyValueStoreTest, GetOfAbsentKeyIsNullopt) {
  EXPECT_EQ(Get("missing"), std::nullopt);
  EXPECT_EQ(store_->name(), "kv");
}

TEST_P(KeyValueStoreTest, StagedPutIsVisibleBeforeCommit) {
  ASSERT_OK(store_->Put("k", "v1"));
  EXPECT_TRUE(state_->HasStagedWrites());
  EXPECT_EQ(Get("k"), "v1");
  ASSERT_OK(store_->Put("k", "v2"));
  EXPECT_EQ(Get("k"), "v2");
  CommitNow();
  EXPECT_FALSE(state_->HasStagedWrites());
  EXPECT_EQ(Get("k"), "v2");
}

TEST_P(KeyValueStoreTest, DeleteHidesStagedAndCommittedValues) {
  ASSERT_OK(store_->Put("committed", "c"));
  CommitNow();
  ASSERT_OK(store_->Put("staged", "s"));
  ASSERT_OK(store_->Delete("committed"));
  ASSERT_OK(store_->Delete("staged"));
  ASSERT_OK(store_->Delete("never-existed"));
  EXPECT_EQ(Get("committed"), std::nullopt);
  EXPECT_EQ(Get("staged"), std::nullopt);
  CommitNow();
  EXPECT_EQ(Get("committed"), std::nullopt);
  EXPECT_THAT(RangeOf("", ""), IsEmpty());
}

TEST_P(KeyValueStoreTest, AbortRestoresCommittedValues) {
  ASSERT_OK(store_->Put("a", "1"));
  CommitNow();
  ASSERT_OK(store_->Put("a", "2"));
  ASSERT_OK(store_->Put("b", "3"));
  state_->Abort();
  EXPECT_FALSE(state_->HasStagedWrites());
  EXPECT_EQ(Get("a"), "1");
  EXPECT_EQ(Get("b"), std::nullopt);
  EXPECT_THAT(RangeOf("", ""), ElementsAre(Pair("a", "1")));
}

TEST_P(KeyValueStoreTest, EmptyValuesAndBinaryKeysRoundTrip) {
  std::string key("a\0b\xff", 4);
  std::string value("\0\x01\x02", 3);
  ASSERT_OK(store_->Put(key, value));
  ASSERT_OK(store_->Put("empty", ""));
  CommitNow();
  EXPECT_EQ(Get(key), value);
  EXPECT_EQ(Get("empty"), "");
  EXPECT_EQ(Get(std::string("a\0b", 3)), std::nullopt);
}

TEST_P(KeyValueStoreTest, RangeIsHalfOpenAndOrdered) {
  PutAll({"d", "b", "a", "c", "e"});
  CommitNow();
  EXPECT_THAT(RangeOf("b", "d"), ElementsAre(Pair("b", "vb"), Pair("c", "vc")));
  EXPECT_THAT(RangeOf("bb", "dd"), ElementsAre(Pair("c", "vc"), Pair("d", "vd")));
  EXPECT_THAT(RangeOf("c", ""), ElementsAre(Pair("c", "vc"), Pair("d", "vd"), Pair("e", "ve")));
  EXPECT_THAT(RangeOf("d", "b"), IsEmpty());
  EXPECT_THAT(RangeOf("c", "c"), IsEmpty());
}

TEST_P(KeyValueStoreTest, RangeMergesStagedAndCommittedEntries) {
  PutAll({"a", "b", "c", "d"});
  CommitNow();
  ASSERT_OK(store_->Put("b", "staged-b"));  // overwrite a committed key
  ASSERT_OK(store_->Delete("c"));           // hide a committed key
  ASSERT_OK(store_->Put("aa", "staged-aa"));
  ASSERT_OK(store_->Put("e", "staged-e"));
  ASSERT_OK(store_->Put("f", "staged-f"));
  ASSERT_OK(store_->Delete("f"));  // staged then deleted in the same cycle
  EXPECT_THAT(RangeOf("", ""),
              ElementsAre(Pair("a", "va"), Pair("aa", "staged-aa"), Pair("b", "staged-b"),
                          Pair("d", "vd"), Pair("e", "staged-e")));
  EXPECT_THAT(RangeOf("aa", "d"), ElementsAre(Pair("aa", "staged-aa"), Pair("b", "staged-b")));
  CommitNow();
  EXPECT_THAT(RangeOf("", ""),
              ElementsAre(Pair("a", "va"), Pair("aa", "staged-aa"), Pair("b", "staged-b"),
                          Pair("d", "vd"), Pair("e", "staged-e")));
}

TEST_P(KeyValueStoreTest, IteratorReflectsStoreAsOfItsCreation) {
  PutAll({"a", "b", "c"});
  CommitNow();
  ASSERT_OK(store_->Put("d", "vd"));
  auto it = store_->Range("", "");
  ASSERT_TRUE(it.ok());
  // Writes after creation, including deleting the entry under the cursor.
  ASSERT_TRUE((*it)->Valid());
  EXPECT_EQ((*it)->key(), "a");
  ASSERT_OK(store_->Delete("a"));
  ASSERT_OK(store_->Delete("c"));
  ASSERT_OK(store_->Put("bb", "new"));
  ASSERT_OK(store_->Put("d", "changed"));
  EXPECT_EQ((*it)->key(), "a");
  EXPECT_EQ((*it)->value(), "va");
  EXPECT_THAT(Drain(it->get()),
              ElementsAre(Pair("a", "va"), Pair("b", "vb"), Pair("c", "vc"), Pair("d", "vd")));
  it->reset();
  EXPECT_THAT(RangeOf("", ""),
              ElementsAre(Pair("b", "vb"), Pair("bb", "new"), Pair("d", "changed")));
}

TEST_P(KeyValueStoreTest, DeletingEveryEntryWhileIteratingWorks) {
  PutAll({"p1", "p2", "p3", "q"});
  CommitNow();
  ASSERT_OK(store_->Put("p4", "vp4"));
  int seen = 0;
  {
    auto it = store_->PrefixScan("p");
    ASSERT_TRUE(it.ok());
    for (; (*it)->Valid(); (*it)->Next()) {
      ASSERT_OK(store_->Delete((*it)->key()));
      ++seen;
    }
    ASSERT_OK((*it)->status());
  }
  EXPECT_EQ(seen, 4);
  EXPECT_THAT(PrefixOf("p"), IsEmpty());
  EXPECT_THAT(RangeOf("", ""), ElementsAre(Pair("q", "vq")));
}

TEST_P(KeyValueStoreTest, PrefixScanReturnsOnlyKeysWithThePrefix) {
  PutAll({"acct:1", "acct:10", "acct:2", "acct;", "acct", "acc", "b"});
  CommitNow();
  ASSERT_OK(store_->Put("acct:3", "staged"));
  EXPECT_THAT(PrefixOf("acct:"), ElementsAre(Pair("acct:1", "vacct:1"), Pair("acct:10", "vacct:10"),
                                             Pair("acct:2", "vacct:2"), Pair("acct:3", "staged")));
  EXPECT_THAT(PrefixOf("zzz"), IsEmpty());
  EXPECT_EQ(PrefixOf("").size(), 8u);  // empty prefix: everything
}

TEST_P(KeyValueStoreTest, PrefixScanHandlesTrailing0xffBytes) {
  const std::string ff("\xff", 1);
  const std::string p = "a" + ff;  // upper bound must be "b", not "a\x00"
  std::vector<std::string> keys = {"a",     "a\xfe", p,           p + std::string("\0", 1),
                                   p + "x", p + ff,  p + ff + ff, "b",
                                   ff,      ff + ff, ff + "a"};
  for (const auto& k : keys) ASSERT_OK(store_->Put(k, "v"));
  CommitNow();
  ASSERT_OK(store_->Put(p + ff + "staged", "s"));
  std::vector<std::string> got;
  for (const auto& [k, v] : PrefixOf(p)) got.push_back(k);
  EXPECT_THAT(got, ElementsAre(p, p + std::string("\0", 1), p + "x", p + ff, p + ff + "staged",
                               p + ff + ff));
  // A prefix of only 0xff bytes has no upper bound: it runs to the end.
  got.clear();
  for (const auto& [k, v] : PrefixOf(ff)) got.push_back(k);
  EXPECT_THAT(got, ElementsAre(ff, ff + "a", ff + ff));
  got.clear();
  for (const auto& [k, v] : PrefixOf(ff + ff)) got.push_back(k);
  EXPECT_THAT(got, ElementsAre(ff + ff));
}

TEST_P(KeyValueStoreTest, ApproximateNumEntriesCountsCommittedEntries) {
  EXPECT_EQ(store_->ApproximateNumEntries(), 0u);
  for (int i = 0; i < 100; ++i) ASSERT_OK(store_->Put("key" + std::to_string(i), "v"));
  CommitNow();
  uint64_t n = store_->ApproximateNumEntries();
  if (GetParam() == StoreKind::kInMemory) {
    EXPECT_EQ(n, 100u);
  } else {
    EXPECT_GE(n, 50u);
    EXPECT_LE(n, 200u);
  }
}

TEST_P(KeyValueStoreTest, CommittedDataSurvivesReopenOnlyForPersistentStores) {
  ASSERT_OK(store_->Put("k", "v"));
  CommitNow();
  Reopen();
  if (GetParam() == StoreKind::kPersistent) {
    EXPECT_EQ(Get("k"), "v");
  } else {
    // In-memory stores start empty and are rebuilt from their changelog.
    EXPECT_EQ(Get("k"), std::nullopt);
  }
}

TEST_P(KeyValueStoreTest, OperationsFailAfterClose) {
  ASSERT_OK(store_->Put("k", "v"));
  ASSERT_OK(state_->Close());
  ASSERT_OK(state_->Close());  // idempotent
  EXPECT_EQ(store_->Get("k").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Put("k", "v").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Delete("k").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Range("", "").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->PrefixScan("k").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(state_->Commit(Checkpoint{}).code(), StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(BothKinds, KeyValueStoreTest,
                         ::testing::Values(StoreKind::kPersistent, StoreKind::kInMemory),
                         [](const auto& info) { return testing::KindName(info.param); });

}  // namespace
}  // namespace streams::state
