// Helpers for devbroker tests: an in-process broker, librdkafka client
// factories and bounded poll loops.

#ifndef DEVBROKER_TESTS_TEST_UTIL_H_
#define DEVBROKER_TESTS_TEST_UTIL_H_

#include <librdkafka/rdkafka.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "devbroker/broker.h"

namespace devbroker::testing {

using ConfList = std::vector<std::pair<std::string, std::string>>;

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const;
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

// Starts an in-process broker on 127.0.0.1:0 (log level warn unless set).
std::unique_ptr<Broker> StartBroker(BrokerOptions options = {});

// A producer (extra conf overrides defaults). Returns null on error (and
// records a gtest failure).
KafkaPtr MakeProducer(const std::string& bootstrap, const ConfList& conf = {});
// A consumer with enable.partition.eof=true, auto.offset.reset=earliest,
// enable.auto.commit=false and short heartbeats; conf overrides.
KafkaPtr MakeConsumer(const std::string& bootstrap, const ConfList& conf = {});

// Enqueues one record (partition -1 = partitioner).
void Produce(rd_kafka_t* producer, const std::string& topic, int32_t partition,
             const std::string& value);
// Produce() then flush; fails the test if delivery fails.
void ProduceSync(rd_kafka_t* producer, const std::string& topic,
                 int32_t partition, const std::string& value);

struct Record {
  int32_t partition = -1;
  int64_t offset = -1;
  std::string value;
};

// Assigns partitions [0, partitions) of topic from the beginning.
void AssignFromBeginning(rd_kafka_t* consumer, const std::string& topic,
                         int partitions);
// Polls until every assigned partition reported EOF (after the first
// assignment, counting each partition once) or the timeout expires.
// Returns the records seen. *reached_end tells whether all EOFs arrived.
std::vector<Record> ConsumeToEnd(rd_kafka_t* consumer, int partitions,
                                 std::chrono::milliseconds timeout,
                                 bool* reached_end = nullptr);
// Polls until `count` records were received or the timeout expires.
std::vector<Record> ConsumeN(rd_kafka_t* consumer, size_t count,
                             std::chrono::milliseconds timeout);

// Repeatedly calls `step` (which should block briefly, e.g. a poll) until
// `done` is true or the timeout expires. Returns done().
bool PollUntil(const std::function<bool()>& done,
               const std::function<void()>& step,
               std::chrono::milliseconds timeout);

std::vector<std::string> Values(const std::vector<Record>& records);

// Unique name for topics/groups within a test binary run.
std::string UniqueName(const std::string& prefix);

// A spawned child process with its stdout readable line by line.
class ChildProcess {
 public:
  // Starts argv[0] with argv; stdout is piped if capture_stdout, stdin if
  // pipe_stdin (else the child inherits them).
  static std::unique_ptr<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                             bool capture_stdout,
                                             bool pipe_stdin = false);
  ~ChildProcess();  // SIGKILLs and reaps the child if still running
  pid_t pid() const { return pid_; }
  // Reads one line from stdout (without '\n'); false on EOF/timeout.
  bool ReadLine(std::string* line, std::chrono::milliseconds timeout);
  // Writes `line` plus '\n' to the child's stdin (pipe_stdin only); false
  // if it could not be written completely.
  bool WriteLine(const std::string& line);
  void Kill(int signal);
  // Waits for exit; returns the exit status or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stdin_fd_ = -1;
  std::string buffer_;
  bool reaped_ = false;
};

// Builds a valid magic-2 record batch (uncompressed, CRC set) with one
// record per value. producer_id -1 makes a non-idempotent batch.
std::string BuildRecordBatch(int64_t producer_id, int16_t epoch,
                             int32_t base_sequence, bool transactional,
                             const std::vector<std::string>& values);

// Runs a shell command with a time limit; returns its exit code and
// captured stdout.
int RunCommand(const std::string& command, std::string* output,
               std::chrono::milliseconds timeout);

}  // namespace devbroker::testing

#endif  // DEVBROKER_TESTS_TEST_UTIL_H_
