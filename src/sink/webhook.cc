#include "sink/webhook.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>

namespace payments_sink {

using streams::Result;
using streams::Status;

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Status::InvalidArgument("base64 length is not a multiple of 4");
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) {
      return Status::InvalidArgument("invalid base64 character");
    }
  }
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return Status::InvalidArgument("invalid base64");
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++padding;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

Result<std::vector<std::string>> ParseWebhookSecrets(std::string_view text) {
  std::vector<std::string> keys;
  size_t i = 0;
  int index = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    size_t end = i;
    while (end < text.size() && text[end] != ' ' && text[end] != ',') ++end;
    if (end == i) break;
    std::string_view secret = text.substr(i, end - i);
    ++index;
    constexpr std::string_view kPrefix = "whsec_";
    if (secret.substr(0, kPrefix.size()) != kPrefix) {
      return Status::InvalidArgument("secret #" + std::to_string(index) +
                                     " does not start with whsec_");
    }
    auto key = Base64Decode(secret.substr(kPrefix.size()));
    if (!key.ok() || key->empty()) {
      return Status::InvalidArgument("secret #" + std::to_string(index) +
                                     " is not whsec_ followed by base64");
    }
    keys.push_back(std::move(*key));
    i = end;
  }
  if (keys.empty()) return Status::InvalidArgument("no secret given");
  return keys;
}

namespace {

std::string Hmac(std::string_view key, std::string_view id, int64_t ts, std::string_view body) {
  std::string content;
  content.reserve(id.size() + body.size() + 24);
  content.append(id).append(".").append(std::to_string(ts)).append(".").append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

}  // namespace

std::string SignWebhook(const std::vector<std::string>& keys, std::string_view id,
                        int64_t timestamp_s, std::string_view body) {
  std::string out;
  for (const auto& key : keys) {
    if (!out.empty()) out += ' ';
    out += "v1," + Base64Encode(Hmac(key, id, timestamp_s, body));
  }
  return out;
}

bool VerifyWebhook(std::string_view key, std::string_view id, int64_t timestamp_s,
                   std::string_view body, std::string_view signature_header) {
  const std::string expected = Base64Encode(Hmac(key, id, timestamp_s, body));
  size_t i = 0;
  while (i < signature_header.size()) {
    size_t end = signature_header.find(' ', i);
    if (end == std::string_view::npos) end = signature_header.size();
    std::string_view entry = signature_header.substr(i, end - i);
    if (entry.substr(0, 3) == "v1,") {
      std::string_view sig = entry.substr(3);
      if (sig.size() == expected.size() &&
          CRYPTO_memcmp(sig.data(), expected.data(), sig.size()) == 0) {
        return true;
      }
    }
    i = end + 1;
  }
  return false;
}

WebhookOutcome ClassifyWebhook(const WebhookResponse& response) {
  if (response.http_status >= 200 && response.http_status < 300) return WebhookOutcome::kDelivered;
  if (response.http_status == 410) return WebhookOutcome::kGone;
  return WebhookOutcome::kRetry;
}

namespace {

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

struct HeaderCapture {
  std::optional<std::chrono::seconds> retry_after;
};

size_t OnHeader(char* data, size_t size, size_t n, void* out) {
  std::string_view line(data, size * n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    std::string lower(line.substr(0, kName.size()));
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == kName) {
      std::string value(line.substr(kName.size()));
      while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) {
        value.erase(value.begin());
      }
      while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
        value.pop_back();
      }
      auto* capture = static_cast<HeaderCapture*>(out);
      if (!value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
          })) {
        capture->retry_after = std::chrono::seconds(std::stoll(value));
      } else if (time_t when = curl_getdate(value.c_str(), nullptr); when > 0) {
        int64_t delta = static_cast<int64_t>(when) - static_cast<int64_t>(std::time(nullptr));
        capture->retry_after = std::chrono::seconds(delta > 0 ? delta : 0);
      }
    }
  }
  return size * n;
}

}  // namespace

Result<std::unique_ptr<WebhookClient>> WebhookClient::Create(std::string url,
                                                             std::vector<std::string> keys,
                                                             std::chrono::milliseconds timeout) {
  static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (global != CURLE_OK) return Status::Internal("curl_global_init failed");
  auto client = std::unique_ptr<WebhookClient>(new WebhookClient());
  client->url_ = std::move(url);
  client->keys_ = std::move(keys);
  client->timeout_ = timeout;
  client->curl_ = curl_easy_init();
  if (client->curl_ == nullptr) return Status::InvalidArgument("curl_easy_init failed");
  return client;
}

WebhookClient::~WebhookClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

WebhookResponse WebhookClient::Send(std::string_view id, int64_t timestamp_s,
                                    std::string_view body) {
  CURL* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl);
  const std::string id_header = "webhook-id: " + std::string(id);
  const std::string ts_header = "webhook-timestamp: " + std::to_string(timestamp_s);
  const std::string sig_header = "webhook-signature: " + SignWebhook(keys_, id, timestamp_s, body);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, id_header.c_str());
  headers = curl_slist_append(headers, ts_header.c_str());
  headers = curl_slist_append(headers, sig_header.c_str());
  headers = curl_slist_append(headers, "Expect:");
  HeaderCapture capture;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &capture);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  WebhookResponse response;
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.http_status);
    response.retry_after = capture.retry_after;
  } else {
    response.error = error[0] != '\0' ? error : curl_easy_strerror(rc);
  }
  curl_slist_free_all(headers);
  return response;
}

}  // namespace payments_sink
