// Transaction coordinator (KIP-98): producer ids and epochs, fencing,
// transaction state, commit/abort markers and transaction timeouts.

#ifndef DEVBROKER_TXN_COORDINATOR_H_
#define DEVBROKER_TXN_COORDINATOR_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "devbroker/group_coordinator.h"
#include "devbroker/log_manager.h"
#include "devbroker/protocol.h"

namespace spdlog {
class logger;
}

namespace devbroker {

struct InitProducerIdResult {
  Err error = Err::kNone;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
};

// Thread-safety: not thread-safe; owned and used by the broker loop thread.
//
// Transactions complete synchronously: EndTxn writes every marker before it
// returns, so there are no PrepareCommit/PrepareAbort states visible to
// clients and CONCURRENT_TRANSACTIONS is never returned.
class TxnCoordinator {
 public:
  struct Options {
    int32_t transaction_timeout_max_ms = 900000;
  };

  TxnCoordinator(Options options, LogManager* logs, GroupCoordinator* groups,
                 spdlog::logger* logger);
  TxnCoordinator(const TxnCoordinator&) = delete;
  TxnCoordinator& operator=(const TxnCoordinator&) = delete;

  // Without a transactional id: a fresh producer id with epoch 0 (or, with
  // expected_producer_id >= 0, the same id with the next epoch, KIP-360).
  // With one: registers the id on first use; later calls bump the epoch,
  // fencing older producers, and abort the transaction the previous epoch
  // left open (markers are written with the new epoch). expected_* (v3+,
  // -1 when absent) must match the current id/epoch, else the caller is
  // fenced. Errors: INVALID_TRANSACTION_TIMEOUT, INVALID_PRODUCER_EPOCH.
  InitProducerIdResult InitProducerId(
      const std::optional<std::string>& transactional_id, int32_t timeout_ms,
      int64_t expected_producer_id, int16_t expected_epoch, int64_t now_ms);

  // Adds partitions to the ongoing transaction (starting one if needed).
  // Returns one error per input partition, in order. If any partition is
  // unknown, nothing is added and the others get OPERATION_NOT_ATTEMPTED.
  std::vector<Err> AddPartitions(const std::string& transactional_id,
                                 int64_t producer_id, int16_t epoch,
                                 const std::vector<TopicPartition>& partitions,
                                 int64_t now_ms);

  // Adds a consumer group to the ongoing transaction (starting one if
  // needed).
  Err AddOffsets(const std::string& transactional_id, int64_t producer_id,
                 int16_t epoch, const std::string& group_id, int64_t now_ms);

  // Validates a TxnOffsetCommit and stores the offsets as pending in the
  // group. The producer must be current (INVALID_PRODUCER_ID_MAPPING,
  // INVALID_PRODUCER_EPOCH) and the group must have been added with
  // AddOffsets (INVALID_TXN_STATE). Then the committer's consumer group
  // metadata (TxnOffsetCommit v3, KIP-447) is checked against the group's
  // current generation and members (GroupCoordinator::
  // ValidateTxnOffsetCommit: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
  // FENCED_INSTANCE_ID), so a zombie whose partitions moved to another
  // member cannot commit offsets. On error nothing is stored and the
  // transaction stays open (the client aborts it).
  Err TxnOffsetCommit(const std::string& transactional_id,
                      const std::string& group_id, int64_t producer_id,
                      int16_t epoch, const OffsetCommitter& committer,
                      const OffsetMap& offsets);

  // Commits or aborts: writes a control batch to every partition of the
  // transaction and completes the pending group offsets. A retried EndTxn
  // for an already completed transaction with the same outcome succeeds.
  Err EndTxn(const std::string& transactional_id, int64_t producer_id,
             int16_t epoch, bool commit, int64_t now_ms);

  // Checks that a transactional batch of (producer_id, epoch) may be written
  // to topic/partition: the producer is current and the partition was added
  // to its ongoing transaction. Errors: INVALID_PRODUCER_EPOCH (fenced),
  // INVALID_TXN_STATE.
  Err CheckTransactionalProduce(int64_t producer_id, int16_t epoch,
                                const std::string& topic, int32_t partition);

  // Aborts (and fences) transactions open longer than their timeout.
  void Tick(int64_t now_ms);

 private:
  enum class State { kEmpty, kOngoing, kCompleteCommit, kCompleteAbort };

  struct Txn {
    std::string id;
    int64_t producer_id = -1;
    int16_t epoch = 0;
    State state = State::kEmpty;
    int32_t timeout_ms = 60000;
    int64_t start_ms = 0;
    std::set<TopicPartition> partitions;
    std::set<std::string> groups;
  };

  Txn* Find(const std::string& transactional_id);
  Err Validate(const Txn* txn, int64_t producer_id, int16_t epoch) const;
  void BeginIfNeeded(Txn& txn, int64_t now_ms);
  void Complete(Txn& txn, bool commit, int16_t marker_epoch);
  // Raises the epoch (moving to a fresh producer id when it would overflow).
  void BumpEpoch(Txn& txn);

  Options options_;
  LogManager* logs_;
  GroupCoordinator* groups_;
  spdlog::logger* logger_;
  std::map<std::string, Txn> txns_;
  std::unordered_map<int64_t, std::string> txn_by_producer_;
  int64_t next_producer_id_ = 1000;
};

}  // namespace devbroker

#endif  // DEVBROKER_TXN_COORDINATOR_H_
