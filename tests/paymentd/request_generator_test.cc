#include "tools/request_generator.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "payments/pan.h"
#include "payments/payments_config.h"
#include "payments/validation.h"

namespace payments::tools {
namespace {

class RequestGeneratorTest : public ::testing::Test {
 protected:
  static GeneratorOptions AllShares(uint64_t count) {
    GeneratorOptions o;
    o.count = count;
    o.customers = 50;
    o.seed = 42;
    o.shares = {
        .duplicates = 0.05, .key_reuse = 0.05, .invalid = 0.10, .refunds = 0.10, .bursts = 0.10};
    return o;
  }

  static std::vector<GeneratedRequest> Generate(const GeneratorOptions& options) {
    auto generator = RequestGenerator::Create(options);
    EXPECT_TRUE(generator.ok()) << generator.status();
    std::vector<GeneratedRequest> out;
    while (!generator->Done()) out.push_back(generator->Next());
    return out;
  }

  PaymentsConfig config_;
};

TEST_F(RequestGeneratorTest, SameSeedGivesSameBytes) {
  auto a = Generate(AllShares(2000));
  auto b = Generate(AllShares(2000));
  ASSERT_EQ(a.size(), 2000u);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(SerializeRequest(a[i].request), SerializeRequest(b[i].request)) << i;
    EXPECT_EQ(a[i].record_key, b[i].record_key) << i;
    EXPECT_EQ(a[i].timestamp_ms, b[i].timestamp_ms) << i;
  }
}

TEST_F(RequestGeneratorTest, DifferentSeedGivesDifferentRequests) {
  auto options = AllShares(200);
  auto a = Generate(options);
  options.seed = 43;
  auto b = Generate(options);
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (SerializeRequest(a[i].request) == SerializeRequest(b[i].request)) ++same;
  }
  EXPECT_LT(same, 5u);
  // Idempotency keys never collide between seeds.
  std::set<std::string> keys_a;
  for (const auto& r : a) keys_a.insert(r.request.idempotency_key());
  for (const auto& r : b) {
    if (r.request.idempotency_key().empty()) continue;
    EXPECT_FALSE(keys_a.contains(r.request.idempotency_key())) << r.request.idempotency_key();
  }
}

TEST_F(RequestGeneratorTest, SharesAreRespected) {
  auto requests = Generate(AllShares(20000));
  std::map<RequestCategory, int> counts;
  for (const auto& r : requests) ++counts[r.category];
  auto fraction = [&](std::initializer_list<RequestCategory> cats) {
    int n = 0;
    for (auto c : cats) n += counts[c];
    return static_cast<double>(n) / static_cast<double>(requests.size());
  };
  EXPECT_NEAR(fraction({RequestCategory::kDuplicate}), 0.05, 0.01);
  EXPECT_NEAR(fraction({RequestCategory::kKeyReuse}), 0.05, 0.01);
  EXPECT_NEAR(fraction({RequestCategory::kInvalid}), 0.10, 0.015);
  EXPECT_NEAR(fraction({RequestCategory::kRefund, RequestCategory::kRefundOver,
                        RequestCategory::kRefundUnknown, RequestCategory::kRefundCurrency}),
              0.10, 0.015);
  EXPECT_NEAR(fraction({RequestCategory::kBurst}), 0.10, 0.03);
  EXPECT_GT(counts[RequestCategory::kRefundOver], 0);
  EXPECT_GT(counts[RequestCategory::kRefundUnknown], 0);
}

TEST_F(RequestGeneratorTest, InvalidRequestsFailValidationAndOthersPass) {
  auto requests = Generate(AllShares(5000));
  std::set<std::string> invalid_codes;
  for (const auto& r : requests) {
    auto decline = ValidateRequest(r.request, r.record_key, config_);
    switch (r.category) {
      case RequestCategory::kInvalid:
        ASSERT_TRUE(decline.has_value()) << r.request.ShortDebugString();
        invalid_codes.insert(std::string(decline->code));
        break;
      case RequestCategory::kDuplicate:
        break;  // A resend of anything, valid or not.
      default:
        EXPECT_FALSE(decline.has_value())
            << CategoryName(r.category) << ": " << decline->code << " " << decline->message;
        EXPECT_FALSE(FindPanField(r.request, r.record_key).has_value());
        EXPECT_EQ(r.record_key, r.request.customer_id());
    }
  }
  // Every kind of invalid request the brief asks for shows up.
  for (const char* code :
       {"MISSING_FIELD", "UNKNOWN_CURRENCY", "INVALID_AMOUNT", "PAN_NOT_ALLOWED", "INVALID_KIND",
        "KEY_MISMATCH", "FIELD_TOO_LONG", "REFUND_OF_REQUIRED", "AMOUNT_TOO_LARGE"}) {
    EXPECT_TRUE(invalid_codes.contains(code)) << code;
  }
}

TEST_F(RequestGeneratorTest, EventTimeAdvancesDeterministically) {
  auto options = AllShares(1000);
  options.start_time_ms = 1'000'000;
  options.time_step_ms = 7;
  auto requests = Generate(options);
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    EXPECT_EQ(r.timestamp_ms, r.request.created_at_ms());
    if (r.category == RequestCategory::kDuplicate) {
      EXPECT_LE(r.timestamp_ms, 1'000'000 + static_cast<int64_t>(i) * 7);
    } else {
      EXPECT_EQ(r.timestamp_ms, 1'000'000 + static_cast<int64_t>(i) * 7) << i;
    }
  }
}

TEST_F(RequestGeneratorTest, DuplicatesAndKeyReusesReferToEarlierRequests) {
  auto requests = Generate(AllShares(3000));
  // (customer, key) -> the bytes of every request sent with it so far.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> seen;
  int duplicates = 0, reuses = 0;
  for (const auto& r : requests) {
    auto id = std::make_pair(r.request.customer_id(), r.request.idempotency_key());
    const std::string bytes = SerializeRequest(r.request);
    auto it = seen.find(id);
    if (r.category == RequestCategory::kDuplicate) {
      ++duplicates;
      ASSERT_NE(it, seen.end());
      EXPECT_TRUE(it->second.contains(bytes)) << "not an exact resend";
    } else if (r.category == RequestCategory::kKeyReuse) {
      ++reuses;
      ASSERT_NE(it, seen.end());
      EXPECT_FALSE(it->second.contains(bytes)) << "a key reuse must change the request";
    }
    seen[id].insert(bytes);
  }
  EXPECT_GT(duplicates, 0);
  EXPECT_GT(reuses, 0);
}

TEST_F(RequestGeneratorTest, RejectsBadOptions) {
  auto options = AllShares(10);
  options.shares.refunds = 0.9;
  EXPECT_FALSE(RequestGenerator::Create(options).ok());  // Sum > 1.
  options = AllShares(10);
  options.shares.invalid = -0.1;
  EXPECT_FALSE(RequestGenerator::Create(options).ok());
  options = AllShares(10);
  options.customers = 0;
  EXPECT_FALSE(RequestGenerator::Create(options).ok());
  options = AllShares(0);
  EXPECT_FALSE(RequestGenerator::Create(options).ok());
}

TEST_F(RequestGeneratorTest, SplitMixIsPortableAndUniform) {
  SplitMix64 rng(0);
  // Reference values of splitmix64 with seed 0.
  EXPECT_EQ(rng.Next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.Next(), 0x6e789e6aa1b965f4ULL);
  std::vector<int> buckets(10);
  for (int i = 0; i < 100000; ++i) ++buckets[rng.Uniform(10)];
  for (int n : buckets) EXPECT_NEAR(n, 10000, 500);
  for (int i = 0; i < 1000; ++i) {
    int64_t v = rng.Between(-3, 3);
    EXPECT_GE(v, -3);
    EXPECT_LE(v, 3);
    double f = rng.Fraction();
    EXPECT_GE(f, 0.0);
    EXPECT_LT(f, 1.0);
  }
}

}  // namespace
}  // namespace payments::tools
