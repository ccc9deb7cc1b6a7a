#include "devbroker/group_coordinator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <set>

namespace devbroker {

GroupCoordinator::GroupCoordinator(Options options, spdlog::logger* logger)
    : options_(options), logger_(logger), rng_(std::random_device{}()) {}

const char* GroupCoordinator::StateName(State s) {
  switch (s) {
    case State::kEmpty:
      return "Empty";
    case State::kPreparingRebalance:
      return "PreparingRebalance";
    case State::kCompletingRebalance:
      return "CompletingRebalance";
    case State::kStable:
      return "Stable";
  }
  return "Dead";
}

GroupCoordinator::Group& GroupCoordinator::GetOrCreate(const std::string& group_id) {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) {
    it = groups_.emplace(group_id, Group{}).first;
    it->second.id = group_id;
  }
  return it->second;
}

std::string GroupCoordinator::NewMemberId(const std::string& client_id) {
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), "%016llx", static_cast<unsigned long long>(rng_()));
  return (client_id.empty() ? std::string("member") : client_id) + "-" + suffix;
}

void GroupCoordinator::JoinGroup(const JoinGroupParams& p, int64_t now_ms, JoinCallback done) {
  JoinGroupResult err_result;
  err_result.member_id = p.member_id;
  if (p.group_id.empty()) {
    err_result.error = Err::kInvalidGroupId;
    done(err_result);
    return;
  }
  if (p.session_timeout_ms < options_.session_min_ms ||
      p.session_timeout_ms > options_.session_max_ms) {
    err_result.error = Err::kInvalidSessionTimeout;
    done(err_result);
    return;
  }
  if (p.protocols.empty() || p.protocol_type.empty()) {
    err_result.error = Err::kInconsistentGroupProtocol;
    done(err_result);
    return;
  }
  Group& g = GetOrCreate(p.group_id);
  if (!g.members.empty()) {
    if (p.protocol_type != g.protocol_type) {
      err_result.error = Err::kInconsistentGroupProtocol;
      done(err_result);
      return;
    }
    // Every current member (other than this one) must share a protocol.
    bool compatible = false;
    for (const auto& [name, meta] : p.protocols) {
      bool all = true;
      for (const auto& [id, m] : g.members) {
        if (id == p.member_id) continue;
        bool has = std::any_of(m.protocols.begin(), m.protocols.end(),
                               [&](const auto& pr) { return pr.first == name; });
        if (!has) {
          all = false;
          break;
        }
      }
      if (all) {
        compatible = true;
        break;
      }
    }
    if (!compatible) {
      err_result.error = Err::kInconsistentGroupProtocol;
      done(err_result);
      return;
    }
  }

  // Static membership (KIP-345): a known group.instance.id joining without
  // a member id is a restart of that member: it replaces the old member.
  if (p.group_instance_id.has_value()) {
    auto inst = g.instance_members.find(*p.group_instance_id);
    const bool known = inst != g.instance_members.end() && g.members.count(inst->second) != 0;
    if (!p.member_id.empty() && known && inst->second != p.member_id) {
      err_result.error = Err::kFencedInstanceId;
      done(err_result);
      return;
    }
    if (p.member_id.empty() && known) {
      ReplaceStaticMember(g, inst->second, p, now_ms, std::move(done));
      return;
    }
  }

  Member* member = nullptr;
  if (p.member_id.empty()) {
    std::string id = NewMemberId(p.client_id);
    Member m;
    m.id = id;
    m.join_order = next_join_order_++;
    member = &g.members.emplace(id, std::move(m)).first->second;
    logger_->info("group {}: member {} joins (generation {}, state {})", g.id, id, g.generation,
                  StateName(g.state));
  } else {
    auto it = g.members.find(p.member_id);
    if (it == g.members.end()) {
      err_result.error = Err::kUnknownMemberId;
      done(err_result);
      return;
    }
    member = &it->second;
  }
  if (g.members.size() == 1) g.protocol_type = p.protocol_type;
  if (p.group_instance_id.has_value()) {
    member->group_instance_id = p.group_instance_id;
    g.instance_members[*p.group_instance_id] = member->id;
  }
  member->client_id = p.client_id;
  member->client_host = p.client_host;
  member->session_timeout_ms = p.session_timeout_ms;
  member->rebalance_timeout_ms =
      p.rebalance_timeout_ms > 0 ? p.rebalance_timeout_ms : p.session_timeout_ms;
  member->protocol_type = p.protocol_type;
  member->protocols = p.protocols;
  member->last_seen_ms = now_ms;
  if (member->join_cb) {
    // A duplicate join from the same member replaces the older one.
    JoinGroupResult dup;
    dup.error = Err::kRebalanceInProgress;
    dup.member_id = member->id;
    JoinCallback old = std::move(member->join_cb);
    member->join_cb = nullptr;
    old(dup);
  }
  member->join_cb = std::move(done);
  if (g.state != State::kPreparingRebalance) {
    PrepareRebalance(g, now_ms, "member join");
  }
  MaybeCompleteJoin(g, now_ms);
}

void GroupCoordinator::ReplaceStaticMember(Group& g, const std::string& old_id,
                                           const JoinGroupParams& p, int64_t now_ms,
                                           JoinCallback done) {
  auto old_it = g.members.find(old_id);
  Member member = std::move(old_it->second);
  g.members.erase(old_it);
  // The old incarnation's pending requests are answered FENCED_INSTANCE_ID,
  // as are its later heartbeats, syncs and commits (ValidateInstance).
  if (member.join_cb) {
    JoinGroupResult fenced;
    fenced.error = Err::kFencedInstanceId;
    fenced.member_id = old_id;
    JoinCallback cb = std::move(member.join_cb);
    member.join_cb = nullptr;
    cb(fenced);
  }
  if (member.sync_cb) {
    SyncCallback cb = std::move(member.sync_cb);
    member.sync_cb = nullptr;
    cb(SyncGroupResult{Err::kFencedInstanceId, {}});
  }
  const std::string previous_leader = g.leader_id;
  member.id = NewMemberId(p.client_id);
  member.client_id = p.client_id;
  member.client_host = p.client_host;
  member.session_timeout_ms = p.session_timeout_ms;
  member.rebalance_timeout_ms =
      p.rebalance_timeout_ms > 0 ? p.rebalance_timeout_ms : p.session_timeout_ms;
  member.protocols = p.protocols;
  member.last_seen_ms = now_ms;
  const std::string new_id = member.id;
  if (g.leader_id == old_id) g.leader_id = new_id;
  g.instance_members[*p.group_instance_id] = new_id;
  Member& replaced = g.members.emplace(new_id, std::move(member)).first->second;
  logger_->info("group {}: static member {} (instance {}) replaced by {} (state {})", g.id, old_id,
                *p.group_instance_id, new_id, StateName(g.state));

  // As Kafka: only a change of the group's selected protocol rebalances; new
  // metadata (a restarted cooperative member owns no partitions yet) does not.
  if (g.state == State::kStable && SelectProtocol(g) == g.protocol_name) {
    // No rebalance: the member gets the current generation and, at SyncGroup,
    // its predecessor's assignment. The leader id answered is the one before
    // the replacement, so a restarted leader does not compute a new
    // assignment that a stable group would never hand out (as Kafka does).
    JoinGroupResult r;
    r.generation_id = g.generation;
    r.protocol_name = g.protocol_name;
    r.leader_id = previous_leader;
    r.member_id = new_id;
    done(r);
    return;
  }
  replaced.join_cb = std::move(done);
  if (g.state != State::kPreparingRebalance) {
    // CompletingRebalance: the leader may have assigned the old member id;
    // Stable with a changed protocol: the assignment must be recomputed.
    PrepareRebalance(g, now_ms, "static member replaced");
  }
  MaybeCompleteJoin(g, now_ms);
}

Err GroupCoordinator::ValidateInstance(const Group& g, const std::string& member_id,
                                       const std::optional<std::string>& instance_id) const {
  if (!instance_id.has_value()) return Err::kNone;
  auto inst = g.instance_members.find(*instance_id);
  if (inst != g.instance_members.end() && inst->second != member_id) {
    return Err::kFencedInstanceId;
  }
  return Err::kNone;
}

void GroupCoordinator::PrepareRebalance(Group& g, int64_t now_ms, const char* reason) {
  if (g.state == State::kCompletingRebalance) {
    for (auto& [id, m] : g.members) {
      if (m.sync_cb) {
        SyncCallback cb = std::move(m.sync_cb);
        m.sync_cb = nullptr;
        cb(SyncGroupResult{Err::kRebalanceInProgress, {}});
      }
    }
  }
  int32_t timeout = 0;
  for (const auto& [id, m] : g.members) {
    timeout = std::max(timeout, m.rebalance_timeout_ms);
  }
  if (g.state == State::kEmpty) {
    g.join_not_before_ms = now_ms + options_.initial_rebalance_delay_ms;
  } else {
    g.join_not_before_ms = 0;
  }
  g.state = State::kPreparingRebalance;
  g.rebalance_deadline_ms = now_ms + timeout;
  logger_->info("group {}: preparing rebalance ({}), {} member(s)", g.id, reason, g.members.size());
}

void GroupCoordinator::MaybeCompleteJoin(Group& g, int64_t now_ms) {
  if (g.state != State::kPreparingRebalance) return;
  if (now_ms < g.join_not_before_ms) return;
  bool all_joined = std::all_of(g.members.begin(), g.members.end(),
                                [](const auto& kv) { return !!kv.second.join_cb; });
  if (all_joined || now_ms >= g.rebalance_deadline_ms) CompleteJoin(g, now_ms);
}

std::string GroupCoordinator::SelectProtocol(const Group& g) const {
  // Candidates: protocols every member supports. Each member votes for its
  // most preferred candidate; most votes wins (ties: leader's preference).
  std::set<std::string> candidates;
  bool first = true;
  for (const auto& [id, m] : g.members) {
    std::set<std::string> names;
    for (const auto& pr : m.protocols) names.insert(pr.first);
    if (first) {
      candidates = names;
      first = false;
    } else {
      std::set<std::string> inter;
      std::set_intersection(candidates.begin(), candidates.end(), names.begin(), names.end(),
                            std::inserter(inter, inter.begin()));
      candidates = std::move(inter);
    }
  }
  if (candidates.empty()) return std::string();
  std::map<std::string, int> votes;
  for (const auto& [id, m] : g.members) {
    for (const auto& pr : m.protocols) {
      if (candidates.count(pr.first)) {
        ++votes[pr.first];
        break;
      }
    }
  }
  std::string best;
  int best_votes = -1;
  auto leader = g.members.find(g.leader_id);
  const Member& pref = leader != g.members.end() ? leader->second : g.members.begin()->second;
  for (const auto& pr : pref.protocols) {
    if (!candidates.count(pr.first)) continue;
    if (votes[pr.first] > best_votes) {
      best = pr.first;
      best_votes = votes[pr.first];
    }
  }
  return best;
}

void GroupCoordinator::CompleteJoin(Group& g, int64_t now_ms) {
  // Members that did not rejoin in time are dropped.
  for (auto it = g.members.begin(); it != g.members.end();) {
    if (!it->second.join_cb) {
      logger_->info("group {}: member {} removed: did not rejoin in time", g.id, it->first);
      it = g.members.erase(it);
    } else {
      ++it;
    }
  }
  ++g.generation;
  if (g.members.empty()) {
    g.state = State::kEmpty;
    g.leader_id.clear();
    g.protocol_name.clear();
    logger_->info("group {}: now empty (generation {})", g.id, g.generation);
    return;
  }
  if (!g.members.count(g.leader_id)) {
    const Member* first = nullptr;
    for (const auto& [id, m] : g.members) {
      if (first == nullptr || m.join_order < first->join_order) first = &m;
    }
    g.leader_id = first->id;
  }
  g.protocol_name = SelectProtocol(g);
  g.state = State::kCompletingRebalance;
  logger_->info("group {}: generation {} formed with {} member(s), protocol {}, leader {}", g.id,
                g.generation, g.members.size(), g.protocol_name, g.leader_id);

  std::vector<std::pair<std::string, std::string>> all;
  for (const auto& [id, m] : g.members) {
    for (const auto& pr : m.protocols) {
      if (pr.first == g.protocol_name) {
        all.emplace_back(id, pr.second);
        break;
      }
    }
  }
  // Collect callbacks first: they must not observe a half-updated group.
  std::vector<std::pair<JoinCallback, JoinGroupResult>> calls;
  for (auto& [id, m] : g.members) {
    JoinGroupResult r;
    r.generation_id = g.generation;
    r.protocol_name = g.protocol_name;
    r.leader_id = g.leader_id;
    r.member_id = id;
    if (id == g.leader_id) r.members = all;
    m.assignment.clear();
    m.last_seen_ms = now_ms;
    calls.emplace_back(std::move(m.join_cb), std::move(r));
    m.join_cb = nullptr;
  }
  for (auto& [cb, r] : calls) cb(r);
}

void GroupCoordinator::SyncGroup(
    const std::string& group_id, int32_t generation_id, const std::string& member_id,
    const std::optional<std::string>& group_instance_id,
    const std::vector<std::pair<std::string, std::string>>& assignments, int64_t now_ms,
    SyncCallback done) {
  auto git = groups_.find(group_id);
  if (git == groups_.end()) {
    done(SyncGroupResult{Err::kUnknownMemberId, {}});
    return;
  }
  Group& g = git->second;
  if (Err fenced = ValidateInstance(g, member_id, group_instance_id); fenced != Err::kNone) {
    done(SyncGroupResult{fenced, {}});
    return;
  }
  auto mit = g.members.find(member_id);
  if (mit == g.members.end()) {
    done(SyncGroupResult{Err::kUnknownMemberId, {}});
    return;
  }
  Member& m = mit->second;
  m.last_seen_ms = now_ms;
  if (generation_id != g.generation) {
    done(SyncGroupResult{Err::kIllegalGeneration, {}});
    return;
  }
  if (g.state == State::kPreparingRebalance) {
    done(SyncGroupResult{Err::kRebalanceInProgress, {}});
    return;
  }
  if (g.state == State::kStable) {
    done(SyncGroupResult{Err::kNone, m.assignment});
    return;
  }
  // CompletingRebalance.
  if (m.sync_cb) {
    SyncCallback old = std::move(m.sync_cb);
    old(SyncGroupResult{Err::kRebalanceInProgress, {}});
  }
  m.sync_cb = std::move(done);
  if (member_id != g.leader_id) return;
  for (auto& [id, mem] : g.members) mem.assignment.clear();
  for (const auto& [id, assignment] : assignments) {
    auto it = g.members.find(id);
    if (it != g.members.end()) it->second.assignment = assignment;
  }
  g.state = State::kStable;
  logger_->info("group {}: generation {} stable", g.id, g.generation);
  std::vector<std::pair<SyncCallback, SyncGroupResult>> calls;
  for (auto& [id, mem] : g.members) {
    if (mem.sync_cb) {
      calls.emplace_back(std::move(mem.sync_cb), SyncGroupResult{Err::kNone, mem.assignment});
      mem.sync_cb = nullptr;
    }
  }
  for (auto& [cb, r] : calls) cb(r);
}

Err GroupCoordinator::Heartbeat(const std::string& group_id, int32_t generation_id,
                                const std::string& member_id,
                                const std::optional<std::string>& group_instance_id,
                                int64_t now_ms) {
  auto git = groups_.find(group_id);
  if (git == groups_.end()) return Err::kUnknownMemberId;
  Group& g = git->second;
  if (Err fenced = ValidateInstance(g, member_id, group_instance_id); fenced != Err::kNone) {
    return fenced;
  }
  auto mit = g.members.find(member_id);
  if (mit == g.members.end()) return Err::kUnknownMemberId;
  mit->second.last_seen_ms = now_ms;
  if (g.state == State::kPreparingRebalance) return Err::kRebalanceInProgress;
  if (generation_id != g.generation) return Err::kIllegalGeneration;
  return Err::kNone;
}

Err GroupCoordinator::LeaveGroup(const std::string& group_id, const std::string& member_id,
                                 int64_t now_ms) {
  auto git = groups_.find(group_id);
  if (git == groups_.end()) return Err::kUnknownMemberId;
  if (!git->second.members.count(member_id)) return Err::kUnknownMemberId;
  RemoveMember(git->second, member_id, now_ms, "left the group");
  return Err::kNone;
}

void GroupCoordinator::RemoveMember(Group& g, const std::string& member_id, int64_t now_ms,
                                    const char* reason) {
  auto it = g.members.find(member_id);
  if (it == g.members.end()) return;
  logger_->info("group {}: member {} {}", g.id, member_id, reason);
  if (it->second.group_instance_id.has_value()) {
    auto inst = g.instance_members.find(*it->second.group_instance_id);
    if (inst != g.instance_members.end() && inst->second == member_id) {
      g.instance_members.erase(inst);
    }
  }
  JoinCallback join_cb = std::move(it->second.join_cb);
  SyncCallback sync_cb = std::move(it->second.sync_cb);
  g.members.erase(it);
  if (join_cb) {
    JoinGroupResult r;
    r.error = Err::kUnknownMemberId;
    r.member_id = member_id;
    join_cb(r);
  }
  if (sync_cb) sync_cb(SyncGroupResult{Err::kUnknownMemberId, {}});
  if (g.state == State::kStable || g.state == State::kCompletingRebalance) {
    PrepareRebalance(g, now_ms, "member removed");
  }
  MaybeCompleteJoin(g, now_ms);
}

Err GroupCoordinator::ValidateCommitter(const Group& g, const OffsetCommitter& who,
                                        bool transactional) const {
  if (who.IsMember()) {
    if (Err fenced = ValidateInstance(g, who.member_id, who.group_instance_id);
        fenced != Err::kNone) {
      return fenced;
    }
    if (!g.members.count(who.member_id)) return Err::kUnknownMemberId;
    if (who.generation_id != g.generation) return Err::kIllegalGeneration;
    return Err::kNone;
  }
  // Not a member. Transactional commits of v0-2 clients carry no group
  // metadata, so Kafka accepts them; a plain commit must not overwrite the
  // offsets of a group whose members own the partitions.
  if (!transactional && !g.members.empty()) return Err::kUnknownMemberId;
  return Err::kNone;
}

Err GroupCoordinator::CommitOffsets(const std::string& group_id, const OffsetCommitter& who,
                                    const OffsetMap& offsets, int64_t now_ms) {
  if (group_id.empty()) return Err::kInvalidGroupId;
  Group& g = GetOrCreate(group_id);
  Err err = ValidateCommitter(g, who, /*transactional=*/false);
  if (err != Err::kNone) {
    logger_->info(
        "group {}: OffsetCommit by member '{}' generation {} rejected: {} "
        "(group generation {}, state {})",
        g.id, who.member_id, who.generation_id, ErrName(err), g.generation, StateName(g.state));
    return err;
  }
  if (g.state == State::kCompletingRebalance) return Err::kRebalanceInProgress;
  if (who.IsMember()) g.members.at(who.member_id).last_seen_ms = now_ms;
  for (const auto& [tp, off] : offsets) g.offsets[tp] = off;
  return Err::kNone;
}

Err GroupCoordinator::ValidateTxnOffsetCommit(const std::string& group_id,
                                              const OffsetCommitter& who) const {
  auto git = groups_.find(group_id);
  if (git == groups_.end()) {
    // An unknown group has no members: only a non-member commit is valid.
    return who.IsMember() ? Err::kUnknownMemberId : Err::kNone;
  }
  Err err = ValidateCommitter(git->second, who, /*transactional=*/true);
  if (err != Err::kNone) {
    logger_->info(
        "group {}: TxnOffsetCommit by member '{}' generation {} rejected: {} "
        "(group generation {}, state {})",
        group_id, who.member_id, who.generation_id, ErrName(err), git->second.generation,
        StateName(git->second.state));
  }
  return err;
}

bool GroupCoordinator::HasPendingTxnOffset(const std::string& group_id,
                                           const TopicPartition& tp) const {
  auto git = groups_.find(group_id);
  if (git == groups_.end()) return false;
  for (const auto& [pid, offsets] : git->second.pending_txn_offsets) {
    if (offsets.count(tp)) return true;
  }
  return false;
}

std::optional<CommittedOffset> GroupCoordinator::FetchOffset(const std::string& group_id,
                                                             const TopicPartition& tp) const {
  auto git = groups_.find(group_id);
  if (git == groups_.end()) return std::nullopt;
  auto it = git->second.offsets.find(tp);
  if (it == git->second.offsets.end()) return std::nullopt;
  return it->second;
}

OffsetMap GroupCoordinator::FetchAllOffsets(const std::string& group_id) const {
  auto git = groups_.find(group_id);
  if (git == groups_.end()) return {};
  return git->second.offsets;
}

void GroupCoordinator::AddPendingTxnOffsets(const std::string& group_id, int64_t producer_id,
                                            const OffsetMap& offsets) {
  Group& g = GetOrCreate(group_id);
  OffsetMap& pending = g.pending_txn_offsets[producer_id];
  for (const auto& [tp, off] : offsets) pending[tp] = off;
}

void GroupCoordinator::CompleteTxnOffsets(const std::string& group_id, int64_t producer_id,
                                          bool commit) {
  auto git = groups_.find(group_id);
  if (git == groups_.end()) return;
  Group& g = git->second;
  auto pit = g.pending_txn_offsets.find(producer_id);
  if (pit == g.pending_txn_offsets.end()) return;
  if (commit) {
    for (const auto& [tp, off] : pit->second) g.offsets[tp] = off;
  }
  logger_->debug("group {}: {} {} transactional offset(s) of producer {}", g.id,
                 commit ? "committed" : "discarded", pit->second.size(), producer_id);
  g.pending_txn_offsets.erase(pit);
}

GroupDescription GroupCoordinator::Describe(const std::string& group_id) const {
  GroupDescription d;
  d.group_id = group_id;
  auto git = groups_.find(group_id);
  if (git == groups_.end()) {
    d.state = "Dead";
    return d;
  }
  const Group& g = git->second;
  d.state = StateName(g.state);
  d.protocol_type = g.protocol_type;
  d.protocol_name = g.protocol_name;
  for (const auto& [id, m] : g.members) {
    GroupMemberDescription md;
    md.member_id = id;
    md.client_id = m.client_id;
    md.client_host = m.client_host;
    for (const auto& pr : m.protocols) {
      if (pr.first == g.protocol_name) md.metadata = pr.second;
    }
    md.assignment = m.assignment;
    d.members.push_back(std::move(md));
  }
  return d;
}

std::vector<std::pair<std::string, std::string>> GroupCoordinator::ListGroups() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [id, g] : groups_) out.emplace_back(id, g.protocol_type);
  return out;
}

void GroupCoordinator::Tick(int64_t now_ms) {
  for (auto& [gid, g] : groups_) {
    std::vector<std::string> expired;
    for (const auto& [id, m] : g.members) {
      if (!m.join_cb && !m.sync_cb && now_ms > m.last_seen_ms + m.session_timeout_ms) {
        expired.push_back(id);
      }
    }
    for (const std::string& id : expired) {
      RemoveMember(g, id, now_ms, "expired: session timeout");
    }
    MaybeCompleteJoin(g, now_ms);
  }
}

}  // namespace devbroker
