// TestBroker: the broker a test runs against, either devbroker (in-process,
// src/devbroker) or Apache Kafka (kafka_broker.h), behind one small interface,
// so that the same test can be instantiated for both (TEST_P with
// BrokerKind as the parameter).
//
//   class MyTest : public ::testing::TestWithParam<BrokerKind> {
//    protected:
//     void SetUp() override { ACQUIRE_TEST_BROKER_OR_SKIP(GetParam(), {}, owned_, broker_); }
//     std::unique_ptr<TestBroker> owned_;  // devbroker: this test's own broker
//     TestBroker* broker_ = nullptr;       // kafka: the process's shared broker
//   };
//   INSTANTIATE_TEST_SUITE_P(Devbroker, MyTest, ::testing::Values(BrokerKind::kDevbroker),
//                            BrokerParamName);
//   INSTANTIATE_TEST_SUITE_P(Kafka, MyTest, ::testing::Values(BrokerKind::kKafka),
//                            BrokerParamName);
//
// devbroker: every test gets a new broker (it starts in microseconds).
// Apache Kafka: start-up costs seconds, so all tests of a process share one
// broker, and each test must use its own topic, group and transactional-id
// names (TestScopedName). The shared broker is the ctest fixture's
// (`kafka_shared`, tests/support/CMakeLists.txt: one broker for a whole ctest
// run, found through PAYMENTS_KAFKA_SHARED_DIR) or, when the test binary runs
// outside ctest, one started on first use and SIGKILLed at exit. Its settings
// (SharedKafkaSettings) are those of devbroker's defaults where the tests
// depend on them: no topic auto-creation, 4 partitions by default, session
// timeouts from 1 s, timed-out transactions aborted within a second.
//
// Skipping: as for KafkaBroker, a kafka test is skipped when the Kafka jars are
// not fetched, unless PAYMENTS_REQUIRE_KAFKA is set.
//
// Thread safety: the methods of a TestBroker may be called from any thread,
// one at a time (they are serialized internally).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "devbroker/config.h"
#include "streams/result.h"
#include "streams/status.h"
#include "support/kafka_broker.h"

namespace streams::test_support {

enum class BrokerKind { kDevbroker, kKafka };

// "devbroker" or "kafka".
const char* BrokerKindName(BrokerKind kind);

// For GoogleTest's test names and messages ("GetParam() = kafka").
inline void PrintTo(BrokerKind kind, std::ostream* os) { *os << BrokerKindName(kind); }

// Parameter name generator for INSTANTIATE_TEST_SUITE_P.
inline std::string BrokerParamName(const ::testing::TestParamInfo<BrokerKind>& info) {
  return BrokerKindName(info.param);
}

class TestBroker {
 public:
  virtual ~TestBroker() = default;
  virtual BrokerKind kind() const = 0;
  bool is_kafka() const { return kind() == BrokerKind::kKafka; }
  // "host:port" for bootstrap.servers.
  virtual const std::string& bootstrap() const = 0;
  // Creates a topic with `partitions` partitions and replication factor 1
  // (CreateTopics), and returns once every partition has a leader. Errors:
  // AlreadyExists (TOPIC_ALREADY_EXISTS), else the broker's error.
  virtual Status CreateTopic(const std::string& name, int partitions) = 0;
  // High watermark / last stable offset of a partition (ListOffsets latest,
  // read_uncommitted / read_committed); -1 when unknown or on error.
  virtual int64_t HighWatermark(const std::string& topic, int32_t partition) = 0;
  virtual int64_t LastStableOffset(const std::string& topic, int32_t partition) = 0;
};

// A new in-process devbroker with `options`, started.
Result<std::unique_ptr<TestBroker>> StartDevbroker(devbroker::BrokerOptions options);

// The server.properties settings of the shared Kafka broker.
std::vector<std::string> SharedKafkaSettings();

// The Apache Kafka broker shared by the tests of this process (see above).
// A failed start is remembered: later calls return the same error at once.
// Call it first from the main thread (KafkaBroker's rule).
Result<TestBroker*> SharedKafkaBroker();

// devbroker: a new broker (`dev_options`) into *owned and *broker; kafka: the
// shared broker into *broker.
Status AcquireTestBroker(BrokerKind kind, const devbroker::BrokerOptions& dev_options,
                         std::unique_ptr<TestBroker>* owned, TestBroker** broker);

// A name unique to the running test (and process), usable as a topic name:
// "<test name>-<pid>-<suffix>" with every character outside [A-Za-z0-9._-]
// replaced by '_'.
std::string TestScopedName(const std::string& suffix);

}  // namespace streams::test_support

// In SetUp() or a test: AcquireTestBroker(), skipping the test when a Kafka
// broker cannot start because its jars are not fetched (and
// PAYMENTS_REQUIRE_KAFKA is not set), failing it on other errors.
#define ACQUIRE_TEST_BROKER_OR_SKIP(kind, dev_options, owned, broker)                           \
  do {                                                                                          \
    ::streams::Status acquire_status_ =                                                         \
        ::streams::test_support::AcquireTestBroker((kind), (dev_options), &(owned), &(broker)); \
    if (!acquire_status_.ok()) {                                                                \
      if (::streams::test_support::KafkaBroker::ShouldSkip(acquire_status_)) {                  \
        GTEST_SKIP() << acquire_status_.message()                                               \
                     << " (with PAYMENTS_REQUIRE_KAFKA=1 this fails)";                          \
      }                                                                                         \
      FAIL() << acquire_status_;                                                                \
    }                                                                                           \
  } while (false)
