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
using streams::Result;
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

// Parses a stored payments store entry.
streams::Result<PaymentsEntry> ParseEntry(const std::string& bytes) {
  return ParseStored<PaymentsEntry>(kPaymentsStoreName, bytes);
}

// Records between two looks for keys of the previous layout while some remain.
constexpr int64_t kLegacyCheckInterval = 10'000;

}  // namespace

std::string LegacyStoreKey(std::string_view customer_id, std::string_view idempotency_key) {
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
  legacy_checked_ = false;
  return Status::Ok();
}

Status DecideProcessor::CheckLegacyKeys() {
  // Keys of the previous layout start with the first byte of a UTF-8
  // customer_id, so they sort below every DecisionKey (0xFE ...). No new ones
  // are written; the stores' TTLs remove the old ones.
  legacy_keys_ = false;
  for (streams::state::KeyValueStore* store : {idempotency_, payments_}) {
    STREAMS_ASSIGN_OR_RETURN(auto it, store->Range("", std::string_view("\xfe", 1)));
    const bool any = it->Valid();
    STREAMS_RETURN_IF_ERROR(it->status());
    if (any) {
      legacy_keys_ = true;
      break;
    }
  }
  legacy_checked_ = true;
  records_until_legacy_check_ = kLegacyCheckInterval;
  return Status::Ok();
}

Status DecideProcessor::Process(const streams::Record<std::string, Request>& record) {
  if (!legacy_checked_ || (legacy_keys_ && --records_until_legacy_check_ <= 0)) {
    STREAMS_RETURN_IF_ERROR(CheckLegacyKeys());
  }
  const Request& request = record.value;
  const std::string& record_key = record.key;
  const streams::TimestampCheck timestamp_check = context_->timestamp_check();
  // A record whose timestamp the task rejected is answered at the stream time
  // (the confirmation's record timestamp and decided_at_ms): deterministic,
  // and never a broken producer clock.
  const streams::Timestamp at = timestamp_check == streams::TimestampCheck::kValid
                                    ? record.timestamp
                                    : context_->stream_time();

  Confirmation confirmation = Echo(request);
  confirmation.set_decided_at_ms(at.millis());
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
    return Emit(RedactPans(record_key), std::move(confirmation), at);
  }

  confirmation.set_payment_id(PaymentIdFor(request.customer_id(), request.idempotency_key()));

  // 2. Identity: without a usable (customer_id, idempotency_key) on this
  // customer's partition there is nothing to look up or store.
  if (auto decline = ValidateIdentity(request, record_key)) {
    Decline(confirmation, decline->code, std::move(decline->message));
    return Emit(record_key, std::move(confirmation), at);
  }

  // 3. Idempotency, before any check a configuration change could alter: a
  // retry gets its stored decision (replay) whatever else changed.
  const std::string key = DecisionKey(request.customer_id(), request.idempotency_key());
  const std::string fingerprint = RequestFingerprint(request);
  // The stored decision: the idempotency store, then (a REFUND's) the
  // payments store, which also tells whether the key names a payment.
  STREAMS_ASSIGN_OR_RETURN(
      std::optional<IdempotencyRecord> previous,
      FindIdempotencyRecord(request.customer_id(), request.idempotency_key()));
  PaymentsLookup same_key;
  if (!previous) {
    STREAMS_ASSIGN_OR_RETURN(same_key,
                             FindPaymentsEntry(request.customer_id(), request.idempotency_key()));
    if (same_key.entry && same_key.entry->has_refund_decision()) {
      previous = std::move(*same_key.entry->mutable_refund_decision());
    }
  }
  if (previous) {
    if (previous->fingerprint() == fingerprint) {
      Confirmation replay = std::move(*previous->mutable_confirmation());
      replay.set_replay(true);
      // The replay answers this request: it names this request's record, so a
      // consumer matches every request to exactly one confirmation.
      // decided_at_ms stays the original decision's time.
      replay.set_source_topic(confirmation.source_topic());
      replay.set_source_partition(confirmation.source_partition());
      replay.set_source_offset(confirmation.source_offset());
      return Emit(record_key, std::move(replay), at);
    }
    Decline(confirmation, decline_code::kIdempotencyKeyReused,
            "idempotency_key was already used for a request with different parameters");
    return Emit(record_key, std::move(confirmation), at);
  }
  // A payment's decision expires before the payment stops being refundable:
  // until then its key stays taken, so its record is never overwritten.
  if (same_key.entry && same_key.entry->has_payment() && Refundable(same_key.entry->payment())) {
    Decline(confirmation, decline_code::kIdempotencyKeyReused,
            "idempotency_key names an approved payment that is still refundable");
    return Emit(record_key, std::move(confirmation), at);
  }

  // 4. Timestamp: a fresh decision needs a valid event time.
  if (timestamp_check == streams::TimestampCheck::kInvalid) {
    Decline(confirmation, decline_code::kTimestampInvalid,
            "the record timestamp " + std::to_string(record.timestamp.millis()) +
                " is negative or after 9999-12-31; not decided, nothing stored");
    return Emit(record_key, std::move(confirmation), at);
  }
  if (timestamp_check == streams::TimestampCheck::kTooFarAhead) {
    Decline(confirmation, decline_code::kTimestampTooFarAhead,
            "the record timestamp " + std::to_string(record.timestamp.millis()) +
                " is more than " + std::to_string(config_->max_clock_skew.count()) +
                " ms ahead of stream time " + std::to_string(at.millis()) + " and of the clock" +
                "; not decided, nothing stored");
    return Emit(record_key, std::move(confirmation), at);
  }

  // 5. Field validation. The decline is stored (first decision wins) unless
  // the ids are longer than the string limit.
  if (auto decline = ValidateFields(request, *config_)) {
    Decline(confirmation, decline->code, std::move(decline->message));
    const auto max_len = static_cast<size_t>(config_->string_max_length);
    if (request.customer_id().size() <= max_len && request.idempotency_key().size() <= max_len) {
      STREAMS_RETURN_IF_ERROR(StoreDecision(key, fingerprint, confirmation));
    }
    return Emit(record_key, std::move(confirmation), at);
  }

  // 6. Business rules.
  if (request.kind() == payments::v1::REFUND) {
    STREAMS_RETURN_IF_ERROR(DecideRefund(request, confirmation));
    STREAMS_RETURN_IF_ERROR(StoreRefundDecision(key, fingerprint, confirmation));
  } else {
    STREAMS_RETURN_IF_ERROR(DecidePayment(request, key, at.millis(), confirmation));
    // A rate-limited request is not stored: it changes nothing, its retry is
    // decided again (and may pass), and a flood of them must not grow the state.
    if (confirmation.decline_code() != decline_code::kRateLimited) {
      STREAMS_RETURN_IF_ERROR(StoreDecision(key, fingerprint, confirmation));
    }
  }
  return Emit(record_key, std::move(confirmation), at);
}

Result<std::optional<IdempotencyRecord>> DecideProcessor::FindIdempotencyRecord(
    std::string_view customer_id, std::string_view idempotency_key) {
  STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                           idempotency_->Get(DecisionKey(customer_id, idempotency_key)));
  if (!stored && legacy_keys_) {
    STREAMS_ASSIGN_OR_RETURN(stored,
                             idempotency_->Get(LegacyStoreKey(customer_id, idempotency_key)));
  }
  if (!stored) return std::optional<IdempotencyRecord>();
  STREAMS_ASSIGN_OR_RETURN(IdempotencyRecord record,
                           ParseStored<IdempotencyRecord>(kIdempotencyStoreName, *stored));
  return std::optional<IdempotencyRecord>(std::move(record));
}

Result<DecideProcessor::PaymentsLookup> DecideProcessor::FindPaymentsEntry(
    std::string_view customer_id, std::string_view idempotency_key) {
  PaymentsLookup out;
  STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                           payments_->Get(DecisionKey(customer_id, idempotency_key)));
  if (stored) {
    STREAMS_ASSIGN_OR_RETURN(PaymentsEntry entry, ParseEntry(*stored));
    out.entry = std::move(entry);
    return out;
  }
  if (!legacy_keys_) return out;
  // The previous layout held a bare PaymentRecord (approved PAYMENTs only).
  STREAMS_ASSIGN_OR_RETURN(stored, payments_->Get(LegacyStoreKey(customer_id, idempotency_key)));
  if (stored) {
    STREAMS_ASSIGN_OR_RETURN(PaymentRecord payment,
                             ParseStored<PaymentRecord>(kPaymentsStoreName, *stored));
    out.entry.emplace();
    *out.entry->mutable_payment() = std::move(payment);
    out.legacy = true;
  }
  return out;
}

bool DecideProcessor::Refundable(const PaymentRecord& payment) const {
  // The refund window runs from the payment's event time and is measured on
  // stream time with the same boundary as the store's TTL (gone once
  // stream time >= start + window); the TTL alone would restart whenever a
  // refund rewrites the entry.
  return static_cast<__int128>(context_->stream_time().millis()) - payment.approved_at_ms() <
         config_->refund_window.count();
}

Status DecideProcessor::DecidePayment(const Request& request, const std::string& key,
                                      int64_t record_ms, Confirmation& confirmation) {
  const std::string& customer = request.customer_id();
  // Judged no earlier than stream time - (retention - 24 h): every approval a
  // window can count is then still in the customers store (see customer_model.h).
  const int64_t earliest_ms = context_->stream_time().millis() -
                              (config_->customer_retention.count() - kDailyWindowMs);
  STREAMS_ASSIGN_OR_RETURN(
      CustomerLedger ledger,
      CustomerLedger::Load(*customers_, *approvals_, customer, record_ms, earliest_ms));
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

  PaymentsEntry entry;
  PaymentRecord* payment = entry.mutable_payment();
  payment->set_amount_minor(request.amount_minor());
  payment->set_currency(request.currency());
  payment->set_refunded_minor(0);
  payment->set_approved_at_ms(record_ms);
  return payments_->Put(key, entry.SerializeAsString());
}

Status DecideProcessor::DecideRefund(const Request& request, Confirmation& confirmation) {
  STREAMS_ASSIGN_OR_RETURN(PaymentsLookup original,
                           FindPaymentsEntry(request.customer_id(), request.refund_of()));
  if (!original.entry || !original.entry->has_payment()) {
    // Not an approved payment (or no longer refundable): was it a declined one?
    STREAMS_ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> decided,
                             FindIdempotencyRecord(request.customer_id(), request.refund_of()));
    if (decided && decided->confirmation().kind() == payments::v1::PAYMENT &&
        decided->confirmation().decision() == payments::v1::DECLINED) {
      Decline(confirmation, decline_code::kPaymentNotApproved,
              "the payment named by refund_of was declined");
      return Status::Ok();
    }
    Decline(confirmation, decline_code::kUnknownPayment,
            "no refundable payment of this customer has the idempotency key named by refund_of");
    return Status::Ok();
  }
  PaymentRecord& payment = *original.entry->mutable_payment();
  if (!Refundable(payment)) {
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
  STREAMS_RETURN_IF_ERROR(payments_->Put(DecisionKey(request.customer_id(), request.refund_of()),
                                         original.entry->SerializeAsString()));
  // A record of the previous layout moves to the current key.
  if (original.legacy) {
    return payments_->Delete(LegacyStoreKey(request.customer_id(), request.refund_of()));
  }
  return Status::Ok();
}

Status DecideProcessor::StoreDecision(const std::string& key, const std::string& fingerprint,
                                      const Confirmation& confirmation) {
  IdempotencyRecord record;
  record.set_fingerprint(fingerprint);
  *record.mutable_confirmation() = confirmation;
  return idempotency_->Put(key, record.SerializeAsString());
}

Status DecideProcessor::StoreRefundDecision(const std::string& key, const std::string& fingerprint,
                                            const Confirmation& confirmation) {
  PaymentsEntry entry;
  IdempotencyRecord* record = entry.mutable_refund_decision();
  record->set_fingerprint(fingerprint);
  *record->mutable_confirmation() = confirmation;
  return payments_->Put(key, entry.SerializeAsString());
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
