// Verifier: checks the invariants of a paymentd run from the records of the
// requests and confirmations topics (as read with read_committed).
//
// Invariants (violation kinds in brackets):
//  - every request record (source topic/partition/offset) has exactly one
//    confirmation [missing_confirmation, duplicate_confirmation]; a
//    confirmation names a request that was read [orphan_confirmation]; a request
//    that does not decode as a PaymentRequest has none (it is dead-lettered)
//    [confirmation_for_undecodable]. A replay may name its own request, or -
//    as the decide processor does, re-emitting the stored confirmation
//    unchanged - the original request of its key (which has its own decision):
//    such a replay is attributed to the next request of the same partition and
//    (customer_id, idempotency_key), in offset order, that has no confirmation
//    naming it; a replay left over is a duplicate_confirmation;
//  - per partition and (customer_id, idempotency_key): the first decided
//    request's decision is not a replay [first_decision_is_replay] and is not
//    IDEMPOTENCY_KEY_REUSED [first_decision_key_reused]; a later request with the
//    same fingerprint (payments::RequestFingerprint) is a replay
//    [duplicate_decision] identical to the first decision in payment_id,
//    decision, decline_code, amount, currency and fraud_score [replay_mismatch];
//    a later request with another fingerprint is declined with
//    IDEMPOTENCY_KEY_REUSED and not a replay [key_reuse_not_declined];
//  - declines for the right reasons: payments::ValidateRequest is re-run on
//    every request with its record key; a failing request is declined, not as a
//    replay, with exactly that code [validation_code_mismatch]; a valid one never
//    carries a validation code [unexpected_validation_code]; approved decisions
//    have no decline code and declines have a known one [bad_decision];
//  - a confirmation echoes its request (customer_id, idempotency_key, kind,
//    amount, currency, merchant_id, refund_of; decided_at_ms = the request's
//    timestamp for a non-replay) [confirmation_mismatch]; fraud_score in [0, 1]
//    [bad_decision];
//  - no card number in clear: no PAN (payments::ContainsPan) in any echoed or
//    free-text field or the record key of any confirmation, and no card number
//    of a request (its digits, separators ignored) in any field of its
//    confirmation, payment_id included [pan_in_confirmation];
//  - refunds: an approved REFUND refers to an approved PAYMENT of the same
//    customer in the same currency [refund_of_unapproved_payment,
//    refund_currency_mismatch] and the approved refunds of a payment add up to at
//    most its amount [refund_exceeds_payment].
//
// The idempotency model mirrors the documented rules of the decide processor:
// a PAN_NOT_ALLOWED decline is never stored; other validation declines are
// emitted again for every duplicate (never replayed) and become the key's first
// decision when storable (customer_id and idempotency_key non-empty and within
// payments.string.max.length, record key == customer_id). The run is assumed to
// span less than payments.idempotency.retention.ms of event time.
//
// Examples in the report never contain a card number (they are redacted).
//
// Thread safety: Verify is a pure function; reports are plain values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "payments/payments_config.h"
#include "tools/kafka_util.h"

namespace payments::tools {

struct ViolationSummary {
  uint64_t count = 0;
  // Up to VerifyOptions::max_examples descriptions, PAN-free.
  std::vector<std::string> examples;
};

struct VerifyReport {
  uint64_t requests = 0;
  uint64_t undecodable_requests = 0;  // Expected in the dead-letter topic.
  uint64_t confirmations = 0;
  uint64_t undecodable_confirmations = 0;
  uint64_t approved = 0;
  uint64_t declined = 0;
  uint64_t replays = 0;
  uint64_t key_reused = 0;  // Non-replay IDEMPOTENCY_KEY_REUSED declines.
  uint64_t approved_refunds = 0;
  int64_t approved_refund_minor = 0;
  // payment_ids that contain a Luhn-valid 13-19 digit run by chance (see above).
  std::map<std::string, uint64_t> declined_by_code;  // Non-replay declines only.
  std::map<std::string, ViolationSummary> violations;

  uint64_t violation_count() const;
  bool ok() const { return violation_count() == 0; }
  // A human-readable summary (several lines).
  std::string ToText() const;
  // The same as a JSON document.
  std::string ToJson() const;
};

struct VerifyOptions {
  std::string requests_topic = "payments.requests";
  size_t max_examples = 10;
};

// Checks the invariants over `requests` (records of the requests topic) and
// `confirmations` (records of the confirmations topic), each in (partition,
// offset) order. `config` must be the paymentd configuration of the run.
VerifyReport Verify(const PaymentsConfig& config, const std::vector<ReadRecord>& requests,
                    const std::vector<ReadRecord>& confirmations, const VerifyOptions& options);

}  // namespace payments::tools
