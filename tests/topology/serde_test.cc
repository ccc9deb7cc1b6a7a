#include "streams/serde.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "payments/v1/payments.pb.h"

namespace streams {
namespace {

using payments::v1::PaymentRequest;
using ::testing::HasSubstr;

class SerdeTest : public ::testing::Test {
 protected:
  static PaymentRequest SampleRequest() {
    PaymentRequest request;
    request.set_idempotency_key("idem-1");
    request.set_customer_id("cust-42");
    request.set_merchant_id("merch-7");
    request.set_kind(payments::v1::PAYMENT);
    request.set_amount_minor(123456789012);
    request.set_currency("EUR");
    request.set_payment_method_token("tok_abc");
    request.set_created_at_ms(1700000000000);
    (*request.mutable_metadata())["order"] = "A-1";
    return request;
  }
};

TEST_F(SerdeTest, StringRoundTripsBinaryBytes) {
  const std::string bytes("a\0b\xff", 4);
  SerdePtr<std::string> serde = StringSerdeInstance();
  const std::string serialized = serde->Serialize("t", bytes);
  EXPECT_EQ(serialized, bytes);
  auto back = serde->Deserialize("t", serialized);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, bytes);
}

TEST_F(SerdeTest, StringNullPayloadIsEmpty) {
  auto back = StringSerdeInstance()->Deserialize("t", std::nullopt);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "");
}

TEST_F(SerdeTest, ProtobufRoundTrips) {
  auto serde = ProtobufSerdeInstance<PaymentRequest>();
  const PaymentRequest request = SampleRequest();
  auto back =
      serde->Deserialize("payments.requests", serde->Serialize("payments.requests", request));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->SerializeAsString(), request.SerializeAsString());
  EXPECT_EQ(back->amount_minor(), 123456789012);
  EXPECT_EQ(back->metadata().at("order"), "A-1");
}

TEST_F(SerdeTest, ProtobufEmptyPayloadIsTheDefaultMessage) {
  auto back = ProtobufSerdeInstance<PaymentRequest>()->Deserialize("t", std::string_view());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->customer_id(), "");
  EXPECT_EQ(back->amount_minor(), 0);
}

TEST_F(SerdeTest, ProtobufMalformedPayloadIsCorruptionNamingTopicAndType) {
  auto result =
      ProtobufSerdeInstance<PaymentRequest>()->Deserialize("payments.requests", "\xff\xff\xff");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(result.status().message(),
              HasSubstr("payload of 3 bytes on topic 'payments.requests' is not a valid "
                        "payments.v1.PaymentRequest"));
}

TEST_F(SerdeTest, ProtobufTruncatedPayloadIsCorruption) {
  const std::string full = SampleRequest().SerializeAsString();
  // Cut inside the first length-delimited field.
  auto result = ProtobufSerdeInstance<PaymentRequest>()->Deserialize("t", full.substr(0, 4));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kCorruption);
}

TEST_F(SerdeTest, ProtobufNullPayloadIsCorruption) {
  auto result =
      ProtobufSerdeInstance<PaymentRequest>()->Deserialize("payments.requests", std::nullopt);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(result.status().message(),
              HasSubstr("null payload on topic 'payments.requests', expected "
                        "payments.v1.PaymentRequest"));
}

TEST_F(SerdeTest, ProtobufRandomBytesNeverCrash) {
  std::mt19937 rng(1234);
  auto serde = ProtobufSerdeInstance<PaymentRequest>();
  int failures = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
    auto result = serde->Deserialize("t", bytes);
    if (!result.ok()) {
      ++failures;
      EXPECT_EQ(result.status().code(), StatusCode::kCorruption);
    }
  }
  // Most random byte strings are not valid messages.
  EXPECT_GT(failures, 1000);
}

}  // namespace
}  // namespace streams
