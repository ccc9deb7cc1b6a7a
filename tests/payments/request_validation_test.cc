// Unit tests of the pure ValidateRequest (no engine): order of checks, limits
// and the currency list. validation_test.cc checks the same codes end to end.
#include <gtest/gtest.h>

#include "payments/decline_codes.h"
#include "payments/validation.h"
#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;
using testing::MakeRefund;

class ValidateRequestTest : public ::testing::Test {
 protected:
  std::optional<std::string_view> Code(const payments::v1::PaymentRequest& r,
                                       std::string_view key) {
    auto d = ValidateRequest(r, key, config_);
    if (!d) return std::nullopt;
    return d->code;
  }
  PaymentsConfig config_;
};

TEST_F(ValidateRequestTest, ValidRequestsPass) {
  EXPECT_EQ(ValidateRequest(MakePayment("c1", "k1", 100), "c1", config_), std::nullopt);
  EXPECT_EQ(ValidateRequest(MakeRefund("c1", "k2", "k1", 100), "c1", config_), std::nullopt);
}

TEST_F(ValidateRequestTest, ChecksRunInTheDocumentedOrder) {
  // Everything wrong at once: the PAN wins.
  auto r = MakePayment("", "", -1, "", "");
  r.set_kind(payments::v1::PAYMENT_KIND_UNSPECIFIED);
  r.set_refund_of("4111111111111111");
  EXPECT_EQ(Code(r, "other"), decline_code::kPanNotAllowed);
  r.clear_refund_of();
  EXPECT_EQ(Code(r, "other"), decline_code::kMissingField);  // idempotency_key
  r.set_idempotency_key("k");
  EXPECT_EQ(ValidateRequest(r, "other", config_)->message, "customer_id is required");
  r.set_customer_id(std::string("c\0", 2));
  EXPECT_EQ(ValidateRequest(r, "other", config_)->message,
            "customer_id contains a control character");
  r.set_customer_id("c");
  r.set_idempotency_key("k\t");
  EXPECT_EQ(Code(r, "other"), decline_code::kInvalidIdentifier);
  r.set_idempotency_key("k");
  EXPECT_EQ(Code(r, "other"), decline_code::kKeyMismatch);
  EXPECT_EQ(ValidateIdentity(r, "other")->code, decline_code::kKeyMismatch);
  EXPECT_EQ(ValidateIdentity(r, "c"), std::nullopt);
  r.set_payment_method_token(std::string(200, 't'));
  EXPECT_EQ(Code(r, "c"), decline_code::kFieldTooLong);
  r.set_payment_method_token("");
  r.set_merchant_id("m\x7f");
  EXPECT_EQ(ValidateRequest(r, "c", config_)->message, "merchant_id contains a control character");
  r.set_merchant_id("");
  r.set_refund_of("\x01");
  EXPECT_EQ(ValidateRequest(r, "c", config_)->message, "refund_of contains a control character");
  r.set_refund_of("");
  EXPECT_EQ(Code(r, "c"), decline_code::kInvalidKind);
  r.set_kind(payments::v1::REFUND);
  EXPECT_EQ(ValidateRequest(r, "c", config_)->message, "merchant_id is required");
  r.set_merchant_id("m");
  EXPECT_EQ(Code(r, "c"), decline_code::kMissingField);  // currency
  r.set_currency("xx");
  EXPECT_EQ(Code(r, "c"), decline_code::kRefundOfRequired);
  r.set_refund_of("k0");
  EXPECT_EQ(Code(r, "c"), decline_code::kInvalidAmount);
  r.set_amount_minor(config_.max_amount_minor + 1);
  EXPECT_EQ(Code(r, "c"), decline_code::kAmountTooLarge);
  r.set_amount_minor(config_.max_amount_minor);
  EXPECT_EQ(Code(r, "c"), decline_code::kUnknownCurrency);
  r.set_currency("CHF");
  EXPECT_EQ(Code(r, "c"), std::nullopt);
}

TEST_F(ValidateRequestTest, TokenIsRequiredForPaymentsOnly) {
  auto p = MakePayment("c1", "k1", 100);
  p.clear_payment_method_token();
  auto d = ValidateRequest(p, "c1", config_);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->code, decline_code::kMissingField);
  EXPECT_NE(d->message.find("payment_method_token"), std::string::npos);
  auto r = MakeRefund("c1", "k2", "k1", 100);
  r.clear_payment_method_token();
  EXPECT_EQ(ValidateRequest(r, "c1", config_), std::nullopt);
}

TEST_F(ValidateRequestTest, LengthLimitsAreInclusive) {
  config_.string_max_length = 8;
  config_.metadata_max_entries = 2;
  auto r = MakePayment("c1", "k1", 100, "EUR", std::string(8, 'm'));
  r.set_payment_method_token("tok");
  (*r.mutable_metadata())[std::string(8, 'k')] = std::string(8, 'v');
  (*r.mutable_metadata())["b"] = "x";
  EXPECT_EQ(Code(r, "c1"), std::nullopt);
  auto longer = r;
  longer.set_merchant_id(std::string(9, 'm'));
  EXPECT_EQ(Code(longer, "c1"), decline_code::kFieldTooLong);
  longer = r;
  (*longer.mutable_metadata())[std::string(9, 'k')] = "v";
  longer.mutable_metadata()->erase("b");
  EXPECT_EQ(Code(longer, "c1"), decline_code::kFieldTooLong);
  longer = r;
  (*longer.mutable_metadata())["b"] = std::string(9, 'v');
  EXPECT_EQ(Code(longer, "c1"), decline_code::kFieldTooLong);
  longer = r;
  (*longer.mutable_metadata())["c"] = "x";
  auto d = ValidateRequest(longer, "c1", config_);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->code, decline_code::kFieldTooLong);
  EXPECT_NE(d->message.find("3 entries"), std::string::npos);
}

TEST_F(ValidateRequestTest, PanIsFoundEverywhereAndNeverInTheMessage) {
  const std::string pan = "4111111111111111";
  auto check = [&](payments::v1::PaymentRequest r, std::string_view key, std::string_view where) {
    auto d = ValidateRequest(r, key, config_);
    ASSERT_TRUE(d.has_value()) << where;
    EXPECT_EQ(d->code, decline_code::kPanNotAllowed) << where;
    EXPECT_NE(d->message.find(where), std::string::npos) << d->message;
    EXPECT_EQ(d->message.find("1111"), std::string::npos) << d->message;
  };
  auto base = MakePayment("c1", "k1", 100);
  check(base, "c1 " + pan, "record key");
  auto r = base;
  r.set_idempotency_key(pan);
  check(r, "c1", "idempotency_key");
  r = base;
  r.set_customer_id(pan);
  check(r, pan, "record key");
  r = base;
  r.set_merchant_id("m-" + pan);
  check(r, "c1", "merchant_id");
  r = base;
  r.set_currency(pan);
  check(r, "c1", "currency");
  r = base;
  r.set_payment_method_token(pan);
  check(r, "c1", "payment_method_token");
  r = base;
  r.set_refund_of(pan);
  check(r, "c1", "refund_of");
  r = base;
  (*r.mutable_metadata())[pan] = "v";
  check(r, "c1", "metadata key");
  r = base;
  (*r.mutable_metadata())["note"] = "card " + pan;
  check(r, "c1", "metadata value of 'note'");
}

TEST_F(ValidateRequestTest, ControlCharactersAreC0DelAndC1) {
  for (char c = 0; c < 0x20; ++c) EXPECT_TRUE(HasControlCharacter(std::string("a") + c)) << int{c};
  EXPECT_TRUE(HasControlCharacter("a\x7f"));
  EXPECT_TRUE(HasControlCharacter("a\xc2\x80"));  // U+0080
  EXPECT_TRUE(HasControlCharacter("\xc2\x9f"));   // U+009F
  EXPECT_FALSE(HasControlCharacter("\xc2\xa0"));  // U+00A0 no-break space
  EXPECT_FALSE(HasControlCharacter("cust-1 k\xc3\xa9 \xe2\x82\xac"));  // é, €
  EXPECT_FALSE(HasControlCharacter(""));
  // Every identifier is checked; payment_method_token and metadata are free text.
  auto r = MakePayment("c1", "k1", 100);
  r.set_payment_method_token("tok\n");
  (*r.mutable_metadata())["note"] = "line 1\nline 2";
  EXPECT_EQ(Code(r, "c1"), std::nullopt);
  using Mutation = void (*)(payments::v1::PaymentRequest&);
  const Mutation mutations[] = {
      [](payments::v1::PaymentRequest& x) { x.set_customer_id("c1\x1b"); },
      [](payments::v1::PaymentRequest& x) { x.set_idempotency_key("k1\x1b"); },
      [](payments::v1::PaymentRequest& x) { x.set_merchant_id("m\x1b"); },
      [](payments::v1::PaymentRequest& x) { x.set_refund_of("p\x1b"); },
  };
  for (Mutation mutate : mutations) {
    auto bad = r;
    mutate(bad);
    EXPECT_EQ(Code(bad, bad.customer_id()), decline_code::kInvalidIdentifier) << bad.DebugString();
  }
}

TEST_F(ValidateRequestTest, CurrencyListIsIso4217Active) {
  for (const char* code : {"EUR", "USD", "JPY", "GBP", "CHF", "XAU", "VES", "ZWG", "SLE"}) {
    EXPECT_TRUE(IsActiveCurrency(code)) << code;
  }
  for (const char* code : {"eur", "DEM", "HRK", "XXX", "XTS", "EU", "EURO", "", "ABC"}) {
    EXPECT_FALSE(IsActiveCurrency(code)) << code;
  }
}

TEST_F(ValidateRequestTest, EveryCodeHasADescription) {
  for (const auto& info : kDeclineCodes) {
    EXPECT_EQ(DescribeDeclineCode(info.code), info.description);
  }
  EXPECT_EQ(DescribeDeclineCode("NOPE"), std::nullopt);
}

}  // namespace
}  // namespace payments
