// The active ISO 4217 alphabetic currency codes.
//
// Source: Debian 12 iso-codes 4.15.0 (/usr/share/iso-codes/json/iso_4217.json),
// adjusted: HRK removed (withdrawn 2023-01-01, Croatia adopted the euro); ZWG
// (2024) and XCG (2025) added; XXX ("no currency") and XTS (reserved for
// testing) removed because no payment can be made in them. Precious-metal,
// fund and SDR codes (XAU, USN, XDR, ...) are active ISO codes and kept.
#include <algorithm>
#include <array>
#include <string_view>

#include "payments/validation.h"

namespace payments {
namespace {

// Sorted, for binary search.
constexpr std::array<std::string_view, 180> kActiveCurrencies = {
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL",
    "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR",
    "XOF", "XPD", "XPF", "XPT", "XSU", "XUA", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
};

static_assert(std::is_sorted(kActiveCurrencies.begin(), kActiveCurrencies.end()));

}  // namespace

bool IsActiveCurrency(std::string_view code) {
  return std::binary_search(kActiveCurrencies.begin(), kActiveCurrencies.end(), code);
}

}  // namespace payments
