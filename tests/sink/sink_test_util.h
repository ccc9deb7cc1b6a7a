// Helpers of the payments-sink tests: confirmations, a fresh PostgreSQL
// database per test (on the server of the ctest fixture `postgres`, or a
// private one), queries of the sink's tables and the expected state computed
// from the confirmations (what a run without failures must produce).
//
// Thread safety: not thread-safe; used from the test thread.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "payments/v1/payments.pb.h"
#include "sink/ledger.h"
#include "streams/record.h"

namespace payments_sink::testing {

using payments::v1::PaymentConfirmation;

inline PaymentConfirmation Confirmation(const std::string& payment_id, const std::string& customer,
                                        const std::string& merchant, int64_t amount,
                                        bool approved = true,
                                        payments::v1::PaymentKind kind = payments::v1::PAYMENT,
                                        const std::string& refund_of = "") {
  PaymentConfirmation c;
  c.set_payment_id(payment_id);
  c.set_idempotency_key("idem-" + payment_id);
  c.set_customer_id(customer);
  c.set_merchant_id(merchant);
  c.set_kind(kind);
  c.set_amount_minor(amount);
  c.set_currency("EUR");
  c.set_decision(approved ? payments::v1::APPROVED : payments::v1::DECLINED);
  if (!approved) {
    c.set_decline_code("FRAUD_SUSPECTED");
    c.set_decline_message("fraud score above threshold");
  }
  c.set_fraud_score(0.25);
  c.set_decided_at_ms(1700000000000);
  c.set_source_topic("payments.requests");
  c.set_source_partition(0);
  c.set_source_offset(7);
  c.set_refund_of(refund_of);
  return c;
}

// A refund of the payment whose idempotency key is "idem-<payment_id>".
inline PaymentConfirmation Refund(const std::string& refund_id, const PaymentConfirmation& payment,
                                  int64_t amount, bool approved = true) {
  PaymentConfirmation c =
      Confirmation(refund_id, payment.customer_id(), payment.merchant_id(), amount, approved,
                   payments::v1::REFUND, payment.idempotency_key());
  return c;
}

inline PaymentConfirmation Replay(PaymentConfirmation c) {
  c.set_replay(true);
  return c;
}

inline streams::ConsumedRecord Record(const PaymentConfirmation& c, int32_t partition,
                                      int64_t offset,
                                      const std::string& topic = "payments.confirmations") {
  streams::ConsumedRecord r;
  r.topic = topic;
  r.partition = streams::Partition(partition);
  r.offset = streams::Offset(offset);
  r.key = c.customer_id();
  r.value = c.SerializeAsString();
  return r;
}

// What the tables must hold after every confirmation was applied once
// (sink/ledger.h; `changes` counts the outbox events).
using ExpectedState = payments_sink::Ledger;

inline ExpectedState Expect(const std::vector<PaymentConfirmation>& in_order) {
  return payments_sink::ExpectedLedger(in_order);
}

// The state found in the database at `uri` (outbox rows are never pruned in tests).
inline ExpectedState Actual(const std::string& uri) {
  auto ledger = payments_sink::ReadLedger(uri);
  EXPECT_TRUE(ledger.ok()) << ledger.status().ToString();
  return ledger.ok() ? *ledger : ExpectedState{};
}

inline int64_t ScalarQuery(const std::string& uri, const std::string& sql) {
  pqxx::connection conn(uri);
  pqxx::nontransaction nt(conn);
  auto r = nt.exec(sql);
  return r[0][0].is_null() ? 0 : r[0][0].as<int64_t>();
}

// "postgresql://user@host:port/<db>" with the database replaced.
inline std::string WithDatabase(const std::string& uri, const std::string& db) {
  return uri.substr(0, uri.rfind('/') + 1) + db;
}

// Creates a fresh database named after the running test on the server of
// `server_uri` and returns its URI.
inline std::string FreshDatabase(const std::string& server_uri, std::string name = "") {
  if (name.empty()) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    name = "s_" + std::string(info->test_suite_name()) + "_" + info->name();
  }
  for (char& c : name) {
    c = std::isalnum(static_cast<unsigned char>(c))
            ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
            : '_';
  }
  name = name.substr(0, 60);
  pqxx::connection conn(server_uri);
  pqxx::nontransaction nt(conn);
  nt.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  nt.exec("CREATE DATABASE " + name);
  return WithDatabase(server_uri, name);
}

}  // namespace payments_sink::testing
