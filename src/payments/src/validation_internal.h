// Internal helpers of validation.cc shared with the decide processor.
#pragma once

#include <optional>
#include <string_view>

#include "payments/payments_config.h"
#include "payments/validation.h"

namespace payments::internal {

// Checks 5-12 of ValidateRequest (after the PAN check, ValidateIdentity and
// the idempotency lookup).
std::optional<Decline> ValidateFields(const payments::v1::PaymentRequest& request,
                                      const PaymentsConfig& config);

}  // namespace payments::internal
