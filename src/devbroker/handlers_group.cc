// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
// DescribeGroups, ListGroups.

#include <spdlog/spdlog.h>

#include "devbroker/request_handler.h"

namespace devbroker {

std::optional<std::string> RequestHandler::HandleJoinGroup(const ConnectionInfo& conn,
                                                           const RequestHeader& h, WireReader& r,
                                                           int64_t now_ms, HandleOutcome* outcome) {
  const int16_t v = h.api_version;
  JoinGroupParams p;
  p.group_id = r.ReadString();
  p.session_timeout_ms = r.ReadInt32();
  p.rebalance_timeout_ms = v >= 1 ? r.ReadInt32() : p.session_timeout_ms;
  p.member_id = r.ReadString();
  if (v >= 5) p.group_instance_id = r.ReadNullableString();
  p.protocol_type = r.ReadString();
  int32_t n = r.ReadArrayLength();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    std::string name = r.ReadString();
    std::optional<std::string_view> meta = r.ReadNullableBytes();
    p.protocols.emplace_back(std::move(name), std::string(meta.value_or("")));
  }
  if (!r.ok()) return std::nullopt;
  p.client_id = h.client_id.value_or("");
  p.client_host = conn.peer_host;

  uint64_t conn_id = conn.id;
  RequestHeader header = h;
  ResponseSink* sink = sink_;
  *outcome = HandleOutcome::kDeferred;
  groups_->JoinGroup(p, now_ms, [conn_id, header, sink](const JoinGroupResult& res) {
    const int16_t ver = header.api_version;
    WireWriter w;
    BeginResponse(w, header);
    if (ver >= 2) w.WriteInt32(0);
    w.WriteInt16(ErrCode(res.error));
    w.WriteInt32(res.generation_id);
    w.WriteString(res.protocol_name);
    w.WriteString(res.leader_id);
    w.WriteString(res.member_id);
    w.WriteArrayLength(static_cast<int32_t>(res.members.size()));
    for (const auto& [id, meta] : res.members) {
      w.WriteString(id);
      if (ver >= 5) w.WriteNullString();
      w.WriteBytes(meta);
    }
    sink->Deliver(conn_id, FinishResponse(w));
  });
  return std::string();
}

std::optional<std::string> RequestHandler::HandleSyncGroup(const ConnectionInfo& conn,
                                                           const RequestHeader& h, WireReader& r,
                                                           int64_t now_ms, HandleOutcome* outcome) {
  const int16_t v = h.api_version;
  std::string group_id = r.ReadString();
  int32_t generation = r.ReadInt32();
  std::string member_id = r.ReadString();
  std::optional<std::string> group_instance_id;
  if (v >= 3) group_instance_id = r.ReadNullableString();
  std::vector<std::pair<std::string, std::string>> assignments;
  int32_t n = r.ReadArrayLength();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    std::string id = r.ReadString();
    std::optional<std::string_view> a = r.ReadNullableBytes();
    assignments.emplace_back(std::move(id), std::string(a.value_or("")));
  }
  if (!r.ok()) return std::nullopt;
  uint64_t conn_id = conn.id;
  RequestHeader header = h;
  ResponseSink* sink = sink_;
  *outcome = HandleOutcome::kDeferred;
  groups_->SyncGroup(group_id, generation, member_id, group_instance_id, assignments, now_ms,
                     [conn_id, header, sink](const SyncGroupResult& res) {
                       WireWriter w;
                       BeginResponse(w, header);
                       if (header.api_version >= 1) w.WriteInt32(0);
                       w.WriteInt16(ErrCode(res.error));
                       w.WriteBytes(res.assignment);
                       sink->Deliver(conn_id, FinishResponse(w));
                     });
  return std::string();
}

std::optional<std::string> RequestHandler::HandleHeartbeat(const ConnectionInfo&,
                                                           const RequestHeader& h, WireReader& r,
                                                           int64_t now_ms, HandleOutcome*) {
  std::string group_id = r.ReadString();
  int32_t generation = r.ReadInt32();
  std::string member_id = r.ReadString();
  std::optional<std::string> group_instance_id;
  if (h.api_version >= 3) group_instance_id = r.ReadNullableString();
  if (!r.ok()) return std::nullopt;
  Err err = groups_->Heartbeat(group_id, generation, member_id, group_instance_id, now_ms);
  WireWriter w;
  BeginResponse(w, h);
  if (h.api_version >= 1) w.WriteInt32(0);
  w.WriteInt16(ErrCode(err));
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleLeaveGroup(const ConnectionInfo&,
                                                            const RequestHeader& h, WireReader& r,
                                                            int64_t now_ms, HandleOutcome*) {
  std::string group_id = r.ReadString();
  std::string member_id = r.ReadString();
  if (!r.ok()) return std::nullopt;
  Err err = groups_->LeaveGroup(group_id, member_id, now_ms);
  WireWriter w;
  BeginResponse(w, h);
  if (h.api_version >= 1) w.WriteInt32(0);
  w.WriteInt16(ErrCode(err));
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleOffsetCommit(const ConnectionInfo&,
                                                              const RequestHeader& h, WireReader& r,
                                                              int64_t now_ms, HandleOutcome*) {
  const int16_t v = h.api_version;
  std::string group_id = r.ReadString();
  OffsetCommitter who;
  who.generation_id = r.ReadInt32();
  who.member_id = r.ReadString();
  if (v >= 7) who.group_instance_id = r.ReadNullableString();
  if (v >= 2 && v <= 4) r.ReadInt64();  // retention time
  OffsetMap offsets;
  std::vector<std::pair<std::string, std::vector<int32_t>>> order;
  int32_t topic_count = r.ReadArrayLength();
  for (int32_t t = 0; t < topic_count && r.ok(); ++t) {
    std::pair<std::string, std::vector<int32_t>> entry;
    entry.first = r.ReadString();
    int32_t n = r.ReadArrayLength();
    for (int32_t p = 0; p < n && r.ok(); ++p) {
      int32_t index = r.ReadInt32();
      CommittedOffset off;
      off.offset = r.ReadInt64();
      if (v == 1) r.ReadInt64();  // commit timestamp
      if (v >= 6) off.leader_epoch = r.ReadInt32();
      off.metadata = r.ReadNullableString();
      offsets[TopicPartition{entry.first, index}] = off;
      entry.second.push_back(index);
    }
    order.push_back(std::move(entry));
  }
  if (!r.ok()) return std::nullopt;
  Err err = groups_->CommitOffsets(group_id, who, offsets, now_ms);
  WireWriter w;
  BeginResponse(w, h);
  if (v >= 3) w.WriteInt32(0);
  w.WriteArrayLength(static_cast<int32_t>(order.size()));
  for (const auto& [topic, parts] : order) {
    w.WriteString(topic);
    w.WriteArrayLength(static_cast<int32_t>(parts.size()));
    for (int32_t p : parts) {
      w.WriteInt32(p);
      w.WriteInt16(ErrCode(err));
    }
  }
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleOffsetFetch(const ConnectionInfo&,
                                                             const RequestHeader& h, WireReader& r,
                                                             int64_t, HandleOutcome*) {
  const int16_t v = h.api_version;
  const bool flexible = v >= 6;  // compact strings/arrays, tagged fields
  auto read_string = [&] { return flexible ? r.ReadCompactString() : r.ReadString(); };
  auto read_array_length = [&] {
    return flexible ? r.ReadCompactArrayLength() : r.ReadArrayLength();
  };
  std::string group_id = read_string();
  std::optional<std::vector<std::pair<std::string, std::vector<int32_t>>>> topics;
  int32_t topic_count = read_array_length();
  if (topic_count >= 0) {
    topics.emplace();
    for (int32_t t = 0; t < topic_count && r.ok(); ++t) {
      std::pair<std::string, std::vector<int32_t>> entry;
      entry.first = read_string();
      int32_t n = read_array_length();
      for (int32_t p = 0; p < n && r.ok(); ++p) entry.second.push_back(r.ReadInt32());
      if (flexible) r.SkipTaggedFields();
      topics->push_back(std::move(entry));
    }
  }
  // v7 (KIP-447): offsets with a pending transactional commit are reported
  // as UNSTABLE_OFFSET_COMMIT (retriable) instead of the older value.
  bool require_stable = v >= 7 ? r.ReadBool() : false;
  if (flexible) r.SkipTaggedFields();
  if (!r.ok()) return std::nullopt;
  if (!topics.has_value()) {
    topics.emplace();
    for (const auto& [tp, off] : groups_->FetchAllOffsets(group_id)) {
      if (topics->empty() || topics->back().first != tp.topic) {
        topics->push_back({tp.topic, {}});
      }
      topics->back().second.push_back(tp.partition);
    }
  }
  WireWriter w;
  BeginResponse(w, h);
  if (v >= 3) w.WriteInt32(0);
  auto write_length = [&](size_t n) {
    if (flexible) {
      w.WriteCompactArrayLength(static_cast<int32_t>(n));
    } else {
      w.WriteArrayLength(static_cast<int32_t>(n));
    }
  };
  auto write_string = [&](const std::string& s) {
    if (flexible) {
      w.WriteCompactString(s);
    } else {
      w.WriteString(s);
    }
  };
  write_length(topics->size());
  for (const auto& [topic, parts] : *topics) {
    write_string(topic);
    write_length(parts.size());
    for (int32_t p : parts) {
      TopicPartition tp{topic, p};
      std::optional<CommittedOffset> off = groups_->FetchOffset(group_id, tp);
      Err err = Err::kNone;
      if (require_stable && groups_->HasPendingTxnOffset(group_id, tp)) {
        err = Err::kUnstableOffsetCommit;
        off.reset();
      }
      w.WriteInt32(p);
      w.WriteInt64(off.has_value() ? off->offset : -1);
      if (v >= 5) w.WriteInt32(off.has_value() ? off->leader_epoch : -1);
      write_string(off.has_value() && off->metadata.has_value() ? *off->metadata : std::string());
      w.WriteInt16(ErrCode(err));
      if (flexible) w.WriteEmptyTaggedFields();
    }
    if (flexible) w.WriteEmptyTaggedFields();
  }
  if (v >= 2) w.WriteInt16(ErrCode(Err::kNone));
  if (flexible) w.WriteEmptyTaggedFields();
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleDescribeGroups(const ConnectionInfo&,
                                                                const RequestHeader& h,
                                                                WireReader& r, int64_t,
                                                                HandleOutcome*) {
  std::vector<std::string> ids;
  int32_t n = r.ReadArrayLength();
  for (int32_t i = 0; i < n && r.ok(); ++i) ids.push_back(r.ReadString());
  if (!r.ok()) return std::nullopt;
  WireWriter w;
  BeginResponse(w, h);
  if (h.api_version >= 1) w.WriteInt32(0);
  w.WriteArrayLength(static_cast<int32_t>(ids.size()));
  for (const std::string& id : ids) {
    GroupDescription d = groups_->Describe(id);
    w.WriteInt16(ErrCode(d.error));
    w.WriteString(d.group_id);
    w.WriteString(d.state);
    w.WriteString(d.protocol_type);
    w.WriteString(d.protocol_name);
    w.WriteArrayLength(static_cast<int32_t>(d.members.size()));
    for (const GroupMemberDescription& m : d.members) {
      w.WriteString(m.member_id);
      w.WriteString(m.client_id);
      w.WriteString(m.client_host);
      w.WriteBytes(m.metadata);
      w.WriteBytes(m.assignment);
    }
  }
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleListGroups(const ConnectionInfo&,
                                                            const RequestHeader& h, WireReader& r,
                                                            int64_t, HandleOutcome*) {
  if (!r.ok()) return std::nullopt;
  WireWriter w;
  BeginResponse(w, h);
  if (h.api_version >= 1) w.WriteInt32(0);
  w.WriteInt16(ErrCode(Err::kNone));
  auto groups = groups_->ListGroups();
  w.WriteArrayLength(static_cast<int32_t>(groups.size()));
  for (const auto& [id, type] : groups) {
    w.WriteString(id);
    w.WriteString(type);
  }
  return FinishResponse(w);
}

}  // namespace devbroker
