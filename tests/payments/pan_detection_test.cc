// Unit tests of PAN detection and redaction (no engine).
#include <gtest/gtest.h>

#include "payments/pan.h"

#include "payments/v1/payments.pb.h"

namespace payments {
namespace {

class LuhnTest : public ::testing::Test {};

TEST_F(LuhnTest, AcceptsKnownCardNumbers) {
  EXPECT_TRUE(LuhnValid("4111111111111111"));
  EXPECT_TRUE(LuhnValid("5555555555554444"));
  EXPECT_TRUE(LuhnValid("378282246310005"));      // 15 digits (Amex)
  EXPECT_TRUE(LuhnValid("4222222222222"));        // 13 digits
  EXPECT_TRUE(LuhnValid("6011000000000000001"));  // 19 digits
}

TEST_F(LuhnTest, RejectsWrongCheckDigitAndNonDigits) {
  EXPECT_FALSE(LuhnValid("4111111111111112"));
  EXPECT_FALSE(LuhnValid("4222222222223"));
  EXPECT_FALSE(LuhnValid(""));
  EXPECT_FALSE(LuhnValid("4111 1111 1111 1111"));
  EXPECT_FALSE(LuhnValid("411111111111111a"));
}

class PanDetectionTest : public ::testing::Test {};

TEST_F(PanDetectionTest, FindsPlainPanOf13To19Digits) {
  EXPECT_TRUE(ContainsPan("4222222222222"));
  EXPECT_TRUE(ContainsPan("4111111111111111"));
  EXPECT_TRUE(ContainsPan("6011000000000000001"));
  EXPECT_EQ(FindPans("card 4111111111111111 ok"), (std::vector<PanSpan>{{5, 21}}));
}

TEST_F(PanDetectionTest, IgnoresTooShortOrNonLuhnRuns) {
  EXPECT_FALSE(ContainsPan("411111111117"));      // 12 digits, Luhn-valid
  EXPECT_FALSE(ContainsPan("4222222222223"));     // 13 digits, not Luhn
  EXPECT_FALSE(ContainsPan("4111111111111112"));  // 16 digits, not Luhn
  EXPECT_FALSE(ContainsPan("order-12345 qty 3"));
  EXPECT_FALSE(ContainsPan(""));
}

TEST_F(PanDetectionTest, TwentyDigitRunIsNotAPan) {
  // Luhn-valid as a whole, and its 16-digit prefix is a Luhn-valid card
  // number, but what follows is no expiry (month 13): a 20-digit group is an
  // id, not a card number.
  EXPECT_TRUE(LuhnValid("41111111111111111305"));
  EXPECT_TRUE(LuhnValid("4111111111111111"));
  EXPECT_FALSE(ContainsPan("41111111111111111305"));
  EXPECT_FALSE(ContainsPan("ref 41111111111111111305 end"));
  // Ids that do not start like a card number are never flagged, whatever follows.
  EXPECT_FALSE(ContainsPan("12345678901234567890"));
  EXPECT_FALSE(ContainsPan("91111111111111111225"));
  EXPECT_FALSE(ContainsPan("01111111111111111225"));
}

TEST_F(PanDetectionTest, LongIdsAreRarelyFlagged) {
  // Pseudo-random ids of 20 to 26 digits in one group: only those that are a
  // card number of a major network followed by an expiry or CVV count.
  uint64_t state = 7;
  int flagged = 0;
  constexpr int kIds = 20000;
  for (int i = 0; i < kIds; ++i) {
    std::string id;
    const int length = 20 + i % 7;
    for (int d = 0; d < length; ++d) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      id.push_back(static_cast<char>('0' + (state >> 33) % 10));
    }
    flagged += ContainsPan(id) ? 1 : 0;
  }
  EXPECT_LT(flagged, kIds / 200) << flagged;  // < 0.5% (about 0.15% expected)
}

TEST_F(PanDetectionTest, AllowsSingleSpacesAndDashesBetweenDigits) {
  EXPECT_TRUE(ContainsPan("4111 1111 1111 1111"));
  EXPECT_TRUE(ContainsPan("4111-1111-1111-1111"));
  EXPECT_TRUE(ContainsPan("4111-1111 1111-1111"));
  EXPECT_TRUE(ContainsPan("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"));
  EXPECT_TRUE(ContainsPan("3782 822463 10005"));
}

TEST_F(PanDetectionTest, AllowsUpToThreeSeparatorsOfManyKinds) {
  for (const char* text : {
           "4111.1111.1111.1111", "4111/1111/1111/1111", "4111\t1111\t1111\t1111",
           "4111  1111  1111  1111", "4111   1111   1111   1111", "4111--1111--1111--1111",
           "4111 - 1111 - 1111 - 1111", "4111_1111_1111_1111",
           "4111\xc2\xa0" "1111\xc2\xa0" "1111\xc2\xa0" "1111",  // no-break spaces
           "4111\xe2\x80\x93" "1111\xe2\x80\x93" "1111\xe2\x80\x93" "1111",  // en dashes
           "card: 4111 . 1111 . 1111 . 1111 (visa)", "3782.822463.10005"}) {
    EXPECT_TRUE(ContainsPan(text)) << text;
  }
  EXPECT_EQ(FindPans("x 4111.1111.1111.1111 y"), (std::vector<PanSpan>{{2, 21}}));
}

TEST_F(PanDetectionTest, OneNumberUsesOneKindOfSeparator) {
  // Amounts, dates and times: mixed separators are not one card number.
  EXPECT_FALSE(ContainsPan("10.00 20.00 30.00 40.00"));
  EXPECT_FALSE(ContainsPan("4111.1111 1111.1111"));
  EXPECT_FALSE(ContainsPan("4111/1111.1111-1111"));
  // Single spaces and dashes mix, as before.
  EXPECT_TRUE(ContainsPan("4111-1111 1111-1111"));
}

TEST_F(PanDetectionTest, FourSeparatorsOrOtherPunctuationBreakTheRun) {
  EXPECT_FALSE(ContainsPan("4111    1111    1111    1111"));
  EXPECT_FALSE(ContainsPan("4111 -- 1111 -- 1111 -- 1111"));
  EXPECT_FALSE(ContainsPan("4111:1111:1111:1111"));
  EXPECT_FALSE(ContainsPan("4111,1111,1111,1111"));
  EXPECT_FALSE(ContainsPan("4111x1111x1111x1111"));
  EXPECT_FALSE(ContainsPan("4111\n1111\n1111\n1111"));
}

TEST_F(PanDetectionTest, FindsCardNumberGluedToExpiryOrCvv) {
  EXPECT_EQ(FindPans("41111111111111111225"), (std::vector<PanSpan>{{0, 16}}));   // + MMYY
  EXPECT_EQ(FindPans("4111111111111111123"), (std::vector<PanSpan>{{0, 16}}));    // + CVV
  EXPECT_EQ(FindPans("41111111111111111225123"), (std::vector<PanSpan>{{0, 16}}));  // + MMYY CVV
  EXPECT_TRUE(ContainsPan("55555555555544440926"));                             // Mastercard
  EXPECT_TRUE(ContainsPan("3782822463100051234"));                              // Amex + CID
  EXPECT_TRUE(ContainsPan("pan=41111111111111111225&x"));
  // Grouped, the last group glued to the expiry.
  EXPECT_EQ(FindPans("4111 1111 1111 11111225"), (std::vector<PanSpan>{{0, 19}}));
  EXPECT_TRUE(ContainsPan("4111-1111-1111-1111123"));
}

TEST_F(PanDetectionTest, GluedDigitsMustLookLikeAnExpiryOrCvv) {
  // Not an MMYY (month 00 or 13), not a CVV length.
  EXPECT_FALSE(ContainsPan("41111111111111110025"));
  EXPECT_FALSE(ContainsPan("41111111111111111325"));
  EXPECT_FALSE(ContainsPan("411111111111111112"));      // 2 digits glued
  EXPECT_FALSE(ContainsPan("41111111111111111225123456"));  // 10 digits glued
  // The card number part must pass the Luhn check.
  EXPECT_FALSE(ContainsPan("41111111111111121225"));
}

TEST_F(PanDetectionTest, IssuerShapes) {
  EXPECT_TRUE(IssuerShapeValid("4111111111111111"));
  EXPECT_TRUE(IssuerShapeValid("5555555555554444"));
  EXPECT_TRUE(IssuerShapeValid("2221000000000009"));
  EXPECT_TRUE(IssuerShapeValid("378282246310005"));
  EXPECT_TRUE(IssuerShapeValid("36227206271667"));
  EXPECT_TRUE(IssuerShapeValid("6011111111111117"));
  EXPECT_TRUE(IssuerShapeValid("3530111333300000"));
  EXPECT_TRUE(IssuerShapeValid("6200000000000005"));
  EXPECT_FALSE(IssuerShapeValid("411111111111111"));   // Visa, 15 digits
  EXPECT_FALSE(IssuerShapeValid("3782822463100051"));  // Amex, 16 digits
  EXPECT_FALSE(IssuerShapeValid("1111111111111117"));
  EXPECT_FALSE(IssuerShapeValid("9111111111111111"));
  EXPECT_TRUE(IssuerShapeValid("2720999999999999"));
  EXPECT_FALSE(IssuerShapeValid("2721000000000000"));
  EXPECT_FALSE(IssuerShapeValid("4111a11111111111"));
}

TEST_F(PanDetectionTest, FindsPanFollowedByMoreDigitGroups) {
  // PAN then expiry: the run has 20 digits but its first group is a PAN.
  EXPECT_TRUE(ContainsPan("4111111111111111 2025"));
  // Grouped PAN with a trailing group.
  EXPECT_TRUE(ContainsPan("4111 1111 1111 1111 7"));
  EXPECT_TRUE(ContainsPan("12 4111 1111 1111 1111"));
}

TEST_F(PanDetectionTest, FindsPanGluedToLetters) {
  EXPECT_TRUE(ContainsPan("x4111111111111111y"));
  EXPECT_TRUE(ContainsPan("pan=4111111111111111&exp=1225"));
}

TEST_F(PanDetectionTest, RedactsAllButLastFourDigits) {
  EXPECT_EQ(RedactPans("4111111111111111"), "************1111");
  EXPECT_EQ(RedactPans("card 4111-1111-1111-1234 x"), "card 4111-1111-1111-1234 x");  // no PAN
  EXPECT_EQ(RedactPans("card 4111-1111-1111-1111 x"), "card ****-****-****-1111 x");
  EXPECT_EQ(RedactPans("a 4222222222222 b 5555555555554444"), "a *********2222 b ************4444");
  EXPECT_EQ(RedactPans("no card 12345"), "no card 12345");
}

TEST_F(PanDetectionTest, RedactsGluedExpiryAndCvvToo) {
  EXPECT_EQ(RedactPans("41111111111111111225"), "************1111****");
  EXPECT_EQ(RedactPans("x 4111.1111.1111.1111123 y"), "x ****.****.****.1111*** y");
}

TEST_F(PanDetectionTest, RedactedTextHasNoPanLeft) {
  for (const char* text :
       {"4111111111111111", "4111 1111 1111 1111 2025", "x6011000000000000001",
        "4222222222222-4111111111111111", "41111111111111111225123", "4111 - 1111 - 1111 - 1111",
        "4111\t1111/1111.1111"}) {
    std::string redacted = RedactPans(text);
    EXPECT_FALSE(ContainsPan(redacted)) << redacted;
    EXPECT_EQ(redacted.size(), std::string(text).size());
  }
}

class RedactPanBytesTest : public ::testing::Test {};

TEST_F(RedactPanBytesTest, MasksCardNumbersInsideProtobufBytes) {
  // A metadata value of 49 bytes: its length byte is 0x31, the digit '1',
  // right before the card number, so the value's digits start "14111...".
  payments::v1::PaymentRequest r;
  r.set_idempotency_key("k1");
  r.set_customer_id("c1");
  (*r.mutable_metadata())["n"] = "4111111111111111" + std::string(33, 'x');
  r.set_merchant_id("m-1 order 12345");
  const std::string bytes = r.SerializeAsString();
  ASSERT_NE(bytes.find("14111111111111111"), std::string::npos);
  // The text detector only tries whole digit groups: it misses it.
  EXPECT_FALSE(ContainsPan(bytes));

  const std::string redacted = RedactPanBytes(bytes);
  EXPECT_EQ(redacted.size(), bytes.size());
  EXPECT_FALSE(ContainsPan(redacted));
  EXPECT_EQ(redacted.find("4111"), std::string::npos);
  EXPECT_EQ(redacted.find("1111"), std::string::npos);
  EXPECT_NE(redacted.find("*****************xxx"), std::string::npos);  // every digit of the run
  // Everything else is unchanged, short numbers included.
  EXPECT_NE(redacted.find("m-1 order 12345"), std::string::npos);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (redacted[i] != bytes[i]) {
      EXPECT_TRUE(bytes[i] >= '0' && bytes[i] <= '9') << i;
      EXPECT_EQ(redacted[i], '*');
    }
  }
}

TEST_F(RedactPanBytesTest, FindsCardNumbersAtAnyOffsetOfADigitRun) {
  // RedactPans only tries whole groups; raw bytes may glue anything in front.
  EXPECT_FALSE(ContainsPan("994111111111111111"));
  EXPECT_EQ(RedactPanBytes("\x0a" "994111111111111111\x12"), "\x0a" "******************\x12");
  EXPECT_EQ(RedactPanBytes("a 4111 1111 1111 1111 b"), "a **** **** **** **** b");
  EXPECT_EQ(RedactPanBytes("41111111111111111225"), "********************");
  // No Luhn-valid window of 13-19 digits: unchanged.
  EXPECT_EQ(RedactPanBytes("1234567890123"), "1234567890123");
  EXPECT_EQ(RedactPanBytes("no digits"), "no digits");
  EXPECT_EQ(RedactPanBytes(""), "");
}

TEST_F(RedactPanBytesTest, MasksEverythingRedactPansMasks) {
  for (const char* text :
       {"4111111111111111", "card 4111-1111-1111-1111 x", "41111111111111111225", "x4222222222222y",
        "4111 . 1111 . 1111 . 1111", "a 4222222222222 b 5555555555554444"}) {
    EXPECT_TRUE(ContainsPan(text)) << text;
    EXPECT_FALSE(ContainsPan(RedactPanBytes(text))) << text;
  }
}

}  // namespace
}  // namespace payments
