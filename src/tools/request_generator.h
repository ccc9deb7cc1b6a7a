// RequestGenerator: the deterministic stream of PaymentRequests that
// payments-loadgen sends. The same options (including the seed) always give the
// same requests, record keys and timestamps, so runs are reproducible.
//
// Mix (every share is the expected fraction of all generated requests):
//   duplicates  an exact resend (same bytes, key and timestamp) of a recent request
//   key_reuse   a recent valid PAYMENT's idempotency key with a changed amount
//   invalid     one of InvalidKind (missing field, bad currency, amount <= 0,
//               PAN in the token or metadata, unknown kind, key mismatch, ...)
//   refunds     a REFUND of an earlier PAYMENT of the same customer: usually
//               within the amount, sometimes over it, sometimes of an unknown
//               payment, rarely in another currency
//   bursts      runs of burst_size consecutive PAYMENTs of one customer, closer
//               together in event time than the per-customer rate limit allows
//   the rest    ordinary PAYMENTs of a random customer
//
// Event time: request i (0-based) is created at start_time_ms + i * time_step_ms
// (duplicates keep the timestamp of the request they resend).
//
// Thread safety: not thread-safe; one generator per thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "payments/v1/payments.pb.h"
#include "streams/result.h"
#include "streams/status.h"

namespace payments::tools {

// A small, portable, deterministic PRNG (splitmix64): the same seed gives the
// same numbers on every platform and standard library.
// Thread safety: not thread-safe (each call advances the state).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, bound); bound > 0.
  uint64_t Uniform(uint64_t bound);
  // Uniform in [lo, hi]; lo <= hi.
  int64_t Between(int64_t lo, int64_t hi);
  // Uniform in [0, 1).
  double Fraction();

 private:
  uint64_t state_;
};

struct GeneratorShares {
  double duplicates = 0;
  double key_reuse = 0;
  double invalid = 0;
  double refunds = 0;
  double bursts = 0;
};

struct GeneratorOptions {
  uint64_t count = 1000;
  int64_t customers = 100;
  GeneratorShares shares;
  uint64_t seed = 1;
  int64_t start_time_ms = 1'700'000'000'000;
  int64_t time_step_ms = 10;
  // Requests per burst; above payments.rate.limit.burst (20 by default).
  int64_t burst_size = 25;
  int64_t merchants = 200;

  // OK when every share is in [0, 1], their sum is <= 1, and the counts are
  // positive. Errors: InvalidArgument naming the option.
  [[nodiscard]] streams::Status Validate() const;
};

// What a generated request is meant to exercise (for statistics; the verifier
// never trusts it and re-derives every expectation from the data).
enum class RequestCategory {
  kPayment,
  kBurst,
  kDuplicate,
  kKeyReuse,
  kInvalid,
  kRefund,          // Within the payment's amount (alone).
  kRefundOver,      // Above the payment's amount.
  kRefundUnknown,   // refund_of names no payment.
  kRefundCurrency,  // In another currency than the payment.
};
std::string_view CategoryName(RequestCategory category);
inline constexpr int kCategoryCount = 9;

enum class InvalidKind {
  kMissingField,
  kBadCurrency,
  kNonPositiveAmount,
  kPanInToken,
  kPanInMetadata,
  kUnknownKind,
  kKeyMismatch,
  kFieldTooLong,
  kRefundWithoutRefundOf,
  kAmountTooLarge,
};
inline constexpr int kInvalidKindCount = 10;

struct GeneratedRequest {
  payments::v1::PaymentRequest request;
  // The Kafka record key: customer_id, except for kKeyMismatch.
  std::string record_key;
  // The record timestamp (= request.created_at_ms).
  int64_t timestamp_ms = 0;
  RequestCategory category = RequestCategory::kPayment;
};

// The request's bytes with deterministic serialization (map entries sorted by
// key), so the same request always gives the same record value; plain
// SerializeAsString() may order the metadata map differently between copies.
std::string SerializeRequest(const payments::v1::PaymentRequest& request);

class RequestGenerator {
 public:
  // Errors: those of GeneratorOptions::Validate.
  static streams::Result<RequestGenerator> Create(const GeneratorOptions& options);

  // True when `count` requests were generated.
  bool Done() const { return index_ >= options_.count; }
  uint64_t generated() const { return index_; }

  // The next request. Precondition: !Done().
  GeneratedRequest Next();

 private:
  explicit RequestGenerator(const GeneratorOptions& options);

  struct PastPayment {
    std::string idempotency_key;
    std::string merchant_id;
    std::string currency;
    int64_t amount_minor = 0;
    std::string token;
  };

  GeneratedRequest NewPayment(int64_t customer, RequestCategory category);
  GeneratedRequest Duplicate();
  GeneratedRequest KeyReuse();
  GeneratedRequest Invalid();
  GeneratedRequest Refund();
  GeneratedRequest Finish(payments::v1::PaymentRequest request, RequestCategory category);

  std::string CustomerId(int64_t customer) const;
  std::string NextIdempotencyKey();
  std::string Letters(size_t n);
  int64_t RandomAmount();
  std::string HomeCurrency(int64_t customer) const;
  int64_t CurrentTimeMs() const;

  GeneratorOptions options_;
  SplitMix64 rng_;
  std::string seed_tag_;
  uint64_t index_ = 0;
  uint64_t key_counter_ = 0;
  // Probability that a free slot starts a burst, and the other categories'
  // probabilities among single-request slots.
  double burst_start_probability_ = 0;
  double single_scale_ = 1;
  // Remaining requests of the current burst, and its customer.
  int64_t burst_left_ = 0;
  int64_t burst_customer_ = 0;
  // Recent requests (for duplicates) and recent valid PAYMENTs (for key reuse).
  std::deque<GeneratedRequest> recent_;
  std::deque<GeneratedRequest> recent_payments_;
  // The last valid PAYMENTs of each customer (for refunds), indexed by customer.
  std::vector<std::deque<PastPayment>> payments_by_customer_;
  std::vector<int64_t> customers_with_payments_;
};

}  // namespace payments::tools
