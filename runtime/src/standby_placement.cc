#include "standby_placement.h"

#include <algorithm>
#include <map>
#include <memory>

#include "kafka_util.h"

namespace streams::runtime::internal {

std::string InstanceOfClientId(std::string_view client_id) {
  constexpr std::string_view kMarker = "-StreamThread-";
  const size_t at = client_id.rfind(kMarker);
  return std::string(at == std::string_view::npos ? client_id : client_id.substr(0, at));
}

std::set<Partition> StandbyTasksFor(const std::vector<GroupMember>& members,
                                    const std::string& instance, int num_standby_replicas) {
  std::map<std::string, std::set<Partition>> active;  // Instance -> its active tasks (sorted).
  for (const GroupMember& member : members) {
    auto& tasks = active[InstanceOfClientId(member.client_id)];
    tasks.insert(member.partitions.begin(), member.partitions.end());
  }
  std::set<Partition> out;
  auto self = active.find(instance);
  if (self == active.end() || num_standby_replicas <= 0) return out;
  std::vector<std::string> instances;
  for (const auto& [name, tasks] : active) instances.push_back(name);
  const int n = static_cast<int>(instances.size());
  const int replicas = std::min(num_standby_replicas, n - 1);
  const int position =
      static_cast<int>(std::find(instances.begin(), instances.end(), instance) - instances.begin());
  for (int k = 1; k <= replicas; ++k) {
    const std::string& source = instances[(position - k + n) % n];
    for (Partition task : active.at(source)) {
      if (self->second.count(task) == 0) out.insert(task);
    }
  }
  return out;
}

Result<std::vector<GroupMember>> DescribeGroupMembers(rd_kafka_t* rk, const std::string& group,
                                                      const std::set<std::string>& source_topics,
                                                      std::chrono::milliseconds timeout) {
  std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> queue(
      rd_kafka_queue_new(rk), &rd_kafka_queue_destroy);
  std::unique_ptr<rd_kafka_AdminOptions_t, decltype(&rd_kafka_AdminOptions_destroy)> options(
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS),
      &rd_kafka_AdminOptions_destroy);
  char errstr[256] = {};
  if (rd_kafka_AdminOptions_set_request_timeout(options.get(), TimeoutMs(timeout), errstr,
                                                sizeof(errstr)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::InvalidArgument(std::string("describe group: ") + errstr);
  }
  const char* groups[] = {group.c_str()};
  rd_kafka_DescribeConsumerGroups(rk, groups, 1, options.get(), queue.get());
  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> event(
      rd_kafka_queue_poll(queue.get(), TimeoutMs(timeout + std::chrono::milliseconds(1000))),
      &rd_kafka_event_destroy);
  if (event == nullptr) return Status::TimedOut("describe group '" + group + "': no answer");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaStatus(rd_kafka_event_error(event.get()), "describe group '" + group + "'");
  }
  const rd_kafka_DescribeConsumerGroups_result_t* result =
      rd_kafka_event_DescribeConsumerGroups_result(event.get());
  size_t count = 0;
  const rd_kafka_ConsumerGroupDescription_t** descriptions =
      result != nullptr ? rd_kafka_DescribeConsumerGroups_result_groups(result, &count) : nullptr;
  if (count != 1) return Status::Unavailable("describe group '" + group + "': no description");
  const rd_kafka_ConsumerGroupDescription_t* description = descriptions[0];
  if (const rd_kafka_error_t* error = rd_kafka_ConsumerGroupDescription_error(description)) {
    return KafkaStatus(error, "describe group '" + group + "'");
  }
  if (rd_kafka_ConsumerGroupDescription_state(description) !=
      RD_KAFKA_CONSUMER_GROUP_STATE_STABLE) {
    return Status::Unavailable("group '" + group + "' is rebalancing");
  }
  std::vector<GroupMember> members;
  const size_t n = rd_kafka_ConsumerGroupDescription_member_count(description);
  for (size_t i = 0; i < n; ++i) {
    const rd_kafka_MemberDescription_t* m =
        rd_kafka_ConsumerGroupDescription_member(description, i);
    GroupMember member;
    const char* client_id = rd_kafka_MemberDescription_client_id(m);
    member.client_id = client_id != nullptr ? client_id : "";
    const rd_kafka_MemberAssignment_t* assignment = rd_kafka_MemberDescription_assignment(m);
    const rd_kafka_topic_partition_list_t* parts =
        assignment != nullptr ? rd_kafka_MemberAssignment_partitions(assignment) : nullptr;
    std::set<Partition> tasks;
    for (int j = 0; parts != nullptr && j < parts->cnt; ++j) {
      if (source_topics.count(parts->elems[j].topic) != 0) {
        tasks.insert(Partition(parts->elems[j].partition));
      }
    }
    member.partitions.assign(tasks.begin(), tasks.end());
    members.push_back(std::move(member));
  }
  return members;
}

}  // namespace streams::runtime::internal
