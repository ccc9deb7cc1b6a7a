// Internal: where standby tasks go (num.standby.replicas).
//
// librdkafka 2.0 has no public API for a custom assignor, so the group's
// assignor (range or cooperative-sticky) places the active tasks and knows
// nothing of standbys. Standbys are placed afterwards, by every instance for
// itself, from the group's membership as the coordinator describes it
// (DescribeGroups through the admin API): the members' client ids name their
// instance ("<application.id>-<instance.id>-StreamThread-<n>-consumer") and
// their assignments name the active tasks.
//
// The rule, the same on every instance for the same description: the
// instances are sorted by name; the standbys of a task whose active copy is on
// the instance at position i go to the instances at positions i+1 .. i+N
// (mod n), with N = min(num.standby.replicas, n - 1). So every task has N
// standbys, never on the instance of its active copy, and each instance keeps
// the standbys of the N instances before it: as balanced as the active
// assignment. With two instances and one standby, each instance keeps a warm
// copy of every task of the other, so a takeover restores only the tail.
//
// Thread safety: pure functions.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "streams/kafka_types.h"
#include "streams/result.h"

namespace streams::runtime::internal {

// One member of the group as DescribeGroups reports it.
struct GroupMember {
  std::string client_id;
  // Partition numbers of the source topics assigned to it (its active tasks).
  std::vector<Partition> partitions;
};

// The instance a member's client id names: the part before the last
// "-StreamThread-"; the whole client id when it has none (another client).
std::string InstanceOfClientId(std::string_view client_id);

// The tasks whose standby copies `instance` should keep (see the rule above).
// Tasks active on `instance` itself are never included.
std::set<Partition> StandbyTasksFor(const std::vector<GroupMember>& members,
                                    const std::string& instance, int num_standby_replicas);

// The members of consumer group `group` with their assignments of
// `source_topics`, asked with the admin API through `rk` (any client).
// Errors: Unavailable when the group is not stable (a rebalance is under way:
// the assignments are not final) or the request fails; TimedOut.
Result<std::vector<GroupMember>> DescribeGroupMembers(rd_kafka_t* rk, const std::string& group,
                                                      const std::set<std::string>& source_topics,
                                                      std::chrono::milliseconds timeout);

}  // namespace streams::runtime::internal
