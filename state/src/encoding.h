// Byte encodings of the state library: TTL value prefixes, TTL index keys, scan
// upper bounds and the checkpoint record.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "streams/kafka_types.h"
#include "streams/result.h"
#include "streams/state/task_state.h"

namespace streams::state::internal {

// Size of the write-timestamp prefix of values of stores with a TTL.
inline constexpr size_t kTtlPrefixBytes = 8;

// Appends `value` as 8 bytes, most significant first.
void AppendBigEndian64(std::string* out, uint64_t value);
// Reads 8 bytes, most significant first. Precondition: 8 readable bytes.
uint64_t ReadBigEndian64(const char* data);

// The stored form of a TTL store value: 8-byte big-endian write timestamp + value.
std::string EncodeTtlValue(Timestamp write_time, std::string_view value);
// The write timestamp of a stored TTL value; Corruption when shorter than the prefix.
Result<Timestamp> DecodeTtlTimestamp(std::string_view stored);

// True when an entry written at `write_time` is expired at `stream_time`, i.e.
// write_time + ttl <= stream_time (without overflow).
bool IsExpired(Timestamp write_time, int64_t ttl_millis, Timestamp stream_time);

// The largest write timestamp that is expired at `stream_time` (stream_time - ttl),
// or nullopt when no timestamp can be expired (underflow).
std::optional<int64_t> ExpiryCutoff(int64_t ttl_millis, Timestamp stream_time);

// Key of the expiry index: write timestamp (sign bit flipped, so that order of
// bytes is order of numbers) + user key.
std::string EncodeTtlIndexKey(int64_t write_millis, std::string_view key);
// Splits an index key; Corruption when shorter than 8 bytes.
Result<std::pair<int64_t, std::string_view>> DecodeTtlIndexKey(std::string_view index_key);

// The smallest key greater than every key starting with `prefix`: the prefix
// without its trailing 0xff bytes, with its last byte incremented. nullopt when
// there is none (empty prefix or only 0xff bytes): the scan runs to the end.
std::optional<std::string> PrefixUpperBound(std::string_view prefix);

// Versioned binary checkpoint (version 1, all integers big-endian):
//   u8 version | u32 n | n x (u32 len, topic, i32 partition, i64 offset)
//   | u32 m | m x (u32 len, store, i64 offset) | u8 has_time [i64 stream_time]
std::string EncodeCheckpoint(const Checkpoint& checkpoint);
// Corruption on unknown version, truncation or trailing bytes.
Result<Checkpoint> DecodeCheckpoint(std::string_view bytes);

}  // namespace streams::state::internal
