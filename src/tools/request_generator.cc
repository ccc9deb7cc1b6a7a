#include "tools/request_generator.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <array>
#include <cstdio>

namespace payments::tools {
namespace {

using payments::v1::PaymentKind;
using payments::v1::PaymentRequest;
using streams::Status;

constexpr size_t kRecentRequests = 1000;
constexpr size_t kPaymentsPerCustomer = 8;

constexpr std::array<const char*, 5> kCurrencies = {"EUR", "USD", "GBP", "CHF", "SEK"};
constexpr std::array<const char*, 4> kBadCurrencies = {"EURO", "usd", "XYZ", "DEM"};
constexpr std::array<const char*, 3> kChannels = {"web", "app", "pos"};
// Well-known test card numbers (all pass the Luhn check), in several layouts.
constexpr std::array<const char*, 5> kTestPans = {"4111111111111111", "5555 5555 5555 4444",
                                                  "4012-8888-8888-1881", "378282246310005",
                                                  "6011111111111117"};

Status CheckShare(double value, const char* name) {
  if (!(value >= 0.0 && value <= 1.0)) {
    return Status::InvalidArgument(std::string("--") + name + " must be in [0, 1], got " +
                                   std::to_string(value));
  }
  return Status::Ok();
}

}  // namespace

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::Uniform(uint64_t bound) {
  // Rejection sampling keeps the distribution exactly uniform.
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do {
    x = Next();
  } while (x >= limit);
  return x % bound;
}

int64_t SplitMix64::Between(int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(Uniform(static_cast<uint64_t>(hi - lo) + 1));
}

double SplitMix64::Fraction() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

Status GeneratorOptions::Validate() const {
  if (count == 0) return Status::InvalidArgument("--count must be > 0");
  if (customers <= 0) return Status::InvalidArgument("--customers must be > 0");
  if (merchants <= 0) return Status::InvalidArgument("merchants must be > 0");
  if (time_step_ms < 0) return Status::InvalidArgument("--time-step-ms must be >= 0");
  if (start_time_ms < 0) return Status::InvalidArgument("--start-time-ms must be >= 0");
  if (burst_size <= 0) return Status::InvalidArgument("--burst-size must be > 0");
  STREAMS_RETURN_IF_ERROR(CheckShare(shares.duplicates, "duplicates"));
  STREAMS_RETURN_IF_ERROR(CheckShare(shares.key_reuse, "key-reuse"));
  STREAMS_RETURN_IF_ERROR(CheckShare(shares.invalid, "invalid"));
  STREAMS_RETURN_IF_ERROR(CheckShare(shares.refunds, "refunds"));
  STREAMS_RETURN_IF_ERROR(CheckShare(shares.bursts, "bursts"));
  double sum =
      shares.duplicates + shares.key_reuse + shares.invalid + shares.refunds + shares.bursts;
  if (sum > 1.0 + 1e-9) {
    return Status::InvalidArgument("the shares add up to " + std::to_string(sum) + ", more than 1");
  }
  return Status::Ok();
}

std::string SerializeRequest(const PaymentRequest& request) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&coded);
  }
  return out;
}

std::string_view CategoryName(RequestCategory category) {
  switch (category) {
    case RequestCategory::kPayment:
      return "payment";
    case RequestCategory::kBurst:
      return "burst";
    case RequestCategory::kDuplicate:
      return "duplicate";
    case RequestCategory::kKeyReuse:
      return "key_reuse";
    case RequestCategory::kInvalid:
      return "invalid";
    case RequestCategory::kRefund:
      return "refund";
    case RequestCategory::kRefundOver:
      return "refund_over";
    case RequestCategory::kRefundUnknown:
      return "refund_unknown";
    case RequestCategory::kRefundCurrency:
      return "refund_currency";
  }
  return "unknown";
}

streams::Result<RequestGenerator> RequestGenerator::Create(const GeneratorOptions& options) {
  STREAMS_RETURN_IF_ERROR(options.Validate());
  return RequestGenerator(options);
}

RequestGenerator::RequestGenerator(const GeneratorOptions& options)
    : options_(options), rng_(options.seed) {
  // The seed in letters keeps idempotency keys free of long digit runs (which
  // could look like card numbers) and distinct between seeds.
  uint64_t s = options.seed;
  do {
    seed_tag_.push_back(static_cast<char>('a' + s % 26));
    s /= 26;
  } while (s != 0);
  double b = static_cast<double>(options.burst_size);
  double share = options.shares.bursts;
  burst_start_probability_ = share <= 0 ? 0.0 : share / (b * (1.0 - share) + share);
  single_scale_ = share < 1.0 ? 1.0 / (1.0 - share) : 0.0;
  payments_by_customer_.resize(static_cast<size_t>(options.customers));
}

int64_t RequestGenerator::CurrentTimeMs() const {
  return options_.start_time_ms + static_cast<int64_t>(index_) * options_.time_step_ms;
}

std::string RequestGenerator::CustomerId(int64_t customer) const {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "cust-%06lld", static_cast<long long>(customer));
  return buf;
}

std::string RequestGenerator::NextIdempotencyKey() {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "x%08llu", static_cast<unsigned long long>(key_counter_++));
  return "k" + seed_tag_ + buf;
}

std::string RequestGenerator::Letters(size_t n) {
  std::string out(n, 'a');
  for (auto& c : out) c = static_cast<char>('a' + rng_.Uniform(26));
  return out;
}

int64_t RequestGenerator::RandomAmount() {
  double r = rng_.Fraction();
  if (r < 0.80) return rng_.Between(100, 20'000);
  if (r < 0.97) return rng_.Between(20'000, 100'000);
  return rng_.Between(100'000, 500'000);
}

std::string RequestGenerator::HomeCurrency(int64_t customer) const {
  return kCurrencies[static_cast<size_t>(customer) % kCurrencies.size()];
}

GeneratedRequest RequestGenerator::Finish(PaymentRequest request, RequestCategory category) {
  GeneratedRequest out;
  if (request.created_at_ms() == 0) request.set_created_at_ms(CurrentTimeMs());
  out.record_key = request.customer_id();
  out.timestamp_ms = request.created_at_ms();
  out.request = std::move(request);
  out.category = category;
  ++index_;
  recent_.push_back(out);
  if (recent_.size() > kRecentRequests) recent_.pop_front();
  return out;
}

GeneratedRequest RequestGenerator::NewPayment(int64_t customer, RequestCategory category) {
  PaymentRequest r;
  r.set_idempotency_key(NextIdempotencyKey());
  r.set_customer_id(CustomerId(customer));
  int64_t merchant =
      rng_.Fraction() < 0.9
          ? (customer * 7 + static_cast<int64_t>(rng_.Uniform(3)) * 13) % options_.merchants
          : static_cast<int64_t>(rng_.Uniform(options_.merchants));
  char merchant_id[32];
  std::snprintf(merchant_id, sizeof(merchant_id), "m-%04lld", static_cast<long long>(merchant));
  r.set_merchant_id(merchant_id);
  r.set_kind(payments::v1::PAYMENT);
  r.set_amount_minor(RandomAmount());
  r.set_currency(rng_.Fraction() < 0.95 ? HomeCurrency(customer)
                                        : kCurrencies[rng_.Uniform(kCurrencies.size())]);
  r.set_payment_method_token("tok_" + Letters(16));
  (*r.mutable_metadata())["channel"] = kChannels[rng_.Uniform(kChannels.size())];
  char order[32];
  std::snprintf(order, sizeof(order), "ord-%06llu",
                static_cast<unsigned long long>(rng_.Uniform(1'000'000)));
  (*r.mutable_metadata())["order"] = order;

  PastPayment past{r.idempotency_key(), r.merchant_id(), r.currency(), r.amount_minor(),
                   r.payment_method_token()};
  auto& mine = payments_by_customer_[static_cast<size_t>(customer)];
  if (mine.empty()) customers_with_payments_.push_back(customer);
  mine.push_back(std::move(past));
  if (mine.size() > kPaymentsPerCustomer) mine.pop_front();

  GeneratedRequest out = Finish(std::move(r), category);
  recent_payments_.push_back(out);
  if (recent_payments_.size() > kRecentRequests) recent_payments_.pop_front();
  return out;
}

GeneratedRequest RequestGenerator::Duplicate() {
  if (recent_.empty()) {
    return NewPayment(static_cast<int64_t>(rng_.Uniform(options_.customers)),
                      RequestCategory::kPayment);
  }
  GeneratedRequest copy = recent_[rng_.Uniform(recent_.size())];
  copy.category = RequestCategory::kDuplicate;
  ++index_;
  recent_.push_back(copy);
  if (recent_.size() > kRecentRequests) recent_.pop_front();
  return copy;
}

GeneratedRequest RequestGenerator::KeyReuse() {
  if (recent_payments_.empty()) {
    return NewPayment(static_cast<int64_t>(rng_.Uniform(options_.customers)),
                      RequestCategory::kPayment);
  }
  PaymentRequest r = recent_payments_[rng_.Uniform(recent_payments_.size())].request;
  r.set_amount_minor(r.amount_minor() + rng_.Between(1, 500));
  r.set_created_at_ms(0);  // A new request: stamped now.
  return Finish(std::move(r), RequestCategory::kKeyReuse);
}

GeneratedRequest RequestGenerator::Invalid() {
  int64_t customer = static_cast<int64_t>(rng_.Uniform(options_.customers));
  PaymentRequest r;
  r.set_idempotency_key(NextIdempotencyKey());
  r.set_customer_id(CustomerId(customer));
  r.set_merchant_id("m-0000");
  r.set_kind(payments::v1::PAYMENT);
  r.set_amount_minor(RandomAmount());
  r.set_currency(HomeCurrency(customer));
  r.set_payment_method_token("tok_" + Letters(16));
  std::string record_key = r.customer_id();
  auto kind = static_cast<InvalidKind>(rng_.Uniform(kInvalidKindCount));
  switch (kind) {
    case InvalidKind::kMissingField:
      switch (rng_.Uniform(4)) {
        case 0:
          r.clear_idempotency_key();
          break;
        case 1:
          r.clear_merchant_id();
          break;
        case 2:
          r.clear_currency();
          break;
        default:
          r.clear_payment_method_token();
          break;
      }
      break;
    case InvalidKind::kBadCurrency:
      r.set_currency(kBadCurrencies[rng_.Uniform(kBadCurrencies.size())]);
      break;
    case InvalidKind::kNonPositiveAmount:
      r.set_amount_minor(rng_.Fraction() < 0.5 ? 0 : -r.amount_minor());
      break;
    case InvalidKind::kPanInToken:
      r.set_payment_method_token(kTestPans[rng_.Uniform(kTestPans.size())]);
      break;
    case InvalidKind::kPanInMetadata:
      (*r.mutable_metadata())["note"] =
          std::string("card ") + kTestPans[rng_.Uniform(kTestPans.size())];
      break;
    case InvalidKind::kUnknownKind:
      r.set_kind(rng_.Fraction() < 0.5 ? payments::v1::PAYMENT_KIND_UNSPECIFIED
                                       : static_cast<PaymentKind>(7));
      break;
    case InvalidKind::kKeyMismatch:
      record_key = CustomerId((customer + 1) % options_.customers);
      if (record_key == r.customer_id()) record_key += "-other";
      break;
    case InvalidKind::kFieldTooLong:
      r.set_merchant_id("m-" + Letters(200));
      break;
    case InvalidKind::kRefundWithoutRefundOf:
      r.set_kind(payments::v1::REFUND);
      break;
    case InvalidKind::kAmountTooLarge:
      r.set_amount_minor(rng_.Between(100'000'001, 1'000'000'000'000));
      break;
  }
  GeneratedRequest out = Finish(std::move(r), RequestCategory::kInvalid);
  out.record_key = record_key;
  recent_.back().record_key = record_key;
  return out;
}

GeneratedRequest RequestGenerator::Refund() {
  if (customers_with_payments_.empty()) {
    return NewPayment(static_cast<int64_t>(rng_.Uniform(options_.customers)),
                      RequestCategory::kPayment);
  }
  int64_t customer = customers_with_payments_[rng_.Uniform(customers_with_payments_.size())];
  const auto& mine = payments_by_customer_[static_cast<size_t>(customer)];
  const PastPayment& original = mine[rng_.Uniform(mine.size())];
  PaymentRequest r;
  r.set_idempotency_key(NextIdempotencyKey());
  r.set_customer_id(CustomerId(customer));
  r.set_merchant_id(original.merchant_id);
  r.set_kind(payments::v1::REFUND);
  r.set_currency(original.currency);
  r.set_payment_method_token(original.token);
  r.set_refund_of(original.idempotency_key);
  RequestCategory category;
  double roll = rng_.Fraction();
  if (roll < 0.65) {
    category = RequestCategory::kRefund;
    r.set_amount_minor(rng_.Between(1, original.amount_minor));
  } else if (roll < 0.80) {
    category = RequestCategory::kRefundOver;
    r.set_amount_minor(original.amount_minor + rng_.Between(1, 1000));
  } else if (roll < 0.95) {
    category = RequestCategory::kRefundUnknown;
    r.set_refund_of(NextIdempotencyKey());  // Never used by any payment.
    r.set_amount_minor(rng_.Between(1, original.amount_minor));
  } else {
    category = RequestCategory::kRefundCurrency;
    std::string other = original.currency;
    while (other == original.currency) other = kCurrencies[rng_.Uniform(kCurrencies.size())];
    r.set_currency(other);
    r.set_amount_minor(rng_.Between(1, original.amount_minor));
  }
  return Finish(std::move(r), category);
}

GeneratedRequest RequestGenerator::Next() {
  if (burst_left_ > 0) {
    --burst_left_;
    return NewPayment(burst_customer_, RequestCategory::kBurst);
  }
  if (burst_start_probability_ > 0 && rng_.Fraction() < burst_start_probability_) {
    burst_customer_ = static_cast<int64_t>(rng_.Uniform(options_.customers));
    uint64_t left = options_.count - index_;
    burst_left_ = static_cast<int64_t>(std::min<uint64_t>(options_.burst_size, left)) - 1;
    return NewPayment(burst_customer_, RequestCategory::kBurst);
  }
  const auto& s = options_.shares;
  double u = rng_.Fraction();
  double edge = s.duplicates * single_scale_;
  if (u < edge) return Duplicate();
  edge += s.key_reuse * single_scale_;
  if (u < edge) return KeyReuse();
  edge += s.invalid * single_scale_;
  if (u < edge) return Invalid();
  edge += s.refunds * single_scale_;
  if (u < edge) return Refund();
  return NewPayment(static_cast<int64_t>(rng_.Uniform(options_.customers)),
                    RequestCategory::kPayment);
}

}  // namespace payments::tools
