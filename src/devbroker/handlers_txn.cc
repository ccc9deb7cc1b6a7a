// InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
// TxnOffsetCommit.

#include <spdlog/spdlog.h>

#include "devbroker/request_handler.h"

namespace devbroker {

std::optional<std::string> RequestHandler::HandleInitProducerId(
    const ConnectionInfo&, const RequestHeader& h, WireReader& r,
    int64_t now_ms, HandleOutcome*) {
  const int16_t v = h.api_version;
  const bool flexible = v >= 2;
  std::optional<std::string> txn_id =
      flexible ? r.ReadCompactNullableString() : r.ReadNullableString();
  int32_t timeout_ms = r.ReadInt32();
  int64_t expected_pid = -1;
  int16_t expected_epoch = -1;
  if (v >= 3) {
    expected_pid = r.ReadInt64();
    expected_epoch = r.ReadInt16();
  }
  if (flexible) r.SkipTaggedFields();
  if (!r.ok()) return std::nullopt;
  InitProducerIdResult res = txns_->InitProducerId(
      txn_id, timeout_ms, expected_pid, expected_epoch, now_ms);
  if (res.error == Err::kInvalidProducerEpoch && v >= 4) {
    res.error = Err::kProducerFenced;
  }
  WireWriter w;
  BeginResponse(w, h);
  w.WriteInt32(0);
  w.WriteInt16(ErrCode(res.error));
  w.WriteInt64(res.producer_id);
  w.WriteInt16(res.producer_epoch);
  if (flexible) w.WriteEmptyTaggedFields();
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleAddPartitionsToTxn(
    const ConnectionInfo&, const RequestHeader& h, WireReader& r,
    int64_t now_ms, HandleOutcome*) {
  std::string txn_id = r.ReadString();
  int64_t pid = r.ReadInt64();
  int16_t epoch = r.ReadInt16();
  std::vector<TopicPartition> parts;
  int32_t topic_count = r.ReadArrayLength();
  for (int32_t t = 0; t < topic_count && r.ok(); ++t) {
    std::string topic = r.ReadString();
    int32_t n = r.ReadArrayLength();
    for (int32_t p = 0; p < n && r.ok(); ++p) {
      parts.push_back(TopicPartition{topic, r.ReadInt32()});
    }
  }
  if (!r.ok()) return std::nullopt;
  std::vector<Err> errors = txns_->AddPartitions(txn_id, pid, epoch, parts,
                                                 now_ms);
  WireWriter w;
  BeginResponse(w, h);
  w.WriteInt32(0);
  // Group consecutive entries by topic (input order is topic-major).
  std::vector<std::pair<std::string, std::vector<size_t>>> by_topic;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (by_topic.empty() || by_topic.back().first != parts[i].topic) {
      by_topic.push_back({parts[i].topic, {}});
    }
    by_topic.back().second.push_back(i);
  }
  w.WriteArrayLength(static_cast<int32_t>(by_topic.size()));
  for (const auto& [topic, idx] : by_topic) {
    w.WriteString(topic);
    w.WriteArrayLength(static_cast<int32_t>(idx.size()));
    for (size_t i : idx) {
      w.WriteInt32(parts[i].partition);
      w.WriteInt16(ErrCode(errors[i]));
    }
  }
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleAddOffsetsToTxn(
    const ConnectionInfo&, const RequestHeader& h, WireReader& r,
    int64_t now_ms, HandleOutcome*) {
  std::string txn_id = r.ReadString();
  int64_t pid = r.ReadInt64();
  int16_t epoch = r.ReadInt16();
  std::string group_id = r.ReadString();
  if (!r.ok()) return std::nullopt;
  Err err = txns_->AddOffsets(txn_id, pid, epoch, group_id, now_ms);
  WireWriter w;
  BeginResponse(w, h);
  w.WriteInt32(0);
  w.WriteInt16(ErrCode(err));
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleEndTxn(
    const ConnectionInfo&, const RequestHeader& h, WireReader& r,
    int64_t now_ms, HandleOutcome*) {
  std::string txn_id = r.ReadString();
  int64_t pid = r.ReadInt64();
  int16_t epoch = r.ReadInt16();
  bool commit = r.ReadBool();
  if (!r.ok()) return std::nullopt;
  Err err = txns_->EndTxn(txn_id, pid, epoch, commit, now_ms);
  if (err != Err::kNone) {
    logger_->info("txn {}: EndTxn({}) by producer {} epoch {} failed: {}",
                  txn_id, commit ? "commit" : "abort", pid, epoch,
                  ErrName(err));
  }
  WireWriter w;
  BeginResponse(w, h);
  w.WriteInt32(0);
  w.WriteInt16(ErrCode(err));
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleTxnOffsetCommit(
    const ConnectionInfo&, const RequestHeader& h, WireReader& r, int64_t,
    HandleOutcome*) {
  const int16_t v = h.api_version;
  const bool flexible = v >= 3;  // compact strings/arrays, tagged fields
  auto read_string = [&] {
    return flexible ? r.ReadCompactString() : r.ReadString();
  };
  auto read_nullable_string = [&] {
    return flexible ? r.ReadCompactNullableString() : r.ReadNullableString();
  };
  auto read_array_length = [&] {
    return flexible ? r.ReadCompactArrayLength() : r.ReadArrayLength();
  };
  std::string txn_id = read_string();
  std::string group_id = read_string();
  int64_t pid = r.ReadInt64();
  int16_t epoch = r.ReadInt16();
  OffsetCommitter committer;  // v0-2: no consumer group metadata
  if (v >= 3) {
    committer.generation_id = r.ReadInt32();
    committer.member_id = read_string();
    committer.group_instance_id = read_nullable_string();
  }
  OffsetMap offsets;
  std::vector<std::pair<std::string, std::vector<int32_t>>> order;
  int32_t topic_count = read_array_length();
  for (int32_t t = 0; t < topic_count && r.ok(); ++t) {
    std::pair<std::string, std::vector<int32_t>> entry;
    entry.first = read_string();
    int32_t n = read_array_length();
    for (int32_t p = 0; p < n && r.ok(); ++p) {
      int32_t index = r.ReadInt32();
      CommittedOffset off;
      off.offset = r.ReadInt64();
      if (v >= 2) off.leader_epoch = r.ReadInt32();
      off.metadata = read_nullable_string();
      if (flexible) r.SkipTaggedFields();
      offsets[TopicPartition{entry.first, index}] = off;
      entry.second.push_back(index);
    }
    if (flexible) r.SkipTaggedFields();
    order.push_back(std::move(entry));
  }
  if (flexible) r.SkipTaggedFields();
  if (!r.ok()) return std::nullopt;
  Err err = txns_->TxnOffsetCommit(txn_id, group_id, pid, epoch, committer,
                                   offsets);
  if (err != Err::kNone) {
    logger_->info(
        "txn {}: TxnOffsetCommit v{} to group {} by producer {} epoch {} "
        "(member '{}', generation {}) failed: {}",
        txn_id, v, group_id, pid, epoch, committer.member_id,
        committer.generation_id, ErrName(err));
  }
  WireWriter w;
  BeginResponse(w, h);
  w.WriteInt32(0);
  auto write_array_length = [&](size_t n) {
    if (flexible) {
      w.WriteCompactArrayLength(static_cast<int32_t>(n));
    } else {
      w.WriteArrayLength(static_cast<int32_t>(n));
    }
  };
  write_array_length(order.size());
  for (const auto& [topic, parts] : order) {
    if (flexible) {
      w.WriteCompactString(topic);
    } else {
      w.WriteString(topic);
    }
    write_array_length(parts.size());
    for (int32_t p : parts) {
      w.WriteInt32(p);
      w.WriteInt16(ErrCode(err));
      if (flexible) w.WriteEmptyTaggedFields();
    }
    if (flexible) w.WriteEmptyTaggedFields();
  }
  if (flexible) w.WriteEmptyTaggedFields();
  return FinishResponse(w);
}

}  // namespace devbroker
