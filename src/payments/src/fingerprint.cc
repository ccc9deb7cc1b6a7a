#include "payments/fingerprint.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace payments {
namespace {

constexpr size_t kSha256Bytes = 32;
constexpr size_t kPaymentIdHexChars = 24;
// Bumped if the encoding ever changes (old fingerprints then no longer match).
constexpr std::string_view kFingerprintVersion = "payments.fingerprint.v1";
// First byte of DecisionKey.
constexpr unsigned char kDecisionKeyLayout = 0xFE;

// SHA-256 through OpenSSL's EVP interface. SHA-256 of in-memory bytes cannot
// fail short of memory exhaustion, which aborts like any allocation would.
std::array<unsigned char, kSha256Bytes> Sha256(std::string_view data) {
  std::array<unsigned char, kSha256Bytes> digest{};
  unsigned int size = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest.data(), &size) != 1 || size != kSha256Bytes) {
    std::abort();  // Out of memory inside OpenSSL: nothing sensible is left to do.
  }
  return digest;
}

std::string ToHex(const unsigned char* data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xF]);
  }
  return out;
}

void AppendUint64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

void AppendUint32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

void AppendString(std::string& out, std::string_view s) {
  AppendUint64(out, s.size());
  out.append(s);
}

}  // namespace

std::string RequestFingerprint(const payments::v1::PaymentRequest& request) {
  std::string encoded;
  AppendString(encoded, kFingerprintVersion);
  AppendString(encoded, request.merchant_id());
  AppendUint64(encoded, static_cast<uint64_t>(static_cast<int64_t>(request.kind())));
  AppendUint64(encoded, static_cast<uint64_t>(request.amount_minor()));
  AppendString(encoded, request.currency());
  AppendString(encoded, request.refund_of());
  AppendString(encoded, request.payment_method_token());
  std::vector<std::pair<std::string_view, std::string_view>> metadata;
  metadata.reserve(request.metadata().size());
  for (const auto& [k, v] : request.metadata()) metadata.emplace_back(k, v);
  std::sort(metadata.begin(), metadata.end());
  AppendUint64(encoded, metadata.size());
  for (const auto& [k, v] : metadata) {
    AppendString(encoded, k);
    AppendString(encoded, v);
  }
  auto digest = Sha256(encoded);
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

std::string DecisionKey(std::string_view customer_id, std::string_view idempotency_key) {
  std::string key;
  key.reserve(9 + customer_id.size() + idempotency_key.size());
  key.push_back(static_cast<char>(kDecisionKeyLayout));
  AppendUint32(key, static_cast<uint32_t>(customer_id.size()));
  key.append(customer_id);
  AppendUint32(key, static_cast<uint32_t>(idempotency_key.size()));
  key.append(idempotency_key);
  return key;
}

std::string PaymentIdFor(std::string_view customer_id, std::string_view idempotency_key) {
  std::string id =
      "pay_" + Sha256Hex(DecisionKey(customer_id, idempotency_key)).substr(0, kPaymentIdHexChars);
  for (size_t i = 4; i < id.size(); ++i) {
    const char c = id[i];
    const int nibble = c <= '9' ? c - '0' : c - 'a' + 10;
    id[i] = static_cast<char>('a' + nibble);
  }
  return id;
}

std::string Sha256Hex(std::string_view data) {
  auto digest = Sha256(data);
  return ToHex(digest.data(), digest.size());
}

}  // namespace payments
