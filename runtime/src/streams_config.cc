#include "streams/runtime/streams_config.h"

#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

extern char** environ;

namespace streams::runtime {
namespace {

constexpr std::string_view kPassThroughPrefixes[] = {"kafka.", "consumer.", "producer.", "admin."};

// librdkafka properties the runtime sets itself: overriding them would break the
// processing guarantee or the task model.
constexpr std::string_view kRuntimeOwnedProperties[] = {
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "transactional.id",
    "group.instance.id",
    "enable.idempotence",
    "partition.assignment.strategy",
    "enable.partition.eof",
    "partitioner",
    "bootstrap.servers",
    "metadata.broker.list",
    "auto.offset.reset",
    "transaction.timeout.ms",
    "rebalance_cb",
    "dr_msg_cb",
};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

std::string_view Trim(std::string_view s) {
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  size_t e = s.size();
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool ValidKeyName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

std::optional<int64_t> ParseInt(std::string_view text) {
  text = Trim(text);
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<bool> ParseBool(std::string_view text) {
  std::string lower(Trim(text));
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (lower == "true") return true;
  if (lower == "false") return false;
  return std::nullopt;
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string host(buf);
  // Keep only characters valid in a transactional.id component.
  for (char& c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) c = '-';
  }
  return host;
}

// The instance id used before it was persisted: "<host>-<8 hex digits of
// FNV-1a of the absolute state.dir>". Kept for state directories created by
// those versions, so that an upgrade keeps its transactional ids.
std::string LegacyInstanceId(const std::string& state_dir) {
  std::error_code ec;
  std::string path = std::filesystem::weakly_canonical(state_dir, ec).string();
  if (ec || path.empty()) path = state_dir;
  uint32_t hash = 2166136261u;
  for (unsigned char c : path) {
    hash ^= c;
    hash *= 16777619u;
  }
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "-%08x", hash);
  return HostName() + suffix;
}

// The default instance.id, as Kafka Streams keeps its process id: read from
// "<application state dir>/instance.id", or generated once ("<host>-<12 random
// hex digits>") and written there. Stable across restarts with the same state
// directory (also in a container whose host name changes), and unique across
// hosts and containers unless a state directory is copied; two live instances
// sharing it are detected by the group (FENCED_INSTANCE_ID: the newer one
// wins, the older one stops with an error naming instance.id). Errors: a
// message when the file cannot be read or written.
Result<std::string> PersistedInstanceId(const std::filesystem::path& app_dir,
                                        const std::string& state_dir) {
  const std::filesystem::path file = app_dir / "instance.id";
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    std::ifstream in(file);
    std::string id;
    std::getline(in, id);
    id = std::string(Trim(id));
    if (!in.bad() && ValidName(id)) return id;
    return Status::InvalidArgument(file.string() + " does not hold a valid instance id ('" + id +
                                   "'); delete it or set instance.id");
  }
  std::string id;
  if (std::filesystem::is_directory(app_dir, ec) && !std::filesystem::is_empty(app_dir, ec)) {
    id = LegacyInstanceId(state_dir);  // State of an earlier version: keep its id.
  } else {
    std::random_device random;
    char suffix[16];
    std::snprintf(suffix, sizeof(suffix), "-%06x%06x", random() & 0xffffff, random() & 0xffffff);
    id = HostName() + suffix;
  }
  std::filesystem::create_directories(app_dir, ec);
  if (ec) {
    return Status::IoError("cannot create " + app_dir.string() + ": " + ec.message());
  }
  const std::filesystem::path tmp = app_dir / "instance.id.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    out.flush();
    if (!out) return Status::IoError("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, file, ec);
  if (ec) return Status::IoError("cannot rename " + tmp.string() + ": " + ec.message());
  return id;
}

bool LooksSecret(std::string_view key) {
  static constexpr std::string_view kMarkers[] = {"password", "secret", "ssl.key",
                                                  "token",    "jaas",   "sasl.oauthbearer.config"};
  return std::any_of(std::begin(kMarkers), std::end(kMarkers),
                     [&](std::string_view m) { return key.find(m) != std::string_view::npos; });
}

std::string JoinAllowed(const std::vector<std::string>& allowed) {
  std::string out;
  for (const auto& a : allowed) {
    if (!out.empty()) out += ", ";
    out += a;
  }
  return out;
}

// Checks `value` against `def`; returns an error text (without the key) or "".
std::string CheckValue(const ConfigKeyDef& def, std::string_view value) {
  switch (def.type) {
    case ConfigType::kString:
      return "";
    case ConfigType::kInt: {
      auto parsed = ParseInt(value);
      if (!parsed) return "bad integer '" + std::string(value) + "'";
      if (*parsed < def.min || *parsed > def.max) {
        return "value " + std::to_string(*parsed) + " out of range [" + std::to_string(def.min) +
               ", " + std::to_string(def.max) + "]";
      }
      return "";
    }
    case ConfigType::kBool:
      if (!ParseBool(value)) return "bad boolean '" + std::string(value) + "' (true or false)";
      return "";
    case ConfigType::kEnum:
      if (std::find(def.allowed.begin(), def.allowed.end(), Trim(value)) == def.allowed.end()) {
        return "bad value '" + std::string(value) + "' (accepted: " + JoinAllowed(def.allowed) +
               ")";
      }
      return "";
  }
  return "";
}

ConfigKeyDef MakeDef(std::string name, ConfigType type, std::optional<std::string> def,
                     std::string doc) {
  ConfigKeyDef d;
  d.name = std::move(name);
  d.type = type;
  d.default_value = std::move(def);
  d.doc = std::move(doc);
  return d;
}

ConfigKeyDef IntDef(std::string name, std::optional<int64_t> def, int64_t min, int64_t max,
                    std::string doc) {
  ConfigKeyDef d = MakeDef(std::move(name), ConfigType::kInt,
                           def ? std::optional<std::string>(std::to_string(*def)) : std::nullopt,
                           std::move(doc));
  d.min = min;
  d.max = max;
  return d;
}

// The prefix (with its dot) of a pass-through key, or "".
std::string_view PassThroughPrefix(std::string_view key) {
  for (std::string_view p : kPassThroughPrefixes) {
    if (StartsWith(key, p)) return p;
  }
  return {};
}

}  // namespace

std::string_view ProcessingGuaranteeName(ProcessingGuarantee guarantee) {
  switch (guarantee) {
    case ProcessingGuarantee::kExactlyOnceV2:
      return "exactly_once_v2";
    case ProcessingGuarantee::kAtLeastOnce:
      return "at_least_once";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// Builder

StreamsConfig::Builder::Builder() {
  auto add = [this](ConfigKeyDef def) { defs_.emplace(def.name, std::move(def)); };
  {
    ConfigKeyDef d = MakeDef("application.id", ConfigType::kString, std::nullopt,
                             "Consumer group id, prefix of changelog topics and transactional ids");
    d.required = true;
    add(std::move(d));
  }
  {
    ConfigKeyDef d = MakeDef("bootstrap.servers", ConfigType::kString, std::nullopt,
                             "Kafka brokers, host:port[,host:port]");
    d.required = true;
    add(std::move(d));
  }
  {
    ConfigKeyDef d = MakeDef("processing.guarantee", ConfigType::kEnum,
                             std::string("exactly_once_v2"), "exactly_once_v2 or at_least_once");
    d.allowed = {"exactly_once_v2", "at_least_once"};
    add(std::move(d));
  }
  add(IntDef("commit.interval.ms", std::nullopt, 0, 24LL * 3600 * 1000,
             "Commit cycle length (default 100 under exactly_once_v2, 30000 otherwise)"));
  add(IntDef("commit.max.records", std::nullopt, 1, INT64_MAX,
             "Commit after this many input records in a cycle (optional)"));
  add(MakeDef("commit.adaptive", ConfigType::kBool, std::string("true"),
              "Also commit as soon as the input is caught up and the cycle's first record has "
              "waited as long as the previous commit took (commit.interval.ms stays the upper "
              "bound)"));
  add(IntDef("num.stream.threads", 1, 1, 64, "Stream threads (consumer+producer pairs)"));
  add(IntDef("num.standby.replicas", 0, 0, 8,
             "Warm copies of each task's stores kept by other instances (standby tasks)"));
  add(MakeDef("state.dir", ConfigType::kString, std::string("/tmp/kafka-streams"),
              "Root directory of local state"));
  add(MakeDef("instance.id", ConfigType::kString, std::nullopt,
              "Stable id of this instance, unique among live instances; part of transactional.id "
              "and group.instance.id (default: generated once and kept in "
              "<state.dir>/<application.id>/instance.id)"));
  add(MakeDef("static.membership", ConfigType::kBool, std::string("true"),
              "Join the group as a static member (group.instance.id "
              "<application.id>-<instance.id>-<thread>): a restart within the session timeout "
              "takes its partitions back without a rebalance; a stopped instance's partitions "
              "move after the session timeout"));
  {
    ConfigKeyDef d = MakeDef(
        "rebalance.protocol", ConfigType::kEnum, std::string("eager"),
        "eager (range assignor: every rebalance revokes everything) or cooperative "
        "(cooperative-sticky: only moved partitions pause; librdkafka 2.0.2 can crash when an "
        "assignment arrives while the consumer closes, fixed in librdkafka 2.3)");
    d.allowed = {"cooperative", "eager"};
    add(std::move(d));
  }
  add(MakeDef("dead.letter.topic", ConfigType::kString, std::string(""),
              "Dead-letter topic (empty: <source topic>.dlq)"));
  {
    ConfigKeyDef d = MakeDef("auto.offset.reset", ConfigType::kEnum, std::string("earliest"),
                             "Where to start without a committed offset");
    d.allowed = {"earliest", "latest"};
    add(std::move(d));
  }
  add(IntDef("replication.factor", 1, -1, 32767,
             "Replication factor of created changelog topics (-1: broker default)"));
  add(IntDef("statestore.cache.max.bytes", 64LL << 20, 1, INT64_MAX,
             "Shared RocksDB block cache of all tasks"));
  add(IntDef("state.write.buffer.bytes", 64LL << 20, 1, INT64_MAX,
             "Bound of all RocksDB memtables of all tasks"));
  add(IntDef("transaction.timeout.ms", 10000, 1000, 900000, "Producer transaction timeout"));
  add(IntDef("poll.ms", 100, 1, 60000, "Maximum blocking time of one consumer poll"));
  add(IntDef("restore.batch.records", 10000, 1, 10000000,
             "Changelog records applied per restore batch"));
  add(IntDef("max.poll.records", 500, 1, 1000000, "Input records handled per poll round"));
  {
    ConfigKeyDef d =
        MakeDef("processing.exception.handler", ConfigType::kEnum, std::string("dead_letter"),
                "A record whose processing fails for good: dead_letter (the cycle is "
                "replayed without it, the record goes to the dead-letter topic) or "
                "fail (the instance stops with the error)");
    d.allowed = {"dead_letter", "fail"};
    add(std::move(d));
  }
  add(IntDef("offsets.lookup.timeout.ms", 5000, 100, 300000,
             "Timeout of one lookup of committed offsets or watermarks at assignment; failed "
             "lookups are retried for up to 6 times this long, then the thread rejoins the group"));
}

StreamsConfig::Builder& StreamsConfig::Builder::Define(ConfigKeyDef def) {
  if (!ValidKeyName(def.name)) {
    definition_errors_.push_back("bad key name '" + def.name +
                                 "' in definition (use [a-z0-9._-]+)");
    return *this;
  }
  // A key defined by the application wins over a pass-through prefix (e.g.
  // "admin.listen" of a daemon is not an admin-client property), as long as it
  // is not a real librdkafka property.
  if (std::string_view prefix = PassThroughPrefix(def.name); !prefix.empty()) {
    rd_kafka_conf_t* probe = rd_kafka_conf_new();
    size_t size = 0;
    const bool is_librdkafka_property =
        rd_kafka_conf_get(probe, def.name.substr(prefix.size()).c_str(), nullptr, &size) !=
        RD_KAFKA_CONF_UNKNOWN;
    rd_kafka_conf_destroy(probe);
    if (is_librdkafka_property) {
      definition_errors_.push_back("key '" + def.name + "' would shadow the librdkafka property '" +
                                   def.name.substr(prefix.size()) + "'");
      return *this;
    }
  }
  if (defs_.count(def.name) != 0) {
    definition_errors_.push_back("key '" + def.name + "' is defined twice");
    return *this;
  }
  if (def.type == ConfigType::kEnum && def.allowed.empty()) {
    definition_errors_.push_back("enum key '" + def.name + "' has no accepted values");
    return *this;
  }
  if (def.default_value) {
    std::string problem = CheckValue(def, *def.default_value);
    if (!problem.empty()) {
      definition_errors_.push_back("default of key '" + def.name + "': " + problem);
      return *this;
    }
  }
  defs_.emplace(def.name, std::move(def));
  return *this;
}

StreamsConfig::Builder& StreamsConfig::Builder::DefineString(
    std::string name, std::optional<std::string> default_value, std::string doc, bool secret) {
  ConfigKeyDef d =
      MakeDef(std::move(name), ConfigType::kString, std::move(default_value), std::move(doc));
  d.secret = secret;
  return Define(std::move(d));
}

StreamsConfig::Builder& StreamsConfig::Builder::DefineInt(std::string name,
                                                          std::optional<int64_t> default_value,
                                                          int64_t min, int64_t max,
                                                          std::string doc) {
  return Define(IntDef(std::move(name), default_value, min, max, std::move(doc)));
}

StreamsConfig::Builder& StreamsConfig::Builder::DefineBool(std::string name,
                                                           std::optional<bool> default_value,
                                                           std::string doc) {
  std::optional<std::string> def;
  if (default_value) def = *default_value ? "true" : "false";
  return Define(MakeDef(std::move(name), ConfigType::kBool, std::move(def), std::move(doc)));
}

StreamsConfig::Builder& StreamsConfig::Builder::DefineEnum(std::string name,
                                                           std::optional<std::string> default_value,
                                                           std::vector<std::string> allowed,
                                                           std::string doc) {
  ConfigKeyDef d =
      MakeDef(std::move(name), ConfigType::kEnum, std::move(default_value), std::move(doc));
  d.allowed = std::move(allowed);
  return Define(std::move(d));
}

StreamsConfig::Builder& StreamsConfig::Builder::Require(std::string name) {
  auto it = defs_.find(name);
  if (it == defs_.end()) {
    definition_errors_.push_back("Require() of undefined key '" + name + "'");
  } else {
    it->second.required = true;
  }
  return *this;
}

StreamsConfig::Builder& StreamsConfig::Builder::DefinePrefix(std::string prefix, std::string doc) {
  if (prefix.empty() || prefix.back() != '.' || !ValidKeyName(prefix)) {
    definition_errors_.push_back("bad key prefix '" + prefix +
                                 "' (use [a-z0-9._-]+ ending in '.')");
  } else if (!PassThroughPrefix(prefix).empty()) {
    definition_errors_.push_back("prefix '" + prefix + "' overlaps a pass-through prefix");
  } else {
    prefixes_.push_back(std::move(prefix));
  }
  return *this;
}

Status StreamsConfig::Builder::LoadPropertiesFile(const std::string& path) {
  std::ifstream in(path, std::ios::in | std::ios::binary);
  if (!in) return Status::IoError("cannot read properties file '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Status::IoError("error reading properties file '" + path + "'");
  return LoadPropertiesText(buffer.str(), path);
}

Status StreamsConfig::Builder::LoadPropertiesText(std::string_view text, std::string_view origin) {
  int line_number = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    if (pos == text.size()) break;
    // Gather one logical line (with '\' continuations).
    std::string logical;
    int first_line = line_number + 1;
    bool more = true;
    while (more && pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view raw = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_number;
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      std::string_view trimmed = Trim(raw);
      if (logical.empty() && (trimmed.empty() || trimmed[0] == '#' || trimmed[0] == '!')) {
        more = false;
        break;
      }
      // A line continues when it ends with an odd number of backslashes.
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
    if (logical.empty()) continue;
    std::string where = std::string(origin) + ":" + std::to_string(first_line);
    size_t sep = logical.find_first_of("=:");
    if (sep == std::string::npos) {
      return Status::InvalidArgument(where + ": expected 'key=value', got '" + logical + "'");
    }
    std::string key(Trim(std::string_view(logical).substr(0, sep)));
    std::string value(Trim(std::string_view(logical).substr(sep + 1)));
    if (key.empty()) return Status::InvalidArgument(where + ": empty key");
    file_layer_[key] = Value{std::move(value), "file " + where};
  }
  return Status::Ok();
}

void StreamsConfig::Builder::LoadEnvironment(std::string_view prefix) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    if (!StartsWith(entry, prefix)) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  LoadEnvironment(prefix, env);
}

void StreamsConfig::Builder::LoadEnvironment(std::string_view prefix,
                                             const std::map<std::string, std::string>& env) {
  for (const auto& [name, value] : env) {
    if (!StartsWith(name, prefix) || name.size() == prefix.size()) continue;
    std::string_view rest = std::string_view(name).substr(prefix.size());
    std::string key;
    for (size_t i = 0; i < rest.size(); ++i) {
      char c = rest[i];
      if (c == '_') {
        if (i + 1 < rest.size() && rest[i + 1] == '_') {
          key.push_back('_');
          ++i;
        } else {
          key.push_back('.');
        }
      } else {
        key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      }
    }
    env_layer_[key] = Value{value, "env " + name};
  }
}

StreamsConfig::Builder& StreamsConfig::Builder::Set(std::string key, std::string value) {
  set_layer_[std::move(key)] = Value{std::move(value), "--set"};
  return *this;
}

Status StreamsConfig::Builder::SetAssignment(std::string_view assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string_view::npos) {
    return Status::InvalidArgument("--set '" + std::string(assignment) + "': expected key=value");
  }
  std::string key(Trim(assignment.substr(0, eq)));
  if (key.empty()) {
    return Status::InvalidArgument("--set '" + std::string(assignment) + "': empty key");
  }
  Set(std::move(key), std::string(Trim(assignment.substr(eq + 1))));
  return Status::Ok();
}

Result<StreamsConfig> StreamsConfig::Builder::Build() const {
  std::vector<std::string> errors = definition_errors_;

  // Merge layers: file < env < --set.
  std::map<std::string, Value, std::less<>> merged;
  for (const auto* layer : {&file_layer_, &env_layer_, &set_layer_}) {
    for (const auto& [key, value] : *layer) merged[key] = value;
  }

  StreamsConfig config;
  config.defs_ = defs_;

  // A scratch librdkafka configuration to validate pass-through properties.
  rd_kafka_conf_t* scratch = rd_kafka_conf_new();

  for (const auto& [key, value] : merged) {
    const std::string where = " (" + value.origin + ")";
    std::string_view prefix = defs_.count(key) != 0 ? std::string_view() : PassThroughPrefix(key);
    if (!prefix.empty()) {
      std::string property = key.substr(prefix.size());
      if (property.empty()) {
        errors.push_back("key '" + key + "'" + where + ": empty librdkafka property name");
        continue;
      }
      if (std::find(std::begin(kRuntimeOwnedProperties), std::end(kRuntimeOwnedProperties),
                    property) != std::end(kRuntimeOwnedProperties)) {
        errors.push_back("key '" + key + "'" + where + ": '" + property +
                         "' is set by the runtime and cannot be overridden");
        continue;
      }
      char errstr[512] = {};
      if (rd_kafka_conf_set(scratch, property.c_str(), value.value.c_str(), errstr,
                            sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        errors.push_back("key '" + key + "'" + where + ": " + errstr);
        continue;
      }
      config.values_[key] = value.value;
      config.origins_[key] = value.origin;
      continue;
    }
    auto def = defs_.find(key);
    if (def == defs_.end()) {
      bool under_app_prefix = std::any_of(prefixes_.begin(), prefixes_.end(), [&](const auto& p) {
        return StartsWith(key, p) && key.size() > p.size();
      });
      if (!under_app_prefix) {
        errors.push_back("unknown key '" + key + "'" + where);
        continue;
      }
    } else {
      std::string problem = CheckValue(def->second, value.value);
      if (!problem.empty()) {
        errors.push_back("key '" + key + "'" + where + ": " + problem);
        continue;
      }
    }
    config.values_[key] = std::string(def != defs_.end() && def->second.type != ConfigType::kString
                                          ? Trim(value.value)
                                          : std::string_view(value.value));
    config.origins_[key] = value.origin;
  }
  rd_kafka_conf_destroy(scratch);

  // Defaults and required keys.
  for (const auto& [key, def] : defs_) {
    if (config.values_.count(key) != 0) continue;
    if (def.default_value) {
      config.values_[key] = *def.default_value;
      config.origins_[key] = "default";
    } else if (def.required) {
      errors.push_back("missing required key '" + key + "'");
    }
  }

  // Typed built-in values.
  auto str = [&](std::string_view k) -> std::string {
    auto it = config.values_.find(k);
    return it == config.values_.end() ? std::string() : it->second;
  };
  auto num = [&](std::string_view k) -> std::optional<int64_t> {
    auto it = config.values_.find(k);
    if (it == config.values_.end()) return std::nullopt;
    return ParseInt(it->second);
  };

  config.application_id_ = str("application.id");
  if (config.values_.count("application.id") != 0 && !ValidName(config.application_id_)) {
    errors.push_back("key 'application.id': '" + config.application_id_ +
                     "' must match [A-Za-z0-9._-]+");
  }
  config.bootstrap_servers_ = str("bootstrap.servers");
  if (config.values_.count("bootstrap.servers") != 0 && Trim(config.bootstrap_servers_).empty()) {
    errors.push_back("key 'bootstrap.servers': must not be empty");
  }
  config.guarantee_ = str("processing.guarantee") == "at_least_once"
                          ? ProcessingGuarantee::kAtLeastOnce
                          : ProcessingGuarantee::kExactlyOnceV2;
  if (auto v = num("commit.interval.ms")) {
    config.commit_interval_ = std::chrono::milliseconds(*v);
  } else {
    int64_t def_ms = config.guarantee_ == ProcessingGuarantee::kExactlyOnceV2 ? 100 : 30000;
    config.commit_interval_ = std::chrono::milliseconds(def_ms);
    config.values_["commit.interval.ms"] = std::to_string(def_ms);
    config.origins_["commit.interval.ms"] = "default";
  }
  config.commit_max_records_ = num("commit.max.records");
  config.adaptive_commit_ = ParseBool(str("commit.adaptive")).value_or(true);
  config.num_stream_threads_ = static_cast<int>(num("num.stream.threads").value_or(1));
  config.num_standby_replicas_ = static_cast<int>(num("num.standby.replicas").value_or(0));
  if (config.num_standby_replicas_ > 0 && config.num_stream_threads_ > 1) {
    errors.push_back(
        "key 'num.standby.replicas': standby tasks need num.stream.threads=1 (an instance's "
        "standby copies are kept by its one stream thread); run more instances instead of "
        "more threads");
  }
  config.state_dir_ = str("state.dir");
  if (config.state_dir_.empty()) errors.push_back("key 'state.dir': must not be empty");
  // Generated (and persisted) only for an otherwise valid configuration.
  if (config.values_.count("instance.id") == 0 && errors.empty()) {
    Result<std::string> id = PersistedInstanceId(config.ApplicationStateDir(), config.state_dir_);
    if (id.ok()) {
      config.values_["instance.id"] = *id;
      config.origins_["instance.id"] = "default";
    } else {
      errors.push_back("key 'instance.id': not set, and no default: " + id.status().message());
    }
  }
  config.instance_id_ = str("instance.id");
  if (config.values_.count("instance.id") != 0 && !ValidName(config.instance_id_)) {
    errors.push_back("key 'instance.id': '" + config.instance_id_ + "' must match [A-Za-z0-9._-]+");
  }
  config.static_membership_ = ParseBool(str("static.membership")).value_or(true);
  config.cooperative_rebalancing_ = str("rebalance.protocol") == "cooperative";
  config.dead_letter_topic_ = str("dead.letter.topic");
  config.auto_offset_reset_ =
      str("auto.offset.reset") == "latest" ? OffsetReset::kLatest : OffsetReset::kEarliest;
  config.replication_factor_ = static_cast<int>(num("replication.factor").value_or(1));
  config.state_options_.block_cache_bytes =
      static_cast<size_t>(num("statestore.cache.max.bytes").value_or(64LL << 20));
  config.state_options_.write_buffer_bytes =
      static_cast<size_t>(num("state.write.buffer.bytes").value_or(64LL << 20));
  config.transaction_timeout_ =
      std::chrono::milliseconds(num("transaction.timeout.ms").value_or(10000));
  config.poll_timeout_ = std::chrono::milliseconds(num("poll.ms").value_or(100));
  config.restore_batch_records_ = num("restore.batch.records").value_or(10000);
  config.max_poll_records_ = num("max.poll.records").value_or(500);
  config.processing_exception_handler_ = str("processing.exception.handler") == "fail"
                                             ? ProcessingExceptionHandler::kFail
                                             : ProcessingExceptionHandler::kDeadLetter;
  config.offsets_lookup_timeout_ =
      std::chrono::milliseconds(num("offsets.lookup.timeout.ms").value_or(5000));

  if (!errors.empty()) {
    std::string message = "invalid configuration: ";
    for (size_t i = 0; i < errors.size(); ++i) {
      if (i > 0) message += "; ";
      message += errors[i];
    }
    return Status::InvalidArgument(message);
  }
  return config;
}

// ---------------------------------------------------------------------------
// StreamsConfig

std::string StreamsConfig::ApplicationStateDir() const {
  std::string dir = state_dir_;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + "/" + application_id_;
}

std::string StreamsConfig::TaskStateDir(const TaskId& task) const {
  return ApplicationStateDir() + "/" + task.ToString();
}

std::map<std::string, std::string> StreamsConfig::KafkaProperties(ClientKind kind) const {
  std::map<std::string, std::string> props;
  std::string_view own;
  switch (kind) {
    case ClientKind::kConsumer:
    case ClientKind::kRestoreConsumer:
      own = "consumer.";
      break;
    case ClientKind::kProducer:
      own = "producer.";
      break;
    case ClientKind::kAdmin:
      own = "admin.";
      break;
  }
  for (std::string_view prefix : {std::string_view("kafka."), own}) {
    for (const auto& [key, value] : values_) {
      if (StartsWith(key, prefix) && defs_.count(key) == 0) {
        props[key.substr(prefix.size())] = value;
      }
    }
  }
  props["bootstrap.servers"] = bootstrap_servers_;
  return props;
}

std::optional<std::string> StreamsConfig::GetRaw(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

Result<std::string> StreamsConfig::GetString(std::string_view key) const {
  auto def = defs_.find(key);
  if (def != defs_.end() && def->second.type != ConfigType::kString &&
      def->second.type != ConfigType::kEnum) {
    return Status::InvalidArgument("key '" + std::string(key) + "' is not a string key");
  }
  auto value = GetRaw(key);
  if (!value) return Status::NotFound("key '" + std::string(key) + "' has no value");
  return *value;
}

Result<int64_t> StreamsConfig::GetInt(std::string_view key) const {
  auto def = defs_.find(key);
  if (def == defs_.end()) return Status::NotFound("unknown key '" + std::string(key) + "'");
  if (def->second.type != ConfigType::kInt) {
    return Status::InvalidArgument("key '" + std::string(key) + "' is not an integer key");
  }
  auto value = GetRaw(key);
  if (!value) return Status::NotFound("key '" + std::string(key) + "' has no value");
  auto parsed = ParseInt(*value);
  if (!parsed) return Status::Internal("key '" + std::string(key) + "' holds a bad integer");
  return *parsed;
}

Result<bool> StreamsConfig::GetBool(std::string_view key) const {
  auto def = defs_.find(key);
  if (def == defs_.end()) return Status::NotFound("unknown key '" + std::string(key) + "'");
  if (def->second.type != ConfigType::kBool) {
    return Status::InvalidArgument("key '" + std::string(key) + "' is not a boolean key");
  }
  auto value = GetRaw(key);
  if (!value) return Status::NotFound("key '" + std::string(key) + "' has no value");
  auto parsed = ParseBool(*value);
  if (!parsed) return Status::Internal("key '" + std::string(key) + "' holds a bad boolean");
  return *parsed;
}

std::optional<std::string> StreamsConfig::Origin(std::string_view key) const {
  auto it = origins_.find(key);
  if (it == origins_.end()) return std::nullopt;
  return it->second;
}

std::string StreamsConfig::Describe() const {
  std::string out;
  for (const auto& [key, value] : values_) {
    auto def = defs_.find(key);
    bool secret = def != defs_.end() ? def->second.secret : LooksSecret(key);
    out += key + " = " + (secret ? std::string("***") : value);
    auto origin = origins_.find(key);
    if (origin != origins_.end()) out += " (" + origin->second + ")";
    out += "\n";
  }
  return out;
}

}  // namespace streams::runtime
