#include "decide_processor.h"

#include <algorithm>
#include <utility>

#include "customer_model.h"
#include "payments/decline_codes.h"
#include "payments/fingerprint.h"
#include "payments/pan.h"
#include "payments/payments_topology.h"
#include "payments/validation.h"
#include "validation_internal.h"

namespace payments::internal {
namespace {

using payments::v1::PaymentConfirmation;
using payments::v1::PaymentRequest;
using streams::Status;

// The request's fields echoed into its confirmation.
PaymentConfirmation Echo(const PaymentRequest& request) {
  PaymentConfirmation c;
  c.set_idempotency_key(request.idempotency_key());
  c.set_customer_id(request.customer_id());
  c.set_merchant_id(request.merchant_id());
  c.set_kind(request.kind());
  c.set_amount_minor(request.amount_minor());
  c.set_currency(request.currency());
  c.set_refund_of(request.refund_of());
  return c;
}

void Decline(PaymentConfirmation& c, std::string_view code, std::string message) {
  c.set_decision(payments::v1::DECLINED);
  c.set_decline_code(std::string(code));
  c.set_decline_message(std::move(message));
}

void Approve(PaymentConfirmation& c) {
  c.set_decision(payments::v1::APPROVED);
  c.clear_decline_code();
  c.clear_decline_message();
}

// Parses a stored value; Corruption names the store and what failed.
template <typename M>
streams::Result<M> ParseStored(std::string_view store, const std::string& bytes) {
  M message;
  if (!message.ParseFromString(bytes)) {
    return Status::Corruption("a value of store '" + std::string(store) + "' is not a valid " +
                              message.GetTypeName());
  }
  return message;
}

}  // namespace

std::string StoreKey(std::string_view customer_id, std::string_view idempotency_key) {
  std::string key;
  key.reserve(customer_id.size() + 1 + idempotency_key.size());
  key.append(customer_id);
  key.push_back('\0');
  key.append(idempotency_key);
  return key;
}

DecideProcessor::DecideProcessor(std::shared_ptr<const PaymentsConfig> config,
                                 std::shared_ptr<const FraudScorer> scorer,
                                 DecisionObserver* observer)
    : config_(std::move(config)),
      scorer_(std::move(scorer)),
      observer_(observer),
      bucket_(config_->rate_limit_per_minute, config_->rate_limit_burst) {}

Status DecideProcessor::Init(streams::ProcessorContext<std::string, Confirmation>& context) {
  context_ = &context;
  idempotency_ = context.GetStateStore(kIdempotencyStoreName);
  payments_ = context.GetStateStore(kPaymentsStoreName);
  customers_ = context.GetStateStore(kCustomersStoreName);
  // The approvals of the rolling windows live in the customers store under
  // their own keys (see customer_model.h), so the topology keeps its stores.
  approvals_ = customers_;
  if (idempotency_ == nullptr || payments_ == nullptr || customers_ == nullptr) {
    return Status::FailedPrecondition(
        "the decide processor needs the stores 'idempotency', 'payments' and 'customers'");
  }
  return Status::Ok();
}

Status DecideProcessor::Process(const streams::Record<std::string, Request>& record) {
  const Request& request = record.value;
  const std::string& record_key = record.key;
  const int64_t record_ms = record.timestamp.millis();

  Confirmation confirmation = Echo(request);
  confirmation.set_decided_at_ms(record_ms);
  if (const auto& metadata = context_->record_metadata()) {
    confirmation.set_source_topic(metadata->topic);
    confirmation.set_source_partition(metadata->partition.value());
    confirmation.set_source_offset(metadata->offset.value());
  }

  // 1. PAN: redact everything echoed, store nothing.
  if (auto field = FindPanField(request, record_key)) {
    confirmation.set_idempotency_key(RedactPans(request.idempotency_key()));
    confirmation.set_customer_id(RedactPans(request.customer_id()));
    confirmation.set_merchant_id(RedactPans(request.merchant_id()));
    confirmation.set_currency(RedactPans(request.currency()));
    confirmation.set_refund_of(RedactPans(request.refund_of()));
    // From the redacted values: a hash of a PAN could be brute-forced back.
    confirmation.set_payment_id(
        PaymentIdFor(confirmation.customer_id(), confirmation.idempotency_key()));
    Decline(confirmation, decline_code::kPanNotAllowed,
            "a card number was found in the " + *field + "; send a payment_method_token instead");
    return Emit(RedactPans(record_key), std::move(confirmation), record.timestamp);
  }

  confirmation.set_payment_id(PaymentIdFor(request.customer_id(), request.idempotency_key()));
  const std::string fingerprint = RequestFingerprint(request);

  // 2. Stateless validation. The decline is stored (first decision wins) when
  // it can be attributed to this partition's customer and key.
  if (auto decline = ValidateWithoutPan(request, record_key, *config_)) {
    Decline(confirmation, decline->code, std::move(decline->message));
    const auto max_len = static_cast<size_t>(config_->string_max_length);
    const bool storable = !request.customer_id().empty() && !request.idempotency_key().empty() &&
                          record_key == request.customer_id() &&
                          request.customer_id().size() <= max_len &&
                          request.idempotency_key().size() <= max_len;
    if (storable) {
      STREAMS_RETURN_IF_ERROR(StoreIfAbsent(
          StoreKey(request.customer_id(), request.idempotency_key()), fingerprint, confirmation));
    }
    return Emit(record_key, std::move(confirmation), record.timestamp);
  }

  // 3. Idempotency: replay or reuse.
  const std::string key = StoreKey(request.customer_id(), request.idempotency_key());
  STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> stored, idempotency_->Get(key));
  if (stored) {
    STREAMS_ASSIGN_OR_RETURN(IdempotencyRecord previous,
                             ParseStored<IdempotencyRecord>(kIdempotencyStoreName, *stored));
    if (previous.fingerprint() == fingerprint) {
      Confirmation replay = std::move(*previous.mutable_confirmation());
      replay.set_replay(true);
      // The replay answers this request: it names this request's record, so a
      // consumer matches every request to exactly one confirmation.
      // decided_at_ms stays the original decision's time.
      replay.set_source_topic(confirmation.source_topic());
      replay.set_source_partition(confirmation.source_partition());
      replay.set_source_offset(confirmation.source_offset());
      return Emit(record_key, std::move(replay), record.timestamp);
    }
    Decline(confirmation, decline_code::kIdempotencyKeyReused,
            "idempotency_key was already used for a request with different parameters");
    return Emit(record_key, std::move(confirmation), record.timestamp);
  }

  // 4. Business rules.
  if (request.kind() == payments::v1::REFUND) {
    STREAMS_RETURN_IF_ERROR(DecideRefund(request, confirmation));
  } else {
    STREAMS_RETURN_IF_ERROR(DecidePayment(request, record_ms, confirmation));
  }
  STREAMS_RETURN_IF_ERROR(StoreDecision(key, fingerprint, confirmation));
  return Emit(record_key, std::move(confirmation), record.timestamp);
}

Status DecideProcessor::DecidePayment(const Request& request, int64_t record_ms,
                                      Confirmation& confirmation) {
  const std::string& customer = request.customer_id();
  STREAMS_ASSIGN_OR_RETURN(CustomerLedger ledger,
                           CustomerLedger::Load(*customers_, *approvals_, customer, record_ms));
  const int64_t now_ms = ledger.now_ms();
  const TokenBucketValue bucket =
      ledger.known() ? bucket_.Refill(BucketOf(ledger.state()), now_ms) : bucket_.Full(now_ms);

  STREAMS_ASSIGN_OR_RETURN(CustomerProfile profile,
                           ledger.Profile(scorer_->NeedsRecentApprovals()));
  const int32_t score = std::clamp(scorer_->ScoreBasisPoints(request, profile), 0, 10000);
  confirmation.set_fraud_score(FraudScoreFromBasisPoints(score));

  if (!bucket_.HasToken(bucket)) {
    Decline(confirmation, decline_code::kRateLimited,
            "more than " + std::to_string(config_->rate_limit_per_minute) +
                " payments per minute (burst " + std::to_string(config_->rate_limit_burst) + ")");
    return ledger.SaveIfChanged();
  }
  STREAMS_ASSIGN_OR_RETURN(const int64_t approved, ledger.ApprovedInWindow(request.currency()));
  // approved + amount > limit, without overflow (1 <= amount, 1 <= limit).
  if (approved > config_->daily_amount_limit_minor - request.amount_minor()) {
    Decline(confirmation, decline_code::kAmountLimitExceeded,
            std::to_string(approved) + " " + request.currency() +
                " minor units already approved in the last 24 h; the limit is " +
                std::to_string(config_->daily_amount_limit_minor));
    return ledger.SaveIfChanged();
  }
  if (score > config_->fraud_threshold_bp) {
    Decline(confirmation, decline_code::kFraudSuspected,
            "fraud score " + std::to_string(score) + " bp is above the threshold of " +
                std::to_string(config_->fraud_threshold_bp) + " bp");
    return ledger.SaveIfChanged();
  }

  Approve(confirmation);
  STREAMS_RETURN_IF_ERROR(ledger.Approve(request, bucket_.Take(bucket)));

  PaymentRecord payment;
  payment.set_amount_minor(request.amount_minor());
  payment.set_currency(request.currency());
  payment.set_refunded_minor(0);
  payment.set_approved_at_ms(record_ms);
  return payments_->Put(StoreKey(customer, request.idempotency_key()), payment.SerializeAsString());
}

Status DecideProcessor::DecideRefund(const Request& request, Confirmation& confirmation) {
  const std::string original_key = StoreKey(request.customer_id(), request.refund_of());
  STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> stored, payments_->Get(original_key));
  if (!stored) {
    // Not an approved payment (or no longer refundable): was it a declined one?
    STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> decided, idempotency_->Get(original_key));
    if (decided) {
      STREAMS_ASSIGN_OR_RETURN(IdempotencyRecord original,
                               ParseStored<IdempotencyRecord>(kIdempotencyStoreName, *decided));
      if (original.confirmation().kind() == payments::v1::PAYMENT &&
          original.confirmation().decision() == payments::v1::DECLINED) {
        Decline(confirmation, decline_code::kPaymentNotApproved,
                "the payment named by refund_of was declined");
        return Status::Ok();
      }
    }
    Decline(confirmation, decline_code::kUnknownPayment,
            "no refundable payment of this customer has the idempotency key named by refund_of");
    return Status::Ok();
  }
  STREAMS_ASSIGN_OR_RETURN(PaymentRecord payment,
                           ParseStored<PaymentRecord>(kPaymentsStoreName, *stored));
  // The refund window runs from the payment's event time and is measured on
  // stream time with the same boundary as the store's TTL (gone once
  // stream time >= start + window); the TTL alone would restart whenever a
  // refund rewrites the entry.
  if (context_->stream_time().millis() - payment.approved_at_ms() >=
      config_->refund_window.count()) {
    Decline(confirmation, decline_code::kUnknownPayment,
            "the payment named by refund_of is older than the refund window");
    return Status::Ok();
  }
  if (payment.currency() != request.currency()) {
    Decline(confirmation, decline_code::kRefundCurrencyMismatch,
            "the payment was made in " + payment.currency() + ", not " + request.currency());
    return Status::Ok();
  }
  const int64_t refundable = payment.amount_minor() - payment.refunded_minor();
  if (request.amount_minor() > refundable) {
    Decline(confirmation, decline_code::kRefundExceedsPayment,
            std::to_string(refundable) + " minor units of the payment are left to refund");
    return Status::Ok();
  }
  Approve(confirmation);
  payment.set_refunded_minor(payment.refunded_minor() + request.amount_minor());
  return payments_->Put(original_key, payment.SerializeAsString());
}

Status DecideProcessor::StoreIfAbsent(const std::string& key, const std::string& fingerprint,
                                      const Confirmation& confirmation) {
  STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> stored, idempotency_->Get(key));
  if (stored) return Status::Ok();
  return StoreDecision(key, fingerprint, confirmation);
}

Status DecideProcessor::StoreDecision(const std::string& key, const std::string& fingerprint,
                                      const Confirmation& confirmation) {
  IdempotencyRecord record;
  record.set_fingerprint(fingerprint);
  *record.mutable_confirmation() = confirmation;
  return idempotency_->Put(key, record.SerializeAsString());
}

Status DecideProcessor::Emit(std::string key, Confirmation confirmation,
                             streams::Timestamp timestamp) {
  if (observer_ == nullptr) {
    return context_->Forward(streams::Record<std::string, Confirmation>{
        std::move(key), std::move(confirmation), timestamp, {}});
  }
  STREAMS_RETURN_IF_ERROR(context_->Forward(
      streams::Record<std::string, Confirmation>{std::move(key), confirmation, timestamp, {}}));
  observer_->OnDecision(confirmation);
  return Status::Ok();
}

}  // namespace payments::internal
