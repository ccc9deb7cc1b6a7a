// DecisionMetrics: the business metrics of paymentd, counted from every
// confirmation the decision topology emits (a payments::DecisionObserver):
//
//   payments_requests_total{decision="approved"|"declined", decline_code="..."}
//       Decisions emitted, replays included (decline_code="" when approved).
//   payments_replays_total
//       Of those, replays of a stored decision (duplicate requests).
//   payments_approved_amount_minor_total{kind="payment"|"refund", currency="EUR"}
//       Sum of approved amounts in minor units (replays excluded).
//
// Counting is at-least-once, like the observer: when a cycle aborts (or the
// process dies before its commit) its records are processed and counted again.
//
// Thread safety: thread-safe; OnDecision is called concurrently by every
// stream thread.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "payments/decision_observer.h"

namespace paymentd {

class DecisionMetrics final : public payments::DecisionObserver {
 public:
  // Registers the metric families on `registry`, which must outlive this object.
  explicit DecisionMetrics(prometheus::Registry& registry);

  void OnDecision(const payments::v1::PaymentConfirmation& confirmation) override;

 private:
  prometheus::Counter& RequestsCounter(const std::string& decision, const std::string& code);
  prometheus::Counter& AmountCounter(const std::string& kind, const std::string& currency);

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& amounts_;
  prometheus::Counter& replays_;
  std::mutex mu_;
  // Counters by labels; the references stay valid as long as the families.
  std::map<std::pair<std::string, std::string>, prometheus::Counter*> requests_by_label_;
  std::map<std::pair<std::string, std::string>, prometheus::Counter*> amounts_by_label_;
};

}  // namespace paymentd
