// Unit tests of PAN detection and redaction (no engine).
#include <gtest/gtest.h>

#include "payments/pan.h"

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
  // number, but a 20-digit group is an id, not a card number.
  EXPECT_TRUE(LuhnValid("41111111111111111115"));
  EXPECT_FALSE(ContainsPan("41111111111111111115"));
  EXPECT_FALSE(ContainsPan("ref 41111111111111111115 end"));
}

TEST_F(PanDetectionTest, AllowsSingleSpacesAndDashesBetweenDigits) {
  EXPECT_TRUE(ContainsPan("4111 1111 1111 1111"));
  EXPECT_TRUE(ContainsPan("4111-1111-1111-1111"));
  EXPECT_TRUE(ContainsPan("4111-1111 1111-1111"));
  EXPECT_TRUE(ContainsPan("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"));
  EXPECT_TRUE(ContainsPan("3782 822463 10005"));
}

TEST_F(PanDetectionTest, DoubleSeparatorsOrOtherPunctuationBreakTheRun) {
  EXPECT_FALSE(ContainsPan("4111  1111  1111  1111"));
  EXPECT_FALSE(ContainsPan("4111--1111--1111--1111"));
  EXPECT_FALSE(ContainsPan("4111.1111.1111.1111"));
  EXPECT_FALSE(ContainsPan("4111 - 1111 - 1111 - 1111"));
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

TEST_F(PanDetectionTest, RedactedTextHasNoPanLeft) {
  for (const char* text : {"4111111111111111", "4111 1111 1111 1111 2025", "x6011000000000000001",
                           "4222222222222-4111111111111111"}) {
    std::string redacted = RedactPans(text);
    EXPECT_FALSE(ContainsPan(redacted)) << redacted;
    EXPECT_EQ(redacted.size(), std::string(text).size());
  }
}

}  // namespace
}  // namespace payments
