#include "support/kafka_broker.h"

#include <signal.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <regex>
#include <system_error>
#include <utility>

#ifndef KAFKA_TEST_SERVER_SCRIPT
#error "KAFKA_TEST_SERVER_SCRIPT (the path of scripts/kafka-test-server.sh) must be defined"
#endif

namespace streams::test_support {
namespace {

using SteadyClock = std::chrono::steady_clock;

// kafka-test-server.sh's exit code when the jars are not fetched.
constexpr int kExitJarsMissing = 3;
// Slack on top of the script's own start timeout (it kills the JVM after it).
constexpr std::chrono::seconds kStartSlack{30};

// The last `lines` lines of a file, reading at most its last 64 KiB.
std::string FileTail(const std::filesystem::path& path, size_t lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff from = size > 64 * 1024 ? size - 64 * 1024 : 0;
  in.seekg(from);
  std::string text(static_cast<size_t>(size - from), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return LastLines(text, lines);
}

bool BindFailed(const std::filesystem::path& server_log) {
  std::string log = ReadFileOrEmpty(server_log);
  return log.find("Address already in use") != std::string::npos;
}

}  // namespace

Result<std::unique_ptr<KafkaBroker>> KafkaBroker::Start(KafkaBrokerOptions options) {
  std::unique_ptr<KafkaBroker> broker(new KafkaBroker(std::move(options)));
  if (broker->options_.dir.empty()) {
    STREAMS_ASSIGN_OR_RETURN(broker->dir_, MakeTempDir("kafka-broker-"));
    broker->owns_dir_ = true;
  } else {
    broker->dir_ = broker->options_.dir;
    std::error_code ec;
    std::filesystem::create_directories(broker->dir_, ec);
    if (ec) return Status::IoError("create " + broker->dir_.string() + ": " + ec.message());
  }
  // The script picks free ports but cannot reserve them: another process may
  // take one before the broker binds it. Then a new node gets new ports.
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    Status status = broker->Run(broker->options_.server_properties);
    if (status.ok()) return broker;
    if (attempt == kAttempts || !BindFailed(broker->node_dir() / "server.log")) return status;
    broker->process_.reset();
    std::error_code ec;
    std::filesystem::remove_all(broker->node_dir(), ec);
  }
}

bool KafkaBroker::ShouldSkip(const Status& start_status) {
  const char* required = std::getenv("PAYMENTS_REQUIRE_KAFKA");
  bool is_required = required != nullptr && *required != '\0' && std::string(required) != "0";
  return start_status.code() == StatusCode::kNotFound && !is_required;
}

KafkaBroker::~KafkaBroker() {
  process_.reset();  // SIGKILLs the broker's process group and reaps it.
  if (owns_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

Status KafkaBroker::Run(const std::vector<std::string>& settings) {
  ++runs_;
  SubprocessOptions run;
  run.argv = {"bash", KAFKA_TEST_SERVER_SCRIPT, "run", node_dir().string()};
  run.argv.insert(run.argv.end(), settings.begin(), settings.end());
  run.name = "run-" + std::to_string(runs_);
  run.log_dir = dir_;
  run.env = {{"KAFKA_NUM_PARTITIONS", std::to_string(options_.num_partitions)},
             {"KAFKA_START_TIMEOUT", std::to_string(options_.start_timeout.count())}};
  auto started = SteadyClock::now();
  STREAMS_ASSIGN_OR_RETURN(process_, Subprocess::Start(std::move(run)));
  Result<LineMatch> line =
      process_->WaitForLine(OutputStream::kStdout, std::regex("^bootstrap\\.servers=(\\S+)$"),
                            options_.start_timeout + kStartSlack);
  if (!line.ok()) {
    std::optional<ExitStatus> exit = process_->exit_status();
    if (exit.has_value() && exit->exit_code == kExitJarsMissing) {
      std::string message = LastLines(process_->ReadOutput(OutputStream::kStderr), 1);
      while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
        message.pop_back();
      }
      return Status::NotFound(message);
    }
    return Status::Unavailable("Kafka broker in " + node_dir().string() +
                               " did not start: " + line.status().message() +
                               "\n--- server.log (tail) ---\n" + LogTail());
  }
  last_start_duration_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
  bootstrap_ = line->groups[1];
  return Status::Ok();
}

Status KafkaBroker::HardBounce() {
  if (process_ == nullptr) return Status::FailedPrecondition("the broker was stopped");
  Status killed = process_->Kill(SIGKILL);
  if (!killed.ok() && killed.code() != StatusCode::kFailedPrecondition) return killed;
  Result<ExitStatus> exit = process_->Wait(std::chrono::seconds(30));
  if (!exit.ok()) return exit.status().WithContext("waiting for the SIGKILLed broker");
  process_.reset();
  std::string before = bootstrap_;
  STREAMS_RETURN_IF_ERROR(Run({}));
  if (bootstrap_ != before) {
    return Status::Internal("the bounced broker listens on " + bootstrap_ + ", not " + before);
  }
  return Status::Ok();
}

Status KafkaBroker::Stop(std::chrono::milliseconds timeout) {
  if (process_ == nullptr) return Status::FailedPrecondition("the broker was stopped");
  ExitStatus exit = process_->Stop(SIGTERM, timeout);
  // The JVM's exit status after SIGTERM is 143 (128 + 15) once its shutdown
  // hook (the controlled shutdown) has run, or 0 when main returned first.
  if (exit.exit_code == 0 || exit.exit_code == 128 + SIGTERM) return Status::Ok();
  return Status::Internal("the broker did not stop cleanly: " + exit.ToString() +
                          "\n--- server.log (tail) ---\n" + LogTail());
}

std::string KafkaBroker::LogTail(size_t lines) const {
  return FileTail(node_dir() / "server.log", lines);
}

}  // namespace streams::test_support
