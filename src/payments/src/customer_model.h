// Internal: the per-customer model kept in the "customers" store (token
// bucket, rolling 24 h approvals, fraud-model history) and its pure updates.
//
// Thread safety: pure functions on values.
#pragma once

#include <cstdint>
#include <string_view>

#include "payments/fraud_scorer.h"
#include "payments/token_bucket.h"
#include "payments/v1/payments.pb.h"
#include "payments_state.pb.h"

namespace payments::internal {

inline constexpr int64_t kDailyWindowMs = 24LL * 60 * 60 * 1000;

// The customer's event time for a request at `record_ms`: never goes back.
int64_t CustomerTime(const CustomerState& state, int64_t record_ms);

// Drops approvals with at_ms <= now_ms - 24 h (outside the rolling window).
void PruneRecent(CustomerState& state, int64_t now_ms);

// Sum of approved amounts in `currency` with at_ms > now_ms - 24 h,
// saturating at INT64_MAX.
int64_t RollingApprovedAmount(const CustomerState& state, std::string_view currency,
                              int64_t now_ms);

// The scorer's view of `state` at `now_ms`.
CustomerProfile ToProfile(const CustomerState& state, int64_t now_ms);

TokenBucketValue BucketOf(const CustomerState& state);
void SetBucket(CustomerState& state, const TokenBucketValue& value);

// Records an approved PAYMENT at customer time `now_ms`: adds it to the
// rolling window (merged with an approval of the same time and currency),
// updates lifetime stats, moves its merchant and currency to the front of the
// known lists (bounded) and sets last_event_ms.
void ApplyApprovedPayment(CustomerState& state, const payments::v1::PaymentRequest& request,
                          int64_t now_ms);

}  // namespace payments::internal
