#include "streams/runtime/signals.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

namespace streams::runtime {
namespace {

std::atomic<int> g_first_signal{0};
std::atomic<bool> g_requested{false};
int g_pipe[2] = {-1, -1};
std::mutex g_install_mutex;
bool g_installed = false;

void WakeWaiters() {
  if (g_pipe[1] >= 0) {
    char byte = 1;
    // Non-blocking; a full pipe already wakes the waiters.
    ssize_t ignored = ::write(g_pipe[1], &byte, 1);
    (void)ignored;
  }
}

extern "C" void OnShutdownSignal(int signo) {
  int saved_errno = errno;
  if (g_requested.exchange(true)) {
    // A shutdown is already under way: a second signal forces the exit.
    ::_exit(130);
  }
  g_first_signal.store(signo);
  WakeWaiters();
  errno = saved_errno;
}

}  // namespace

Status InstallSignalHandlers() {
  std::lock_guard<std::mutex> lock(g_install_mutex);
  if (g_installed) return Status::Ok();
  if (g_pipe[0] < 0) {
    if (::pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      return Status::Internal(std::string("cannot create the signal pipe: ") +
                              std::strerror(errno));
    }
  }
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = OnShutdownSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signo : {SIGTERM, SIGINT}) {
    if (::sigaction(signo, &action, nullptr) != 0) {
      return Status::Internal("sigaction(" + std::to_string(signo) +
                              ") failed: " + std::strerror(errno));
    }
  }
  g_installed = true;
  if (g_requested.load()) WakeWaiters();
  return Status::Ok();
}

bool ShutdownRequested() { return g_requested.load(); }

std::optional<int> ShutdownSignal() {
  int signo = g_first_signal.load();
  if (signo == 0) return std::nullopt;
  return signo;
}

bool WaitForShutdownSignal(std::chrono::milliseconds timeout) {
  if (g_requested.load()) return true;
  if (g_pipe[0] < 0) {
    // Not installed: nothing can wake us but RequestShutdown; poll the flag.
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (g_requested.load()) return true;
      ::usleep(10000);
    }
    return g_requested.load();
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!g_requested.load()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    struct pollfd pfd = {g_pipe[0], POLLIN, 0};
    int rc = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (rc > 0) {
      char buf[64];
      while (::read(g_pipe[0], buf, sizeof(buf)) > 0) {
      }
    }
  }
  return g_requested.load();
}

void RequestShutdown() {
  g_requested.store(true);
  WakeWaiters();
}

}  // namespace streams::runtime
