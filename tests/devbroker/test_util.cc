#include "test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include "devbroker/crc32c.h"
#include "devbroker/protocol.h"
#include "devbroker/wire.h"

extern char** environ;

namespace devbroker::testing {

using Clock = std::chrono::steady_clock;

void KafkaDeleter::operator()(rd_kafka_t* rk) const {
  if (rk == nullptr) return;
  if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER) rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

std::unique_ptr<Broker> StartBroker(BrokerOptions options) {
  if (options.log_level == "info" && getenv("DEVBROKER_TEST_LOG") == nullptr) {
    options.log_level = "warn";
  }
  auto broker = std::make_unique<Broker>(options);
  Status s = broker->Start();
  EXPECT_TRUE(s.ok()) << s.message();
  if (!s.ok()) return nullptr;
  return broker;
}

namespace {

KafkaPtr MakeClient(rd_kafka_type_t type, const std::string& bootstrap, const ConfList& defaults,
                    const ConfList& conf) {
  rd_kafka_conf_t* c = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(c, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      ADD_FAILURE() << "conf " << k << "=" << v << ": " << err;
    }
  };
  set("bootstrap.servers", bootstrap);
  if (const char* dbg = getenv("DEVBROKER_TEST_RDKAFKA_DEBUG")) set("debug", dbg);
  for (const auto& [k, v] : defaults) set(k, v);
  for (const auto& [k, v] : conf) set(k, v);
  rd_kafka_t* rk = rd_kafka_new(type, c, err, sizeof(err));
  if (rk == nullptr) {
    ADD_FAILURE() << "rd_kafka_new: " << err;
    return nullptr;
  }
  if (type == RD_KAFKA_CONSUMER) rd_kafka_poll_set_consumer(rk);
  return KafkaPtr(rk);
}

}  // namespace

KafkaPtr MakeProducer(const std::string& bootstrap, const ConfList& conf) {
  return MakeClient(RD_KAFKA_PRODUCER, bootstrap, {{"linger.ms", "1"}}, conf);
}

KafkaPtr MakeConsumer(const std::string& bootstrap, const ConfList& conf) {
  return MakeClient(RD_KAFKA_CONSUMER, bootstrap,
                    {{"group.id", UniqueName("grp")},
                     {"enable.partition.eof", "true"},
                     {"auto.offset.reset", "earliest"},
                     {"enable.auto.commit", "false"},
                     {"fetch.wait.max.ms", "100"},
                     {"session.timeout.ms", "6000"},
                     {"heartbeat.interval.ms", "300"}},
                    conf);
}

void Produce(rd_kafka_t* producer, const std::string& topic, int32_t partition,
             const std::string& value) {
  rd_kafka_resp_err_t e =
      rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()),
                        RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  ASSERT_EQ(e, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(e);
}

void ProduceSync(rd_kafka_t* producer, const std::string& topic, int32_t partition,
                 const std::string& value) {
  Produce(producer, topic, partition, value);
  ASSERT_EQ(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

void AssignFromBeginning(rd_kafka_t* consumer, const std::string& topic, int partitions) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t e = rd_kafka_assign(consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
  ASSERT_EQ(e, RD_KAFKA_RESP_ERR_NO_ERROR);
}

std::vector<Record> ConsumeToEnd(rd_kafka_t* consumer, int partitions,
                                 std::chrono::milliseconds timeout, bool* reached_end) {
  std::vector<Record> out;
  std::set<int32_t> eof;
  auto deadline = Clock::now() + timeout;
  while (static_cast<int>(eof.size()) < partitions && Clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 50);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      eof.insert(m->partition);
    } else if (m->err) {
      ADD_FAILURE() << "consume error: " << rd_kafka_message_errstr(m);
    } else {
      eof.erase(m->partition);
      out.push_back(Record{m->partition, m->offset,
                           std::string(static_cast<const char*>(m->payload), m->len)});
    }
    rd_kafka_message_destroy(m);
  }
  if (reached_end != nullptr) {
    *reached_end = static_cast<int>(eof.size()) >= partitions;
  }
  return out;
}

std::vector<Record> ConsumeN(rd_kafka_t* consumer, size_t count,
                             std::chrono::milliseconds timeout) {
  std::vector<Record> out;
  auto deadline = Clock::now() + timeout;
  while (out.size() < count && Clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 50);
    if (m == nullptr) continue;
    if (!m->err) {
      out.push_back(Record{m->partition, m->offset,
                           std::string(static_cast<const char*>(m->payload), m->len)});
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ADD_FAILURE() << "consume error: " << rd_kafka_message_errstr(m);
    }
    rd_kafka_message_destroy(m);
  }
  return out;
}

bool PollUntil(const std::function<bool()>& done, const std::function<void()>& step,
               std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    step();
  }
  return true;
}

std::vector<std::string> Values(const std::vector<Record>& records) {
  std::vector<std::string> v;
  v.reserve(records.size());
  for (const Record& r : records) v.push_back(r.value);
  return v;
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  // The pid and the start time: names stay unique on a broker shared by
  // many test processes (the conformance suite's Apache Kafka).
  static const std::string process =
      std::to_string(getpid()) + "-" +
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() %
                     100000000);
  return prefix + "-" + process + "-" + std::to_string(counter.fetch_add(1));
}

std::unique_ptr<ChildProcess> ChildProcess::Spawn(const std::vector<std::string>& argv,
                                                  bool capture_stdout, bool pipe_stdin) {
  int pipefd[2] = {-1, -1};
  int infd[2] = {-1, -1};
  if (capture_stdout && pipe2(pipefd, O_CLOEXEC) != 0) return nullptr;
  if (pipe_stdin && pipe2(infd, O_CLOEXEC) != 0) {
    if (capture_stdout) {
      close(pipefd[0]);
      close(pipefd[1]);
    }
    return nullptr;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (capture_stdout) {
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
  }
  if (pipe_stdin) posix_spawn_file_actions_adddup2(&actions, infd[0], STDIN_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (capture_stdout) close(pipefd[1]);
  if (pipe_stdin) close(infd[0]);
  if (rc != 0) {
    if (capture_stdout) close(pipefd[0]);
    if (pipe_stdin) close(infd[1]);
    return nullptr;
  }
  auto child = std::unique_ptr<ChildProcess>(new ChildProcess());
  child->pid_ = pid;
  child->stdout_fd_ = capture_stdout ? pipefd[0] : -1;
  child->stdin_fd_ = pipe_stdin ? infd[1] : -1;
  return child;
}

ChildProcess::~ChildProcess() {
  if (stdin_fd_ >= 0) close(stdin_fd_);
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

bool ChildProcess::WriteLine(const std::string& line) {
  if (stdin_fd_ < 0) return false;
  // A child that died must fail the write, not kill the test with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  std::string data = line + "\n";
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(stdin_fd_, data.data() + off, data.size() - off);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool ChildProcess::ReadLine(std::string* line, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      *line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    if (stdout_fd_ < 0) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{stdout_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

void ChildProcess::Kill(int signal) {
  if (!reaped_ && pid_ > 0) ::kill(pid_, signal);
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (reaped_) return 0;
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

std::string BuildRecordBatch(int64_t producer_id, int16_t epoch, int32_t base_sequence,
                             bool transactional, const std::vector<std::string>& values) {
  WireWriter recs;
  for (size_t i = 0; i < values.size(); ++i) {
    WireWriter r;
    r.WriteInt8(0);
    r.WriteVarlong(0);
    r.WriteVarint(static_cast<int32_t>(i));
    r.WriteVarint(-1);  // null key
    r.WriteVarint(static_cast<int32_t>(values[i].size()));
    r.WriteRaw(values[i]);
    r.WriteVarint(0);
    std::string body = r.Release();
    recs.WriteVarint(static_cast<int32_t>(body.size()));
    recs.WriteRaw(body);
  }
  WireWriter w;
  w.WriteInt64(0);
  w.WriteInt32(0);  // length
  w.WriteInt32(0);
  w.WriteInt8(2);
  w.WriteUint32(0);  // crc
  w.WriteInt16(transactional ? kAttrTransactional : 0);
  w.WriteInt32(static_cast<int32_t>(values.size()) - 1);
  w.WriteInt64(1700000000000);
  w.WriteInt64(1700000000000);
  w.WriteInt64(producer_id);
  w.WriteInt16(epoch);
  w.WriteInt32(base_sequence);
  w.WriteInt32(static_cast<int32_t>(values.size()));
  w.WriteRaw(recs.buffer());
  std::string out = w.Release();
  StoreInt32(&out[8], static_cast<int32_t>(out.size() - 12));
  StoreInt32(&out[17], static_cast<int32_t>(Crc32c(out.data() + 21, out.size() - 21)));
  return out;
}

int RunCommand(const std::string& command, std::string* output, std::chrono::milliseconds timeout) {
  auto child = ChildProcess::Spawn({"/bin/sh", "-c", command + " 2>&1"}, true);
  if (child == nullptr) return -1;
  std::string line;
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!child->ReadLine(&line, left)) break;
    if (output != nullptr) *output += line + "\n";
  }
  int rc = child->Wait(std::max<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
      std::chrono::milliseconds(100)));
  return rc;
}

}  // namespace devbroker::testing
