// Unit tests of the request fingerprint and payment ids (no engine).
#include "payments/fingerprint.h"

#include <gtest/gtest.h>

#include "payments_test_util.h"

namespace payments {
namespace {

using testing::MakePayment;

class FingerprintTest : public ::testing::Test {};

TEST_F(FingerprintTest, PaymentIdIsDeterministicSha256Prefix) {
  // Expected value from
  // `printf '\xfe\0\0\0\6cust-1\0\0\0\5key-1' | sha256sum` (2eb0c2c01219f717b700b43d...).
  EXPECT_EQ(PaymentIdFor("cust-1", "key-1"), "pay_colamcmabcbjphbhlhaaledn");
  EXPECT_EQ(PaymentIdFor("cust-1", "key-1"), PaymentIdFor("cust-1", "key-1"));
  EXPECT_NE(PaymentIdFor("cust-1", "key-2"), PaymentIdFor("cust-1", "key-1"));
  // The length prefixes keep ("ab", "c") and ("a", "bc") apart.
  EXPECT_NE(PaymentIdFor("ab", "c"), PaymentIdFor("a", "bc"));
  // Digit-free: no payment id can look like a card number.
  for (int i = 0; i < 2000; ++i) {
    const std::string id = PaymentIdFor("c" + std::to_string(i), "k");
    EXPECT_EQ(id.find_first_of("0123456789"), std::string::npos) << id;
  }
}

TEST_F(FingerprintTest, DecisionKeyIsVersionedAndLengthPrefixed) {
  EXPECT_EQ(DecisionKey("c1", "k1"), std::string("\xfe\0\0\0\2c1\0\0\0\2k1", 13));
  // customer_id '\0' idempotency_key made these equal: one customer could get
  // another's stored decision or refund another's payment.
  const std::string a_bc = DecisionKey("a", std::string("b\0c", 3));
  const std::string ab_c = DecisionKey(std::string("a\0b", 3), "c");
  EXPECT_NE(a_bc, ab_c);
  EXPECT_NE(PaymentIdFor("a", std::string("b\0c", 3)), PaymentIdFor(std::string("a\0b", 3), "c"));
  EXPECT_NE(DecisionKey("", "ab"), DecisionKey("a", "b"));
  // Never the first byte of a UTF-8 string: never a key of the previous layout.
  EXPECT_EQ(static_cast<unsigned char>(DecisionKey("x", "y")[0]), 0xFE);
}

TEST_F(FingerprintTest, Sha256HexMatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(FingerprintTest, IgnoresCreatedAtAndIdentity) {
  auto a = MakePayment("c1", "k1", 100);
  auto b = a;
  b.set_created_at_ms(a.created_at_ms() + 5000);
  EXPECT_EQ(RequestFingerprint(a), RequestFingerprint(b));
  EXPECT_EQ(RequestFingerprint(a).size(), 32u);
}

TEST_F(FingerprintTest, ChangesWithEveryDecidingParameter) {
  const auto base = MakePayment("c1", "k1", 100);
  const std::string fp = RequestFingerprint(base);
  auto changed = [&](auto mutate) {
    auto r = base;
    mutate(r);
    return RequestFingerprint(r) != fp;
  };
  using R = payments::v1::PaymentRequest;
  EXPECT_TRUE(changed([](R& r) { r.set_merchant_id("m2"); }));
  EXPECT_TRUE(changed([](R& r) { r.set_kind(payments::v1::REFUND); }));
  EXPECT_TRUE(changed([](R& r) { r.set_amount_minor(101); }));
  EXPECT_TRUE(changed([](R& r) { r.set_currency("USD"); }));
  EXPECT_TRUE(changed([](R& r) { r.set_refund_of("x"); }));
  EXPECT_TRUE(changed([](R& r) { r.set_payment_method_token("tok_other"); }));
  EXPECT_TRUE(changed([](R& r) { (*r.mutable_metadata())["a"] = "b"; }));
}

TEST_F(FingerprintTest, LengthPrefixesKeepFieldBoundaries) {
  auto a = MakePayment("c1", "k1", 100);
  auto b = a;
  a.set_merchant_id("ab");
  a.set_payment_method_token("c");
  b.set_merchant_id("a");
  b.set_payment_method_token("bc");
  EXPECT_NE(RequestFingerprint(a), RequestFingerprint(b));
  auto m1 = MakePayment("c1", "k1", 100);
  auto m2 = m1;
  (*m1.mutable_metadata())["ab"] = "c";
  (*m2.mutable_metadata())["a"] = "bc";
  EXPECT_NE(RequestFingerprint(m1), RequestFingerprint(m2));
}

TEST_F(FingerprintTest, MetadataOrderDoesNotMatter) {
  auto a = MakePayment("c1", "k1", 100);
  auto b = a;
  for (int i = 0; i < 10; ++i) (*a.mutable_metadata())["k" + std::to_string(i)] = "v";
  for (int i = 9; i >= 0; --i) (*b.mutable_metadata())["k" + std::to_string(i)] = "v";
  EXPECT_EQ(RequestFingerprint(a), RequestFingerprint(b));
}

}  // namespace
}  // namespace payments
