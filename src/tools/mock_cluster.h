// MockCluster: librdkafka's in-process mock Kafka cluster (rdkafka_mock.h),
// hosted by a dummy producer handle, for the demo and integration tests while
// no real broker exists.
//
// Limitations of librdkafka 2.0.2's mock cluster (it is a test fixture, not a
// broker):
//  - read_committed consumers are NOT protected from aborted transactions: the
//    records of an aborted transaction stay readable (no aborted-transaction
//    index and no last stable offset);
//  - offsets sent with a transaction (TxnOffsetCommit) are acknowledged but not
//    stored, so a restarted consumer group does not see them;
//  - every partition log is trimmed to about 100k records / 5 MB (oldest first);
//  - CreateTopics (Admin API) is not supported: topics are created here or
//    auto-created by metadata requests with 4 partitions;
//  - no persistence, no LogAppendTime, no authentication.
//
// Thread safety: thread-safe (librdkafka serializes access to the cluster).
#pragma once

#include <memory>
#include <string>

#include "streams/result.h"
#include "streams/status.h"
#include "tools/kafka_util.h"

struct rd_kafka_mock_cluster_s;

namespace payments::tools {

class MockCluster {
 public:
  // Starts a cluster of `brokers` (>= 1) brokers listening on 127.0.0.1 with
  // ephemeral ports. Errors: InvalidArgument (brokers < 1), Internal (librdkafka
  // could not start it). The cluster runs until the object is destroyed.
  static streams::Result<std::unique_ptr<MockCluster>> Create(int brokers);

  ~MockCluster();
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  // Creates `topic` with `partitions` partitions and replication factor
  // min(3, brokers). Errors: InvalidArgument (partitions < 1 or a bad name),
  // AlreadyExists.
  streams::Status CreateTopic(const std::string& topic, int partitions);

  // The "host:port,host:port,..." list clients connect to.
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  int brokers() const { return brokers_; }

 private:
  MockCluster() = default;
  KafkaHandle host_;
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_servers_;
  int brokers_ = 0;
};

}  // namespace payments::tools
