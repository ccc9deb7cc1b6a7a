// Dispatch plus the cluster-level APIs: ApiVersions, Metadata,
// CreateTopics, FindCoordinator. Data, group and transaction APIs live in
// handlers_data.cc, handlers_group.cc and handlers_txn.cc.

#include "devbroker/request_handler.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace devbroker {

RequestHandler::RequestHandler(const BrokerOptions& options,
                               std::string advertised_host,
                               int32_t advertised_port, LogManager* logs,
                               GroupCoordinator* groups, TxnCoordinator* txns,
                               ResponseSink* sink, spdlog::logger* logger)
    : options_(options),
      advertised_host_(std::move(advertised_host)),
      advertised_port_(advertised_port),
      logs_(logs),
      groups_(groups),
      txns_(txns),
      sink_(sink),
      logger_(logger) {}

HandleResult RequestHandler::Handle(const ConnectionInfo& conn,
                                    std::string_view frame, int64_t now_ms) {
  HandleResult result;
  WireReader reader(frame);
  std::optional<RequestHeader> header = ParseRequestHeader(reader);
  if (!header.has_value()) {
    logger_->warn("conn {} ({}): malformed request header ({} bytes): closing",
                  conn.id, conn.peer_host, frame.size());
    return result;
  }
  std::optional<ApiVersionRange> range = FindSupportedApi(header->api_key);
  if (!range.has_value()) {
    logger_->warn("conn {} ({}): unsupported api key {} from client '{}': "
                  "closing",
                  conn.id, conn.peer_host, header->api_key,
                  header->client_id.value_or(""));
    return result;
  }
  if (header->api_version < range->min_version ||
      header->api_version > range->max_version) {
    if (range->key == ApiKey::kApiVersions) {
      result.outcome = HandleOutcome::kResponded;
      result.frame = UnsupportedApiVersionsResponse(*header);
      return result;
    }
    logger_->warn("conn {} ({}): {} v{} not supported (v{}..v{}): closing",
                  conn.id, conn.peer_host, ApiName(header->api_key),
                  header->api_version, range->min_version, range->max_version);
    return result;
  }

  Handler fn = nullptr;
  switch (range->key) {
    case ApiKey::kProduce: fn = &RequestHandler::HandleProduce; break;
    case ApiKey::kFetch: fn = &RequestHandler::HandleFetch; break;
    case ApiKey::kListOffsets: fn = &RequestHandler::HandleListOffsets; break;
    case ApiKey::kMetadata: fn = &RequestHandler::HandleMetadata; break;
    case ApiKey::kOffsetCommit: fn = &RequestHandler::HandleOffsetCommit; break;
    case ApiKey::kOffsetFetch: fn = &RequestHandler::HandleOffsetFetch; break;
    case ApiKey::kFindCoordinator:
      fn = &RequestHandler::HandleFindCoordinator;
      break;
    case ApiKey::kJoinGroup: fn = &RequestHandler::HandleJoinGroup; break;
    case ApiKey::kHeartbeat: fn = &RequestHandler::HandleHeartbeat; break;
    case ApiKey::kLeaveGroup: fn = &RequestHandler::HandleLeaveGroup; break;
    case ApiKey::kSyncGroup: fn = &RequestHandler::HandleSyncGroup; break;
    case ApiKey::kDescribeGroups:
      fn = &RequestHandler::HandleDescribeGroups;
      break;
    case ApiKey::kListGroups: fn = &RequestHandler::HandleListGroups; break;
    case ApiKey::kApiVersions: fn = &RequestHandler::HandleApiVersions; break;
    case ApiKey::kCreateTopics: fn = &RequestHandler::HandleCreateTopics; break;
    case ApiKey::kInitProducerId:
      fn = &RequestHandler::HandleInitProducerId;
      break;
    case ApiKey::kAddPartitionsToTxn:
      fn = &RequestHandler::HandleAddPartitionsToTxn;
      break;
    case ApiKey::kAddOffsetsToTxn:
      fn = &RequestHandler::HandleAddOffsetsToTxn;
      break;
    case ApiKey::kEndTxn: fn = &RequestHandler::HandleEndTxn; break;
    case ApiKey::kTxnOffsetCommit:
      fn = &RequestHandler::HandleTxnOffsetCommit;
      break;
  }
  logger_->trace("conn {}: {} v{} corr {} client '{}'", conn.id,
                 ApiName(header->api_key), header->api_version,
                 header->correlation_id, header->client_id.value_or(""));
  HandleOutcome outcome = HandleOutcome::kResponded;
  std::optional<std::string> frame_out =
      (this->*fn)(conn, *header, reader, now_ms, &outcome);
  if (!frame_out.has_value()) {
    logger_->warn("conn {} ({}): malformed {} v{} request from client '{}': "
                  "closing",
                  conn.id, conn.peer_host, ApiName(header->api_key),
                  header->api_version, header->client_id.value_or(""));
    return result;  // kClose
  }
  result.outcome = outcome;
  if (outcome == HandleOutcome::kResponded) result.frame = std::move(*frame_out);
  return result;
}

std::string RequestHandler::UnsupportedApiVersionsResponse(
    const RequestHeader& header) {
  WireWriter w;
  w.WriteInt32(0);
  w.WriteInt32(header.correlation_id);
  w.WriteInt16(ErrCode(Err::kUnsupportedVersion));
  auto apis = SupportedApis();
  w.WriteArrayLength(static_cast<int32_t>(apis.size()));
  for (const ApiVersionRange& r : apis) {
    w.WriteInt16(static_cast<int16_t>(r.key));
    w.WriteInt16(r.min_version);
    w.WriteInt16(r.max_version);
  }
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleApiVersions(
    const ConnectionInfo&, const RequestHeader& h, WireReader& r, int64_t,
    HandleOutcome*) {
  const bool flexible = h.api_version >= 3;
  if (flexible) {
    r.ReadCompactString();  // client_software_name
    r.ReadCompactString();  // client_software_version
    r.SkipTaggedFields();
    if (!r.ok()) return std::nullopt;
  }
  WireWriter w;
  BeginResponse(w, h);
  w.WriteInt16(ErrCode(Err::kNone));
  auto apis = SupportedApis();
  if (flexible) {
    w.WriteCompactArrayLength(static_cast<int32_t>(apis.size()));
  } else {
    w.WriteArrayLength(static_cast<int32_t>(apis.size()));
  }
  for (const ApiVersionRange& a : apis) {
    w.WriteInt16(static_cast<int16_t>(a.key));
    w.WriteInt16(a.min_version);
    w.WriteInt16(a.max_version);
    if (flexible) w.WriteEmptyTaggedFields();
  }
  if (h.api_version >= 1) w.WriteInt32(0);  // throttle
  if (flexible) w.WriteEmptyTaggedFields();
  return FinishResponse(w);
}

int32_t RequestHandler::EnsureTopic(const std::string& topic,
                                    bool allow_create, Err* err) {
  *err = Err::kNone;
  int32_t n = logs_->PartitionCount(topic);
  if (n >= 0) return n;
  Err valid = LogManager::ValidateTopicName(topic);
  if (valid != Err::kNone) {
    *err = valid;
    return -1;
  }
  if (!allow_create || !options_.auto_create_topics) {
    *err = Err::kUnknownTopicOrPartition;
    return -1;
  }
  Err e = logs_->CreateTopic(topic, options_.default_partitions);
  if (e != Err::kNone) {
    *err = e;
    return -1;
  }
  logger_->info("auto-created topic {} with {} partition(s)", topic,
                options_.default_partitions);
  return options_.default_partitions;
}

std::optional<std::string> RequestHandler::HandleMetadata(
    const ConnectionInfo&, const RequestHeader& h, WireReader& r, int64_t,
    HandleOutcome*) {
  const int16_t v = h.api_version;
  std::optional<std::vector<std::string>> requested;  // nullopt = all
  int32_t n = r.ReadArrayLength();
  if (n >= 0) {
    requested.emplace();
    for (int32_t i = 0; i < n && r.ok(); ++i) requested->push_back(r.ReadString());
  }
  bool allow_auto_create = true;
  if (v >= 4) allow_auto_create = r.ReadBool();
  if (!r.ok()) return std::nullopt;
  if (v == 0 && requested.has_value() && requested->empty()) {
    requested.reset();  // v0: empty array means all topics
  }

  std::vector<std::string> names =
      requested.has_value() ? *requested : logs_->TopicNames();
  WireWriter w;
  BeginResponse(w, h);
  if (v >= 3) w.WriteInt32(0);  // throttle
  w.WriteArrayLength(1);        // brokers
  w.WriteInt32(0);
  w.WriteString(advertised_host_);
  w.WriteInt32(advertised_port_);
  if (v >= 1) w.WriteNullString();  // rack
  if (v >= 2) w.WriteNullableString(std::string("devbroker-cluster"));
  if (v >= 1) w.WriteInt32(0);  // controller id
  w.WriteArrayLength(static_cast<int32_t>(names.size()));
  for (const std::string& name : names) {
    Err err = Err::kNone;
    int32_t count = EnsureTopic(name, allow_auto_create, &err);
    w.WriteInt16(ErrCode(err));
    w.WriteString(name);
    if (v >= 1) w.WriteBool(false);  // is_internal
    w.WriteArrayLength(std::max(count, 0));
    for (int32_t p = 0; p < count; ++p) {
      w.WriteInt16(0);
      w.WriteInt32(p);
      w.WriteInt32(0);  // leader
      w.WriteArrayLength(1);
      w.WriteInt32(0);  // replicas
      w.WriteArrayLength(1);
      w.WriteInt32(0);  // isr
    }
  }
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleCreateTopics(
    const ConnectionInfo&, const RequestHeader& h, WireReader& r, int64_t,
    HandleOutcome*) {
  const int16_t v = h.api_version;
  struct Spec {
    std::string name;
    int32_t partitions;
    int16_t replication;
    int32_t assignments;
  };
  std::vector<Spec> specs;
  int32_t n = r.ReadArrayLength();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    Spec s;
    s.name = r.ReadString();
    s.partitions = r.ReadInt32();
    s.replication = r.ReadInt16();
    s.assignments = r.ReadArrayLength();
    for (int32_t a = 0; a < s.assignments && r.ok(); ++a) {
      r.ReadInt32();
      int32_t brokers = r.ReadArrayLength();
      for (int32_t b = 0; b < brokers && r.ok(); ++b) r.ReadInt32();
    }
    int32_t configs = r.ReadArrayLength();
    for (int32_t c = 0; c < configs && r.ok(); ++c) {
      r.ReadString();
      r.ReadNullableString();
    }
    specs.push_back(std::move(s));
  }
  r.ReadInt32();  // timeout
  bool validate_only = v >= 1 ? r.ReadBool() : false;
  if (!r.ok()) return std::nullopt;

  WireWriter w;
  BeginResponse(w, h);
  if (v >= 2) w.WriteInt32(0);
  w.WriteArrayLength(static_cast<int32_t>(specs.size()));
  for (const Spec& s : specs) {
    Err err = Err::kNone;
    std::string message;
    int32_t partitions = s.partitions;
    if (s.assignments > 0) {
      partitions = s.partitions == -1 ? s.assignments : -2;
    } else if (partitions == -1) {
      partitions = options_.default_partitions;
    }
    if (s.replication != 1 && s.replication != -1 && s.assignments <= 0) {
      err = Err::kInvalidReplicationFactor;
      message = "devbroker has a single node: replication factor must be 1";
    } else if ((err = LogManager::ValidateTopicName(s.name)) != Err::kNone) {
      message = "invalid topic name";
    } else if (partitions < 1 || partitions > kMaxPartitionsPerTopic) {
      err = Err::kInvalidPartitions;
      message = "invalid partition count";
    } else if (logs_->PartitionCount(s.name) >= 0) {
      err = Err::kTopicAlreadyExists;
      message = "topic already exists";
    } else if (!validate_only) {
      err = logs_->CreateTopic(s.name, partitions);
      if (err == Err::kNone) {
        logger_->info("created topic {} with {} partition(s)", s.name,
                      partitions);
      }
    }
    w.WriteString(s.name);
    w.WriteInt16(ErrCode(err));
    if (v >= 1) {
      if (err == Err::kNone) {
        w.WriteNullString();
      } else {
        w.WriteString(message);
      }
    }
  }
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleFindCoordinator(
    const ConnectionInfo&, const RequestHeader& h, WireReader& r, int64_t,
    HandleOutcome*) {
  const int16_t v = h.api_version;
  r.ReadString();  // key
  int8_t key_type = v >= 1 ? r.ReadInt8() : 0;
  if (!r.ok()) return std::nullopt;
  Err err = (key_type == 0 || key_type == 1) ? Err::kNone : Err::kInvalidRequest;
  WireWriter w;
  BeginResponse(w, h);
  if (v >= 1) w.WriteInt32(0);
  w.WriteInt16(ErrCode(err));
  if (v >= 1) w.WriteNullString();  // error message
  w.WriteInt32(err == Err::kNone ? 0 : -1);
  w.WriteString(err == Err::kNone ? advertised_host_ : std::string());
  w.WriteInt32(err == Err::kNone ? advertised_port_ : -1);
  return FinishResponse(w);
}

void RequestHandler::Tick(int64_t now_ms) {
  groups_->Tick(now_ms);
  txns_->Tick(now_ms);
  uint64_t version = logs_->version();
  for (auto it = pending_fetches_.begin(); it != pending_fetches_.end();) {
    PendingFetch& pf = it->second;
    bool ready = now_ms >= pf.deadline_ms;
    if (!ready && pf.seen_version != version) {
      pf.seen_version = version;
      bool has_error = false;
      size_t bytes = FetchableBytes(pf.request, &has_error);
      ready = has_error ||
              bytes >= static_cast<size_t>(std::max(pf.request.min_bytes, 1));
    }
    if (!ready) {
      ++it;
      continue;
    }
    uint64_t conn_id = it->first;
    std::string frame = BuildFetchResponse(pf.header, pf.request);
    it = pending_fetches_.erase(it);
    sink_->Deliver(conn_id, std::move(frame));
  }
}

void RequestHandler::OnConnectionClosed(uint64_t conn_id) {
  pending_fetches_.erase(conn_id);
}

int64_t RequestHandler::NextDeadlineMs() const {
  int64_t next = -1;
  for (const auto& [id, pf] : pending_fetches_) {
    if (next < 0 || pf.deadline_ms < next) next = pf.deadline_ms;
  }
  return next;
}

}  // namespace devbroker
