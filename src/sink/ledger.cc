#include "sink/ledger.h"

#include <pqxx/pqxx>
#include <set>

#include "payments/pan.h"
#include "sink/payment_row.h"
#include "streams/connect/sql_transaction.h"

namespace payments_sink {

using payments::v1::PaymentConfirmation;

Ledger ExpectedLedger(const std::vector<PaymentConfirmation>& confirmations) {
  Ledger e;
  // (customer_id, idempotency_key) of approved payments -> payment_id.
  std::map<std::pair<std::string, std::string>, std::string> approved_payment;
  std::map<std::string, int64_t> amount;
  for (const PaymentConfirmation& c : confirmations) {
    if (c.replay() || e.status.count(c.payment_id()) > 0) continue;
    const bool approved = c.decision() == payments::v1::APPROVED;
    e.status[c.payment_id()] = approved ? "APPROVED" : "DECLINED";
    e.refunded[c.payment_id()] = 0;
    amount[c.payment_id()] = c.amount_minor();
    ++e.changes;
    if (!approved) continue;
    if (c.kind() == payments::v1::PAYMENT) {
      e.balances[{c.merchant_id(), c.currency()}] += c.amount_minor();
      approved_payment.emplace(std::make_pair(c.customer_id(), c.idempotency_key()),
                               c.payment_id());
    } else if (c.kind() == payments::v1::REFUND) {
      e.balances[{c.merchant_id(), c.currency()}] -= c.amount_minor();
      auto it = approved_payment.find({c.customer_id(), c.refund_of()});
      if (it != approved_payment.end()) {
        int64_t& refunded = e.refunded[it->second];
        refunded += c.amount_minor();
        e.status[it->second] = RefundStatus(refunded, amount[it->second]);
        ++e.changes;
      }
    }
  }
  for (auto it = e.balances.begin(); it != e.balances.end();) {
    it = it->second == 0 ? e.balances.erase(it) : std::next(it);
  }
  return e;
}

streams::Result<Ledger> ReadLedger(const std::string& uri) {
  STREAMS_ASSIGN_OR_RETURN(auto conn, streams::connect::Connect(uri));
  try {
    Ledger e;
    pqxx::read_transaction txn(*conn);  // One snapshot for all three tables.
    for (const auto& r :
         txn.exec("SELECT payment_id, status, refunded_amount_minor FROM payments")) {
      e.status[r[0].as<std::string>()] = r[1].as<std::string>();
      e.refunded[r[0].as<std::string>()] = r[2].as<int64_t>();
    }
    for (const auto& r :
         txn.exec("SELECT merchant_id, currency, balance_minor FROM merchant_balances")) {
      if (r[2].as<int64_t>() != 0) {
        e.balances[{r[0].as<std::string>(), r[1].as<std::string>()}] = r[2].as<int64_t>();
      }
    }
    e.changes = txn.exec("SELECT count(*) FROM payments_outbox")[0][0].as<int64_t>();
    return e;
  } catch (const std::exception& ex) {
    return streams::connect::TranslateSqlException(ex);
  }
}

namespace {

// Adds "<kind>: <text>" while fewer than `max` of that kind were added;
// counts every one.
class Differences {
 public:
  explicit Differences(size_t max) : max_(max) {}
  void Add(const std::string& kind, const std::string& text) {
    if (count_[kind]++ < max_) out_.push_back(kind + ": " + payments::RedactPanBytes(text));
  }
  std::vector<std::string> Take() {
    for (const auto& [kind, n] : count_) {
      if (n > max_) out_.push_back(kind + ": " + std::to_string(n - max_) + " more");
    }
    return std::move(out_);
  }

 private:
  size_t max_;
  std::map<std::string, size_t> count_;
  std::vector<std::string> out_;
};

}  // namespace

std::ostream& operator<<(std::ostream& os, const Ledger& ledger) {
  os << ledger.status.size() << " payments, " << ledger.balances.size() << " balances, "
     << ledger.changes << " changes; balances:";
  for (const auto& [key, value] : ledger.balances) {
    os << " " << key.first << "/" << key.second << "=" << value;
  }
  return os;
}

std::vector<std::string> CompareLedgers(const Ledger& expected, const Ledger& actual,
                                        size_t max_examples) {
  Differences d(max_examples);
  for (const auto& [id, status] : expected.status) {
    auto it = actual.status.find(id);
    if (it == actual.status.end()) {
      d.Add("missing_row", id);
      continue;
    }
    if (it->second != status) d.Add("status", id + " is " + it->second + ", expected " + status);
    const int64_t want = expected.refunded.at(id);
    const int64_t got = actual.refunded.count(id) ? actual.refunded.at(id) : 0;
    if (want != got) {
      d.Add("refunded_amount",
            id + " has " + std::to_string(got) + ", expected " + std::to_string(want));
    }
  }
  for (const auto& [id, status] : actual.status) {
    if (expected.status.count(id) == 0) d.Add("unexpected_row", id + " (" + status + ")");
  }
  std::set<std::pair<std::string, std::string>> keys;
  for (const auto& [k, v] : expected.balances) keys.insert(k);
  for (const auto& [k, v] : actual.balances) keys.insert(k);
  for (const auto& key : keys) {
    auto want_it = expected.balances.find(key);
    auto got_it = actual.balances.find(key);
    const int64_t want = want_it == expected.balances.end() ? 0 : want_it->second;
    const int64_t got = got_it == actual.balances.end() ? 0 : got_it->second;
    if (want != got) {
      d.Add("balance", key.first + "/" + key.second + " is " + std::to_string(got) + ", expected " +
                           std::to_string(want));
    }
  }
  return d.Take();
}

}  // namespace payments_sink
