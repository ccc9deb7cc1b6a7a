#include "payments/pan.h"

#include <algorithm>
#include <array>
#include <cstdint>

namespace payments {
namespace {

constexpr size_t kMinPanDigits = 13;
constexpr size_t kMaxPanDigits = 19;
constexpr size_t kKeptDigits = 4;
// Separator characters allowed between two digit groups of a run.
constexpr size_t kMaxSeparatorChars = 3;
// Longest expiry/CVV glued to a card number: MMYY + CVV.
constexpr size_t kMaxGluedDigits = 7;
// Lengths of card numbers that IssuerShapeValid can accept.
constexpr size_t kMinGluedPanDigits = 14;
constexpr size_t kMaxGluedPanDigits = 16;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

size_t CountDigits(std::string_view text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), IsDigit));
}

// Length in bytes of the separator character starting at text[pos], or 0.
size_t SeparatorAt(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) {
    return pos + i < text.size() ? static_cast<unsigned char>(text[pos + i]) : 0;
  };
  switch (byte(0)) {
    case ' ':
    case '\t':
    case '-':
    case '.':
    case '/':
    case '_':
      return 1;
    case 0xC2:  // U+00A0 no-break space
      return byte(1) == 0xA0 ? 2 : 0;
    case 0xE2:
      if (byte(1) == 0x80) {
        const unsigned char c = byte(2);
        // U+2007-U+200A spaces, U+2010-U+2015 hyphens and dashes, U+202F narrow no-break space.
        if ((c >= 0x87 && c <= 0x8A) || (c >= 0x90 && c <= 0x95) || c == 0xAF) return 3;
      }
      if (byte(1) == 0x88 && byte(2) == 0x92) return 3;  // U+2212 minus sign
      return 0;
    case 0xE3:  // U+3000 ideographic space
      return byte(1) == 0x80 && byte(2) == 0x80 ? 3 : 0;
    default:
      return 0;
  }
}

// A maximal sequence of digits inside a candidate run.
struct Group {
  size_t begin;
  size_t end;
};

// Calls on_run(groups) for every run of digit groups joined by separators.
template <typename F>
void ForEachRun(std::string_view text, F&& on_run) {
  std::vector<Group> groups;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsDigit(text[i])) {
      ++i;
      continue;
    }
    groups.clear();
    while (true) {
      const size_t begin = i;
      while (i < text.size() && IsDigit(text[i])) ++i;
      groups.push_back(Group{begin, i});
      // Up to kMaxSeparatorChars separators, then a digit, continue the run.
      size_t j = i;
      size_t separators = 0;
      while (separators < kMaxSeparatorChars) {
        const size_t len = SeparatorAt(text, j);
        if (len == 0) break;
        j += len;
        ++separators;
      }
      if (separators > 0 && j < text.size() && IsDigit(text[j])) {
        i = j;
        continue;
      }
      break;
    }
    on_run(groups);
  }
}

// A numeric prefix range of a card network and its standard length.
struct IssuerRange {
  uint32_t low;
  uint32_t high;
  int prefix_digits;
  size_t length;
};

// Number ranges (IIN prefixes) of the major networks with their standard
// length: 16 digits, 15 for American Express, 14 for Diners Club 36. The rare
// 13- and 17- to 19-digit numbers are only found as whole digit groups.
constexpr std::array<IssuerRange, 25> kIssuerRanges = {{
    {4, 4, 1, 16},        // Visa
    {51, 55, 2, 16},      // Mastercard
    {2221, 2720, 4, 16},  // Mastercard 2-series
    {34, 34, 2, 15},      // American Express
    {37, 37, 2, 15},      // American Express
    {6011, 6011, 4, 16},  // Discover
    {644, 649, 3, 16},    // Discover
    {65, 65, 2, 16},      // Discover, RuPay
    {3528, 3589, 4, 16},  // JCB
    {36, 36, 2, 14},      // Diners Club International
    {300, 305, 3, 16},    // Diners Club
    {3095, 3095, 4, 16},  // Diners Club
    {38, 39, 2, 16},      // Diners Club
    {62, 62, 2, 16},      // UnionPay
    {5018, 5018, 4, 16},  // Maestro
    {5020, 5020, 4, 16},  // Maestro
    {5038, 5038, 4, 16},  // Maestro
    {5893, 5893, 4, 16},  // Maestro
    {6304, 6304, 4, 16},  // Maestro
    {6759, 6759, 4, 16},  // Maestro
    {6761, 6763, 4, 16},  // Maestro
    {2200, 2204, 4, 16},  // Mir
    {60, 60, 2, 16},      // RuPay
    {81, 82, 2, 16},      // RuPay
    {508, 508, 3, 16},    // RuPay
}};

bool IsAmex(std::string_view digits) {
  return digits.size() == 15 && digits[0] == '3' && (digits[1] == '4' || digits[1] == '7');
}

// Whether `suffix` (digits glued right after a card number `pan`) looks like
// a CVV, an MMYY expiry, or MMYY followed by a CVV.
bool PlausibleGluedSuffix(std::string_view pan, std::string_view suffix) {
  const auto month_ok = [&] {
    const int mm = (suffix[0] - '0') * 10 + (suffix[1] - '0');
    return mm >= 1 && mm <= 12;
  };
  switch (suffix.size()) {
    case 3:
      return true;
    case 4:
      return month_ok() || IsAmex(pan);
    case 7:
      return month_ok();
    default:
      return false;
  }
}

// Whether the separators before groups a and b may be in one card number:
// the same characters, or both a single space or dash (the classic formats,
// which mix). "10.00 20.00" is not one number.
bool CompatibleSeparators(std::string_view text, const Group& prev_a, const Group& a,
                          const Group& prev_b, const Group& b) {
  const std::string_view sa = text.substr(prev_a.end, a.begin - prev_a.end);
  const std::string_view sb = text.substr(prev_b.end, b.begin - prev_b.end);
  if (sa == sb) return true;
  const auto classic = [](std::string_view sep) { return sep == " " || sep == "-"; };
  return classic(sa) && classic(sb);
}

// Calls on_pan(span) for every PAN of the run made of `groups` (see pan.h).
template <typename F>
void ScanRun(std::string_view text, const std::vector<Group>& groups, F&& on_pan) {
  size_t count = 0;
  for (const Group& g : groups) count += g.end - g.begin;
  if (count < kMinPanDigits) return;
  constexpr size_t kMaxCandidate = kMaxPanDigits + kMaxGluedDigits;
  char digits[kMaxCandidate];
  size_t position[kMaxCandidate];  // byte offset of each digit in text
  for (size_t i = 0; i < groups.size(); ++i) {
    size_t total = 0;
    for (size_t j = i; j < groups.size(); ++j) {
      // One card number uses one kind of separator.
      if (j > i + 1 &&
          !CompatibleSeparators(text, groups[i], groups[i + 1], groups[j - 1], groups[j])) {
        break;
      }
      const size_t group_digits = groups[j].end - groups[j].begin;
      if (total + group_digits > kMaxCandidate) break;
      for (size_t p = groups[j].begin; p < groups[j].end; ++p) {
        digits[total] = text[p];
        position[total++] = p;
      }
      const std::string_view whole(digits, total);
      if (total >= kMinPanDigits && total <= kMaxPanDigits && LuhnValid(whole)) {
        on_pan(PanSpan{groups[i].begin, groups[j].end});
      }
      // A card number ending inside group j, glued to an expiry or CVV.
      for (size_t glued : {size_t{3}, size_t{4}, size_t{7}}) {
        if (glued >= group_digits || glued >= total) continue;
        const size_t pan_digits = total - glued;
        if (pan_digits < kMinGluedPanDigits || pan_digits > kMaxGluedPanDigits) continue;
        const std::string_view pan = whole.substr(0, pan_digits);
        if (PlausibleGluedSuffix(pan, whole.substr(pan_digits)) && IssuerShapeValid(pan) &&
            LuhnValid(pan)) {
          on_pan(PanSpan{groups[i].begin, position[pan_digits - 1] + 1});
        }
      }
    }
  }
}

}  // namespace

bool LuhnValid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool double_it = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (!IsDigit(*it)) return false;
    int d = *it - '0';
    if (double_it) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double_it = !double_it;
  }
  return sum % 10 == 0;
}

bool IssuerShapeValid(std::string_view digits) {
  if (digits.size() < kMinPanDigits || digits.size() > kMaxPanDigits) return false;
  for (char c : digits) {
    if (!IsDigit(c)) return false;
  }
  uint32_t prefix[5] = {0, 0, 0, 0, 0};  // prefix[n]: the first n digits as a number
  for (int n = 1; n <= 4; ++n) {
    prefix[n] = prefix[n - 1] * 10 + static_cast<uint32_t>(digits[n - 1] - '0');
  }
  for (const IssuerRange& range : kIssuerRanges) {
    const uint32_t p = prefix[range.prefix_digits];
    if (p >= range.low && p <= range.high && digits.size() == range.length) return true;
  }
  return false;
}

std::vector<PanSpan> FindPans(std::string_view text) {
  std::vector<PanSpan> pans;
  ForEachRun(text, [&](const std::vector<Group>& groups) {
    ScanRun(text, groups, [&](PanSpan span) { pans.push_back(span); });
  });
  std::sort(pans.begin(), pans.end(), [](const PanSpan& a, const PanSpan& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  pans.erase(std::unique(pans.begin(), pans.end()), pans.end());
  return pans;
}

namespace {

// The scan behind ContainsPan, out of line so that the common early exit
// (fewer than 13 digits) does not pay for the scan's stack frame.
[[gnu::noinline]] bool ScanForPan(std::string_view text) {
  bool found = false;
  ForEachRun(text, [&](const std::vector<Group>& groups) {
    if (!found) ScanRun(text, groups, [&](PanSpan) { found = true; });
  });
  return found;
}

}  // namespace

bool ContainsPan(std::string_view text) {
  // Cheap pre-check: fewer than 13 digits can hold no PAN.
  if (CountDigits(text) < kMinPanDigits) return false;
  return ScanForPan(text);
}

std::string RedactPans(std::string_view text) {
  std::string out(text);
  if (CountDigits(text) < kMinPanDigits) return out;
  for (const PanSpan& span : FindPans(text)) {
    // Keep the last 4 digits of the span, mask the others.
    size_t kept = 0;
    size_t pos = span.end;
    while (pos > span.begin && kept < kKeptDigits) {
      --pos;
      if (IsDigit(text[pos])) ++kept;
    }
    for (size_t k = span.begin; k < pos; ++k) {
      if (IsDigit(text[k])) out[k] = '*';
    }
    // An expiry or CVV glued to the PAN goes too.
    for (size_t k = span.end; k < text.size() && IsDigit(text[k]); ++k) out[k] = '*';
  }
  return out;
}

std::string RedactPanBytes(std::string_view bytes) {
  std::string out(bytes);
  if (CountDigits(bytes) < kMinPanDigits) return out;
  ForEachRun(bytes, [&](const std::vector<Group>& groups) {
    // Luhn sums of every window in O(1) from prefix sums: the digit k places
    // from a window's last digit is doubled when k is odd, so a digit's weight
    // depends only on whether its index has the parity of the window's end.
    std::vector<int> digits;
    for (const Group& g : groups) {
      for (size_t p = g.begin; p < g.end; ++p) digits.push_back(bytes[p] - '0');
    }
    const size_t n = digits.size();
    if (n < kMinPanDigits) return;
    // plain[q][k] / doubled[q][k]: sums over indices < k with parity q.
    std::vector<int> plain[2] = {std::vector<int>(n + 1, 0), std::vector<int>(n + 1, 0)};
    std::vector<int> doubled[2] = {std::vector<int>(n + 1, 0), std::vector<int>(n + 1, 0)};
    for (size_t k = 0; k < n; ++k) {
      for (int q = 0; q < 2; ++q) {
        const bool mine = static_cast<int>(k % 2) == q;
        const int d = digits[k];
        plain[q][k + 1] = plain[q][k] + (mine ? d : 0);
        doubled[q][k + 1] = doubled[q][k] + (mine ? (d * 2 > 9 ? d * 2 - 9 : d * 2) : 0);
      }
    }
    bool pan = false;
    for (size_t end = kMinPanDigits; end <= n && !pan; ++end) {
      const int last = static_cast<int>((end - 1) % 2);
      for (size_t len = kMinPanDigits; len <= kMaxPanDigits && len <= end; ++len) {
        const size_t begin = end - len;
        const int sum = plain[last][end] - plain[last][begin] + doubled[1 - last][end] -
                        doubled[1 - last][begin];
        if (sum % 10 == 0) {
          pan = true;
          break;
        }
      }
    }
    if (!pan) return;
    for (const Group& g : groups) {
      for (size_t p = g.begin; p < g.end; ++p) out[p] = '*';
    }
  });
  return out;
}

}  // namespace payments
