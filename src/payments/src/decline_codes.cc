#include "payments/decline_codes.h"

namespace payments {

std::optional<std::string_view> DescribeDeclineCode(std::string_view code) {
  for (const DeclineCodeInfo& info : kDeclineCodes) {
    if (info.code == code) return info.description;
  }
  return std::nullopt;
}

}  // namespace payments
