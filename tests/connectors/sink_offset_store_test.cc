#include "streams/connect/sink_offset_store.h"

#include "pg_test_env.h"
#include "streams/connect/sql_transaction.h"

namespace streams::connect {
namespace {

class SinkOffsetStoreTest : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(RunTransaction(*conn_, [&](pqxx::work& txn) {
                  txn.exec("CREATE TABLE rows (id TEXT PRIMARY KEY)");
                  return store_.EnsureSchema(txn);
                }).ok());
  }

  Result<std::map<Partition, Offset>> Load() {
    pqxx::work txn(*conn_);
    return store_.Load(txn, "sink", "confirmations");
  }

  Status WriteRowAndAdvance(const std::string& id, std::optional<Offset> expected, Offset next) {
    return RunTransaction(*conn_, [&](pqxx::work& txn) {
      txn.exec_params("INSERT INTO rows VALUES ($1)", id);
      return store_.Advance(txn, "sink", tp_, expected, next);
    });
  }

  SinkOffsetStore store_;
  TopicPartition tp_{"confirmations", Partition(3)};
};

TEST_F(SinkOffsetStoreTest, SchemaCreationIsIdempotent) {
  EXPECT_TRUE(RunTransaction(*conn_, [&](pqxx::work& txn) { return store_.EnsureSchema(txn); })
                  .ok());
}

TEST_F(SinkOffsetStoreTest, RejectsBadTableName) {
  SinkOffsetStore bad("offsets; DROP TABLE rows");
  Status s = RunTransaction(*conn_, [&](pqxx::work& txn) { return bad.EnsureSchema(txn); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST_F(SinkOffsetStoreTest, AdvancesAndLoadsPositions) {
  auto empty = Load();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());

  ASSERT_TRUE(WriteRowAndAdvance("a", std::nullopt, Offset(5)).ok());
  ASSERT_TRUE(WriteRowAndAdvance("b", Offset(5), Offset(9)).ok());
  auto loaded = Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ(loaded->at(Partition(3)), Offset(9));
  EXPECT_EQ(Count("rows"), 2);
}

TEST_F(SinkOffsetStoreTest, StaleWriterIsFencedAndItsRowsRollBack) {
  ASSERT_TRUE(WriteRowAndAdvance("a", std::nullopt, Offset(5)).ok());
  ASSERT_TRUE(WriteRowAndAdvance("b", Offset(5), Offset(9)).ok());
  // A zombie that still believes the position is 5.
  Status zombie = WriteRowAndAdvance("zombie", Offset(5), Offset(12));
  EXPECT_EQ(zombie.code(), StatusCode::kFenced) << zombie;
  // A second "first" writer.
  Status second_first = WriteRowAndAdvance("zombie2", std::nullopt, Offset(3));
  EXPECT_EQ(second_first.code(), StatusCode::kFenced) << second_first;
  EXPECT_EQ(Count("rows"), 2);
  EXPECT_EQ(Load()->at(Partition(3)), Offset(9));
}

TEST_F(SinkOffsetStoreTest, PositionNeverMovesBack) {
  ASSERT_TRUE(WriteRowAndAdvance("a", std::nullopt, Offset(5)).ok());
  Status back = WriteRowAndAdvance("b", Offset(5), Offset(4));
  EXPECT_EQ(back.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Count("rows"), 1);
}

}  // namespace
}  // namespace streams::connect
