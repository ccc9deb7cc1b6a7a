// Record batch (magic 2) header parsing/validation and control-batch
// construction.

#ifndef DEVBROKER_RECORD_BATCH_H_
#define DEVBROKER_RECORD_BATCH_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "devbroker/protocol.h"

namespace devbroker {

inline constexpr size_t kBatchHeaderSize = 61;
inline constexpr size_t kBatchLengthOffset = 8;
inline constexpr size_t kPartitionLeaderEpochOffset = 12;
inline constexpr size_t kMagicOffset = 16;
inline constexpr size_t kCrcOffset = 17;
inline constexpr size_t kAttributesOffset = 21;

struct RecordBatchHeader {
  int64_t base_offset = 0;
  int32_t batch_length = 0;
  int32_t partition_leader_epoch = 0;
  int8_t magic = 0;
  uint32_t crc = 0;
  int16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t record_count = 0;

  bool is_transactional() const { return (attributes & kAttrTransactional) != 0; }
  bool is_control() const { return (attributes & kAttrControl) != 0; }
  // Sequence number of the last record (wraps at INT32_MAX like Kafka).
  int32_t last_sequence() const;
};

// One batch of a produce record set: parsed header plus the raw bytes.
struct BatchView {
  RecordBatchHeader header;
  std::string_view raw;  // the whole batch, header included
};

// Splits a produce record set into batches and validates each one: complete
// framing, magic 2 (else kUnsupportedForMessageFormat), CRC-32C, sane counts
// (record_count == last_offset_delta + 1 > 0) and no client control batches.
// Returns kNone and fills *out on success, otherwise the Kafka error code.
// Thread-safe (pure function).
Err ParseRecordSet(std::string_view records, std::vector<BatchView>* out);

// Builds a transaction marker control batch (COMMIT or ABORT) for the given
// producer at base_offset with a correct CRC. Thread-safe (pure function).
std::string BuildControlBatch(int64_t base_offset, int64_t producer_id,
                              int16_t producer_epoch, bool commit,
                              int64_t timestamp_ms);

// Overwrites the base offset and partition leader epoch of a stored batch
// (fields outside the CRC). raw must hold at least kBatchHeaderSize bytes.
void RewriteBatchOffset(std::string& raw, int64_t base_offset);

}  // namespace devbroker

#endif  // DEVBROKER_RECORD_BATCH_H_
