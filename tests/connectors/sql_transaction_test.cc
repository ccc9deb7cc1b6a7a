#include "streams/connect/sql_transaction.h"

#include <vector>

#include "pg_test_env.h"

namespace streams::connect {
namespace {

class RecordingSleeper final : public Sleeper {
 public:
  void Sleep(std::chrono::milliseconds d) override { sleeps.push_back(d.count()); }
  std::vector<int64_t> sleeps;
};

constexpr char kRaiseRestart[] =
    "DO $$ BEGIN RAISE EXCEPTION 'restart transaction' USING ERRCODE = '40001'; END $$";

class SqlTransactionTest : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(RunTransaction(*conn_, [](pqxx::work& txn) {
                  txn.exec("CREATE TABLE items (id INT PRIMARY KEY, v TEXT)");
                  return Status::Ok();
                }).ok());
  }
  RecordingSleeper sleeper_;
};

TEST_F(SqlTransactionTest, CommitsTheBody) {
  Status s = RunTransaction(*conn_, [](pqxx::work& txn) {
    txn.exec("INSERT INTO items VALUES (1, 'a'), (2, 'b')");
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Count("items"), 2);
}

TEST_F(SqlTransactionTest, BodyErrorRollsBackWithoutRetry) {
  int attempts = 0;
  Status s = RunTransaction(
      *conn_,
      [&](pqxx::work& txn) {
        ++attempts;
        txn.exec("INSERT INTO items VALUES (1, 'a')");
        return Status::InvalidArgument("bad record");
      },
      {}, &sleeper_);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(Count("items"), 0);
}

TEST_F(SqlTransactionTest, RetriesOnSqlState40001WithBackoff) {
  int attempts = 0;
  Status s = RunTransaction(
      *conn_,
      [&](pqxx::work& txn) {
        ++attempts;
        txn.exec("INSERT INTO items VALUES (" + std::to_string(attempts) + ", 'x')");
        if (attempts < 3) txn.exec(kRaiseRestart);
        return Status::Ok();
      },
      [] {
        RetryPolicy policy;
        policy.max_attempts = 5;
        policy.initial_backoff = std::chrono::milliseconds(10);
        policy.max_backoff = std::chrono::milliseconds(15);
        policy.jitter = 0;
        return policy;
      }(),
      &sleeper_);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(attempts, 3);
  EXPECT_EQ(sleeper_.sleeps, (std::vector<int64_t>{10, 15}));
  // Only the successful attempt's row exists: failed attempts rolled back.
  EXPECT_EQ(Count("items"), 1);
}

TEST_F(SqlTransactionTest, GivesUpAfterMaxAttempts) {
  int attempts = 0;
  std::vector<std::string> retry_states;
  Status s = RunTransaction(
      *conn_,
      [&](pqxx::work& txn) {
        ++attempts;
        txn.exec(kRaiseRestart);
        return Status::Ok();
      },
      [&] {
        RetryPolicy policy;
        policy.max_attempts = 4;
        policy.on_retry = [&](std::string_view state, int) { retry_states.emplace_back(state); };
        return policy;
      }(),
      &sleeper_);
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_NE(s.message().find("40001"), std::string::npos) << s;
  EXPECT_EQ(attempts, 4);
  ASSERT_EQ(sleeper_.sleeps.size(), 3u);
  // Jittered delays stay within [initial * (1 - jitter), capped exponential].
  EXPECT_GE(sleeper_.sleeps[0], 5);
  EXPECT_LE(sleeper_.sleeps[0], 10);
  EXPECT_LE(sleeper_.sleeps[2], 40);
  EXPECT_EQ(retry_states, (std::vector<std::string>{"40001", "40001", "40001"}));
}

TEST_F(SqlTransactionTest, TranslatesConstraintAndSyntaxErrors) {
  Status dup = RunTransaction(*conn_, [](pqxx::work& txn) {
    txn.exec("INSERT INTO items VALUES (1, 'a'), (1, 'b')");
    return Status::Ok();
  });
  EXPECT_EQ(dup.code(), StatusCode::kFailedPrecondition) << dup;
  EXPECT_NE(dup.message().find("23505"), std::string::npos) << dup;

  Status syntax = RunTransaction(*conn_, [](pqxx::work& txn) {
    txn.exec("SELEC nonsense");
    return Status::Ok();
  });
  EXPECT_EQ(syntax.code(), StatusCode::kInvalidArgument) << syntax;
}

TEST(SqlConnectTest, UnreachableServerIsUnavailableAndHidesPassword) {
  auto conn = Connect("postgresql://app:s3cret@127.0.0.1:1/db?connect_timeout=2");
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(conn.status().message().find("s3cret"), std::string::npos) << conn.status();
}

TEST(SqlStateTest, RetryableStates) {
  EXPECT_TRUE(IsRetryableSqlState("40001"));
  EXPECT_TRUE(IsRetryableSqlState("40P01"));
  EXPECT_FALSE(IsRetryableSqlState("23505"));
}

}  // namespace
}  // namespace streams::connect
