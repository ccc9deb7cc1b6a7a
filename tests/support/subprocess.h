// Subprocess: starts a program as a child process for integration tests, with
// stdout and stderr captured to files, and offers what tests need around it:
// wait for a line of output (e.g. "listening on HOST:PORT"), send signals,
// wait for the exit with a timeout, and read the tail of its logs.
//
//   STREAMS_ASSIGN_OR_RETURN(auto broker, Subprocess::Start(Command(
//       {DEVBROKER_BIN, "--listen", "127.0.0.1:0"}, "devbroker", log_dir)));
//   STREAMS_ASSIGN_OR_RETURN(LineMatch m, broker->WaitForLine(
//       OutputStream::kStdout, std::regex("listening on (\\S+)"), std::chrono::seconds(10)));
//   std::string bootstrap = m.groups[1];
//
// Guarantees:
// - No leaked processes: the child runs in its own process group, and the
//   destructor sends SIGKILL to that group and reaps the child (no zombie).
//   Kill() signals the whole group, so grandchildren (e.g. of /bin/sh -c) get
//   it too. Should the test process itself die, the child receives SIGKILL
//   (PR_SET_PDEATHSIG), tied to the thread that called Start(): start
//   subprocesses from a thread that outlives them (e.g. the test's main thread).
// - Output goes to "<log_dir>/<name>.stdout" and "<log_dir>/<name>.stderr",
//   stdin is /dev/null. The files stay readable after the child exited.
//
// Thread safety: every method may be called from any thread, concurrently
// (state is guarded by a mutex; the log files are only read); the object must
// not be destroyed while another thread is inside one of its methods.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "streams/result.h"
#include "streams/status.h"

namespace streams::test_support {

struct SubprocessOptions {
  // The program and its arguments. argv[0] is a path, or a bare name looked up
  // in PATH (resolved before the child is created).
  std::vector<std::string> argv;
  // Names the log files; letters, digits, '.', '-', '_'. Default: the file
  // name of argv[0].
  std::string name;
  // Where the log files go; created when missing and never deleted by
  // Subprocess. Empty: a fresh temporary directory owned by the Subprocess and
  // removed by its destructor.
  std::filesystem::path log_dir;
  // Variables set (or replaced) in the child's environment, on top of this
  // process's environment.
  std::vector<std::pair<std::string, std::string>> env;
  // The child's working directory; empty: this process's.
  std::filesystem::path working_dir;
};

// Options for the common case (no environment or working directory changes).
// Prefer it to designated initializers, which -Wextra flags when fields are omitted.
SubprocessOptions Command(std::vector<std::string> argv, std::string name = {},
                          std::filesystem::path log_dir = {});

enum class OutputStream { kStdout, kStderr };

// How a child ended: exactly one of the two is set.
struct ExitStatus {
  std::optional<int> exit_code;  // Returned from main / passed to exit().
  std::optional<int> signal;     // The signal that terminated it.

  bool Succeeded() const { return exit_code == 0; }
  // "exit code 3" or "killed by signal 9 (Killed)".
  std::string ToString() const;
  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

// A line found by WaitForLine.
struct LineMatch {
  std::string line;                 // Without the trailing '\n'.
  std::vector<std::string> groups;  // groups[0]: the whole match; then capture groups.
  // Byte offset just after the line in its file: pass it as `from_offset` to
  // look for a later line.
  uint64_t end_offset = 0;
};

class Subprocess {
 public:
  // Creates the log files and the child, and returns once it has exec'd the
  // program. Errors: InvalidArgument (empty argv, bad name, program not found
  // in PATH), IoError (log directory or files; fork; exec failed, with errno's
  // text: then no child is left behind). The caller owns the result.
  static Result<std::unique_ptr<Subprocess>> Start(SubprocessOptions options);

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // SIGKILLs the process group when the child has not been reaped yet, reaps
  // it (blocking until it is gone), and removes an owned temporary log_dir.
  ~Subprocess();

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  const std::filesystem::path& stdout_path() const { return stdout_path_; }
  const std::filesystem::path& stderr_path() const { return stderr_path_; }

  // True until the child has exited (reaps it when it has).
  bool IsRunning();

  // Sends `signal` to the child's process group. OK when sent; FailedPrecondition
  // when the child has already exited and been reaped (nothing is sent, so a
  // recycled pid is never hit); InvalidArgument for a bad signal number.
  Status Kill(int signal);

  // Waits until the child exits and returns how. Errors: TimedOut after
  // `timeout` (the child keeps running). A zero timeout polls once.
  Result<ExitStatus> Wait(std::chrono::milliseconds timeout);

  // Kill(signal) then Wait(timeout); if the child is still running after
  // `timeout`, SIGKILL and wait for it. Returns how it ended. Never fails for
  // an already exited child (returns its status).
  ExitStatus Stop(int signal, std::chrono::milliseconds timeout);

  // The exit status once the child was reaped (by IsRunning, Wait, Stop).
  std::optional<ExitStatus> exit_status() const;

  // Waits until a complete line ('\n'-terminated, or the final unterminated line
  // once the child has exited) of `stream` at or after byte `from_offset`
  // matches `pattern` (std::regex_search) and returns the first such line.
  // Errors: TimedOut after `timeout`; FailedPrecondition when the child exited
  // without printing such a line. Both messages name the process and end with
  // the last lines of its stdout and stderr.
  Result<LineMatch> WaitForLine(OutputStream stream, const std::regex& pattern,
                                std::chrono::milliseconds timeout, uint64_t from_offset = 0);

  // The whole captured output so far ("" if the file cannot be read).
  std::string ReadOutput(OutputStream stream) const;

  // The last `lines` lines of `stream` (at most `max_bytes` bytes are read).
  std::string Tail(OutputStream stream, size_t lines = 30, size_t max_bytes = 64 * 1024) const;

  // A multi-line description for failure messages: name, pid, exit status, and
  // the tails of stdout and stderr.
  std::string Describe(size_t lines = 30) const;

 private:
  Subprocess() = default;

  // Non-blocking reap under mu_. Returns true when the child has been reaped.
  bool ReapLocked(bool block);

  std::string name_;
  pid_t pid_ = -1;
  std::filesystem::path log_dir_;
  bool owns_log_dir_ = false;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;

  mutable std::mutex mu_;
  std::optional<ExitStatus> exit_status_;  // Set once reaped.
};

// Creates a fresh directory "<TMPDIR or /tmp>/<prefix>XXXXXX". Errors: IoError.
Result<std::filesystem::path> MakeTempDir(const std::string& prefix);

// Reads a whole file ("" when it cannot be read).
std::string ReadFileOrEmpty(const std::filesystem::path& path);

// The last `lines` lines of `text`.
std::string LastLines(const std::string& text, size_t lines);

}  // namespace streams::test_support
