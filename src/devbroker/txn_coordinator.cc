#include "devbroker/txn_coordinator.h"

#include <chrono>
#include <limits>

#include <spdlog/spdlog.h>

namespace devbroker {

namespace {

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TxnCoordinator::TxnCoordinator(Options options, LogManager* logs,
                               GroupCoordinator* groups,
                               spdlog::logger* logger)
    : options_(options), logs_(logs), groups_(groups), logger_(logger) {}

TxnCoordinator::Txn* TxnCoordinator::Find(const std::string& id) {
  auto it = txns_.find(id);
  return it == txns_.end() ? nullptr : &it->second;
}

Err TxnCoordinator::Validate(const Txn* txn, int64_t producer_id,
                             int16_t epoch) const {
  if (txn == nullptr || txn->producer_id != producer_id) {
    return Err::kInvalidProducerIdMapping;
  }
  if (epoch != txn->epoch) return Err::kInvalidProducerEpoch;
  return Err::kNone;
}

void TxnCoordinator::BumpEpoch(Txn& txn) {
  if (txn.epoch >= std::numeric_limits<int16_t>::max() - 1) {
    txn_by_producer_.erase(txn.producer_id);
    txn.producer_id = next_producer_id_++;
    txn.epoch = 0;
    txn_by_producer_[txn.producer_id] = txn.id;
  } else {
    ++txn.epoch;
  }
}

void TxnCoordinator::BeginIfNeeded(Txn& txn, int64_t now_ms) {
  if (txn.state == State::kOngoing) return;
  txn.state = State::kOngoing;
  txn.start_ms = now_ms;
  txn.partitions.clear();
  txn.groups.clear();
  logger_->debug("txn {}: begin (producer {} epoch {})", txn.id,
                 txn.producer_id, txn.epoch);
}

void TxnCoordinator::Complete(Txn& txn, bool commit, int16_t marker_epoch) {
  int64_t now = WallClockMs();
  for (const TopicPartition& tp : txn.partitions) {
    PartitionLog* log = logs_->GetPartition(tp.topic, tp.partition);
    if (log != nullptr) {
      log->WriteMarker(txn.producer_id, marker_epoch, commit, now);
    }
  }
  for (const std::string& group : txn.groups) {
    groups_->CompleteTxnOffsets(group, txn.producer_id, commit);
  }
  logs_->BumpVersion();
  logger_->info("txn {}: {} (producer {} epoch {}, {} partition(s), {} group(s))",
                txn.id, commit ? "committed" : "aborted", txn.producer_id,
                marker_epoch, txn.partitions.size(), txn.groups.size());
  txn.state = commit ? State::kCompleteCommit : State::kCompleteAbort;
  txn.partitions.clear();
  txn.groups.clear();
}

InitProducerIdResult TxnCoordinator::InitProducerId(
    const std::optional<std::string>& transactional_id, int32_t timeout_ms,
    int64_t expected_producer_id, int16_t expected_epoch, int64_t now_ms) {
  (void)now_ms;
  InitProducerIdResult r;
  if (!transactional_id.has_value() || transactional_id->empty()) {
    if (expected_producer_id >= 0 && expected_epoch >= 0 &&
        expected_epoch < std::numeric_limits<int16_t>::max() - 1) {
      r.producer_id = expected_producer_id;
      r.producer_epoch = static_cast<int16_t>(expected_epoch + 1);
    } else {
      r.producer_id = next_producer_id_++;
      r.producer_epoch = 0;
    }
    return r;
  }
  if (timeout_ms <= 0 || timeout_ms > options_.transaction_timeout_max_ms) {
    r.error = Err::kInvalidTransactionTimeout;
    return r;
  }
  Txn* txn = Find(*transactional_id);
  if (txn == nullptr) {
    Txn t;
    t.id = *transactional_id;
    t.producer_id = next_producer_id_++;
    t.epoch = 0;
    t.timeout_ms = timeout_ms;
    txn_by_producer_[t.producer_id] = t.id;
    txn = &txns_.emplace(t.id, std::move(t)).first->second;
    logger_->info("txn {}: registered producer {} epoch 0", txn->id,
                  txn->producer_id);
  } else {
    if (expected_producer_id >= 0 &&
        (expected_producer_id != txn->producer_id ||
         expected_epoch != txn->epoch)) {
      r.error = Err::kInvalidProducerEpoch;
      return r;
    }
    int64_t old_pid = txn->producer_id;
    BumpEpoch(*txn);
    if (txn->state == State::kOngoing) {
      // The previous incarnation left a transaction open: abort it with the
      // new epoch so its writes are fenced.
      int64_t new_pid = txn->producer_id;
      txn->producer_id = old_pid;
      Complete(*txn, /*commit=*/false,
               old_pid == new_pid ? txn->epoch
                                  : std::numeric_limits<int16_t>::max());
      txn->producer_id = new_pid;
    }
    txn->state = State::kEmpty;
    txn->timeout_ms = timeout_ms;
    logger_->info("txn {}: producer {} now at epoch {} (older epochs fenced)",
                  txn->id, txn->producer_id, txn->epoch);
  }
  r.producer_id = txn->producer_id;
  r.producer_epoch = txn->epoch;
  return r;
}

std::vector<Err> TxnCoordinator::AddPartitions(
    const std::string& transactional_id, int64_t producer_id, int16_t epoch,
    const std::vector<TopicPartition>& partitions, int64_t now_ms) {
  Txn* txn = Find(transactional_id);
  Err e = Validate(txn, producer_id, epoch);
  if (e != Err::kNone) return std::vector<Err>(partitions.size(), e);
  std::vector<Err> result(partitions.size(), Err::kNone);
  bool any_unknown = false;
  for (size_t i = 0; i < partitions.size(); ++i) {
    if (logs_->GetPartition(partitions[i].topic, partitions[i].partition) ==
        nullptr) {
      result[i] = Err::kUnknownTopicOrPartition;
      any_unknown = true;
    }
  }
  if (any_unknown) {
    for (Err& r : result) {
      if (r == Err::kNone) r = Err::kOperationNotAttempted;
    }
    return result;
  }
  BeginIfNeeded(*txn, now_ms);
  for (const TopicPartition& tp : partitions) txn->partitions.insert(tp);
  return result;
}

Err TxnCoordinator::AddOffsets(const std::string& transactional_id,
                               int64_t producer_id, int16_t epoch,
                               const std::string& group_id, int64_t now_ms) {
  Txn* txn = Find(transactional_id);
  Err e = Validate(txn, producer_id, epoch);
  if (e != Err::kNone) return e;
  if (group_id.empty()) return Err::kInvalidGroupId;
  BeginIfNeeded(*txn, now_ms);
  txn->groups.insert(group_id);
  return Err::kNone;
}

Err TxnCoordinator::TxnOffsetCommit(const std::string& transactional_id,
                                    const std::string& group_id,
                                    int64_t producer_id, int16_t epoch,
                                    const OffsetCommitter& committer,
                                    const OffsetMap& offsets) {
  Txn* txn = Find(transactional_id);
  Err e = Validate(txn, producer_id, epoch);
  if (e != Err::kNone) return e;
  if (txn->state != State::kOngoing || !txn->groups.count(group_id)) {
    return Err::kInvalidTxnState;
  }
  e = groups_->ValidateTxnOffsetCommit(group_id, committer);
  if (e != Err::kNone) return e;
  groups_->AddPendingTxnOffsets(group_id, producer_id, offsets);
  return Err::kNone;
}

Err TxnCoordinator::EndTxn(const std::string& transactional_id,
                           int64_t producer_id, int16_t epoch, bool commit,
                           int64_t now_ms) {
  (void)now_ms;
  Txn* txn = Find(transactional_id);
  Err e = Validate(txn, producer_id, epoch);
  if (e != Err::kNone) return e;
  switch (txn->state) {
    case State::kOngoing:
      Complete(*txn, commit, txn->epoch);
      return Err::kNone;
    case State::kCompleteCommit:
      return commit ? Err::kNone : Err::kInvalidTxnState;
    case State::kCompleteAbort:
      return commit ? Err::kInvalidTxnState : Err::kNone;
    case State::kEmpty:
      return Err::kInvalidTxnState;
  }
  return Err::kInvalidTxnState;
}

Err TxnCoordinator::CheckTransactionalProduce(int64_t producer_id,
                                              int16_t epoch,
                                              const std::string& topic,
                                              int32_t partition) {
  auto it = txn_by_producer_.find(producer_id);
  if (it == txn_by_producer_.end()) return Err::kInvalidTxnState;
  Txn* txn = Find(it->second);
  if (txn == nullptr) return Err::kInvalidTxnState;
  if (epoch != txn->epoch) return Err::kInvalidProducerEpoch;
  if (txn->state != State::kOngoing ||
      !txn->partitions.count(TopicPartition{topic, partition})) {
    return Err::kInvalidTxnState;
  }
  return Err::kNone;
}

void TxnCoordinator::Tick(int64_t now_ms) {
  for (auto& [id, txn] : txns_) {
    if (txn.state != State::kOngoing) continue;
    if (now_ms - txn.start_ms <= txn.timeout_ms) continue;
    logger_->warn("txn {}: open for more than {} ms: aborting and fencing "
                  "producer {} epoch {}",
                  id, txn.timeout_ms, txn.producer_id, txn.epoch);
    int64_t old_pid = txn.producer_id;
    BumpEpoch(txn);
    int64_t new_pid = txn.producer_id;
    txn.producer_id = old_pid;
    Complete(txn, /*commit=*/false,
             old_pid == new_pid ? txn.epoch
                                : std::numeric_limits<int16_t>::max());
    txn.producer_id = new_pid;
  }
}

}  // namespace devbroker
