// The conformance suite: devbroker's transaction, group and fetch tests run
// against devbroker and against Apache Kafka through one fixture
// (support/test_broker.h), and must agree. A test instantiated with
// INSTANTIATE_FOR_BOTH_BROKERS runs as Devbroker/<Suite>.<Test>/devbroker (a
// new in-process devbroker) and Kafka/<Suite>.<Test>/kafka (the shared Apache
// Kafka broker of the ctest fixture kafka_shared; label kafka). Where the two
// brokers deliberately differ, the test says so with is_kafka() next to a
// reference to "Differences from Apache Kafka" in src/devbroker/README.md.
// Tests of devbroker internals or devbroker-only options stay plain TESTs.

#ifndef DEVBROKER_TESTS_CONFORMANCE_H_
#define DEVBROKER_TESTS_CONFORMANCE_H_

#include <gtest/gtest.h>

#include <memory>

#include "support/test_broker.h"
#include "test_util.h"

namespace devbroker::testing {

using streams::test_support::BrokerKind;
using streams::test_support::TestBroker;

class BrokerTest : public ::testing::TestWithParam<BrokerKind> {
 protected:
  void SetUp() override {
    BrokerOptions options;
    if (getenv("DEVBROKER_TEST_LOG") == nullptr) options.log_level = "warn";
    ACQUIRE_TEST_BROKER_OR_SKIP(GetParam(), options, owned_broker_, broker_);
  }
  bool is_kafka() const { return broker_->is_kafka(); }

  std::unique_ptr<TestBroker> owned_broker_;  // devbroker only
  TestBroker* broker_ = nullptr;
};

}  // namespace devbroker::testing

#define INSTANTIATE_FOR_BOTH_BROKERS(suite)                                                    \
  INSTANTIATE_TEST_SUITE_P(Devbroker, suite,                                                   \
                           ::testing::Values(::streams::test_support::BrokerKind::kDevbroker), \
                           ::streams::test_support::BrokerParamName);                          \
  INSTANTIATE_TEST_SUITE_P(Kafka, suite,                                                       \
                           ::testing::Values(::streams::test_support::BrokerKind::kKafka),     \
                           ::streams::test_support::BrokerParamName)

#endif  // DEVBROKER_TESTS_CONFORMANCE_H_
