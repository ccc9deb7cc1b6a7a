#include "payments/fraud_scorer.h"

#include <algorithm>

namespace payments {
namespace {

constexpr int64_t kOneHourMs = 60LL * 60 * 1000;

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

int32_t DefaultFraudScorer::ScoreBasisPoints(const payments::v1::PaymentRequest& request,
                                             const CustomerProfile& profile) const {
  if (profile.approved_payments == 0) return kFirstPaymentBp;

  int32_t score = 0;
  if (!Contains(profile.known_merchants, request.merchant_id())) score += kNewMerchantBp;
  if (!Contains(profile.known_currencies, request.currency())) score += kNewCurrencyBp;

  // Amount against the customer's own average in this currency, compared as
  // amount * count <= k * sum (exact integers; no division, no rounding).
  for (const CurrencyStats& stats : profile.currency_stats) {
    if (stats.currency != request.currency() || stats.approved_count <= 0) continue;
    const __int128 scaled = static_cast<__int128>(request.amount_minor()) * stats.approved_count;
    const __int128 sum = stats.approved_sum_minor;
    if (scaled > 10 * sum) {
      score += kAmountOver10xBp;
    } else if (scaled > 5 * sum) {
      score += kAmountOver5xBp;
    } else if (scaled > 2 * sum) {
      score += kAmountOver2xBp;
    }
    break;
  }

  // Velocity: approved payments in (now - 1 h, now].
  int64_t last_hour = 0;
  if (profile.approvals_last_hour.has_value()) {
    last_hour = *profile.approvals_last_hour;
  } else {
    for (const RecentApproval& approval : profile.recent_approvals) {
      if (approval.at_ms > profile.now_ms - kOneHourMs && approval.at_ms <= profile.now_ms) {
        last_hour += approval.count;
      }
    }
  }
  if (last_hour >= 10) {
    score += kVelocity10Bp;
  } else if (last_hour >= 6) {
    score += kVelocity6Bp;
  } else if (last_hour >= 3) {
    score += kVelocity3Bp;
  }
  return std::clamp(score, 0, 10000);
}

std::shared_ptr<const FraudScorer> DefaultFraudScorerInstance() {
  static const auto instance = std::make_shared<const DefaultFraudScorer>();
  return instance;
}

}  // namespace payments
