#include "paymentd/paymentd_config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

namespace paymentd {

using streams::Result;
using streams::Status;
using streams::runtime::StreamsConfig;

namespace {

// Applied below the properties file (the file, the environment and --set win).
constexpr std::string_view kDefaultsText =
    "application.id=paymentd\n"
    "auto.offset.reset=earliest\n";
constexpr std::string_view kDefaultsOrigin = "paymentd defaults";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// admin.listen as found in one source.
struct ListenSetting {
  std::string value;
  std::string origin;
};

// Removes the logical lines assigning admin.listen from properties `text`
// (same syntax as StreamsConfig::Builder::LoadPropertiesText: '#'/'!' comments,
// '\' continuations, '=' or ':'), replacing their physical lines with empty
// ones so line numbers in messages stay right. The last assignment is returned.
std::string ExtractListen(std::string_view text, std::string_view origin,
                          std::optional<ListenSetting>& found) {
  std::string out;
  int line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    std::string logical;
    int first_line = line_number + 1;
    size_t start = pos;
    bool more = true;
    while (more && pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view raw = text.substr(pos, end - pos);
      pos = std::min(end + 1, text.size());
      ++line_number;
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      std::string_view trimmed = Trim(raw);
      if (logical.empty() && (trimmed.empty() || trimmed[0] == '#' || trimmed[0] == '!')) break;
      size_t backslashes = 0;
      while (backslashes < trimmed.size() && trimmed[trimmed.size() - 1 - backslashes] == '\\') {
        ++backslashes;
      }
      if (backslashes % 2 == 1) {
        logical.append(trimmed.substr(0, trimmed.size() - 1));
      } else {
        logical.append(trimmed);
        more = false;
      }
    }
    std::string_view chunk = text.substr(start, pos - start);
    size_t sep = logical.find_first_of("=:");
    if (sep != std::string::npos &&
        Trim(std::string_view(logical).substr(0, sep)) == kAdminListenKey) {
      found = ListenSetting{std::string(Trim(std::string_view(logical).substr(sep + 1))),
                            "file " + std::string(origin) + ":" + std::to_string(first_line)};
      // Keep the line structure, drop the content.
      for (char c : chunk) {
        if (c == '\n') out.push_back('\n');
      }
    } else {
      out.append(chunk);
    }
  }
  return out;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos ||
        entry.substr(0, kEnvironmentPrefix.size()) != kEnvironmentPrefix) {
      continue;
    }
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

// The sources with admin.listen taken out (the runtime reserves the "admin."
// prefix for its Kafka admin client), and the effective admin.listen.
struct SplitSources {
  std::optional<std::string> file_text;
  std::string file_origin;
  std::map<std::string, std::string> environment;
  std::vector<std::string> overrides;
  ListenSetting listen{std::string(kDefaultAdminListen), "default"};
};

Result<SplitSources> Split(const ConfigSources& sources) {
  SplitSources out;
  if (sources.properties_file) {
    std::ifstream in(*sources.properties_file, std::ios::in | std::ios::binary);
    if (!in)
      return Status::IoError("cannot read properties file '" + *sources.properties_file + "'");
    std::stringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) {
      return Status::IoError("error reading properties file '" + *sources.properties_file + "'");
    }
    std::optional<ListenSetting> found;
    out.file_text = ExtractListen(buffer.str(), *sources.properties_file, found);
    out.file_origin = *sources.properties_file;
    if (found) out.listen = *found;
  }
  out.environment = sources.environment ? *sources.environment : ProcessEnvironment();
  const std::string listen_variable = std::string(kEnvironmentPrefix) + "ADMIN_LISTEN";
  if (auto it = out.environment.find(listen_variable); it != out.environment.end()) {
    out.listen = ListenSetting{it->second, "env " + listen_variable};
    out.environment.erase(it);
  }
  for (const auto& assignment : sources.overrides) {
    size_t eq = assignment.find('=');
    if (eq != std::string::npos &&
        Trim(std::string_view(assignment).substr(0, eq)) == kAdminListenKey) {
      out.listen =
          ListenSetting{std::string(Trim(std::string_view(assignment).substr(eq + 1))), "--set"};
    } else {
      out.overrides.push_back(assignment);
    }
  }
  return out;
}

Result<StreamsConfig> BuildOnce(const SplitSources& sources,
                                const std::optional<std::string>& dead_letter_default) {
  StreamsConfig::Builder builder;
  DefinePaymentdKeys(builder);
  STREAMS_RETURN_IF_ERROR(builder.LoadPropertiesText(kDefaultsText, kDefaultsOrigin));
  if (dead_letter_default) {
    STREAMS_RETURN_IF_ERROR(
        builder.LoadPropertiesText("dead.letter.topic=" + *dead_letter_default, kDefaultsOrigin));
  }
  if (sources.file_text) {
    STREAMS_RETURN_IF_ERROR(builder.LoadPropertiesText(*sources.file_text, sources.file_origin));
  }
  builder.LoadEnvironment(kEnvironmentPrefix, sources.environment);
  for (const auto& assignment : sources.overrides) {
    STREAMS_RETURN_IF_ERROR(builder.SetAssignment(assignment).WithContext("--set"));
  }
  return builder.Build();
}

}  // namespace

std::string ListenAddress::ToString() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("listen address '" + std::string(text) +
                                   "': " + std::string(why) + " (expected host:port)");
  };
  ListenAddress out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("bad IPv6 form");
    }
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return bad("IPv6 hosts need [brackets]");
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) return bad("empty host");
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("port must be a number in 0..65535");
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

void DefinePaymentdKeys(StreamsConfig::Builder& builder) {
  for (const auto& info : payments::kPaymentsConfigKeys) {
    builder.DefineString(std::string(info.key), std::string(info.default_value),
                         std::string(info.description));
  }
}

Result<PaymentdConfig> LoadPaymentdConfig(const ConfigSources& sources) {
  STREAMS_ASSIGN_OR_RETURN(SplitSources split, Split(sources));
  STREAMS_ASSIGN_OR_RETURN(StreamsConfig streams, BuildOnce(split, std::nullopt));
  if (streams.dead_letter_topic().empty()) {
    // Dead letters go next to the requests topic unless configured otherwise.
    std::string requests_topic = streams.GetRaw(payments::kRequestsTopicKey).value_or("");
    STREAMS_ASSIGN_OR_RETURN(streams, BuildOnce(split, requests_topic + ".dlq"));
  }

  std::map<std::string, std::string> payments_properties;
  for (const auto& info : payments::kPaymentsConfigKeys) {
    if (auto value = streams.GetRaw(info.key)) {
      payments_properties.emplace(std::string(info.key), *value);
    }
  }
  auto payments = payments::PaymentsConfig::FromProperties(payments_properties);
  if (!payments.ok()) return payments.status();

  auto listen = ParseListenAddress(split.listen.value);
  if (!listen.ok()) {
    return listen.status().WithContext("key '" + std::string(kAdminListenKey) + "' (" +
                                       split.listen.origin + ")");
  }
  return PaymentdConfig{std::move(streams), std::move(*payments), std::move(*listen),
                        std::move(split.listen.origin)};
}

bool IsSensitiveKey(std::string_view key) {
  std::string lower(key);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static constexpr std::string_view kMarkers[] = {"password", "secret", "key",
                                                  "token",    "jaas",   "credential"};
  bool marked = std::any_of(std::begin(kMarkers), std::end(kMarkers),
                            [&](std::string_view m) { return lower.find(m) != std::string::npos; });
  if (!marked) return false;
  // Known-safe keys: paths, types and algorithm names, and our own keys.
  if (lower.rfind("payments.", 0) == 0 || lower == kAdminListenKey) return false;
  if (lower.find("password") != std::string::npos || lower.find("secret") != std::string::npos) {
    return true;
  }
  return !(EndsWith(lower, ".location") || EndsWith(lower, ".type") ||
           EndsWith(lower, ".algorithm"));
}

std::string DescribeConfigMasked(const StreamsConfig& config) {
  std::string out;
  std::string_view text;
  std::string described = config.Describe();
  text = described;
  while (!text.empty()) {
    auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    auto eq = line.find(" = ");
    if (eq != std::string_view::npos && IsSensitiveKey(line.substr(0, eq))) {
      std::string key(line.substr(0, eq));
      out += key + " = ***";
      if (auto origin = config.Origin(key)) out += " (" + *origin + ")";
    } else {
      out += line;
    }
    out += "\n";
  }
  return out;
}

std::string DescribeConfigMasked(const PaymentdConfig& config) {
  std::string out = std::string(kAdminListenKey) + " = " + config.admin_listen.ToString() + " (" +
                    config.admin_listen_origin + ")\n";
  return out + DescribeConfigMasked(config.streams);
}

}  // namespace paymentd
