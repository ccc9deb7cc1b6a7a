// FraudScorer: scores a PAYMENT request against the customer's history, in
// integer basis points (0 = surely fine .. 10000 = surely fraud).
//
// Scores must be deterministic (a function of the arguments only) so replays
// and restores decide identically.
//
// Thread safety: one scorer is shared by every task of every thread;
// implementations must be thread-safe (ScoreBasisPoints is const).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "payments/v1/payments.pb.h"

namespace payments {

// One approved PAYMENT of the customer's last 24 h of event time (approvals
// with the same time and currency are merged: amount and count summed).
struct RecentApproval {
  int64_t at_ms = 0;
  std::string currency;
  int64_t amount_minor = 0;
  int64_t count = 0;
};

// Lifetime approved PAYMENTs of the customer in one currency.
struct CurrencyStats {
  std::string currency;
  int64_t approved_count = 0;
  int64_t approved_sum_minor = 0;
};

// What the topology knows about a customer when a PAYMENT is scored (before
// the request is applied).
struct CustomerProfile {
  // The customer's event time for this request: max(record timestamp, the
  // latest event time of the customer's approved payments). Never goes back.
  int64_t now_ms = 0;
  // Lifetime count of approved PAYMENTs (0: this would be the first).
  int64_t approved_payments = 0;
  // Lifetime stats per currency, sorted by currency.
  std::vector<CurrencyStats> currency_stats;
  // Approvals with at_ms > now_ms - 24 h, oldest first. Filled only for
  // scorers whose NeedsRecentApprovals() is true (empty otherwise).
  std::vector<RecentApproval> recent_approvals;
  // Number of approved PAYMENTs with at_ms in (now_ms - 1 h, now_ms] (the sum
  // of their counts). The topology always sets it; std::nullopt (a profile
  // built by hand) means: count it from recent_approvals.
  std::optional<int64_t> approvals_last_hour;
  // The most recently used merchants / currencies of approved payments, most
  // recent first, bounded (kKnownMerchantsLimit / kKnownCurrenciesLimit).
  std::vector<std::string> known_merchants;
  std::vector<std::string> known_currencies;
};

inline constexpr size_t kKnownMerchantsLimit = 50;
inline constexpr size_t kKnownCurrenciesLimit = 20;

class FraudScorer {
 public:
  virtual ~FraudScorer() = default;
  // Returns a score in 0..10000 basis points (values outside are clamped by
  // the caller). Must not throw.
  virtual int32_t ScoreBasisPoints(const payments::v1::PaymentRequest& request,
                                   const CustomerProfile& profile) const = 0;

  // Whether ScoreBasisPoints reads profile.recent_approvals. Filling it costs
  // one state-store read per approval of the customer in the last 24 h (up to
  // ~86 000 for a customer at 60/min), so scorers that do not need the list
  // should return false: they then get it empty (every other field is set).
  // Must be constant for a scorer instance.
  virtual bool NeedsRecentApprovals() const { return true; }
};

// The default, deterministic scorer. The score is the sum of (capped at 10000):
//   first-ever payment of the customer:                         2500
//   otherwise:
//     new merchant (not among known_merchants):                 2000
//     new currency (not among known_currencies):                1500
//     amount vs the customer's average approved amount in the
//     currency (only with history in that currency):
//       <= 2x: 0, <= 5x: 2000, <= 10x: 3500, > 10x: 5000
//     velocity: approved payments in the last hour (now_ms - 1 h, now_ms]
//     (profile.approvals_last_hour, or counted from recent_approvals when unset):
//       < 3: 0, 3..5: 1000, 6..9: 2000, >= 10: 3000
// It does not need recent_approvals (NeedsRecentApprovals() is false).
// Thread-safe (stateless).
class DefaultFraudScorer final : public FraudScorer {
 public:
  static constexpr int32_t kFirstPaymentBp = 2500;
  static constexpr int32_t kNewMerchantBp = 2000;
  static constexpr int32_t kNewCurrencyBp = 1500;
  static constexpr int32_t kAmountOver2xBp = 2000;
  static constexpr int32_t kAmountOver5xBp = 3500;
  static constexpr int32_t kAmountOver10xBp = 5000;
  static constexpr int32_t kVelocity3Bp = 1000;
  static constexpr int32_t kVelocity6Bp = 2000;
  static constexpr int32_t kVelocity10Bp = 3000;

  int32_t ScoreBasisPoints(const payments::v1::PaymentRequest& request,
                           const CustomerProfile& profile) const override;
  bool NeedsRecentApprovals() const override { return false; }
};

// A shared default scorer instance.
std::shared_ptr<const FraudScorer> DefaultFraudScorerInstance();

// bp / 10000.0, the value of PaymentConfirmation.fraud_score.
inline double FraudScoreFromBasisPoints(int32_t bp) { return static_cast<double>(bp) / 10000.0; }

}  // namespace payments
