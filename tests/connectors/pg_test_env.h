// Shared fixture for tests that need the private PostgreSQL started by the
// ctest fixture `postgres` (scripts/pg-test-server.sh); PG_TEST_URI names it.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "streams/connect/sql_transaction.h"

namespace streams::connect {

class PgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* uri = std::getenv("PG_TEST_URI");
    if (uri == nullptr) GTEST_SKIP() << "PG_TEST_URI not set: run through ctest -L postgres";
    uri_ = uri;
    auto conn = Connect(uri_);
    ASSERT_TRUE(conn.ok()) << conn.status();
    conn_ = std::move(*conn);
    // A fresh schema per test keeps tests independent.
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    schema_ = "t_" + std::string(info->name());
    for (char& c : schema_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    pqxx::work txn(*conn_);
    txn.exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    txn.exec("CREATE SCHEMA " + schema_);
    txn.commit();
    conn_->prepare("noop", "SELECT 1");
    pqxx::nontransaction nt(*conn_);
    nt.exec("SET search_path TO " + schema_);
  }

  int64_t Count(const std::string& table) {
    pqxx::nontransaction nt(*conn_);
    return nt.exec("SELECT count(*) FROM " + table)[0][0].as<int64_t>();
  }

  std::string uri_;
  std::string schema_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace streams::connect
