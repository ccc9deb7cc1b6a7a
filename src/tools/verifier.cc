#include "tools/verifier.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include "payments/decline_codes.h"
#include "payments/fingerprint.h"
#include "payments/pan.h"
#include "payments/v1/payments.pb.h"
#include "payments/validation.h"
#include "streams/processor.h"

namespace payments::tools {
namespace {

using payments::v1::PaymentConfirmation;
using payments::v1::PaymentRequest;

// The codes ValidateRequest can return, and the timestamp codes: a request
// that passes those checks never carries one.
const std::set<std::string, std::less<>>& ValidationCodes() {
  static const auto* codes = new std::set<std::string, std::less<>>{
      std::string(decline_code::kPanNotAllowed),   std::string(decline_code::kMissingField),
      std::string(decline_code::kKeyMismatch),     std::string(decline_code::kFieldTooLong),
      std::string(decline_code::kInvalidKind),     std::string(decline_code::kRefundOfRequired),
      std::string(decline_code::kInvalidAmount),   std::string(decline_code::kAmountTooLarge),
      std::string(decline_code::kUnknownCurrency),
      std::string(decline_code::kInvalidIdentifier),
      std::string(decline_code::kTimestampInvalid),
      std::string(decline_code::kTimestampTooFarAhead),
  };
  return *codes;
}

std::string DecisionName(const PaymentConfirmation& c) {
  std::string out = payments::v1::Decision_Name(c.decision());
  if (out.empty()) out = "decision " + std::to_string(c.decision());
  if (!c.decline_code().empty()) out += " " + c.decline_code();
  if (c.replay()) out += " (replay)";
  return out;
}

// The coordinates of a request record.
struct Coordinates {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  friend auto operator<=>(const Coordinates&, const Coordinates&) = default;
};

std::string Describe(const Coordinates& at) {
  return at.topic + "-" + std::to_string(at.partition) + "@" + std::to_string(at.offset);
}

// The first decision of an idempotency key in one partition.
struct FirstDecision {
  std::string fingerprint;
  PaymentConfirmation confirmation;
  Coordinates at;
};

using GroupKey = std::tuple<int32_t, std::string, std::string>;  // partition, customer, key

class Checker {
 public:
  Checker(const PaymentsConfig& config, const VerifyOptions& options, VerifyReport& report)
      : config_(config), options_(options), report_(report) {}

  void Violation(const std::string& kind, const std::string& example) {
    ViolationSummary& summary = report_.violations[kind];
    ++summary.count;
    if (summary.examples.size() < options_.max_examples) {
      summary.examples.push_back(RedactPans(example));
    }
  }

  // No card number in clear: any PAN in an echoed or free-text field, the
  // payment_id (digit-free by construction) or the record key is a violation.
  void CheckNoPan(const ReadRecord& record, const PaymentConfirmation& c) {
    const std::string* fields[] = {&c.idempotency_key(), &c.customer_id(),     &c.merchant_id(),
                                   &c.currency(),        &c.decline_code(),    &c.decline_message(),
                                   &c.source_topic(),    &c.refund_of(),       &c.payment_id()};
    static constexpr const char* kNames[] = {
        "idempotency_key", "customer_id",  "merchant_id", "currency",  "decline_code",
        "decline_message", "source_topic", "refund_of",   "payment_id"};
    std::string where = record.topic + "-" + std::to_string(record.partition.value()) + "@" +
                        std::to_string(record.offset.value());
    for (size_t i = 0; i < std::size(kNames); ++i) {
      if (ContainsPan(*fields[i])) {
        Violation("pan_in_confirmation", "confirmation " + where + ": card number in " + kNames[i]);
      }
    }
    if (record.key && ContainsPan(*record.key)) {
      Violation("pan_in_confirmation", "confirmation " + where + ": card number in the record key");
    }
  }

  // The digits of every card number of the request (key and all fields) must not
  // appear in any field of its confirmation, separators ignored.
  void CheckNoRequestPan(const Coordinates& at, const PaymentRequest& r,
                         const std::string& record_key, const PaymentConfirmation& c) {
    std::vector<std::string> pans;
    auto collect = [&](std::string_view text) {
      for (const PanSpan& span : FindPans(text)) {
        std::string digits;
        for (char ch : text.substr(span.begin, span.end - span.begin)) {
          if (ch >= '0' && ch <= '9') digits.push_back(ch);
        }
        pans.push_back(std::move(digits));
      }
    };
    collect(record_key);
    for (const std::string* f : {&r.idempotency_key(), &r.customer_id(), &r.merchant_id(),
                                 &r.currency(), &r.refund_of(), &r.payment_method_token()}) {
      collect(*f);
    }
    for (const auto& [key, value] : r.metadata()) {
      collect(key);
      collect(value);
    }
    if (pans.empty()) return;
    for (const std::string* f :
         {&c.payment_id(), &c.idempotency_key(), &c.customer_id(), &c.merchant_id(), &c.currency(),
          &c.decline_code(), &c.decline_message(), &c.refund_of()}) {
      std::string digits;
      for (char ch : *f) {
        if (ch >= '0' && ch <= '9') digits.push_back(ch);
      }
      for (const auto& pan : pans) {
        if (digits.find(pan) != std::string::npos) {
          Violation("pan_in_confirmation",
                    Describe(at) + ": a card number of the request appears in its confirmation");
          return;
        }
      }
    }
  }

  void CheckDecisionShape(const Coordinates& at, const PaymentConfirmation& c) {
    if (c.decision() == payments::v1::APPROVED) {
      if (!c.decline_code().empty()) {
        Violation("bad_decision",
                  Describe(at) + ": approved with decline code " + c.decline_code());
      }
    } else if (c.decision() == payments::v1::DECLINED) {
      if (!DescribeDeclineCode(c.decline_code())) {
        Violation("bad_decision",
                  Describe(at) + ": declined with unknown code '" + c.decline_code() + "'");
      }
    } else {
      Violation("bad_decision", Describe(at) + ": decision " + std::to_string(c.decision()));
    }
    if (!(c.fraud_score() >= 0.0 && c.fraud_score() <= 1.0)) {
      Violation("bad_decision", Describe(at) + ": fraud_score " + std::to_string(c.fraud_score()) +
                                    " not in [0, 1]");
    }
  }

  // The task's verdict on a request's timestamp, modelled per partition in
  // offset order (call once per decodable request): only valid timestamps
  // move stream time. `stream_ms` is set to the stream time after the record.
  // A record ahead of the modelled stream time by more than the skew was
  // judged against the processing host's clock too (TimestampPolicy), which
  // the verifier does not know: the confirmation tells. `declined_ahead`: its
  // confirmation is a TIMESTAMP_TOO_FAR_AHEAD decline; `replayed`: a replay
  // (decided before the timestamp check), taken as not moving stream time.
  streams::TimestampCheck ObserveTimestamp(int32_t partition, int64_t ts, bool declined_ahead,
                                           bool replayed, int64_t& stream_ms) {
    auto it = stream_time_.find(partition);
    streams::TimestampCheck check = streams::TimestampCheck::kValid;
    const bool ahead =
        it != stream_time_.end() && ts - it->second > config_.max_clock_skew.count();
    if (ts < 0 || ts > streams::kMaxValidTimestampMillis) {
      check = streams::TimestampCheck::kInvalid;
    } else if (ahead && (declined_ahead || replayed)) {
      check = streams::TimestampCheck::kTooFarAhead;
    } else if (it == stream_time_.end() || ts > it->second) {
      stream_time_[partition] = ts;
    }
    auto now = stream_time_.find(partition);
    stream_ms = now == stream_time_.end() ? 0 : now->second;
    return check;
  }

  void CheckEcho(const Coordinates& at, int64_t timestamp_ms, const PaymentRequest& r,
                 const PaymentConfirmation& c) {
    std::vector<std::string> diffs;
    if (c.customer_id() != r.customer_id()) diffs.push_back("customer_id");
    if (c.idempotency_key() != r.idempotency_key()) diffs.push_back("idempotency_key");
    if (c.kind() != r.kind()) diffs.push_back("kind");
    if (c.amount_minor() != r.amount_minor()) diffs.push_back("amount_minor");
    if (c.currency() != r.currency()) diffs.push_back("currency");
    if (c.merchant_id() != r.merchant_id()) diffs.push_back("merchant_id");
    if (c.refund_of() != r.refund_of()) diffs.push_back("refund_of");
    if (!c.replay() && c.decided_at_ms() != timestamp_ms) diffs.push_back("decided_at_ms");
    if (diffs.empty()) return;
    std::string fields;
    for (const auto& d : diffs) fields += (fields.empty() ? "" : ", ") + d;
    Violation("confirmation_mismatch",
              Describe(at) + ": confirmation differs from the request in " + fields);
  }

  // Compares a replay with the first decision of its key.
  void CheckReplay(const Coordinates& at, const FirstDecision& first,
                   const PaymentConfirmation& c) {
    const PaymentConfirmation& f = first.confirmation;
    std::vector<std::string> diffs;
    if (c.payment_id() != f.payment_id()) diffs.push_back("payment_id");
    if (c.decision() != f.decision()) diffs.push_back("decision");
    if (c.decline_code() != f.decline_code()) diffs.push_back("decline_code");
    if (c.amount_minor() != f.amount_minor()) diffs.push_back("amount_minor");
    if (c.currency() != f.currency()) diffs.push_back("currency");
    if (c.fraud_score() != f.fraud_score()) diffs.push_back("fraud_score");
    if (diffs.empty()) return;
    std::string fields;
    for (const auto& d : diffs) fields += (fields.empty() ? "" : ", ") + d;
    Violation("replay_mismatch", Describe(at) + ": replay differs from the first decision at " +
                                     Describe(first.at) + " in " + fields);
  }

  void CheckRequest(const Coordinates& at, const ReadRecord& record, const PaymentRequest& request,
                    const PaymentConfirmation& c, streams::TimestampCheck timestamp_check,
                    int64_t stream_ms) {
    CheckDecisionShape(at, c);
    const std::string record_key = record.key.value_or("");
    CheckNoRequestPan(at, request, record_key, c);
    const std::string what =
        Describe(at) + " customer=" + request.customer_id() + " key=" + request.idempotency_key();
    auto expect = [&](std::string_view code) {
      if (c.decision() != payments::v1::DECLINED || c.decline_code() != code || c.replay()) {
        Violation("validation_code_mismatch",
                  what + ": expected " + std::string(code) + ", got " + DecisionName(c));
      }
    };

    // 1. A card number anywhere: declined, redacted, never stored or replayed.
    if (FindPanField(request, record_key)) {
      if (c.decision() != payments::v1::DECLINED ||
          c.decline_code() != decline_code::kPanNotAllowed || c.replay()) {
        Violation("validation_code_mismatch",
                  Describe(at) + ": expected PAN_NOT_ALLOWED, got " + DecisionName(c));
      }
      return;
    }
    // A record with a rejected timestamp is answered at the stream time.
    const bool valid_time = timestamp_check == streams::TimestampCheck::kValid;
    CheckEcho(at, valid_time ? record.timestamp.millis() : stream_ms, request, c);
    const std::string fingerprint = RequestFingerprint(request);
    const GroupKey group{at.partition, request.customer_id(), request.idempotency_key()};

    // 2. Identity: that decline, never a replay, never stored.
    if (auto decline = ValidateIdentity(request, record_key)) {
      expect(decline->code);
      return;
    }

    // 3. Idempotency, before the timestamp and field checks.
    auto first = first_.find(group);
    if (first != first_.end()) {
      if (first->second.fingerprint == fingerprint) {
        if (!c.replay()) {
          Violation("duplicate_decision", what + ": a second decision (" + DecisionName(c) +
                                              ") instead of a replay of " +
                                              Describe(first->second.at));
        } else {
          CheckReplay(at, first->second, c);
        }
      } else if (c.replay() || c.decline_code() != decline_code::kIdempotencyKeyReused) {
        Violation("key_reuse_not_declined",
                  what + ": different parameters than " + Describe(first->second.at) +
                      ", expected IDEMPOTENCY_KEY_REUSED, got " + DecisionName(c));
      }
      return;
    }

    // 4. Timestamps the task rejected: declined, not stored.
    if (timestamp_check == streams::TimestampCheck::kInvalid) {
      expect(decline_code::kTimestampInvalid);
      return;
    }
    if (timestamp_check == streams::TimestampCheck::kTooFarAhead) {
      expect(decline_code::kTimestampTooFarAhead);
      return;
    }

    // 5. Field validation: always that decline, never a replay (first decision).
    if (auto decline = ValidateRequest(request, record_key, config_)) {
      expect(decline->code);
      const auto max_len = static_cast<size_t>(config_.string_max_length);
      if (request.customer_id().size() <= max_len && request.idempotency_key().size() <= max_len) {
        first_.emplace(group, FirstDecision{fingerprint, c, at});
      }
      return;
    }
    if (ValidationCodes().contains(c.decline_code())) {
      Violation("unexpected_validation_code",
                what + ": valid request declined with " + c.decline_code());
    }

    // 6. The first decision of its key.
    if (c.replay()) {
      Violation("first_decision_is_replay", what + ": first request of its key got a replay");
    }
    if (c.decline_code() == decline_code::kIdempotencyKeyReused) {
      Violation("first_decision_key_reused",
                what + ": first request of its key declined as IDEMPOTENCY_KEY_REUSED");
    }
    // A rate-limited request is not stored: its retry is decided again.
    if (c.decline_code() != decline_code::kRateLimited) {
      first_.emplace(group, FirstDecision{fingerprint, c, at});
    }

    // 4. Refunds never exceed their payment.
    if (request.kind() == payments::v1::REFUND && c.decision() == payments::v1::APPROVED &&
        !c.replay()) {
      ++report_.approved_refunds;
      report_.approved_refund_minor += c.amount_minor();
      const GroupKey original{at.partition, request.customer_id(), request.refund_of()};
      auto payment = first_.find(original);
      if (payment == first_.end() || payment->second.confirmation.kind() != payments::v1::PAYMENT ||
          payment->second.confirmation.decision() != payments::v1::APPROVED) {
        Violation("refund_of_unapproved_payment",
                  what + ": approved refund of " + request.refund_of() +
                      ", which is not an approved payment of the customer");
        return;
      }
      const PaymentConfirmation& paid = payment->second.confirmation;
      if (paid.currency() != request.currency()) {
        Violation("refund_currency_mismatch", what + ": refund in " + request.currency() +
                                                  " of a payment in " + paid.currency());
      }
      int64_t& refunded = refunded_[original];
      refunded += request.amount_minor();
      if (refunded > paid.amount_minor()) {
        Violation("refund_exceeds_payment", what + ": approved refunds of " + request.refund_of() +
                                                " reach " + std::to_string(refunded) +
                                                " > payment amount " +
                                                std::to_string(paid.amount_minor()));
      }
    }
  }

 private:
  const PaymentsConfig& config_;
  const VerifyOptions& options_;
  VerifyReport& report_;
  std::map<GroupKey, FirstDecision> first_;
  std::map<GroupKey, int64_t> refunded_;
  std::map<int32_t, int64_t> stream_time_;  // partition -> modelled stream time
};

}  // namespace

uint64_t VerifyReport::violation_count() const {
  uint64_t total = 0;
  for (const auto& [kind, summary] : violations) total += summary.count;
  return total;
}

VerifyReport Verify(const PaymentsConfig& config, const std::vector<ReadRecord>& requests,
                    const std::vector<ReadRecord>& confirmations, const VerifyOptions& options) {
  VerifyReport report;
  Checker checker(config, options, report);

  // Confirmations by the request they name (a replay names the retry it answers).
  std::map<Coordinates, std::vector<PaymentConfirmation>> by_source;
  for (const ReadRecord& record : confirmations) {
    PaymentConfirmation c;
    if (!record.value || !c.ParseFromString(*record.value)) {
      ++report.undecodable_confirmations;
      checker.Violation("undecodable_confirmation",
                        record.topic + "-" + std::to_string(record.partition.value()) + "@" +
                            std::to_string(record.offset.value()) + ": not a PaymentConfirmation");
      continue;
    }
    ++report.confirmations;
    checker.CheckNoPan(record, c);
    if (c.replay()) {
      ++report.replays;
    } else if (c.decision() == payments::v1::APPROVED) {
      ++report.approved;
    } else {
      ++report.declined;
      ++report.declined_by_code[c.decline_code()];
      if (c.decline_code() == decline_code::kIdempotencyKeyReused) ++report.key_reused;
    }
    Coordinates at{c.source_topic(), c.source_partition(), c.source_offset()};
    by_source[at].push_back(std::move(c));
  }

  std::set<Coordinates> requested;
  for (const ReadRecord& record : requests) {
    const Coordinates at{record.topic, record.partition.value(), record.offset.value()};
    requested.insert(at);
    ++report.requests;
    auto found = by_source.find(at);
    const size_t count = found == by_source.end() ? 0 : found->second.size();
    PaymentRequest request;
    if (!record.value || !request.ParseFromString(*record.value)) {
      ++report.undecodable_requests;
      if (count != 0) {
        checker.Violation("confirmation_for_undecodable",
                          Describe(at) + ": an undecodable request has a confirmation");
      }
      continue;
    }
    int64_t stream_ms = 0;
    const bool declined_ahead =
        count != 0 && found->second.front().decision() == payments::v1::DECLINED &&
        found->second.front().decline_code() == decline_code::kTimestampTooFarAhead;
    const bool replayed = count != 0 && found->second.front().replay();
    const streams::TimestampCheck timestamp_check = checker.ObserveTimestamp(
        at.partition, record.timestamp.millis(), declined_ahead, replayed, stream_ms);
    if (count == 0) {
      checker.Violation("missing_confirmation", Describe(at) + " customer=" +
                                                    request.customer_id() + " key=" +
                                                    request.idempotency_key() + ": no confirmation");
      continue;
    }
    if (count > 1) {
      checker.Violation("duplicate_confirmation",
                        Describe(at) + ": " + std::to_string(count) + " confirmations");
    }
    checker.CheckRequest(at, record, request, found->second.front(), timestamp_check, stream_ms);
  }
  for (const auto& [at, named] : by_source) {
    if (requested.count(at) != 0) continue;
    for (size_t i = 0; i < named.size(); ++i) {
      checker.Violation("orphan_confirmation",
                        "confirmation of " + Describe(at) + ", which is not a request read");
    }
  }
  return report;
}

std::string VerifyReport::ToText() const {
  std::ostringstream out;
  out << "requests=" << requests << " confirmations=" << confirmations << " approved=" << approved
      << " declined=" << declined << " replays=" << replays << " key_reused=" << key_reused
      << " undecodable_requests=" << undecodable_requests << " violations=" << violation_count()
      << "\n";
  out << "approved refunds: " << approved_refunds << " (" << approved_refund_minor
      << " minor units)\n";
  out << "declined by code (non-replay):\n";
  for (const auto& [code, n] : declined_by_code) out << "  " << code << ": " << n << "\n";
  if (violations.empty()) {
    out << "violations: none\n";
  } else {
    out << "violations:\n";
    for (const auto& [kind, summary] : violations) {
      out << "  " << kind << ": " << summary.count << "\n";
      for (const auto& example : summary.examples) out << "    e.g. " << example << "\n";
    }
  }
  out << (ok() ? "RESULT: OK" : "RESULT: FAILED") << "\n";
  return out.str();
}

std::string VerifyReport::ToJson() const {
  nlohmann::json j;
  j["requests"] = requests;
  j["undecodable_requests"] = undecodable_requests;
  j["confirmations"] = confirmations;
  j["undecodable_confirmations"] = undecodable_confirmations;
  j["approved"] = approved;
  j["declined"] = declined;
  j["replays"] = replays;
  j["key_reused"] = key_reused;
  j["approved_refunds"] = approved_refunds;
  j["approved_refund_minor"] = approved_refund_minor;
  j["declined_by_code"] = declined_by_code;
  nlohmann::json v = nlohmann::json::object();
  for (const auto& [kind, summary] : violations) {
    v[kind] = {{"count", summary.count}, {"examples", summary.examples}};
  }
  j["violations"] = v;
  j["violation_count"] = violation_count();
  j["ok"] = ok();
  // Example texts come from the data: never throw on invalid UTF-8.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace payments::tools
