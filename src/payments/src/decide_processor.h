// Internal: the "decide" processor of the payments topology.
//
// Thread safety: one instance per task, driven by one thread at a time (the
// engine's contract); the shared config and scorer are immutable.
#pragma once

#include <memory>
#include <string>

#include "payments/decision_observer.h"
#include "payments/fraud_scorer.h"
#include "payments/payments_config.h"
#include "payments/token_bucket.h"
#include "payments/v1/payments.pb.h"
#include "payments_state.pb.h"
#include "streams/processor.h"

namespace payments::internal {

class DecideProcessor final
    : public streams::Processor<std::string, payments::v1::PaymentRequest, std::string,
                                payments::v1::PaymentConfirmation> {
 public:
  // `config` and `scorer` are shared with the other tasks; `observer` is
  // borrowed (may be nullptr).
  DecideProcessor(std::shared_ptr<const PaymentsConfig> config,
                  std::shared_ptr<const FraudScorer> scorer, DecisionObserver* observer);

  // Errors: FailedPrecondition when a store is not connected.
  streams::Status Init(
      streams::ProcessorContext<std::string, payments::v1::PaymentConfirmation>& context) override;

  // Decides the request and forwards exactly one confirmation. Errors (the
  // cycle is then aborted and retried): store I/O errors, Corruption of a
  // stored value, errors of the sink.
  streams::Status Process(
      const streams::Record<std::string, payments::v1::PaymentRequest>& record) override;

 private:
  using Confirmation = payments::v1::PaymentConfirmation;
  using Request = payments::v1::PaymentRequest;

  streams::Status DecidePayment(const Request& request, int64_t record_ms,
                                Confirmation& confirmation);
  streams::Status DecideRefund(const Request& request, Confirmation& confirmation);
  // Stores the decision unless the key already has one (used for validation declines).
  streams::Status StoreIfAbsent(const std::string& key, const std::string& fingerprint,
                                const Confirmation& confirmation);
  streams::Status StoreDecision(const std::string& key, const std::string& fingerprint,
                                const Confirmation& confirmation);
  streams::Status Emit(std::string key, Confirmation confirmation, streams::Timestamp timestamp);

  std::shared_ptr<const PaymentsConfig> config_;
  std::shared_ptr<const FraudScorer> scorer_;
  DecisionObserver* observer_;
  TokenBucket bucket_;
  streams::ProcessorContext<std::string, Confirmation>* context_ = nullptr;
  streams::state::KeyValueStore* idempotency_ = nullptr;
  streams::state::KeyValueStore* payments_ = nullptr;
  streams::state::KeyValueStore* customers_ = nullptr;
  // Where the ApprovalEntry keys are (currently the customers store).
  streams::state::KeyValueStore* approvals_ = nullptr;
};

// customer_id '\0' idempotency_key: the key of the idempotency and payments stores.
std::string StoreKey(std::string_view customer_id, std::string_view idempotency_key);

}  // namespace payments::internal
