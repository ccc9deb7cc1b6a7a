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
  PaymentConfirmation c = Confirmation(refund_id, payment.customer_id(), payment.merchant_id(),
                                       amount, approved, payments::v1::REFUND,
                                       payment.idempotency_key());
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

// What the tables must hold after every confirmation was applied once.
struct ExpectedState {
  std::map<std::string, std::string> status;  // payment_id -> status
  std::map<std::string, int64_t> refunded;    // payment_id -> refunded_amount_minor
  std::map<std::pair<std::string, std::string>, int64_t> balances;
  int64_t changes = 0;  // Outbox events (c + u).
};

inline ExpectedState Expect(const std::vector<PaymentConfirmation>& in_order) {
  ExpectedState e;
  std::map<std::pair<std::string, std::string>, std::string> approved_payment;  // (cust, idem)
  std::map<std::string, int64_t> amount;
  for (const auto& c : in_order) {
    if (c.replay() || e.status.count(c.payment_id()) > 0) continue;
    const bool approved = c.decision() == payments::v1::APPROVED;
    e.status[c.payment_id()] = approved ? "APPROVED" : "DECLINED";
    e.refunded[c.payment_id()] = 0;
    amount[c.payment_id()] = c.amount_minor();
    ++e.changes;
    if (!approved) continue;
    if (c.kind() == payments::v1::PAYMENT) {
      e.balances[{c.merchant_id(), c.currency()}] += c.amount_minor();
      approved_payment[{c.customer_id(), c.idempotency_key()}] = c.payment_id();
    } else if (c.kind() == payments::v1::REFUND) {
      e.balances[{c.merchant_id(), c.currency()}] -= c.amount_minor();
      auto it = approved_payment.find({c.customer_id(), c.refund_of()});
      if (it != approved_payment.end()) {
        int64_t& r = e.refunded[it->second];
        r += c.amount_minor();
        e.status[it->second] = r >= amount[it->second] ? "REFUNDED" : "PARTIALLY_REFUNDED";
        ++e.changes;
      }
    }
  }
  for (auto it = e.balances.begin(); it != e.balances.end();) {
    it = it->second == 0 ? e.balances.erase(it) : std::next(it);
  }
  return e;
}

// The state found in the database at `uri`.
inline ExpectedState Actual(const std::string& uri) {
  ExpectedState e;
  pqxx::connection conn(uri);
  pqxx::nontransaction nt(conn);
  for (const auto& r : nt.exec("SELECT payment_id, status, refunded_amount_minor FROM payments")) {
    e.status[r[0].as<std::string>()] = r[1].as<std::string>();
    e.refunded[r[0].as<std::string>()] = r[2].as<int64_t>();
  }
  for (const auto& r : nt.exec("SELECT merchant_id, currency, balance_minor FROM merchant_balances")) {
    if (r[2].as<int64_t>() != 0) e.balances[{r[0].as<std::string>(), r[1].as<std::string>()}] = r[2].as<int64_t>();
  }
  e.changes = nt.exec("SELECT count(*) FROM payments_outbox")[0][0].as<int64_t>();
  return e;
}

inline bool operator==(const ExpectedState& a, const ExpectedState& b) {
  return a.status == b.status && a.refunded == b.refunded && a.balances == b.balances &&
         a.changes == b.changes;
}

inline std::ostream& operator<<(std::ostream& os, const ExpectedState& s) {
  os << s.status.size() << " payments, " << s.balances.size() << " balances, " << s.changes
     << " outbox events; balances:";
  for (const auto& [k, v] : s.balances) os << " " << k.first << "/" << k.second << "=" << v;
  return os;
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
