// PAN detection and redaction: finds things that look like payment card
// numbers in free text so they never reach state, outputs or logs.
//
// A candidate is a run of digit groups joined by separators: between two
// groups, 1 to 3 separator characters, each a space, tab, '-', '.', '/', '_'
// or a Unicode space or dash (NBSP, U+2007-U+200A, U+202F, U+3000, U+2010-U+2015,
// U+2212). So "4111 1111 1111 1111", "4111.1111.1111.1111", "4111 - 1111 - ..."
// and "4111\t1111\t1111\t1111" are runs. Within a run, considering sequences of
// groups whose separators are all the same characters, or all a single space
// or dash (so "10.00 20.00 30.00 40.00" is not one number):
//  - every contiguous sequence of whole groups holding 13 to 19 digits that
//    passes the Luhn check is a PAN ("4111111111111111 2025" is flagged through
//    its first group);
//  - a card number glued to an expiry or CVV is a PAN: a sequence of whole
//    groups plus the start of the next group, where the PAN part has 13 to 19
//    digits, passes the Luhn check and has the number range and standard
//    length of a major card network (IssuerShapeValid), and the rest of that group is a
//    3-digit CVV, a 4-digit MMYY expiry (MM 01-12; or a 4-digit CID after an
//    American Express number) or MMYY followed by a 3-digit CVV
//    ("41111111111111111225", "4111111111111111123").
// A group of 20 or more digits is otherwise never a PAN (a 20-digit id is not
// a card number), and digits glued to letters still count
// ("x4111111111111111y" is flagged).
//
// Thread safety: pure functions; safe to call from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace payments {

// A PAN found in a string: the byte range [begin, end) from its first to its
// last digit (separators included; a glued expiry or CVV is not part of it).
struct PanSpan {
  size_t begin = 0;
  size_t end = 0;
  friend bool operator==(const PanSpan&, const PanSpan&) = default;
};

// True when `digits` (ASCII digits only, any length >= 1) passes the Luhn
// (mod 10) check. False for an empty string or any non-digit.
bool LuhnValid(std::string_view digits);

// True when `digits` (ASCII digits) starts like a card number of a major
// network (Visa, Mastercard, American Express, Discover, JCB, Diners Club,
// UnionPay, Maestro, Mir, RuPay) and has that network's standard length (16
// digits; 15 for American Express, 14 for Diners Club 36). Only used for card
// numbers glued to more digits, where it keeps long ids from being flagged
// (about 0.3% of random 20- to 26-digit ids are); no Luhn check.
bool IssuerShapeValid(std::string_view digits);

// Every PAN in `text`, ordered by begin (spans may overlap). Empty when none.
std::vector<PanSpan> FindPans(std::string_view text);

// True when FindPans(text) is not empty.
bool ContainsPan(std::string_view text);

// `text` with the digits of every PAN replaced by '*' except the last 4
// digits of each PAN, and the digits glued right after a PAN (an expiry or
// CVV) replaced too; separators and other characters are kept, so the length
// is unchanged. Returns `text` unchanged when it holds no PAN.
std::string RedactPans(std::string_view text);

// For raw bytes that are not text (a record that could not be decoded, e.g.
// Protobuf with field tags and lengths next to the digits): every run of
// digits (joined by separators as above) that contains 13 to 19 consecutive
// digits passing the Luhn check, at any offset, has ALL its digits replaced by
// '*'. Over-redacts on purpose (bytes before a digit string may themselves be
// digits); the length is unchanged. A superset of RedactPans' masking, so the
// result never ContainsPan. Linear in the size of `bytes`.
std::string RedactPanBytes(std::string_view bytes);

}  // namespace payments
