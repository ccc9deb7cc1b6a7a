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

// The sources as read once: the file's text (so both builds below see the same
// content) and the environment.
struct Sources {
  std::optional<std::string> file_text;
  std::string file_origin;
  std::map<std::string, std::string> environment;
  std::vector<std::string> overrides;
};

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

Result<Sources> ReadSources(const ConfigSources& sources) {
  Sources out;
  if (sources.properties_file) {
    std::ifstream in(*sources.properties_file, std::ios::in | std::ios::binary);
    if (!in)
      return Status::IoError("cannot read properties file '" + *sources.properties_file + "'");
    std::stringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) {
      return Status::IoError("error reading properties file '" + *sources.properties_file + "'");
    }
    out.file_text = buffer.str();
    out.file_origin = *sources.properties_file;
  }
  out.environment = sources.environment ? *sources.environment : ProcessEnvironment();
  out.overrides = sources.overrides;
  return out;
}

Result<StreamsConfig> BuildOnce(const Sources& sources,
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
  builder.DefineString(std::string(kAdminListenKey), std::string(kDefaultAdminListen),
                       "host:port of the admin HTTP server (/metrics, /healthz, /readyz); "
                       "port 0 picks a free port");
  for (const auto& info : payments::kPaymentsConfigKeys) {
    builder.DefineString(std::string(info.key), std::string(info.default_value),
                         std::string(info.description));
  }
}

Result<PaymentdConfig> LoadPaymentdConfig(const ConfigSources& sources) {
  STREAMS_ASSIGN_OR_RETURN(Sources split, ReadSources(sources));
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

  std::string listen_origin = streams.Origin(std::string(kAdminListenKey)).value_or("default");
  auto listen = ParseListenAddress(streams.GetRaw(kAdminListenKey).value_or(""));
  if (!listen.ok()) {
    return listen.status().WithContext("key '" + std::string(kAdminListenKey) + "' (" +
                                       listen_origin + ")");
  }
  return PaymentdConfig{std::move(streams), std::move(*payments), std::move(*listen),
                        std::move(listen_origin)};
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
  return DescribeConfigMasked(config.streams);
}

}  // namespace paymentd
