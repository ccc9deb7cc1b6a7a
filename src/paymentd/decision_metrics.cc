#include "paymentd/decision_metrics.h"

#include "payments/decline_codes.h"

namespace paymentd {

namespace {

// Label values must stay a small, known set: only known decline codes are used
// as label values (anything else is counted as "OTHER").
std::string CodeLabel(const std::string& code) {
  if (code.empty()) return "";
  return payments::DescribeDeclineCode(code) ? code : "OTHER";
}

// Currencies are validated ISO codes for approved payments; guard the label
// set anyway.
std::string CurrencyLabel(const std::string& currency) {
  if (currency.size() != 3) return "OTHER";
  for (char c : currency) {
    if (c < 'A' || c > 'Z') return "OTHER";
  }
  return currency;
}

}  // namespace

DecisionMetrics::DecisionMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("payments_requests_total")
                    .Help("Payment decisions emitted, by decision and decline code (replays "
                          "included; at-least-once across aborted cycles)")
                    .Register(registry)),
      amounts_(prometheus::BuildCounter()
                   .Name("payments_approved_amount_minor_total")
                   .Help("Approved amounts in minor units, by kind and currency (replays "
                         "excluded)")
                   .Register(registry)),
      replays_(prometheus::BuildCounter()
                   .Name("payments_replays_total")
                   .Help("Decisions re-sent for duplicate requests")
                   .Register(registry)
                   .Add({})) {}

prometheus::Counter& DecisionMetrics::RequestsCounter(const std::string& decision,
                                                      const std::string& code) {
  std::lock_guard lock(mu_);
  auto& slot = requests_by_label_[{decision, code}];
  if (slot == nullptr) slot = &requests_.Add({{"decision", decision}, {"decline_code", code}});
  return *slot;
}

prometheus::Counter& DecisionMetrics::AmountCounter(const std::string& kind,
                                                    const std::string& currency) {
  std::lock_guard lock(mu_);
  auto& slot = amounts_by_label_[{kind, currency}];
  if (slot == nullptr) slot = &amounts_.Add({{"kind", kind}, {"currency", currency}});
  return *slot;
}

void DecisionMetrics::OnDecision(const payments::v1::PaymentConfirmation& confirmation) {
  const bool approved = confirmation.decision() == payments::v1::APPROVED;
  RequestsCounter(approved ? "approved" : "declined", CodeLabel(confirmation.decline_code()))
      .Increment();
  if (confirmation.replay()) {
    replays_.Increment();
    return;
  }
  if (approved && confirmation.amount_minor() > 0) {
    const char* kind = confirmation.kind() == payments::v1::REFUND ? "refund" : "payment";
    AmountCounter(kind, CurrencyLabel(confirmation.currency()))
        .Increment(static_cast<double>(confirmation.amount_minor()));
  }
}

}  // namespace paymentd
