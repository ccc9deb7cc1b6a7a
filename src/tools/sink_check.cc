#include "tools/sink_check.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "payments/pan.h"
#include "payments/v1/payments.pb.h"

namespace payments::tools {
namespace {

void AddViolation(SinkCheckReport& report, const std::string& kind, const std::string& example,
                  size_t max_examples) {
  ViolationSummary& v = report.violations[kind];
  ++v.count;
  if (v.examples.size() < max_examples) v.examples.push_back(payments::RedactPanBytes(example));
}

std::string Where(const ReadRecord& r) {
  return r.topic + "-" + std::to_string(r.partition.value()) + "@" +
         std::to_string(r.offset.value());
}

}  // namespace

payments_sink::Ledger ExpectedLedgerOf(const std::vector<ReadRecord>& confirmations) {
  std::vector<payments::v1::PaymentConfirmation> decoded;
  decoded.reserve(confirmations.size());
  for (const ReadRecord& r : confirmations) {
    payments::v1::PaymentConfirmation c;
    if (!r.value || !c.ParseFromString(*r.value) || c.payment_id().empty()) continue;
    decoded.push_back(std::move(c));
  }
  return payments_sink::ExpectedLedger(decoded);
}

void SetExpectation(const payments_sink::Ledger& expected, SinkCheckReport& report) {
  report.expected_rows = expected.status.size();
  report.expected_balances = expected.balances.size();
  report.expected_changes = static_cast<uint64_t>(expected.changes);
}

streams::Status CheckDatabase(const payments_sink::Ledger& expected,
                              const std::string& database_url, size_t max_examples,
                              SinkCheckReport& report) {
  STREAMS_ASSIGN_OR_RETURN(payments_sink::Ledger actual, payments_sink::ReadLedger(database_url));
  report.database_checked = true;
  report.rows = actual.status.size();
  report.balances = actual.balances.size();
  for (const std::string& d :
       payments_sink::CompareLedgers(expected, actual, std::numeric_limits<size_t>::max())) {
    AddViolation(report, "database_mismatch", d, max_examples);
  }
  return streams::Status::Ok();
}

void CheckCdc(const payments_sink::Ledger& expected, const std::vector<ReadRecord>& cdc,
              size_t max_examples, SinkCheckReport& report) {
  report.cdc_checked = true;
  report.cdc_events = cdc.size();
  std::set<std::string> ids;
  struct PaymentEvents {
    bool created = false;
    int64_t refunded = 0;
  };
  std::map<std::string, PaymentEvents> payments;
  std::set<std::string> created;  // payment_ids with a "c" event
  int64_t updates = 0;            // distinct "u" events
  for (const ReadRecord& r : cdc) {
    const std::string* id = nullptr;
    for (const auto& h : r.headers) {
      if (h.key == "id") id = &h.value;
    }
    nlohmann::json envelope;
    try {
      if (!r.value) throw std::invalid_argument("no value");
      envelope = nlohmann::json::parse(*r.value);
      if (!envelope.at("op").is_string() || !envelope.at("after").is_object()) {
        throw std::invalid_argument("op or after missing");
      }
    } catch (const std::exception& e) {
      AddViolation(report, "cdc_bad_event", Where(r) + ": " + e.what(), max_examples);
      continue;
    }
    if (id == nullptr || id->empty()) {
      AddViolation(report, "cdc_bad_event", Where(r) + ": no id header", max_examples);
      continue;
    }
    if (!ids.insert(*id).second) continue;  // A redelivery (at least once): same event.
    const std::string op = envelope["op"].get<std::string>();
    const nlohmann::json& after = envelope["after"];
    const std::string payment_id = after.value("payment_id", "");
    const int64_t refunded = after.value("refunded_amount_minor", int64_t{0});
    PaymentEvents& p = payments[payment_id];
    if (op == "c") {
      if (p.created) {
        AddViolation(report, "cdc_out_of_order", Where(r) + ": second create of " + payment_id,
                     max_examples);
      }
      p.created = true;
      created.insert(payment_id);
    } else if (op == "u") {
      ++updates;
      if (!p.created || refunded < p.refunded) {
        AddViolation(report, "cdc_out_of_order",
                     Where(r) + ": update of " + payment_id +
                         (p.created ? " moves refunded amount back" : " before its create"),
                     max_examples);
      }
    } else {
      AddViolation(report, "cdc_bad_event", Where(r) + ": op " + op, max_examples);
    }
    p.refunded = std::max(p.refunded, refunded);
    if (expected.status.count(payment_id) == 0) {
      AddViolation(report, "cdc_unexpected_event", Where(r) + ": " + payment_id, max_examples);
    }
  }
  report.cdc_distinct_ids = ids.size();
  for (const auto& [payment_id, status] : expected.status) {
    if (created.count(payment_id) == 0) {
      AddViolation(report, "cdc_missing_event", "no create event for " + payment_id, max_examples);
    }
  }
  const int64_t expected_updates = expected.changes - static_cast<int64_t>(expected.status.size());
  if (updates != expected_updates) {
    AddViolation(report, "cdc_missing_event",
                 std::to_string(updates) + " distinct update events, expected " +
                     std::to_string(expected_updates),
                 max_examples);
  }
  for (const auto& [payment_id, p] : payments) {
    auto it = expected.refunded.find(payment_id);
    if (it != expected.refunded.end() && p.refunded != it->second) {
      AddViolation(report, "cdc_missing_event",
                   payment_id + ": last event has refunded " + std::to_string(p.refunded) +
                       ", expected " + std::to_string(it->second),
                   max_examples);
    }
  }
}

std::string SinkCheckReport::ToText() const {
  std::ostringstream out;
  out << "sink expected: " << expected_rows << " payments rows, " << expected_balances
      << " merchant balances, " << expected_changes << " change events\n";
  if (database_checked) {
    out << "database: " << rows << " payments rows, " << balances << " merchant balances: "
        << (violations.count("database_mismatch") ? "DIFFERENT" : "match the confirmations")
        << "\n";
  }
  if (cdc_checked) {
    out << "cdc topic: " << cdc_events << " records, " << cdc_distinct_ids
        << " distinct event ids (" << (cdc_events - cdc_distinct_ids) << " redelivered), "
        << expected_changes << " expected\n";
  }
  if (violations.empty()) {
    out << "sink violations: 0\n";
  } else {
    for (const auto& [kind, v] : violations) {
      out << "sink violation " << kind << ": " << v.count << "\n";
      for (const auto& e : v.examples) out << "  " << e << "\n";
    }
  }
  return out.str();
}

}  // namespace payments::tools
