// Internal helpers of validation.cc shared with the decide processor.
#pragma once

#include <optional>
#include <string_view>

#include "payments/payments_config.h"
#include "payments/validation.h"

namespace payments::internal {

// ValidateRequest without step 1 (the PAN check), for callers that already
// ran FindPanField.
std::optional<Decline> ValidateWithoutPan(const payments::v1::PaymentRequest& request,
                                          std::string_view record_key,
                                          const PaymentsConfig& config);

}  // namespace payments::internal
