// Consumer-group coordinator: membership, generations, rebalances driven by
// the classic JoinGroup/SyncGroup protocol, session timeouts, committed
// offsets and pending transactional offsets.

#ifndef DEVBROKER_GROUP_COORDINATOR_H_
#define DEVBROKER_GROUP_COORDINATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "devbroker/protocol.h"

namespace spdlog {
class logger;
}

namespace devbroker {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

struct CommittedOffset {
  int64_t offset = -1;
  int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
};

using OffsetMap = std::map<TopicPartition, CommittedOffset>;

// Who commits offsets: the consumer group metadata carried by OffsetCommit
// and by TxnOffsetCommit v3 (KIP-447). Generation -1 with an empty member id
// and no instance id means "not a group member": a simple commit, or a
// transactional commit of a v0-2 client or of a producer that has no
// consumer group metadata.
struct OffsetCommitter {
  int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  bool IsMember() const {
    return generation_id >= 0 || !member_id.empty() || group_instance_id.has_value();
  }
};

struct JoinGroupParams {
  std::string group_id;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::string member_id;  // empty for a new member
  // group.instance.id (JoinGroup v5+): static membership (KIP-345). A join
  // without member id of a known instance id replaces that instance's member
  // (no rebalance when the group is stable and its selected protocol stays);
  // the replaced member id is FENCED_INSTANCE_ID from then on.
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  std::string protocol_type;
  std::vector<std::pair<std::string, std::string>> protocols;  // name, metadata
};

struct JoinGroupResult {
  Err error = Err::kNone;
  int32_t generation_id = -1;
  std::string protocol_name;
  std::string leader_id;
  std::string member_id;
  // Filled for the leader only: (member id, metadata of chosen protocol).
  std::vector<std::pair<std::string, std::string>> members;
};

struct SyncGroupResult {
  Err error = Err::kNone;
  std::string assignment;
};

struct GroupMemberDescription {
  std::string member_id;
  std::string client_id;
  std::string client_host;
  std::string metadata;
  std::string assignment;
};

struct GroupDescription {
  Err error = Err::kNone;
  std::string group_id;
  std::string state;  // Empty, PreparingRebalance, CompletingRebalance, ...
  std::string protocol_type;
  std::string protocol_name;
  std::vector<GroupMemberDescription> members;
};

using JoinCallback = std::function<void(const JoinGroupResult&)>;
using SyncCallback = std::function<void(const SyncGroupResult&)>;

// Thread-safety: not thread-safe; owned and used by the broker loop thread.
// Callbacks run synchronously on that thread, possibly from inside the call
// that registered them, and must not re-enter the coordinator.
class GroupCoordinator {
 public:
  struct Options {
    int32_t session_min_ms = 1000;
    int32_t session_max_ms = 1800000;
    int32_t initial_rebalance_delay_ms = 0;
  };

  GroupCoordinator(Options options, spdlog::logger* logger);
  GroupCoordinator(const GroupCoordinator&) = delete;
  GroupCoordinator& operator=(const GroupCoordinator&) = delete;

  // Joins (or rejoins) a member and starts a rebalance. `done` is invoked
  // exactly once: immediately on validation errors, otherwise when the
  // rebalance completes (all members rejoined or the rebalance timeout hit).
  // A static member's restart (known group.instance.id, no member id) in a
  // stable group whose selected protocol stays is answered at once, with the
  // current generation and without a rebalance. Errors also:
  // FENCED_INSTANCE_ID (a member id whose instance id belongs to a newer one).
  void JoinGroup(const JoinGroupParams& params, int64_t now_ms, JoinCallback done);

  // Completes the sync phase. `done` is invoked exactly once: at once on
  // errors or when the group is already stable, else when the leader's
  // assignment arrives (or REBALANCE_IN_PROGRESS if a new rebalance starts).
  void SyncGroup(const std::string& group_id, int32_t generation_id, const std::string& member_id,
                 const std::optional<std::string>& group_instance_id,
                 const std::vector<std::pair<std::string, std::string>>& assignments,
                 int64_t now_ms, SyncCallback done);

  // Refreshes the member's session. Errors: UNKNOWN_MEMBER_ID,
  // FENCED_INSTANCE_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS (the
  // member must rejoin).
  Err Heartbeat(const std::string& group_id, int32_t generation_id, const std::string& member_id,
                const std::optional<std::string>& group_instance_id, int64_t now_ms);

  // Removes the member and triggers a rebalance of the rest.
  Err LeaveGroup(const std::string& group_id, const std::string& member_id, int64_t now_ms);

  // OffsetCommit: validates the committer as Kafka does and stores the
  // offsets. A member must be known (else UNKNOWN_MEMBER_ID, or
  // FENCED_INSTANCE_ID if its group.instance.id now belongs to a newer
  // member) and at the current generation (else ILLEGAL_GENERATION); a
  // group in CompletingRebalance answers REBALANCE_IN_PROGRESS (commits
  // during PreparingRebalance are accepted, so that members can commit
  // before they rejoin). A non-member ("simple") commit is accepted only
  // while the group has no members, else UNKNOWN_MEMBER_ID. Errors also:
  // INVALID_GROUP_ID. On error nothing is stored.
  Err CommitOffsets(const std::string& group_id, const OffsetCommitter& who,
                    const OffsetMap& offsets, int64_t now_ms);

  // TxnOffsetCommit (KIP-447): validates the committer against the group's
  // generation and members at the time the request arrives. A member must
  // be known and current (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
  // ILLEGAL_GENERATION, as for CommitOffsets; no state check). A
  // non-member (v0-2 request, or a producer without consumer group
  // metadata) is not validated, as in Kafka. Returns NONE when accepted.
  Err ValidateTxnOffsetCommit(const std::string& group_id, const OffsetCommitter& who) const;

  // True if a transactional producer has sent an offset for tp in this
  // group that is neither committed nor aborted yet (OffsetFetch v7
  // require_stable answers UNSTABLE_OFFSET_COMMIT for it).
  bool HasPendingTxnOffset(const std::string& group_id, const TopicPartition& tp) const;

  // Committed offset of one partition, or nullopt.
  std::optional<CommittedOffset> FetchOffset(const std::string& group_id,
                                             const TopicPartition& tp) const;
  // All committed offsets of the group.
  OffsetMap FetchAllOffsets(const std::string& group_id) const;

  // Stores offsets written by a transactional producer; they stay invisible
  // until CompleteTxnOffsets(commit=true).
  void AddPendingTxnOffsets(const std::string& group_id, int64_t producer_id,
                            const OffsetMap& offsets);
  // Makes the producer's pending offsets visible (commit) or drops them.
  void CompleteTxnOffsets(const std::string& group_id, int64_t producer_id, bool commit);

  GroupDescription Describe(const std::string& group_id) const;
  // (group id, protocol type) of every known group.
  std::vector<std::pair<std::string, std::string>> ListGroups() const;

  // Expires members whose session timed out and completes rebalances whose
  // timeout or initial delay elapsed.
  void Tick(int64_t now_ms);

 private:
  enum class State { kEmpty, kPreparingRebalance, kCompletingRebalance, kStable };

  struct Member {
    std::string id;
    std::string client_id;
    std::string client_host;
    int32_t session_timeout_ms = 0;
    int32_t rebalance_timeout_ms = 0;
    std::string protocol_type;
    std::vector<std::pair<std::string, std::string>> protocols;
    std::optional<std::string> group_instance_id;
    std::string assignment;
    JoinCallback join_cb;  // set while awaiting the join response
    SyncCallback sync_cb;  // set while awaiting the sync response
    int64_t last_seen_ms = 0;
    uint64_t join_order = 0;
  };

  struct Group {
    std::string id;
    State state = State::kEmpty;
    int32_t generation = 0;
    std::string protocol_type;
    std::string protocol_name;
    std::string leader_id;
    std::map<std::string, Member> members;
    int64_t rebalance_deadline_ms = 0;
    int64_t join_not_before_ms = 0;
    OffsetMap offsets;
    std::map<int64_t, OffsetMap> pending_txn_offsets;
    // group.instance.id -> the member id that joined with it last.
    std::map<std::string, std::string> instance_members;
  };

  static const char* StateName(State s);
  Group& GetOrCreate(const std::string& group_id);
  void PrepareRebalance(Group& g, int64_t now_ms, const char* reason);
  void MaybeCompleteJoin(Group& g, int64_t now_ms);
  void CompleteJoin(Group& g, int64_t now_ms);
  void RemoveMember(Group& g, const std::string& member_id, int64_t now_ms, const char* reason);
  std::string SelectProtocol(const Group& g) const;
  // A restarted static member takes over `old_id`'s place and assignment.
  void ReplaceStaticMember(Group& g, const std::string& old_id, const JoinGroupParams& p,
                           int64_t now_ms, JoinCallback done);
  // FENCED_INSTANCE_ID when `instance_id` now belongs to another member id.
  Err ValidateInstance(const Group& g, const std::string& member_id,
                       const std::optional<std::string>& instance_id) const;
  // Kafka's membership check of an offset commit (see CommitOffsets).
  Err ValidateCommitter(const Group& g, const OffsetCommitter& who, bool transactional) const;
  std::string NewMemberId(const std::string& client_id);

  Options options_;
  spdlog::logger* logger_;
  std::map<std::string, Group> groups_;
  uint64_t next_join_order_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace devbroker

#endif  // DEVBROKER_GROUP_COORDINATOR_H_
