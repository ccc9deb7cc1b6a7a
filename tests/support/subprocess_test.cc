// Tests of test_support's Subprocess with /bin/sh programs.
#include "support/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

namespace streams::test_support {
namespace {

using namespace std::chrono_literals;

class SubprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir("subprocess_test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::unique_ptr<Subprocess> StartShell(const std::string& script,
                                         const std::string& name = "sh") {
    auto process = Subprocess::Start(Command({"/bin/sh", "-c", script}, name, dir_));
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? std::move(*process) : nullptr;
  }

  // State letter of /proc/<pid>/stat, or 0 when the process does not exist.
  static char ProcessState(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) return 0;
    size_t paren = stat.rfind(')');
    return paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '?';
  }

  std::filesystem::path dir_;
};

TEST_F(SubprocessTest, CapturesStdoutStderrAndExitCode) {
  auto p = StartShell("echo out-line; echo err-line >&2; exit 3");
  ASSERT_NE(p, nullptr);
  auto status = p->Wait(10s);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->exit_code, 3);
  EXPECT_FALSE(status->signal.has_value());
  EXPECT_FALSE(status->Succeeded());
  EXPECT_EQ(p->ReadOutput(OutputStream::kStdout), "out-line\n");
  EXPECT_EQ(p->ReadOutput(OutputStream::kStderr), "err-line\n");
  EXPECT_EQ(p->stdout_path(), dir_ / "sh.stdout");
  EXPECT_FALSE(p->IsRunning());
  EXPECT_EQ(p->exit_status(), *status);
}

TEST_F(SubprocessTest, WaitForLineParsesAPortAndKillEndsTheProcess) {
  auto p = StartShell(
      "echo starting; sleep 0.2; echo 'server listening on 127.0.0.1:4242'; "
      "exec sleep 60");
  ASSERT_NE(p, nullptr);
  auto match =
      p->WaitForLine(OutputStream::kStdout, std::regex("listening on ([0-9.]+):([0-9]+)"), 10s);
  ASSERT_TRUE(match.ok()) << match.status();
  EXPECT_EQ(match->line, "server listening on 127.0.0.1:4242");
  ASSERT_EQ(match->groups.size(), 3u);
  EXPECT_EQ(match->groups[1], "127.0.0.1");
  EXPECT_EQ(match->groups[2], "4242");
  EXPECT_EQ(match->end_offset,
            std::string("starting\nserver listening on 127.0.0.1:4242\n").size());
  EXPECT_TRUE(p->IsRunning());

  ASSERT_TRUE(p->Kill(SIGTERM).ok());
  auto status = p->Wait(10s);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->signal, SIGTERM);
  EXPECT_EQ(status->ToString().rfind("killed by signal 15", 0), 0u) << status->ToString();
  // Nothing is signalled once the child is gone.
  EXPECT_EQ(p->Kill(SIGKILL).code(), StatusCode::kFailedPrecondition);
}

TEST_F(SubprocessTest, WaitForLineFromOffsetFindsALaterLineOnStderr) {
  auto p = StartShell("echo 'port 1' >&2; echo 'port 2' >&2; sleep 0.1; echo 'port 3' >&2");
  ASSERT_NE(p, nullptr);
  std::regex port("port ([0-9])");
  auto first = p->WaitForLine(OutputStream::kStderr, port, 10s);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->groups[1], "1");
  auto second = p->WaitForLine(OutputStream::kStderr, port, 10s, first->end_offset);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->groups[1], "2");
  auto third = p->WaitForLine(OutputStream::kStderr, port, 10s, second->end_offset);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->groups[1], "3");
}

TEST_F(SubprocessTest, WaitForLineMatchesAFinalLineWithoutNewlineAfterExit) {
  auto p = StartShell("printf 'ready at 7'");
  ASSERT_NE(p, nullptr);
  auto match = p->WaitForLine(OutputStream::kStdout, std::regex("ready at ([0-9]+)"), 10s);
  ASSERT_TRUE(match.ok()) << match.status();
  EXPECT_EQ(match->groups[1], "7");
}

TEST_F(SubprocessTest, WaitForLineFailsWithTheLogTailWhenTheProcessExits) {
  auto p = StartShell("echo 'fatal: cannot bind' >&2; exit 2", "failing");
  ASSERT_NE(p, nullptr);
  auto match = p->WaitForLine(OutputStream::kStdout, std::regex("listening"), 10s);
  ASSERT_FALSE(match.ok());
  EXPECT_EQ(match.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(match.status().message().find("exit code 2"), std::string::npos) << match.status();
  EXPECT_NE(match.status().message().find("fatal: cannot bind"), std::string::npos)
      << match.status();
}

TEST_F(SubprocessTest, WaitForLineAndWaitTimeOutWhileTheProcessRuns) {
  auto p = StartShell("echo 'not it'; exec sleep 60");
  ASSERT_NE(p, nullptr);
  auto match = p->WaitForLine(OutputStream::kStdout, std::regex("listening"), 200ms);
  ASSERT_FALSE(match.ok());
  EXPECT_EQ(match.status().code(), StatusCode::kTimedOut);
  EXPECT_NE(match.status().message().find("not it"), std::string::npos) << match.status();
  auto waited = p->Wait(100ms);
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.status().code(), StatusCode::kTimedOut);
  EXPECT_TRUE(p->IsRunning());
}

TEST_F(SubprocessTest, StopEscalatesToSigkillWhenTheSignalIsIgnored) {
  auto p = StartShell("trap '' TERM; echo ready; sleep 60; echo survived");
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(p->WaitForLine(OutputStream::kStdout, std::regex("^ready$"), 10s).ok());
  ExitStatus status = p->Stop(SIGTERM, 300ms);
  EXPECT_EQ(status.signal, SIGKILL) << status.ToString();
  EXPECT_EQ(p->ReadOutput(OutputStream::kStdout), "ready\n");
}

TEST_F(SubprocessTest, DestructorKillsTheProcessGroupAndReapsTheChild) {
  auto p = StartShell("sleep 300 & echo $!; wait");
  ASSERT_NE(p, nullptr);
  auto match = p->WaitForLine(OutputStream::kStdout, std::regex("^([0-9]+)$"), 10s);
  ASSERT_TRUE(match.ok()) << match.status();
  pid_t child = p->pid();
  pid_t grandchild = std::stoi(match->groups[1]);
  ASSERT_NE(ProcessState(grandchild), 0) << "the background sleep is not running";
  p.reset();
  // The direct child was reaped by us: no zombie is left.
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_EQ(ProcessState(child), 0);
  // The grandchild got SIGKILL too; it is gone, or a zombie until init reaps it.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  char state = ProcessState(grandchild);
  while (state != 0 && state != 'Z' && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    state = ProcessState(grandchild);
  }
  EXPECT_TRUE(state == 0 || state == 'Z') << "grandchild state " << state;
}

TEST_F(SubprocessTest, PassesEnvironmentAndWorkingDirectory) {
  SubprocessOptions options =
      Command({"sh", "-c", "echo \"$SUBPROCESS_TEST_VAR\"; pwd"}, "env", dir_);
  options.env = {{"SUBPROCESS_TEST_VAR", "hello world"}};
  options.working_dir = dir_;
  auto p = Subprocess::Start(options);
  ASSERT_TRUE(p.ok()) << p.status();
  auto status = (*p)->Wait(10s);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->Succeeded());
  EXPECT_EQ((*p)->ReadOutput(OutputStream::kStdout),
            "hello world\n" + std::filesystem::canonical(dir_).string() + "\n");
}

TEST_F(SubprocessTest, StartFailsForAMissingProgramWithoutLeavingAChild) {
  auto not_in_path = Subprocess::Start(Command({"no-such-program-xyz"}, "", dir_));
  ASSERT_FALSE(not_in_path.ok());
  EXPECT_EQ(not_in_path.status().code(), StatusCode::kInvalidArgument);

  auto bad_path = Subprocess::Start(Command({"/nonexistent/program"}, "", dir_));
  ASSERT_FALSE(bad_path.ok());
  EXPECT_EQ(bad_path.status().code(), StatusCode::kIoError);
  EXPECT_NE(bad_path.status().message().find("No such file"), std::string::npos)
      << bad_path.status();
  // The failed child was reaped.
  int status = 0;
  EXPECT_EQ(waitpid(-1, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);

  auto empty = Subprocess::Start(SubprocessOptions());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SubprocessTest, OwnsAndRemovesItsTemporaryLogDirectory) {
  std::filesystem::path log_dir;
  {
    auto p = Subprocess::Start(Command({"/bin/sh", "-c", "echo hi"}));
    ASSERT_TRUE(p.ok()) << p.status();
    log_dir = (*p)->stdout_path().parent_path();
    ASSERT_TRUE((*p)->Wait(10s).ok());
    EXPECT_EQ((*p)->ReadOutput(OutputStream::kStdout), "hi\n");
    EXPECT_TRUE(std::filesystem::exists(log_dir));
  }
  EXPECT_FALSE(std::filesystem::exists(log_dir));
}

TEST_F(SubprocessTest, TailReturnsTheLastLines) {
  auto p = StartShell("for i in 1 2 3 4 5; do echo line$i; done");
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(p->Wait(10s).ok());
  EXPECT_EQ(p->Tail(OutputStream::kStdout, 2), "line4\nline5\n");
  EXPECT_EQ(p->Tail(OutputStream::kStdout, 10), "line1\nline2\nline3\nline4\nline5\n");
  EXPECT_EQ(LastLines("a\nb\nc", 2), "b\nc");
  EXPECT_EQ(LastLines("", 3), "");
}

}  // namespace
}  // namespace streams::test_support
