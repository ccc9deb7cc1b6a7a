// Decodes Kafka requests, executes them against the log, group and
// transaction state, and encodes the responses.

#ifndef DEVBROKER_REQUEST_HANDLER_H_
#define DEVBROKER_REQUEST_HANDLER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devbroker/config.h"
#include "devbroker/group_coordinator.h"
#include "devbroker/log_manager.h"
#include "devbroker/protocol.h"
#include "devbroker/txn_coordinator.h"

namespace spdlog {
class logger;
}

namespace devbroker {

// Receives responses that complete after the request was handed in
// (long-poll fetches, JoinGroup, SyncGroup).
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  // Delivers the response frame for the request in flight on conn_id. May
  // be called from inside RequestHandler::Handle for the same connection.
  // Must ignore connections that are gone.
  virtual void Deliver(uint64_t conn_id, std::string frame) = 0;
};

struct ConnectionInfo {
  uint64_t id = 0;
  std::string peer_host;
};

enum class HandleOutcome {
  kResponded,   // `frame` holds the response
  kNoResponse,  // e.g. Produce with acks=0
  kDeferred,    // the response will arrive through ResponseSink::Deliver
  kClose,       // malformed/unsupported request: close the connection
};

struct HandleResult {
  HandleOutcome outcome = HandleOutcome::kClose;
  std::string frame;
};

// Thread-safety: not thread-safe; used only by the broker loop thread.
class RequestHandler {
 public:
  RequestHandler(const BrokerOptions& options, std::string advertised_host,
                 int32_t advertised_port, LogManager* logs,
                 GroupCoordinator* groups, TxnCoordinator* txns,
                 ResponseSink* sink, spdlog::logger* logger);
  RequestHandler(const RequestHandler&) = delete;
  RequestHandler& operator=(const RequestHandler&) = delete;

  // Handles one request frame (without the 4-byte size prefix). Never
  // throws; malformed input yields kClose. At most one request per
  // connection may be deferred at a time (the server stops reading a
  // connection's requests while one is in flight).
  HandleResult Handle(const ConnectionInfo& conn, std::string_view frame,
                      int64_t now_ms);

  // Completes long-poll fetches whose data arrived or whose wait expired,
  // and drives group/transaction timers.
  void Tick(int64_t now_ms);

  // Forgets deferred work of a closed connection.
  void OnConnectionClosed(uint64_t conn_id);

  // Earliest pending fetch deadline (steady ms), or -1 if none.
  int64_t NextDeadlineMs() const;

 private:
  struct FetchPartition {
    int32_t partition = 0;
    int64_t fetch_offset = 0;
    int32_t max_bytes = 0;
  };
  struct FetchTopic {
    std::string name;
    std::vector<FetchPartition> partitions;
  };
  struct FetchRequest {
    int32_t max_wait_ms = 0;
    int32_t min_bytes = 0;
    int32_t max_bytes = 0;
    int8_t isolation_level = 0;
    std::vector<FetchTopic> topics;
  };
  struct PendingFetch {
    RequestHeader header;
    FetchRequest request;
    int64_t deadline_ms = 0;
    uint64_t seen_version = 0;
  };

  using Handler = std::optional<std::string> (RequestHandler::*)(
      const ConnectionInfo&, const RequestHeader&, WireReader&, int64_t,
      HandleOutcome*);

  // Each handler parses the body from the reader and returns the encoded
  // response frame, or nullopt on malformed input. A handler may set
  // *outcome to kNoResponse or kDeferred (then the returned frame is ignored).
  std::optional<std::string> HandleApiVersions(const ConnectionInfo&,
                                               const RequestHeader&,
                                               WireReader&, int64_t,
                                               HandleOutcome*);
  std::optional<std::string> HandleMetadata(const ConnectionInfo&,
                                            const RequestHeader&, WireReader&,
                                            int64_t, HandleOutcome*);
  std::optional<std::string> HandleCreateTopics(const ConnectionInfo&,
                                                const RequestHeader&,
                                                WireReader&, int64_t,
                                                HandleOutcome*);
  std::optional<std::string> HandleFindCoordinator(const ConnectionInfo&,
                                                   const RequestHeader&,
                                                   WireReader&, int64_t,
                                                   HandleOutcome*);
  std::optional<std::string> HandleProduce(const ConnectionInfo&,
                                           const RequestHeader&, WireReader&,
                                           int64_t, HandleOutcome*);
  std::optional<std::string> HandleFetch(const ConnectionInfo&,
                                         const RequestHeader&, WireReader&,
                                         int64_t, HandleOutcome*);
  std::optional<std::string> HandleListOffsets(const ConnectionInfo&,
                                               const RequestHeader&,
                                               WireReader&, int64_t,
                                               HandleOutcome*);
  std::optional<std::string> HandleJoinGroup(const ConnectionInfo&,
                                             const RequestHeader&, WireReader&,
                                             int64_t, HandleOutcome*);
  std::optional<std::string> HandleSyncGroup(const ConnectionInfo&,
                                             const RequestHeader&, WireReader&,
                                             int64_t, HandleOutcome*);
  std::optional<std::string> HandleHeartbeat(const ConnectionInfo&,
                                             const RequestHeader&, WireReader&,
                                             int64_t, HandleOutcome*);
  std::optional<std::string> HandleLeaveGroup(const ConnectionInfo&,
                                              const RequestHeader&,
                                              WireReader&, int64_t,
                                              HandleOutcome*);
  std::optional<std::string> HandleOffsetCommit(const ConnectionInfo&,
                                                const RequestHeader&,
                                                WireReader&, int64_t,
                                                HandleOutcome*);
  std::optional<std::string> HandleOffsetFetch(const ConnectionInfo&,
                                               const RequestHeader&,
                                               WireReader&, int64_t,
                                               HandleOutcome*);
  std::optional<std::string> HandleDescribeGroups(const ConnectionInfo&,
                                                  const RequestHeader&,
                                                  WireReader&, int64_t,
                                                  HandleOutcome*);
  std::optional<std::string> HandleListGroups(const ConnectionInfo&,
                                              const RequestHeader&,
                                              WireReader&, int64_t,
                                              HandleOutcome*);
  std::optional<std::string> HandleInitProducerId(const ConnectionInfo&,
                                                  const RequestHeader&,
                                                  WireReader&, int64_t,
                                                  HandleOutcome*);
  std::optional<std::string> HandleAddPartitionsToTxn(const ConnectionInfo&,
                                                      const RequestHeader&,
                                                      WireReader&, int64_t,
                                                      HandleOutcome*);
  std::optional<std::string> HandleAddOffsetsToTxn(const ConnectionInfo&,
                                                   const RequestHeader&,
                                                   WireReader&, int64_t,
                                                   HandleOutcome*);
  std::optional<std::string> HandleEndTxn(const ConnectionInfo&,
                                          const RequestHeader&, WireReader&,
                                          int64_t, HandleOutcome*);
  std::optional<std::string> HandleTxnOffsetCommit(const ConnectionInfo&,
                                                   const RequestHeader&,
                                                   WireReader&, int64_t,
                                                   HandleOutcome*);

  // Response for an ApiVersions request whose version is unsupported: v0
  // layout, UNSUPPORTED_VERSION and the supported list.
  std::string UnsupportedApiVersionsResponse(const RequestHeader& header);

  // Returns the topic's partition count, auto-creating it if allowed.
  int32_t EnsureTopic(const std::string& topic, bool allow_create, Err* err);

  // Bytes a fetch could return now (capped at min_bytes) and whether some
  // partition has an error to report.
  size_t FetchableBytes(const FetchRequest& req, bool* has_error);
  std::string BuildFetchResponse(const RequestHeader& header,
                                 const FetchRequest& req);

  BrokerOptions options_;
  std::string advertised_host_;
  int32_t advertised_port_;
  LogManager* logs_;
  GroupCoordinator* groups_;
  TxnCoordinator* txns_;
  ResponseSink* sink_;
  spdlog::logger* logger_;
  std::map<uint64_t, PendingFetch> pending_fetches_;  // by connection id
};

}  // namespace devbroker

#endif  // DEVBROKER_REQUEST_HANDLER_H_
