#include "devbroker/record_batch.h"

#include <limits>

#include "devbroker/crc32c.h"
#include "devbroker/wire.h"

namespace devbroker {

int32_t RecordBatchHeader::last_sequence() const {
  if (base_sequence < 0) return -1;
  int64_t last = static_cast<int64_t>(base_sequence) + last_offset_delta;
  if (last > std::numeric_limits<int32_t>::max()) {
    last -= static_cast<int64_t>(std::numeric_limits<int32_t>::max()) + 1;
  }
  return static_cast<int32_t>(last);
}

Err ParseRecordSet(std::string_view records, std::vector<BatchView>* out) {
  out->clear();
  size_t pos = 0;
  if (records.empty()) return Err::kCorruptMessage;
  while (pos < records.size()) {
    size_t left = records.size() - pos;
    if (left < kMagicOffset + 1) return Err::kCorruptMessage;
    const char* p = records.data() + pos;
    if (static_cast<int8_t>(p[kMagicOffset]) != 2) {
      return Err::kUnsupportedForMessageFormat;
    }
    if (left < kBatchHeaderSize) return Err::kCorruptMessage;
    WireReader r(p, kBatchHeaderSize);
    RecordBatchHeader h;
    h.base_offset = r.ReadInt64();
    h.batch_length = r.ReadInt32();
    h.partition_leader_epoch = r.ReadInt32();
    h.magic = r.ReadInt8();
    h.crc = r.ReadUint32();
    h.attributes = r.ReadInt16();
    h.last_offset_delta = r.ReadInt32();
    h.base_timestamp = r.ReadInt64();
    h.max_timestamp = r.ReadInt64();
    h.producer_id = r.ReadInt64();
    h.producer_epoch = r.ReadInt16();
    h.base_sequence = r.ReadInt32();
    h.record_count = r.ReadInt32();
    if (!r.ok()) return Err::kCorruptMessage;
    if (h.batch_length < static_cast<int32_t>(kBatchHeaderSize - 12)) {
      return Err::kCorruptMessage;
    }
    size_t total = static_cast<size_t>(h.batch_length) + 12;
    if (total > left) return Err::kCorruptMessage;
    if (h.record_count <= 0 || h.last_offset_delta < 0 ||
        static_cast<int64_t>(h.record_count) !=
            static_cast<int64_t>(h.last_offset_delta) + 1) {
      return Err::kCorruptMessage;
    }
    if (h.is_control()) return Err::kInvalidRecord;
    uint32_t crc = Crc32c(p + kAttributesOffset, total - kAttributesOffset);
    if (crc != h.crc) return Err::kCorruptMessage;
    out->push_back(BatchView{h, std::string_view(p, total)});
    pos += total;
  }
  return Err::kNone;
}

std::string BuildControlBatch(int64_t base_offset, int64_t producer_id,
                              int16_t producer_epoch, bool commit,
                              int64_t timestamp_ms) {
  // Control record: key = {version int16 0, type int16 (0 abort, 1 commit)},
  // value = {version int16 0, coordinator_epoch int32 0}.
  WireWriter rec;
  rec.WriteInt8(0);    // attributes
  rec.WriteVarlong(0);  // timestamp delta
  rec.WriteVarint(0);   // offset delta
  rec.WriteVarint(4);   // key length
  rec.WriteInt16(0);
  rec.WriteInt16(commit ? 1 : 0);
  rec.WriteVarint(6);  // value length
  rec.WriteInt16(0);
  rec.WriteInt32(0);
  rec.WriteVarint(0);  // headers
  std::string body = rec.Release();

  WireWriter w;
  w.WriteInt64(base_offset);
  w.WriteInt32(0);  // batch length, patched below
  w.WriteInt32(0);  // partition leader epoch
  w.WriteInt8(2);   // magic
  w.WriteUint32(0);  // crc, patched below
  w.WriteInt16(kAttrTransactional | kAttrControl);
  w.WriteInt32(0);  // last offset delta
  w.WriteInt64(timestamp_ms);
  w.WriteInt64(timestamp_ms);
  w.WriteInt64(producer_id);
  w.WriteInt16(producer_epoch);
  w.WriteInt32(-1);  // base sequence
  w.WriteInt32(1);   // record count
  w.WriteVarint(static_cast<int32_t>(body.size()));
  w.WriteRaw(body);
  std::string out = w.Release();
  StoreInt32(&out[kBatchLengthOffset], static_cast<int32_t>(out.size() - 12));
  uint32_t crc =
      Crc32c(out.data() + kAttributesOffset, out.size() - kAttributesOffset);
  StoreInt32(&out[kCrcOffset], static_cast<int32_t>(crc));
  return out;
}

void RewriteBatchOffset(std::string& raw, int64_t base_offset) {
  StoreInt64(&raw[0], base_offset);
  StoreInt32(&raw[kPartitionLeaderEpochOffset], 0);
}

}  // namespace devbroker
