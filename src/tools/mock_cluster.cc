#include "tools/mock_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>

namespace payments::tools {

using streams::Result;
using streams::Status;

Result<std::unique_ptr<MockCluster>> MockCluster::Create(int brokers) {
  if (brokers < 1) {
    return Status::InvalidArgument("a mock cluster needs at least one broker, got " +
                                   std::to_string(brokers));
  }
  // The host handle never connects anywhere; it only owns the cluster's threads.
  STREAMS_ASSIGN_OR_RETURN(KafkaConf conf, MakeConf({{"log_level", "3"}}));
  STREAMS_ASSIGN_OR_RETURN(KafkaHandle host, CreateClient(RD_KAFKA_PRODUCER, std::move(conf)));
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(host.get(), brokers);
  if (cluster == nullptr) return Status::Internal("rd_kafka_mock_cluster_new failed");
  auto mock = std::unique_ptr<MockCluster>(new MockCluster());
  mock->host_ = std::move(host);
  mock->cluster_ = cluster;
  mock->bootstrap_servers_ = rd_kafka_mock_cluster_bootstraps(cluster);
  mock->brokers_ = brokers;
  return mock;
}

MockCluster::~MockCluster() {
  // The cluster must go before the handle that hosts it.
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
  host_.reset();
}

Status MockCluster::CreateTopic(const std::string& topic, int partitions) {
  if (partitions < 1) {
    return Status::InvalidArgument("topic '" + topic + "' needs at least one partition");
  }
  if (topic.empty()) return Status::InvalidArgument("empty topic name");
  rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, std::min(3, brokers_));
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return Status::Ok();
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return Status::AlreadyExists("topic '" + topic + "' already exists");
    default:
      return Status::InvalidArgument("cannot create topic '" + topic +
                                     "': " + rd_kafka_err2str(err));
  }
}

}  // namespace payments::tools
