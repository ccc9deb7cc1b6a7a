#include "payments/pan.h"

#include <algorithm>

namespace payments {
namespace {

constexpr size_t kMinPanDigits = 13;
constexpr size_t kMaxPanDigits = 19;
constexpr size_t kKeptDigits = 4;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSeparator(char c) { return c == ' ' || c == '-'; }

// A maximal sequence of digits inside a candidate run.
struct Group {
  size_t begin;
  size_t end;
};

// Calls on_pan(span) for every PAN of the run made of `groups`.
template <typename F>
void ScanRun(std::string_view text, const std::vector<Group>& groups, F&& on_pan) {
  std::string digits;
  for (size_t i = 0; i < groups.size(); ++i) {
    digits.clear();
    for (size_t j = i; j < groups.size(); ++j) {
      digits.append(text.substr(groups[j].begin, groups[j].end - groups[j].begin));
      if (digits.size() > kMaxPanDigits) break;
      if (digits.size() >= kMinPanDigits && LuhnValid(digits)) {
        on_pan(PanSpan{groups[i].begin, groups[j].end});
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

std::vector<PanSpan> FindPans(std::string_view text) {
  std::vector<PanSpan> pans;
  std::vector<Group> groups;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsDigit(text[i])) {
      ++i;
      continue;
    }
    // A run: groups of digits joined by exactly one separator.
    groups.clear();
    while (true) {
      size_t begin = i;
      while (i < text.size() && IsDigit(text[i])) ++i;
      groups.push_back(Group{begin, i});
      if (i + 1 < text.size() && IsSeparator(text[i]) && IsDigit(text[i + 1])) {
        ++i;
        continue;
      }
      break;
    }
    ScanRun(text, groups, [&](PanSpan span) { pans.push_back(span); });
  }
  std::sort(pans.begin(), pans.end(), [](const PanSpan& a, const PanSpan& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  return pans;
}

bool ContainsPan(std::string_view text) {
  // Cheap pre-check: fewer than 13 digits can hold no PAN.
  if (static_cast<size_t>(std::count_if(text.begin(), text.end(), IsDigit)) < kMinPanDigits) {
    return false;
  }
  return !FindPans(text).empty();
}

std::string RedactPans(std::string_view text) {
  std::string out(text);
  if (static_cast<size_t>(std::count_if(text.begin(), text.end(), IsDigit)) < kMinPanDigits) {
    return out;
  }
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
  }
  return out;
}

}  // namespace payments
