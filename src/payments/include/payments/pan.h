// PAN detection and redaction: finds things that look like payment card
// numbers in free text so they never reach state, outputs or logs.
//
// A candidate is a run of digits in which consecutive digit groups may be
// separated by ONE space or ONE dash ("4111 1111-1111 1111"). Within such a
// run, every contiguous sequence of whole groups holding 13 to 19 digits that
// passes the Luhn check is a PAN (so "4111111111111111 2025" is flagged
// through its first group). A group of more than 19 digits is never a PAN by
// itself (a 20-digit id is not a card number), and digits glued to letters
// still count ("x4111111111111111y" is flagged).
//
// Thread safety: pure functions; safe to call from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace payments {

// A PAN found in a string: the byte range [begin, end) from its first to its
// last digit (separators included).
struct PanSpan {
  size_t begin = 0;
  size_t end = 0;
  friend bool operator==(const PanSpan&, const PanSpan&) = default;
};

// True when `digits` (ASCII digits only, any length >= 1) passes the Luhn
// (mod 10) check. False for an empty string or any non-digit.
bool LuhnValid(std::string_view digits);

// Every PAN in `text`, ordered by begin (spans may overlap). Empty when none.
std::vector<PanSpan> FindPans(std::string_view text);

// True when FindPans(text) is not empty.
bool ContainsPan(std::string_view text);

// `text` with the digits of every PAN replaced by '*' except the last 4
// digits of each PAN; separators and other characters are kept. Returns
// `text` unchanged when it holds no PAN.
std::string RedactPans(std::string_view text);

}  // namespace payments
