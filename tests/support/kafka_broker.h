// KafkaBroker: a real Apache Kafka broker for integration tests — one KRaft
// node that is broker and controller, on free loopback ports, with the
// single-node settings transactions need — started through
// scripts/kafka-test-server.sh (`run` mode) as a Subprocess. The version and
// the jar cache are described in scripts/kafka/README.md.
//
//   class MyTest : public ::testing::Test {
//    protected:
//     void SetUp() override { START_KAFKA_BROKER_OR_SKIP(broker_, KafkaBrokerOptions{}); }
//     std::unique_ptr<KafkaBroker> broker_;
//   };
//   ... broker_->bootstrap() ...            // "127.0.0.1:PORT"
//   ASSERT_TRUE(broker_->HardBounce().ok());  // SIGKILL, restart on the same data and port
//
// Skipping: when the jars are not fetched (scripts/kafka/fetch.sh, run by
// scripts/setup.sh) Start() returns NotFound, and START_KAFKA_BROKER_OR_SKIP
// skips the test with that message — unless the environment variable
// PAYMENTS_REQUIRE_KAFKA is set (CI sets it), where the test fails instead.
//
// Guarantees: no leaked broker — the JVM is the Subprocess's child itself
// (the script execs it), so the destructor's SIGKILL and PR_SET_PDEATHSIG reach
// it; as with Subprocess, call Start() and HardBounce() from a thread that
// outlives the broker (the test's main thread). The destructor SIGKILLs the
// broker (no controlled shutdown: nothing is kept) and removes an owned
// directory.
//
// Thread safety: not thread-safe; bootstrap() may be read concurrently while no
// other method runs.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "streams/result.h"
#include "streams/status.h"
#include "support/subprocess.h"

namespace streams::test_support {

struct KafkaBrokerOptions {
  // Where the broker keeps its data and logs: <dir>/node holds
  // server.properties, data/ and server.log; <dir>/run-N.{stdout,stderr} the
  // script's output of the Nth start. Empty: a fresh temporary directory,
  // removed by the destructor.
  std::filesystem::path dir;
  // num.partitions: partitions of auto-created topics and of CreateTopics
  // requests that give none.
  int num_partitions = 1;
  // More broker settings, "key=value" each, added to server.properties.
  std::vector<std::string> server_properties;
  // How long a start or a bounce may take until the broker answers requests.
  std::chrono::seconds start_timeout{120};
};

class KafkaBroker {
 public:
  // Starts the broker and returns once it answers a metadata request. Errors:
  // NotFound when the Kafka jars are not fetched (the message says how to fetch
  // them); Unavailable when it did not start in time or exited (the message
  // ends with the tails of the script's output and of the broker's log);
  // IoError for the directory or the process.
  static Result<std::unique_ptr<KafkaBroker>> Start(KafkaBrokerOptions options = {});

  // True when a failed Start() should skip the test rather than fail it: the
  // jars are missing (NotFound) and PAYMENTS_REQUIRE_KAFKA is not set.
  static bool ShouldSkip(const Status& start_status);

  KafkaBroker(const KafkaBroker&) = delete;
  KafkaBroker& operator=(const KafkaBroker&) = delete;
  ~KafkaBroker();

  // "127.0.0.1:PORT"; the same across HardBounce().
  const std::string& bootstrap() const { return bootstrap_; }
  // The node's directory (server.properties, data/, server.log).
  std::filesystem::path node_dir() const { return dir_ / "node"; }

  // A hard bounce: SIGKILLs the broker (no controlled shutdown, no flush beyond
  // what the OS already has), starts it again on the same log dir and port,
  // and returns once it answers again. Errors as for Start(); Internal when
  // the restarted broker listens on another address.
  Status HardBounce();

  // A controlled shutdown (SIGTERM), SIGKILL after `timeout`. Afterwards only
  // the destructor may be called. OK when the broker exited with status 0.
  Status Stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // How long the last Start() or HardBounce() took until the broker answered.
  std::chrono::milliseconds last_start_duration() const { return last_start_duration_; }

  // The last `lines` lines of the broker's log (node/server.log).
  std::string LogTail(size_t lines = 40) const;

 private:
  explicit KafkaBroker(KafkaBrokerOptions options) : options_(std::move(options)) {}

  // Runs `kafka-test-server.sh run <dir>/node [settings]` and waits for its
  // bootstrap line; sets process_, bootstrap_ and last_start_duration_.
  Status Run(const std::vector<std::string>& settings);

  KafkaBrokerOptions options_;
  std::filesystem::path dir_;
  bool owns_dir_ = false;
  int runs_ = 0;
  std::unique_ptr<Subprocess> process_;
  std::string bootstrap_;
  std::chrono::milliseconds last_start_duration_{0};
};

}  // namespace streams::test_support

// In a GoogleTest test or SetUp(): starts a KafkaBroker into `ptr` (a
// std::unique_ptr<KafkaBroker>) with `options`; skips the test when
// KafkaBroker::ShouldSkip() says so, else fails it (fatally) on an error.
#define START_KAFKA_BROKER_OR_SKIP(ptr, options)                                             \
  do {                                                                                       \
    auto kafka_broker_result_ = ::streams::test_support::KafkaBroker::Start(options);        \
    if (!kafka_broker_result_.ok()) {                                                        \
      if (::streams::test_support::KafkaBroker::ShouldSkip(kafka_broker_result_.status())) { \
        GTEST_SKIP() << kafka_broker_result_.status().message()                              \
                     << " (with PAYMENTS_REQUIRE_KAFKA=1 this fails)";                       \
      }                                                                                      \
      FAIL() << kafka_broker_result_.status();                                               \
    }                                                                                        \
    (ptr) = std::move(*kafka_broker_result_);                                                \
  } while (false)
