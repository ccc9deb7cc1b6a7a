// Standard Webhooks (https://www.standardwebhooks.com/) delivery of CDC events
// to an HTTP endpoint, with libcurl and OpenSSL.
//
// Each request is a POST of the JSON payload with the headers
//   webhook-id:        the event's stable id (receivers dedupe on it)
//   webhook-timestamp: Unix seconds
//   webhook-signature: "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>",
//                      one space-separated entry per configured secret
//                      (several during a secret rotation)
// where each secret is "whsec_" followed by the base64 of the key.
//
// Thread safety: the free functions are thread-safe. A WebhookClient is not
// thread-safe (one libcurl easy handle): one per thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "streams/result.h"
#include "streams/status.h"

namespace payments_sink {

// Decodes "whsec_<base64>" secrets separated by spaces (or commas). Errors:
// InvalidArgument for a missing prefix, bad base64 or an empty key (the secret
// itself is never in the message).
streams::Result<std::vector<std::string>> ParseWebhookSecrets(std::string_view text);

std::string Base64Encode(std::string_view bytes);
// Errors: InvalidArgument for characters or padding outside standard base64.
streams::Result<std::string> Base64Decode(std::string_view text);

// "v1,<base64 sig>" entries, space-separated, one per key (raw key bytes).
std::string SignWebhook(const std::vector<std::string>& keys, std::string_view id,
                        int64_t timestamp_s, std::string_view body);

// True when one of the space-separated "v1,<sig>" entries of `signature_header`
// matches `key` (constant-time comparison).
bool VerifyWebhook(std::string_view key, std::string_view id, int64_t timestamp_s,
                   std::string_view body, std::string_view signature_header);

struct WebhookResponse {
  long http_status = 0;  // 0: no response (connection error, timeout).
  std::string error;     // libcurl's message when http_status == 0.
  // Retry-After in seconds (delta form, or HTTP date converted), if sent.
  std::optional<std::chrono::seconds> retry_after;
};

// What a response means for the event.
enum class WebhookOutcome { kDelivered, kRetry, kGone };
// 2xx -> delivered; 410 -> gone (the endpoint is disabled); anything else,
// including no response -> retry.
WebhookOutcome ClassifyWebhook(const WebhookResponse& response);

class WebhookClient {
 public:
  // Errors: InvalidArgument when libcurl cannot be initialised.
  static streams::Result<std::unique_ptr<WebhookClient>> Create(std::string url,
                                                                std::vector<std::string> keys,
                                                                std::chrono::milliseconds timeout);
  ~WebhookClient();
  WebhookClient(const WebhookClient&) = delete;
  WebhookClient& operator=(const WebhookClient&) = delete;

  // POSTs `body` signed for `id` at `timestamp_s`. Never fails: transport
  // errors are http_status 0.
  WebhookResponse Send(std::string_view id, int64_t timestamp_s, std::string_view body);

  const std::string& url() const { return url_; }

 private:
  WebhookClient() = default;
  std::string url_;
  std::vector<std::string> keys_;
  std::chrono::milliseconds timeout_{5000};
  void* curl_ = nullptr;
};

}  // namespace payments_sink
