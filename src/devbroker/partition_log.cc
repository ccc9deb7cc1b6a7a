#include "devbroker/partition_log.h"

#include <algorithm>
#include <limits>

namespace devbroker {

namespace {

constexpr size_t kDuplicateCacheSize = 5;

int32_t NextSequence(int32_t seq) {
  return seq == std::numeric_limits<int32_t>::max() ? 0 : seq + 1;
}

}  // namespace

AppendResult PartitionLog::Append(const BatchView& batch) {
  const RecordBatchHeader& h = batch.header;
  AppendResult result;
  ProducerState* state = nullptr;
  if (h.producer_id >= 0) {
    if (h.base_sequence < 0 || h.producer_epoch < 0) {
      result.error = Err::kInvalidRecord;
      return result;
    }
    auto it = producers_.find(h.producer_id);
    if (it == producers_.end()) {
      if (h.base_sequence != 0) {
        result.error = Err::kOutOfOrderSequenceNumber;
        return result;
      }
    } else {
      ProducerState& st = it->second;
      if (h.producer_epoch < st.epoch) {
        result.error = Err::kInvalidProducerEpoch;
        return result;
      }
      if (h.producer_epoch > st.epoch) {
        if (h.base_sequence != 0) {
          result.error = Err::kOutOfOrderSequenceNumber;
          return result;
        }
      } else {
        for (const CachedBatch& c : st.recent) {
          if (c.first_seq == h.base_sequence &&
              c.last_seq == h.last_sequence()) {
            result.base_offset = c.base_offset;
            result.duplicate = true;
            return result;
          }
        }
        if (h.base_sequence != NextSequence(st.last_seq)) {
          result.error = Err::kOutOfOrderSequenceNumber;
          return result;
        }
      }
    }
    state = &producers_[h.producer_id];
  }

  StoredBatch stored;
  stored.base_offset = next_offset_;
  stored.last_offset = next_offset_ + h.last_offset_delta;
  stored.max_timestamp = h.max_timestamp;
  stored.bytes.assign(batch.raw.data(), batch.raw.size());
  RewriteBatchOffset(stored.bytes, stored.base_offset);
  result.base_offset = stored.base_offset;
  next_offset_ = stored.last_offset + 1;

  if (state != nullptr) {
    if (state->epoch != h.producer_epoch) {
      state->epoch = h.producer_epoch;
      state->recent.clear();
    }
    state->last_seq = h.last_sequence();
    state->recent.push_back(
        CachedBatch{h.base_sequence, h.last_sequence(), stored.base_offset});
    if (state->recent.size() > kDuplicateCacheSize) state->recent.pop_front();
  }
  if (h.is_transactional() && h.producer_id >= 0) {
    ongoing_.emplace(h.producer_id, stored.base_offset);
  }
  batches_.push_back(std::move(stored));
  return result;
}

void PartitionLog::WriteMarker(int64_t producer_id, int16_t producer_epoch,
                               bool commit, int64_t now_ms) {
  int64_t offset = next_offset_;
  StoredBatch stored;
  stored.base_offset = offset;
  stored.last_offset = offset;
  stored.max_timestamp = now_ms;
  stored.bytes =
      BuildControlBatch(offset, producer_id, producer_epoch, commit, now_ms);
  batches_.push_back(std::move(stored));
  next_offset_ = offset + 1;

  auto it = ongoing_.find(producer_id);
  if (it != ongoing_.end()) {
    if (!commit) aborted_.push_back(AbortedTxn{producer_id, it->second, offset});
    ongoing_.erase(it);
  }
  ProducerState& st = producers_[producer_id];
  if (producer_epoch > st.epoch) {
    st.epoch = producer_epoch;
    st.last_seq = -1;
    st.recent.clear();
  }
}

int64_t PartitionLog::last_stable_offset() const {
  int64_t lso = next_offset_;
  for (const auto& [pid, first] : ongoing_) lso = std::min(lso, first);
  return lso;
}

size_t PartitionLog::FindBatch(int64_t offset) const {
  auto it = std::lower_bound(
      batches_.begin(), batches_.end(), offset,
      [](const StoredBatch& b, int64_t off) { return b.last_offset < off; });
  return static_cast<size_t>(it - batches_.begin());
}

size_t PartitionLog::BytesAvailable(int64_t offset, int64_t upper,
                                    size_t cap) const {
  size_t total = 0;
  for (size_t i = FindBatch(offset); i < batches_.size() && total < cap; ++i) {
    if (batches_[i].last_offset >= upper) break;
    total += batches_[i].bytes.size();
  }
  return total;
}

size_t PartitionLog::Read(int64_t offset, int64_t upper, size_t max_bytes,
                          bool allow_oversized_first, std::string* out,
                          int64_t* last_offset) const {
  size_t total = 0;
  *last_offset = offset - 1;
  for (size_t i = FindBatch(offset); i < batches_.size(); ++i) {
    const StoredBatch& b = batches_[i];
    if (b.last_offset >= upper) break;
    if (total + b.bytes.size() > max_bytes &&
        !(total == 0 && allow_oversized_first)) {
      break;
    }
    out->append(b.bytes);
    total += b.bytes.size();
    *last_offset = b.last_offset;
  }
  return total;
}

std::vector<AbortedTxn> PartitionLog::AbortedTxns(int64_t from,
                                                  int64_t to) const {
  std::vector<AbortedTxn> result;
  auto it = std::lower_bound(
      aborted_.begin(), aborted_.end(), from,
      [](const AbortedTxn& a, int64_t off) { return a.last_offset < off; });
  for (; it != aborted_.end(); ++it) {
    if (it->first_offset < to) result.push_back(*it);
  }
  return result;
}

int64_t PartitionLog::OffsetForTimestamp(int64_t timestamp) const {
  for (const StoredBatch& b : batches_) {
    if (b.max_timestamp >= timestamp) return b.base_offset;
  }
  return -1;
}

}  // namespace devbroker
