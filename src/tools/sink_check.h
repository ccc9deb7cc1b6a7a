// SinkCheck: checks what payments-sink made of a run's confirmations, for
// payments-verify --database-url / --cdc-topic:
//  - the database (payments rows, refunded amounts and statuses, merchant
//    balances) equals the ledger of the confirmations applied exactly once
//    (sink/ledger.h) [database_mismatch];
//  - the CDC topic holds one event id (header "id") per expected change,
//    duplicates allowed (the relay is at least once) [cdc_missing_event,
//    cdc_unexpected_event]; each payment's events are in order: its "c" event
//    first, then "u" events whose refunded amount never goes down
//    [cdc_out_of_order]; every value is a decodable envelope [cdc_bad_event].
//
// Thread safety: pure functions over values (CheckDatabase opens its own connection).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sink/ledger.h"
#include "streams/status.h"
#include "tools/kafka_util.h"
#include "tools/verifier.h"

namespace payments::tools {

struct SinkCheckReport {
  // The expectation, from the confirmations.
  uint64_t expected_rows = 0;
  uint64_t expected_balances = 0;
  uint64_t expected_changes = 0;
  // The database, when checked.
  bool database_checked = false;
  uint64_t rows = 0;
  uint64_t balances = 0;
  // The CDC topic, when checked.
  bool cdc_checked = false;
  uint64_t cdc_events = 0;                             // Records read.
  uint64_t cdc_distinct_ids = 0;                       // Distinct "id" headers.
  std::map<std::string, ViolationSummary> violations;  // By kind.

  bool ok() const { return violations.empty(); }
  std::string ToText() const;
};

// The ledger expected of `confirmations` (records of the confirmations topic
// in (partition, offset) order); undecodable records are skipped (paymentd
// never writes one; the sink dead-letters them).
payments_sink::Ledger ExpectedLedgerOf(const std::vector<ReadRecord>& confirmations);

// Fills the expectation of `report` from `expected`.
void SetExpectation(const payments_sink::Ledger& expected, SinkCheckReport& report);

// Compares the database at `database_url` with `expected`. Errors: those of
// payments_sink::ReadLedger (the report is then unchanged).
streams::Status CheckDatabase(const payments_sink::Ledger& expected,
                              const std::string& database_url, size_t max_examples,
                              SinkCheckReport& report);

// Checks the records of the CDC topic (in (partition, offset) order).
void CheckCdc(const payments_sink::Ledger& expected, const std::vector<ReadRecord>& cdc,
              size_t max_examples, SinkCheckReport& report);

}  // namespace payments::tools
