#include "encoding.h"

#include <limits>

namespace streams::state::internal {
namespace {

constexpr uint8_t kCheckpointVersion = 1;
constexpr uint64_t kSignBit = uint64_t{1} << 63;

void AppendBigEndian32(std::string* out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(value >> shift));
}

// Sequential reader with bounds checks.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool ReadU8(uint8_t* v) {
    if (bytes_.size() < 1) return false;
    *v = static_cast<uint8_t>(bytes_[0]);
    bytes_.remove_prefix(1);
    return true;
  }
  bool ReadU32(uint32_t* v) {
    if (bytes_.size() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v = (*v << 8) | static_cast<uint8_t>(bytes_[i]);
    bytes_.remove_prefix(4);
    return true;
  }
  bool ReadU64(uint64_t* v) {
    if (bytes_.size() < 8) return false;
    *v = ReadBigEndian64(bytes_.data());
    bytes_.remove_prefix(8);
    return true;
  }
  bool ReadString(std::string* v) {
    uint32_t len = 0;
    if (!ReadU32(&len) || bytes_.size() < len) return false;
    v->assign(bytes_.data(), len);
    bytes_.remove_prefix(len);
    return true;
  }
  bool empty() const { return bytes_.empty(); }

 private:
  std::string_view bytes_;
};

}  // namespace

void AppendBigEndian64(std::string* out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(value >> shift));
}

uint64_t ReadBigEndian64(const char* data) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(data[i]);
  return v;
}

std::string EncodeTtlValue(Timestamp write_time, std::string_view value) {
  std::string out;
  out.reserve(kTtlPrefixBytes + value.size());
  AppendBigEndian64(&out, static_cast<uint64_t>(write_time.millis()));
  out.append(value);
  return out;
}

Result<Timestamp> DecodeTtlTimestamp(std::string_view stored) {
  if (stored.size() < kTtlPrefixBytes) {
    return Status::Corruption("stored value of a TTL store is shorter than its 8-byte timestamp");
  }
  return Timestamp(static_cast<int64_t>(ReadBigEndian64(stored.data())));
}

bool IsExpired(Timestamp write_time, int64_t ttl_millis, Timestamp stream_time) {
  int64_t deadline = 0;
  if (__builtin_add_overflow(write_time.millis(), ttl_millis, &deadline)) return false;
  return deadline <= stream_time.millis();
}

std::optional<int64_t> ExpiryCutoff(int64_t ttl_millis, Timestamp stream_time) {
  int64_t cutoff = 0;
  if (__builtin_sub_overflow(stream_time.millis(), ttl_millis, &cutoff)) return std::nullopt;
  return cutoff;
}

std::string EncodeTtlIndexKey(int64_t write_millis, std::string_view key) {
  std::string out;
  out.reserve(8 + key.size());
  AppendBigEndian64(&out, static_cast<uint64_t>(write_millis) ^ kSignBit);
  out.append(key);
  return out;
}

Result<std::pair<int64_t, std::string_view>> DecodeTtlIndexKey(std::string_view index_key) {
  if (index_key.size() < 8) return Status::Corruption("TTL index key shorter than 8 bytes");
  int64_t millis = static_cast<int64_t>(ReadBigEndian64(index_key.data()) ^ kSignBit);
  return std::pair<int64_t, std::string_view>(millis, index_key.substr(8));
}

std::optional<std::string> PrefixUpperBound(std::string_view prefix) {
  std::string bound(prefix);
  while (!bound.empty() && static_cast<uint8_t>(bound.back()) == 0xff) bound.pop_back();
  if (bound.empty()) return std::nullopt;
  bound.back() = static_cast<char>(static_cast<uint8_t>(bound.back()) + 1);
  return bound;
}

std::string EncodeCheckpoint(const Checkpoint& checkpoint) {
  std::string out;
  out.push_back(static_cast<char>(kCheckpointVersion));
  AppendBigEndian32(&out, static_cast<uint32_t>(checkpoint.input_offsets.size()));
  for (const auto& [tp, offset] : checkpoint.input_offsets) {
    AppendBigEndian32(&out, static_cast<uint32_t>(tp.topic.size()));
    out.append(tp.topic);
    AppendBigEndian32(&out, static_cast<uint32_t>(tp.partition.value()));
    AppendBigEndian64(&out, static_cast<uint64_t>(offset.value()));
  }
  AppendBigEndian32(&out, static_cast<uint32_t>(checkpoint.changelog_offsets.size()));
  for (const auto& [store, offset] : checkpoint.changelog_offsets) {
    AppendBigEndian32(&out, static_cast<uint32_t>(store.size()));
    out.append(store);
    AppendBigEndian64(&out, static_cast<uint64_t>(offset.value()));
  }
  out.push_back(checkpoint.stream_time.has_value() ? 1 : 0);
  if (checkpoint.stream_time.has_value()) {
    AppendBigEndian64(&out, static_cast<uint64_t>(checkpoint.stream_time->millis()));
  }
  return out;
}

Result<Checkpoint> DecodeCheckpoint(std::string_view bytes) {
  auto truncated = [] { return Status::Corruption("checkpoint record is truncated"); };
  Reader reader(bytes);
  uint8_t version = 0;
  if (!reader.ReadU8(&version)) return truncated();
  if (version != kCheckpointVersion) {
    return Status::Corruption("unknown checkpoint version " + std::to_string(version));
  }
  Checkpoint checkpoint;
  uint32_t n = 0;
  if (!reader.ReadU32(&n)) return truncated();
  for (uint32_t i = 0; i < n; ++i) {
    TopicPartition tp;
    uint32_t partition = 0;
    uint64_t offset = 0;
    if (!reader.ReadString(&tp.topic) || !reader.ReadU32(&partition) || !reader.ReadU64(&offset)) {
      return truncated();
    }
    tp.partition = Partition(static_cast<int32_t>(partition));
    checkpoint.input_offsets.emplace(std::move(tp), Offset(static_cast<int64_t>(offset)));
  }
  if (!reader.ReadU32(&n)) return truncated();
  for (uint32_t i = 0; i < n; ++i) {
    std::string store;
    uint64_t offset = 0;
    if (!reader.ReadString(&store) || !reader.ReadU64(&offset)) return truncated();
    checkpoint.changelog_offsets.emplace(std::move(store), Offset(static_cast<int64_t>(offset)));
  }
  uint8_t has_time = 0;
  if (!reader.ReadU8(&has_time) || has_time > 1) return truncated();
  if (has_time == 1) {
    uint64_t millis = 0;
    if (!reader.ReadU64(&millis)) return truncated();
    checkpoint.stream_time = Timestamp(static_cast<int64_t>(millis));
  }
  if (!reader.empty()) return Status::Corruption("checkpoint record has trailing bytes");
  return checkpoint;
}

}  // namespace streams::state::internal
