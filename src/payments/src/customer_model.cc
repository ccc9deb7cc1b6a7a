#include "customer_model.h"

#include <algorithm>
#include <limits>
#include <string>

namespace payments::internal {
namespace {

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::numeric_limits<int64_t>::max();
  return out;
}

// Moves `value` to the front of `list`, keeping at most `limit` entries.
void MoveToFront(google::protobuf::RepeatedPtrField<std::string>& list, const std::string& value,
                 size_t limit) {
  auto it = std::find(list.begin(), list.end(), value);
  if (it != list.end()) {
    std::rotate(list.begin(), it, it + 1);
    return;
  }
  *list.Add() = value;
  std::rotate(list.begin(), list.end() - 1, list.end());
  while (static_cast<size_t>(list.size()) > limit) list.RemoveLast();
}

// Appends an approval at `now_ms` (>= every stored at_ms, so the order is
// kept), merged with one of the same time and currency when there is one.
void AddRecent(CustomerState& state, const payments::v1::PaymentRequest& request, int64_t now_ms) {
  auto* recent = state.mutable_recent();
  for (auto it = recent->rbegin(); it != recent->rend() && it->at_ms() == now_ms; ++it) {
    if (it->currency() == request.currency()) {
      it->set_amount_minor(SaturatingAdd(it->amount_minor(), request.amount_minor()));
      it->set_count(it->count() + 1);
      return;
    }
  }
  RecentApproval* r = recent->Add();
  r->set_at_ms(now_ms);
  r->set_currency(request.currency());
  r->set_amount_minor(request.amount_minor());
  r->set_count(1);
}

}  // namespace

int64_t CustomerTime(const CustomerState& state, int64_t record_ms) {
  return std::max(state.last_event_ms(), record_ms);
}

void PruneRecent(CustomerState& state, int64_t now_ms) {
  const int64_t cutoff = now_ms - kDailyWindowMs;
  auto* recent = state.mutable_recent();
  // Entries are kept in ascending at_ms order.
  int drop = 0;
  while (drop < recent->size() && recent->Get(drop).at_ms() <= cutoff) ++drop;
  if (drop > 0) recent->DeleteSubrange(0, drop);
}

int64_t RollingApprovedAmount(const CustomerState& state, std::string_view currency,
                              int64_t now_ms) {
  const int64_t cutoff = now_ms - kDailyWindowMs;
  int64_t sum = 0;
  for (const RecentApproval& r : state.recent()) {
    if (r.at_ms() > cutoff && r.currency() == currency) sum = SaturatingAdd(sum, r.amount_minor());
  }
  return sum;
}

CustomerProfile ToProfile(const CustomerState& state, int64_t now_ms) {
  CustomerProfile profile;
  profile.now_ms = now_ms;
  profile.approved_payments = state.approved_payments();
  for (const CurrencyStats& s : state.currency_stats()) {
    profile.currency_stats.push_back(
        payments::CurrencyStats{s.currency(), s.approved_count(), s.approved_sum_minor()});
  }
  const int64_t cutoff = now_ms - kDailyWindowMs;
  for (const RecentApproval& r : state.recent()) {
    if (r.at_ms() <= cutoff) continue;
    profile.recent_approvals.push_back(
        payments::RecentApproval{r.at_ms(), r.currency(), r.amount_minor(), r.count()});
  }
  profile.known_merchants.assign(state.known_merchants().begin(), state.known_merchants().end());
  profile.known_currencies.assign(state.known_currencies().begin(), state.known_currencies().end());
  return profile;
}

TokenBucketValue BucketOf(const CustomerState& state) {
  return TokenBucketValue{state.bucket().milli_tokens(), state.bucket().last_refill_ms(),
                          state.bucket().remainder()};
}

void SetBucket(CustomerState& state, const TokenBucketValue& value) {
  auto* bucket = state.mutable_bucket();
  bucket->set_milli_tokens(value.milli_tokens);
  bucket->set_last_refill_ms(value.last_refill_ms);
  bucket->set_remainder(value.remainder);
}

void ApplyApprovedPayment(CustomerState& state, const payments::v1::PaymentRequest& request,
                          int64_t now_ms) {
  AddRecent(state, request, now_ms);
  // Lifetime stats, sorted by currency.
  auto* stats = state.mutable_currency_stats();
  auto it = std::lower_bound(
      stats->begin(), stats->end(), request.currency(),
      [](const CurrencyStats& s, const std::string& c) { return s.currency() < c; });
  if (it == stats->end() || it->currency() != request.currency()) {
    const int index = static_cast<int>(it - stats->begin());
    CurrencyStats* added = stats->Add();
    added->set_currency(request.currency());
    // Bubble the new entry into place.
    for (int i = stats->size() - 1; i > index; --i) stats->SwapElements(i, i - 1);
    it = stats->begin() + index;
  }
  it->set_approved_count(it->approved_count() + 1);
  it->set_approved_sum_minor(SaturatingAdd(it->approved_sum_minor(), request.amount_minor()));

  MoveToFront(*state.mutable_known_merchants(), request.merchant_id(), kKnownMerchantsLimit);
  MoveToFront(*state.mutable_known_currencies(), request.currency(), kKnownCurrenciesLimit);
  state.set_approved_payments(state.approved_payments() + 1);
  state.set_last_event_ms(std::max(state.last_event_ms(), now_ms));
}

}  // namespace payments::internal
