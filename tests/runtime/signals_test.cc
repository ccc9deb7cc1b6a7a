#include "streams/runtime/signals.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>

namespace streams::runtime {
namespace {

using std::chrono::milliseconds;

// Signal handlers are process-wide, so every scenario runs in a forked child
// (a death test) and reports through its exit code.
class SignalsTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(SignalsTest, FirstSignalRequestsShutdown) {
  EXPECT_EXIT(
      {
        if (!InstallSignalHandlers().ok()) _exit(10);
        if (ShutdownRequested()) _exit(11);
        if (WaitForShutdownSignal(milliseconds(20))) _exit(12);  // Times out: no signal yet.
        ::kill(::getpid(), SIGTERM);
        if (!WaitForShutdownSignal(milliseconds(5000))) _exit(13);
        if (!ShutdownRequested()) _exit(14);
        if (ShutdownSignal() != SIGTERM) _exit(15);
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(SignalsTest, SecondSignalForcesExit130) {
  EXPECT_EXIT(
      {
        if (!InstallSignalHandlers().ok()) _exit(10);
        ::kill(::getpid(), SIGINT);
        if (!WaitForShutdownSignal(milliseconds(5000))) _exit(13);
        ::kill(::getpid(), SIGTERM);  // Second signal: _exit(130) in the handler.
        ::usleep(2000000);
        _exit(0);
      },
      ::testing::ExitedWithCode(130), "");
}

TEST_F(SignalsTest, RequestShutdownWakesWaiters) {
  EXPECT_EXIT(
      {
        if (!InstallSignalHandlers().ok()) _exit(10);
        RequestShutdown();
        if (!WaitForShutdownSignal(milliseconds(5000))) _exit(13);
        if (ShutdownSignal().has_value()) _exit(14);
        ::kill(::getpid(), SIGTERM);  // After a requested shutdown: forced exit.
        ::usleep(2000000);
        _exit(0);
      },
      ::testing::ExitedWithCode(130), "");
}

}  // namespace
}  // namespace streams::runtime
