// Kafka protocol constants: API keys, error codes, the API versions this
// broker implements, and the request header.

#ifndef DEVBROKER_PROTOCOL_H_
#define DEVBROKER_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "devbroker/wire.h"

namespace devbroker {

enum class ApiKey : int16_t {
  kProduce = 0,
  kFetch = 1,
  kListOffsets = 2,
  kMetadata = 3,
  kOffsetCommit = 8,
  kOffsetFetch = 9,
  kFindCoordinator = 10,
  kJoinGroup = 11,
  kHeartbeat = 12,
  kLeaveGroup = 13,
  kSyncGroup = 14,
  kDescribeGroups = 15,
  kListGroups = 16,
  kApiVersions = 18,
  kCreateTopics = 19,
  kInitProducerId = 22,
  kAddPartitionsToTxn = 24,
  kAddOffsetsToTxn = 25,
  kEndTxn = 26,
  kTxnOffsetCommit = 28,
};

// Kafka error codes used by this broker.
enum class Err : int16_t {
  kNone = 0,
  kOffsetOutOfRange = 1,
  kCorruptMessage = 2,
  kUnknownTopicOrPartition = 3,
  kMessageTooLarge = 10,
  kCoordinatorNotAvailable = 15,
  kNotCoordinator = 16,
  kInvalidTopic = 17,
  kIllegalGeneration = 22,
  kInconsistentGroupProtocol = 23,
  kInvalidGroupId = 24,
  kUnknownMemberId = 25,
  kInvalidSessionTimeout = 26,
  kRebalanceInProgress = 27,
  kUnsupportedVersion = 35,
  kTopicAlreadyExists = 36,
  kInvalidPartitions = 37,
  kInvalidReplicationFactor = 38,
  kInvalidRequest = 42,
  kUnsupportedForMessageFormat = 43,
  kOutOfOrderSequenceNumber = 45,
  kDuplicateSequenceNumber = 46,
  kInvalidProducerEpoch = 47,
  kInvalidTxnState = 48,
  kInvalidProducerIdMapping = 49,
  kInvalidTransactionTimeout = 50,
  kConcurrentTransactions = 51,
  kOperationNotAttempted = 55,
  kUnknownProducerId = 59,
  kGroupIdNotFound = 69,
  kFencedInstanceId = 82,
  kInvalidRecord = 87,
  kUnstableOffsetCommit = 88,
  kProducerFenced = 90,
};

inline int16_t ErrCode(Err e) { return static_cast<int16_t>(e); }

// Returns the Kafka name of an error code, e.g. "INVALID_PRODUCER_EPOCH".
const char* ErrName(Err e);

// Returns a short name for an API key ("Produce"), or "Unknown".
const char* ApiName(int16_t api_key);

struct ApiVersionRange {
  ApiKey key;
  int16_t min_version;
  int16_t max_version;
};

// The APIs and version ranges this broker implements (and advertises in
// ApiVersions). Versions were chosen from those librdkafka 2.0.2 speaks.
std::span<const ApiVersionRange> SupportedApis();

// Returns the supported range for api_key, or nullopt if not implemented.
std::optional<ApiVersionRange> FindSupportedApi(int16_t api_key);

// True if (api_key, version) uses the flexible (compact + tagged fields)
// encoding, i.e. request header v2 / response header v1.
bool IsFlexibleVersion(int16_t api_key, int16_t version);

struct RequestHeader {
  int16_t api_key = 0;
  int16_t api_version = 0;
  int32_t correlation_id = 0;
  std::optional<std::string> client_id;
};

// Parses the request header (v1, or v2 when the api/version is flexible)
// from reader. Returns nullopt on malformed input.
std::optional<RequestHeader> ParseRequestHeader(WireReader& reader);

// Begins a response: reserves the 4-byte size prefix and writes the response
// header (v0: correlation id; v1 for flexible non-ApiVersions responses also
// writes empty tagged fields). Use FinishResponse afterwards.
void BeginResponse(WireWriter& w, const RequestHeader& header);
// Patches the size prefix; returns the complete frame.
std::string FinishResponse(WireWriter& w);

// Record batch attribute bits.
inline constexpr int16_t kAttrCompressionMask = 0x07;
inline constexpr int16_t kAttrTransactional = 0x10;
inline constexpr int16_t kAttrControl = 0x20;

// ListOffsets special timestamps.
inline constexpr int64_t kLatestTimestamp = -1;
inline constexpr int64_t kEarliestTimestamp = -2;

}  // namespace devbroker

#endif  // DEVBROKER_PROTOCOL_H_
