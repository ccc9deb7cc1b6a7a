// Ledger: what payments-sink's tables must hold once a stream of confirmations
// has been applied exactly once, what a database holds, and the differences.
// payments-verify (--database-url) and the sink's tests check a run with it.
//
// The rules are the sink's (src/sink/README.md): the first non-replay
// confirmation of a payment_id makes its row; a replay, or the same payment_id
// again, changes nothing; an approved PAYMENT adds its amount to its merchant's
// balance in its currency, an approved REFUND subtracts it and adds it to the
// refunded amount of the approved PAYMENT of the same customer whose
// idempotency key it names (when there is one), which becomes
// PARTIALLY_REFUNDED or REFUNDED. Each new row, and each refund applied to a
// payment, is one change event (CDC).
//
// Thread safety: plain values and functions; ReadLedger uses only its own connection.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "payments/v1/payments.pb.h"
#include "streams/result.h"

namespace payments_sink {

struct Ledger {
  std::map<std::string, std::string> status;  // payment_id -> status column
  std::map<std::string, int64_t> refunded;    // payment_id -> refunded_amount_minor
  // (merchant_id, currency) -> balance_minor; zero balances are left out.
  std::map<std::pair<std::string, std::string>, int64_t> balances;
  // Change events: expected ones in ExpectedLedger; in ReadLedger the outbox
  // rows present (delivered rows are pruned after cdc.outbox.retention.ms).
  int64_t changes = 0;
  friend bool operator==(const Ledger&, const Ledger&) = default;
};

// The ledger of `confirmations` applied once each, in the order given (the
// order of each confirmations partition; a customer's confirmations share one).
Ledger ExpectedLedger(const std::vector<payments::v1::PaymentConfirmation>& confirmations);

// The ledger held by the database at libpq URI `uri`. Errors: Unavailable
// when it cannot be reached, Internal for any other database error (the
// message is libpq's, without the URI's password).
streams::Result<Ledger> ReadLedger(const std::string& uri);

// Up to `max_examples` descriptions of each kind of difference between
// `expected` and `actual` (rows missing or unexpected, status, refunded
// amount, balance), ignoring `changes`; empty when they agree. Ids and
// amounts only: no card number can appear (payment ids never hold digits).
// "<n> payments, <n> balances, <n> changes; balances: m/EUR=..." (for test failures).
std::ostream& operator<<(std::ostream& os, const Ledger& ledger);

std::vector<std::string> CompareLedgers(const Ledger& expected, const Ledger& actual,
                                        size_t max_examples = 10);

}  // namespace payments_sink
