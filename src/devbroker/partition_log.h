// In-memory partition log with idempotent-producer and transaction state.

#ifndef DEVBROKER_PARTITION_LOG_H_
#define DEVBROKER_PARTITION_LOG_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "devbroker/protocol.h"
#include "devbroker/record_batch.h"

namespace devbroker {

// An aborted transaction range on one partition: records of producer_id in
// [first_offset, last_offset] are aborted; last_offset is the ABORT marker.
struct AbortedTxn {
  int64_t producer_id = -1;
  int64_t first_offset = -1;
  int64_t last_offset = -1;
};

struct AppendResult {
  Err error = Err::kNone;
  int64_t base_offset = -1;
  bool duplicate = false;  // an already-appended batch was retried
};

// One partition's log: whole record batches in offset order, per-producer
// sequence state (last 5 batches cached for duplicate detection), the ongoing
// transactions (for the last stable offset) and the aborted-transaction index.
//
// Thread-safety: not thread-safe; owned and used by the broker loop thread.
class PartitionLog {
 public:
  PartitionLog() = default;
  PartitionLog(const PartitionLog&) = delete;
  PartitionLog& operator=(const PartitionLog&) = delete;

  // Checks the batch's producer epoch and sequence and appends it, assigning
  // offsets. A retried duplicate of one of the producer's last 5 batches is not
  // appended and returns kNone with the original base offset. Errors:
  // kInvalidProducerEpoch (stale epoch), kOutOfOrderSequenceNumber. A
  // transactional batch opens (or extends) the producer's ongoing transaction
  // on this partition; the caller has validated transaction membership.
  AppendResult Append(const BatchView& batch);

  // Appends a COMMIT or ABORT control batch for producer_id and ends its
  // ongoing transaction here; an abort records the aborted range. A newer
  // epoch resets the producer's sequence state (the old epoch is fenced).
  void WriteMarker(int64_t producer_id, int16_t producer_epoch, bool commit,
                   int64_t now_ms);

  int64_t log_start_offset() const { return 0; }
  int64_t high_watermark() const { return next_offset_; }
  // First offset of the earliest ongoing transaction, else the high watermark.
  int64_t last_stable_offset() const;
  bool HasOngoingTxn(int64_t producer_id) const {
    return ongoing_.count(producer_id) != 0;
  }

  // Size in bytes of the whole batches from the one containing `offset` up
  // to (excluding) `upper`; stops counting once `cap` is reached.
  size_t BytesAvailable(int64_t offset, int64_t upper, size_t cap) const;

  // Appends to *out whole batches starting with the one containing `offset`
  // whose last offset is below `upper`, while the total stays within
  // max_bytes. If allow_oversized_first, the first batch is appended even if
  // it alone exceeds max_bytes (KIP-74). Returns the number of bytes appended
  // and sets *last_offset to the last offset returned (or offset-1).
  size_t Read(int64_t offset, int64_t upper, size_t max_bytes,
              bool allow_oversized_first, std::string* out,
              int64_t* last_offset) const;

  // Aborted transactions overlapping [from, to).
  std::vector<AbortedTxn> AbortedTxns(int64_t from, int64_t to) const;

  // Base offset of the first batch whose max timestamp is >= timestamp, or
  // -1 if none (batch granularity).
  int64_t OffsetForTimestamp(int64_t timestamp) const;

  size_t batch_count() const { return batches_.size(); }

 private:
  struct StoredBatch {
    int64_t base_offset;
    int64_t last_offset;
    int64_t max_timestamp;
    std::string bytes;
  };
  struct CachedBatch {
    int32_t first_seq;
    int32_t last_seq;
    int64_t base_offset;
  };
  struct ProducerState {
    int16_t epoch = -1;
    int32_t last_seq = -1;  // -1: no batch in this epoch yet
    std::deque<CachedBatch> recent;
  };

  // Index of the first batch whose last_offset >= offset (batches_.size() if
  // none).
  size_t FindBatch(int64_t offset) const;

  std::vector<StoredBatch> batches_;
  int64_t next_offset_ = 0;
  std::unordered_map<int64_t, ProducerState> producers_;
  std::map<int64_t, int64_t> ongoing_;  // producer id -> first offset
  std::vector<AbortedTxn> aborted_;     // ordered by last_offset
};

}  // namespace devbroker

#endif  // DEVBROKER_PARTITION_LOG_H_
