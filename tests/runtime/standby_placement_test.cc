// Standby placement (runtime/src/standby_placement.h): deterministic, never on
// the active copy's instance, N copies per task, balanced with the actives.
#include "standby_placement.h"

#include <gtest/gtest.h>

#include <map>

namespace streams::runtime::internal {
namespace {

std::vector<Partition> Parts(std::initializer_list<int32_t> ids) {
  std::vector<Partition> out;
  for (int32_t id : ids) out.push_back(Partition(id));
  return out;
}

std::set<Partition> PartSet(std::initializer_list<int32_t> ids) {
  std::set<Partition> out;
  for (int32_t id : ids) out.insert(Partition(id));
  return out;
}

TEST(StandbyPlacementTest, InstanceOfClientIdStripsTheThreadSuffix) {
  EXPECT_EQ(InstanceOfClientId("payments-a-1f2e-StreamThread-0-consumer"), "payments-a-1f2e");
  EXPECT_EQ(InstanceOfClientId("app-x-StreamThread-3-StreamThread-12-consumer"),
            "app-x-StreamThread-3");
  EXPECT_EQ(InstanceOfClientId("rdkafka"), "rdkafka");
}

TEST(StandbyPlacementTest, TwoInstancesEachKeepEveryTaskOfTheOther) {
  const std::vector<GroupMember> members = {
      {"app-b-StreamThread-0-consumer", Parts({2, 3})},
      {"app-a-StreamThread-0-consumer", Parts({0, 1})},
  };
  EXPECT_EQ(StandbyTasksFor(members, "app-a", 1), PartSet({2, 3}));
  EXPECT_EQ(StandbyTasksFor(members, "app-b", 1), PartSet({0, 1}));
  // More replicas than other instances: still one copy each.
  EXPECT_EQ(StandbyTasksFor(members, "app-a", 3), PartSet({2, 3}));
  EXPECT_TRUE(StandbyTasksFor(members, "app-a", 0).empty());
}

TEST(StandbyPlacementTest, EveryTaskGetsNCopiesOffItsActiveInstanceBalanced) {
  const std::vector<GroupMember> members = {
      {"app-a-StreamThread-0-consumer", Parts({0, 1, 2})},
      {"app-b-StreamThread-0-consumer", Parts({3, 4, 5})},
      {"app-c-StreamThread-0-consumer", Parts({6, 7})},
      {"app-d-StreamThread-0-consumer", {}},  // Idle members keep standbys too.
  };
  const std::map<std::string, std::set<Partition>> active = {{"app-a", PartSet({0, 1, 2})},
                                                             {"app-b", PartSet({3, 4, 5})},
                                                             {"app-c", PartSet({6, 7})},
                                                             {"app-d", {}}};
  for (int replicas : {1, 2, 3}) {
    std::map<Partition, int> copies;
    for (const auto& [instance, tasks] : active) {
      const std::set<Partition> standbys = StandbyTasksFor(members, instance, replicas);
      for (Partition p : standbys) {
        EXPECT_EQ(tasks.count(p), 0u) << instance << " keeps a standby of its own task";
        ++copies[p];
      }
      // Deterministic: the same answer for the members in another order.
      std::vector<GroupMember> reversed(members.rbegin(), members.rend());
      EXPECT_EQ(StandbyTasksFor(reversed, instance, replicas), standbys);
    }
    for (int32_t p = 0; p < 8; ++p) EXPECT_EQ(copies[Partition(p)], replicas) << p;
  }
  // One replica: each instance keeps its predecessor's tasks.
  EXPECT_EQ(StandbyTasksFor(members, "app-b", 1), PartSet({0, 1, 2}));
  EXPECT_TRUE(StandbyTasksFor(members, "app-a", 1).empty());  // app-d has none.
  EXPECT_EQ(StandbyTasksFor(members, "app-d", 1), PartSet({6, 7}));
}

TEST(StandbyPlacementTest, ThreadsOfOneInstanceCountAsOneAndUnknownInstancesGetNothing) {
  const std::vector<GroupMember> members = {
      {"app-a-StreamThread-0-consumer", Parts({0})},
      {"app-a-StreamThread-1-consumer", Parts({1})},
      {"app-b-StreamThread-0-consumer", Parts({2})},
  };
  EXPECT_EQ(StandbyTasksFor(members, "app-b", 1), PartSet({0, 1}));
  EXPECT_EQ(StandbyTasksFor(members, "app-a", 1), PartSet({2}));
  EXPECT_TRUE(StandbyTasksFor(members, "app-z", 1).empty());
}

}  // namespace
}  // namespace streams::runtime::internal
