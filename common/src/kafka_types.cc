#include "streams/kafka_types.h"

namespace streams {

std::string TopicPartition::ToString() const {
  return topic + "-" + std::to_string(partition.value());
}

std::optional<std::string_view> FindHeader(const Headers& headers, std::string_view key) {
  std::optional<std::string_view> found;
  for (const Header& h : headers) {
    if (h.key == key) found = h.value;
  }
  return found;
}

namespace {

// MurmurHash2 as in Kafka's Java client (org.apache.kafka.common.utils.Utils.murmur2).
int32_t Murmur2(std::string_view data) {
  const uint32_t seed = 0x9747b28c;
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const size_t length = data.size();
  uint32_t h = seed ^ static_cast<uint32_t>(length);
  const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
  const size_t length4 = length / 4;
  for (size_t i = 0; i < length4; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(bytes[i4]) | (static_cast<uint32_t>(bytes[i4 + 1]) << 8) |
                 (static_cast<uint32_t>(bytes[i4 + 2]) << 16) |
                 (static_cast<uint32_t>(bytes[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const size_t tail = length4 * 4;
  switch (length % 4) {
    case 3: h ^= static_cast<uint32_t>(bytes[tail + 2]) << 16; [[fallthrough]];
    case 2: h ^= static_cast<uint32_t>(bytes[tail + 1]) << 8; [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(bytes[tail]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

}  // namespace

Partition DefaultPartitionForKey(std::string_view key, int32_t partition_count) {
  const int32_t positive = Murmur2(key) & 0x7fffffff;
  return Partition(positive % partition_count);
}

}  // namespace streams
