// Internal: the "decide" processor of the payments topology.
//
// Thread safety: one instance per task, driven by one thread at a time (the
// engine's contract); the shared config and scorer are immutable.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

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

  // The entry of the payments store under a pair, and whether it was found
  // under the previous key layout.
  struct PaymentsLookup {
    std::optional<PaymentsEntry> entry;
    bool legacy = false;
  };

  // The decision of (customer_id, idempotency_key) in the idempotency store,
  // and the entry of the payments store under it (a payment, or a REFUND's
  // decision); current key layout, then the previous one while a store holds
  // such keys. Errors: store errors, Corruption.
  streams::Result<std::optional<IdempotencyRecord>> FindIdempotencyRecord(
      std::string_view customer_id, std::string_view idempotency_key);
  streams::Result<PaymentsLookup> FindPaymentsEntry(std::string_view customer_id,
                                                    std::string_view idempotency_key);
  // Whether an approved payment recorded at stream time is still refundable.
  bool Refundable(const PaymentRecord& payment) const;

  streams::Status DecidePayment(const Request& request, const std::string& key,
                                int64_t record_ms, Confirmation& confirmation);
  streams::Status DecideRefund(const Request& request, Confirmation& confirmation);
  streams::Status StoreDecision(const std::string& key, const std::string& fingerprint,
                                const Confirmation& confirmation);
  streams::Status StoreRefundDecision(const std::string& key, const std::string& fingerprint,
                                      const Confirmation& confirmation);
  streams::Status Emit(std::string key, Confirmation confirmation, streams::Timestamp timestamp);
  // Looks for keys of the previous layout in the idempotency and payments
  // stores (cheap: one seek each); while there are some, lookups also read them.
  streams::Status CheckLegacyKeys();

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
  bool legacy_checked_ = false;
  bool legacy_keys_ = false;
  int64_t records_until_legacy_check_ = 0;
};

// customer_id '\0' idempotency_key: the key layout of the idempotency and
// payments stores before DecisionKey (ambiguous when an id holds a NUL; only
// read, for ids without control characters, where it is not).
std::string LegacyStoreKey(std::string_view customer_id, std::string_view idempotency_key);

}  // namespace payments::internal
