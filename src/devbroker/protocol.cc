#include "devbroker/protocol.h"

#include <array>

namespace devbroker {

namespace {

constexpr std::array<ApiVersionRange, 20> kSupported = {{
    {ApiKey::kProduce, 3, 7},
    {ApiKey::kFetch, 4, 11},
    {ApiKey::kListOffsets, 1, 2},
    {ApiKey::kMetadata, 0, 4},
    {ApiKey::kOffsetCommit, 1, 7},
    {ApiKey::kOffsetFetch, 1, 7},
    {ApiKey::kFindCoordinator, 0, 2},
    {ApiKey::kJoinGroup, 0, 5},
    {ApiKey::kHeartbeat, 0, 3},
    {ApiKey::kLeaveGroup, 0, 1},
    {ApiKey::kSyncGroup, 0, 3},
    {ApiKey::kDescribeGroups, 0, 2},
    {ApiKey::kListGroups, 0, 2},
    {ApiKey::kApiVersions, 0, 3},
    {ApiKey::kCreateTopics, 0, 4},
    {ApiKey::kInitProducerId, 0, 4},
    {ApiKey::kAddPartitionsToTxn, 0, 1},
    {ApiKey::kAddOffsetsToTxn, 0, 1},
    {ApiKey::kEndTxn, 0, 1},
    {ApiKey::kTxnOffsetCommit, 0, 3},
}};

}  // namespace

std::span<const ApiVersionRange> SupportedApis() { return kSupported; }

std::optional<ApiVersionRange> FindSupportedApi(int16_t api_key) {
  for (const ApiVersionRange& r : kSupported) {
    if (static_cast<int16_t>(r.key) == api_key) return r;
  }
  return std::nullopt;
}

bool IsFlexibleVersion(int16_t api_key, int16_t version) {
  switch (static_cast<ApiKey>(api_key)) {
    case ApiKey::kApiVersions:
      return version >= 3;
    case ApiKey::kInitProducerId:
      return version >= 2;
    case ApiKey::kOffsetFetch:
      return version >= 6;
    case ApiKey::kTxnOffsetCommit:
      return version >= 3;
    default:
      return false;
  }
}

std::optional<RequestHeader> ParseRequestHeader(WireReader& reader) {
  RequestHeader h;
  h.api_key = reader.ReadInt16();
  h.api_version = reader.ReadInt16();
  h.correlation_id = reader.ReadInt32();
  h.client_id = reader.ReadNullableString();
  if (!reader.ok()) return std::nullopt;
  std::optional<ApiVersionRange> range = FindSupportedApi(h.api_key);
  if (range.has_value() && h.api_version >= range->min_version &&
      h.api_version <= range->max_version &&
      IsFlexibleVersion(h.api_key, h.api_version)) {
    reader.SkipTaggedFields();
    if (!reader.ok()) return std::nullopt;
  }
  return h;
}

void BeginResponse(WireWriter& w, const RequestHeader& header) {
  w.WriteInt32(0);  // size placeholder
  w.WriteInt32(header.correlation_id);
  // ApiVersions responses always use header v0 (KIP-511).
  if (header.api_key != static_cast<int16_t>(ApiKey::kApiVersions) &&
      IsFlexibleVersion(header.api_key, header.api_version)) {
    w.WriteEmptyTaggedFields();
  }
}

std::string FinishResponse(WireWriter& w) {
  w.PatchInt32(0, static_cast<int32_t>(w.size() - 4));
  return w.Release();
}

const char* ErrName(Err e) {
  switch (e) {
    case Err::kNone: return "NONE";
    case Err::kOffsetOutOfRange: return "OFFSET_OUT_OF_RANGE";
    case Err::kCorruptMessage: return "CORRUPT_MESSAGE";
    case Err::kUnknownTopicOrPartition: return "UNKNOWN_TOPIC_OR_PARTITION";
    case Err::kMessageTooLarge: return "MESSAGE_TOO_LARGE";
    case Err::kCoordinatorNotAvailable: return "COORDINATOR_NOT_AVAILABLE";
    case Err::kNotCoordinator: return "NOT_COORDINATOR";
    case Err::kInvalidTopic: return "INVALID_TOPIC_EXCEPTION";
    case Err::kIllegalGeneration: return "ILLEGAL_GENERATION";
    case Err::kInconsistentGroupProtocol: return "INCONSISTENT_GROUP_PROTOCOL";
    case Err::kInvalidGroupId: return "INVALID_GROUP_ID";
    case Err::kUnknownMemberId: return "UNKNOWN_MEMBER_ID";
    case Err::kInvalidSessionTimeout: return "INVALID_SESSION_TIMEOUT";
    case Err::kRebalanceInProgress: return "REBALANCE_IN_PROGRESS";
    case Err::kUnsupportedVersion: return "UNSUPPORTED_VERSION";
    case Err::kTopicAlreadyExists: return "TOPIC_ALREADY_EXISTS";
    case Err::kInvalidPartitions: return "INVALID_PARTITIONS";
    case Err::kInvalidReplicationFactor: return "INVALID_REPLICATION_FACTOR";
    case Err::kInvalidRequest: return "INVALID_REQUEST";
    case Err::kUnsupportedForMessageFormat:
      return "UNSUPPORTED_FOR_MESSAGE_FORMAT";
    case Err::kOutOfOrderSequenceNumber: return "OUT_OF_ORDER_SEQUENCE_NUMBER";
    case Err::kDuplicateSequenceNumber: return "DUPLICATE_SEQUENCE_NUMBER";
    case Err::kInvalidProducerEpoch: return "INVALID_PRODUCER_EPOCH";
    case Err::kInvalidTxnState: return "INVALID_TXN_STATE";
    case Err::kInvalidProducerIdMapping: return "INVALID_PRODUCER_ID_MAPPING";
    case Err::kInvalidTransactionTimeout: return "INVALID_TRANSACTION_TIMEOUT";
    case Err::kConcurrentTransactions: return "CONCURRENT_TRANSACTIONS";
    case Err::kOperationNotAttempted: return "OPERATION_NOT_ATTEMPTED";
    case Err::kUnknownProducerId: return "UNKNOWN_PRODUCER_ID";
    case Err::kGroupIdNotFound: return "GROUP_ID_NOT_FOUND";
    case Err::kFencedInstanceId: return "FENCED_INSTANCE_ID";
    case Err::kInvalidRecord: return "INVALID_RECORD";
    case Err::kUnstableOffsetCommit: return "UNSTABLE_OFFSET_COMMIT";
    case Err::kProducerFenced: return "PRODUCER_FENCED";
  }
  return "UNKNOWN_ERROR";
}

const char* ApiName(int16_t api_key) {
  switch (static_cast<ApiKey>(api_key)) {
    case ApiKey::kProduce: return "Produce";
    case ApiKey::kFetch: return "Fetch";
    case ApiKey::kListOffsets: return "ListOffsets";
    case ApiKey::kMetadata: return "Metadata";
    case ApiKey::kOffsetCommit: return "OffsetCommit";
    case ApiKey::kOffsetFetch: return "OffsetFetch";
    case ApiKey::kFindCoordinator: return "FindCoordinator";
    case ApiKey::kJoinGroup: return "JoinGroup";
    case ApiKey::kHeartbeat: return "Heartbeat";
    case ApiKey::kLeaveGroup: return "LeaveGroup";
    case ApiKey::kSyncGroup: return "SyncGroup";
    case ApiKey::kDescribeGroups: return "DescribeGroups";
    case ApiKey::kListGroups: return "ListGroups";
    case ApiKey::kApiVersions: return "ApiVersions";
    case ApiKey::kCreateTopics: return "CreateTopics";
    case ApiKey::kInitProducerId: return "InitProducerId";
    case ApiKey::kAddPartitionsToTxn: return "AddPartitionsToTxn";
    case ApiKey::kAddOffsetsToTxn: return "AddOffsetsToTxn";
    case ApiKey::kEndTxn: return "EndTxn";
    case ApiKey::kTxnOffsetCommit: return "TxnOffsetCommit";
  }
  return "Unknown";
}

}  // namespace devbroker
