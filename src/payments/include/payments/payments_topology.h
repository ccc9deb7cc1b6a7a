// The payment decision topology:
//
//   source "requests" (payments.requests.topic; key StringSerde, value
//   ProtobufSerde<PaymentRequest>; undecodable records go to the engine's
//   dead-letter topic, card numbers masked by RedactPanBytes; timestamp policy:
//   max_lead = payments.max.clock.skew.ms)
//     -> processor "decide" (stores "idempotency", "payments", "customers")
//     -> sink "confirmations" (payments.confirmations.topic; key StringSerde,
//        value ProtobufSerde<PaymentConfirmation>)
//
// Every input record yields exactly one confirmation. Decisions depend only on
// the input records (contents, order within the partition, timestamps) and the
// config, never on wall-clock time: replays and restores decide identically.
// See src/payments/README.md for the rules.
//
// Thread safety: BuildPaymentsTopology may be called from any thread; the
// returned Topology is immutable and shared by all tasks.
#pragma once

#include <memory>
#include <string_view>

#include "payments/decision_observer.h"
#include "payments/fraud_scorer.h"
#include "payments/payments_config.h"
#include "streams/result.h"
#include "streams/topology.h"

namespace payments {

// Node and store names.
inline constexpr std::string_view kRequestsSourceName = "requests";
inline constexpr std::string_view kDecideProcessorName = "decide";
inline constexpr std::string_view kConfirmationsSinkName = "confirmations";
// DecisionKey(customer_id, idempotency_key) -> payments.internal.IdempotencyRecord
// (PAYMENT and validation decisions); TTL payments.idempotency.retention.ms.
inline constexpr std::string_view kIdempotencyStoreName = "idempotency";
// DecisionKey(customer_id, idempotency_key) -> payments.internal.PaymentsEntry (an
// approved PAYMENT, or a REFUND's decision); TTL payments.refund.window.ms.
inline constexpr std::string_view kPaymentsStoreName = "payments";
// customer_id -> payments.internal.CustomerState, and 0xFF-prefixed keys of
// the customers' approvals of the last 24 h -> payments.internal.ApprovalEntry
// (see src/payments/README.md, "State stores"); TTL payments.customer.retention.ms.
inline constexpr std::string_view kCustomersStoreName = "customers";

// Builds the topology. `scorer`: nullptr means DefaultFraudScorerInstance();
// shared by all tasks (must be thread-safe). `observer`: optional, borrowed,
// must outlive every task running the topology (see DecisionObserver).
// Errors: InvalidArgument when config.Validate() fails; errors of
// TopologyBuilder::Build.
streams::Result<std::unique_ptr<streams::Topology>> BuildPaymentsTopology(
    const PaymentsConfig& config, std::shared_ptr<const FraudScorer> scorer = nullptr,
    DecisionObserver* observer = nullptr);

}  // namespace payments
