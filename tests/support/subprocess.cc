#include "support/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace streams::test_support {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string ErrnoText(int err) {
  return std::string(strerrordesc_np(err) ? strerrordesc_np(err) : "unknown error");
}

bool ValidName(const std::string& name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

// argv[0] as an executable path: kept when it contains '/', else looked up in PATH.
std::optional<std::string> ResolveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream in(dirs);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

// The environment of this process with `overrides` set or replaced, as
// "NAME=value" strings.
std::vector<std::string> BuildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = std::any_of(overrides.begin(), overrides.end(),
                                [&](const auto& kv) { return kv.first == name; });
    if (!replaced) env.push_back(std::move(entry));
  }
  for (const auto& [name, value] : overrides) env.push_back(name + "=" + value);
  return env;
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    Reset();
    fd_ = std::exchange(other.fd_, -1);
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Result<Fd> OpenFile(const std::filesystem::path& path, int flags) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    return Status::IoError("open " + path.string() + ": " + ErrnoText(err));
  }
  return Fd(fd);
}

ExitStatus DecodeWaitStatus(int status) {
  ExitStatus exit;
  if (WIFEXITED(status)) {
    exit.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
  } else {
    exit.exit_code = -1;  // Not reachable with the flags used.
  }
  return exit;
}

// Reads `path` from byte `offset` to its end (at most `max_bytes` bytes).
std::string ReadFrom(const std::filesystem::path& path, uint64_t offset,
                     size_t max_bytes = SIZE_MAX) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  auto size = static_cast<uint64_t>(std::max<std::streamoff>(0, in.tellg()));
  if (offset >= size) return "";
  uint64_t length = std::min<uint64_t>(size - offset, max_bytes);
  std::string data(length, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(data.data(), static_cast<std::streamsize>(length));
  data.resize(static_cast<size_t>(std::max<std::streamsize>(0, in.gcount())));
  return data;
}

uint64_t FileSize(const std::filesystem::path& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

}  // namespace

SubprocessOptions Command(std::vector<std::string> argv, std::string name,
                          std::filesystem::path log_dir) {
  SubprocessOptions options;
  options.argv = std::move(argv);
  options.name = std::move(name);
  options.log_dir = std::move(log_dir);
  return options;
}

std::string ExitStatus::ToString() const {
  if (signal) {
    const char* description = sigdescr_np(*signal);
    return "killed by signal " + std::to_string(*signal) + " (" +
           (description != nullptr ? description : "unknown") + ")";
  }
  return "exit code " + std::to_string(exit_code.value_or(-1));
}

Result<std::filesystem::path> MakeTempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    int err = errno;
    return Status::IoError("mkdtemp " + pattern + ": " + ErrnoText(err));
  }
  return std::filesystem::path(buffer.data());
}

std::string ReadFileOrEmpty(const std::filesystem::path& path) { return ReadFrom(path, 0); }

std::string LastLines(const std::string& text, size_t lines) {
  if (lines == 0 || text.empty()) return "";
  size_t end = text.size();
  if (text[end - 1] == '\n') --end;  // A final newline does not start a line.
  size_t pos = end;
  size_t found = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n' && ++found == lines) break;
    --pos;
  }
  return text.substr(pos);
}

Result<std::unique_ptr<Subprocess>> Subprocess::Start(SubprocessOptions options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return Status::InvalidArgument("Subprocess: empty argv");
  }
  std::string name = options.name.empty()
                         ? std::filesystem::path(options.argv[0]).filename().string()
                         : options.name;
  if (!ValidName(name)) return Status::InvalidArgument("Subprocess: bad name '" + name + "'");
  std::optional<std::string> program = ResolveProgram(options.argv[0]);
  if (!program) {
    return Status::InvalidArgument("Subprocess: program '" + options.argv[0] +
                                   "' not found in PATH");
  }

  std::unique_ptr<Subprocess> self(new Subprocess());
  self->name_ = name;
  if (options.log_dir.empty()) {
    STREAMS_ASSIGN_OR_RETURN(self->log_dir_, MakeTempDir("subprocess-" + name + "-"));
    self->owns_log_dir_ = true;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(options.log_dir, ec);
    if (ec) {
      return Status::IoError("create " + options.log_dir.string() + ": " + ec.message());
    }
    self->log_dir_ = options.log_dir;
  }
  self->stdout_path_ = self->log_dir_ / (name + ".stdout");
  self->stderr_path_ = self->log_dir_ / (name + ".stderr");

  STREAMS_ASSIGN_OR_RETURN(Fd null_in, OpenFile("/dev/null", O_RDONLY));
  STREAMS_ASSIGN_OR_RETURN(Fd out, OpenFile(self->stdout_path_, O_WRONLY | O_CREAT | O_TRUNC));
  STREAMS_ASSIGN_OR_RETURN(Fd err, OpenFile(self->stderr_path_, O_WRONLY | O_CREAT | O_TRUNC));

  // Everything the child needs is prepared before fork(): between fork and exec
  // only async-signal-safe calls are made (this process may have threads).
  std::vector<char*> argv;
  for (auto& arg : options.argv) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = BuildEnvironment(options.env);
  std::vector<char*> envp;
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  const char* working_dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();
  const char* path = program->c_str();

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    int e = errno;
    return Status::IoError("pipe2: " + ErrnoText(e));
  }
  Fd exec_error_read(pipe_fds[0]);
  Fd exec_error_write(pipe_fds[1]);

  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    return Status::IoError("fork: " + ErrnoText(e));
  }
  if (pid == 0) {
    // Child.
    int child_error = 0;
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2}) {
      sigaction(sig, &dfl, nullptr);
    }
    if (dup2(null_in.get(), STDIN_FILENO) < 0 || dup2(out.get(), STDOUT_FILENO) < 0 ||
        dup2(err.get(), STDERR_FILENO) < 0 || (working_dir != nullptr && chdir(working_dir) != 0)) {
      child_error = errno;
    } else {
      execve(path, argv.data(), envp.data());
      child_error = errno;
    }
    ssize_t ignored = write(exec_error_write.get(), &child_error, sizeof(child_error));
    (void)ignored;
    _exit(127);
  }

  // Parent. Set the group here too, so a Kill() right after Start() reaches it.
  setpgid(pid, pid);
  self->pid_ = pid;
  exec_error_write.Reset();
  int child_error = 0;
  ssize_t n;
  do {
    n = read(exec_error_read.get(), &child_error, sizeof(child_error));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(child_error))) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    self->exit_status_ = DecodeWaitStatus(status);
    return Status::IoError("exec " + *program + ": " + ErrnoText(child_error));
  }
  return self;
}

Subprocess::~Subprocess() {
  {
    std::lock_guard lock(mu_);
    if (pid_ > 0 && !exit_status_) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      ReapLocked(/*block=*/true);
    }
  }
  if (owns_log_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(log_dir_, ec);
  }
}

bool Subprocess::ReapLocked(bool block) {
  if (exit_status_) return true;
  if (pid_ <= 0) return false;
  // Look first without reaping: while the exited leader is a zombie its process
  // group id cannot be reused, so whatever it left in its group can be killed.
  siginfo_t info;
  memset(&info, 0, sizeof(info));
  int r;
  do {
    r = waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
  } while (r < 0 && errno == EINTR);
  if (r < 0 || info.si_pid != pid_) return false;
  kill(-pid_, SIGKILL);
  int status = 0;
  pid_t reaped;
  do {
    reaped = waitpid(pid_, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  if (reaped != pid_) return false;
  exit_status_ = DecodeWaitStatus(status);
  return true;
}

bool Subprocess::IsRunning() {
  std::lock_guard lock(mu_);
  return !ReapLocked(/*block=*/false);
}

Status Subprocess::Kill(int signal) {
  std::lock_guard lock(mu_);
  if (ReapLocked(/*block=*/false)) {
    return Status::FailedPrecondition(name_ + " (pid " + std::to_string(pid_) +
                                      ") has already exited: " + exit_status_->ToString());
  }
  if (kill(-pid_, signal) != 0) {
    int e = errno;
    if (e == EINVAL) return Status::InvalidArgument("bad signal " + std::to_string(signal));
    // ESRCH: the group does not exist yet or any more; try the process itself.
    if (kill(pid_, signal) != 0) {
      e = errno;
      return Status::IoError("kill " + std::to_string(pid_) + ": " + ErrnoText(e));
    }
  }
  return Status::Ok();
}

Result<ExitStatus> Subprocess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (ReapLocked(/*block=*/false)) return *exit_status_;
    }
    auto now = SteadyClock::now();
    if (now >= deadline) {
      return Status::TimedOut(name_ + " (pid " + std::to_string(pid_) + ") still running after " +
                              std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(std::min<SteadyClock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

ExitStatus Subprocess::Stop(int signal, std::chrono::milliseconds timeout) {
  if (auto status = exit_status(); status) return *status;
  (void)Kill(signal);  // FailedPrecondition only when it has just exited.
  auto waited = Wait(timeout);
  if (waited.ok()) return *waited;
  std::lock_guard lock(mu_);
  if (!exit_status_) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    ReapLocked(/*block=*/true);
  }
  return exit_status_.value_or(ExitStatus{.exit_code = std::nullopt, .signal = SIGKILL});
}

std::optional<ExitStatus> Subprocess::exit_status() const {
  std::lock_guard lock(mu_);
  return exit_status_;
}

Result<LineMatch> Subprocess::WaitForLine(OutputStream stream, const std::regex& pattern,
                                          std::chrono::milliseconds timeout, uint64_t from_offset) {
  const std::filesystem::path& path = stream == OutputStream::kStdout ? stdout_path_ : stderr_path_;
  auto deadline = SteadyClock::now() + timeout;
  uint64_t scanned = from_offset;  // Start of the first line not yet looked at.
  std::string pending;             // Bytes from `scanned` on, read so far.
  auto try_line = [&](std::string_view line, uint64_t end_offset) -> std::optional<LineMatch> {
    std::string text(line);
    std::smatch m;
    if (!std::regex_search(text, m, pattern)) return std::nullopt;
    LineMatch match;
    for (const auto& group : m) match.groups.push_back(group.str());
    match.line = std::move(text);
    match.end_offset = end_offset;
    return match;
  };
  while (true) {
    // Whether the child had exited before this read: then the read sees all it wrote.
    bool exited = !IsRunning();
    pending += ReadFrom(path, scanned + pending.size());
    size_t start = 0;
    size_t newline;
    while ((newline = pending.find('\n', start)) != std::string::npos) {
      std::string_view line(pending.data() + start, newline - start);
      if (auto match = try_line(line, scanned + newline + 1)) return *std::move(match);
      start = newline + 1;
    }
    pending.erase(0, start);
    scanned += start;
    if (exited) {
      if (!pending.empty()) {
        if (auto match = try_line(pending, scanned + pending.size())) return *std::move(match);
      }
      return Status::FailedPrecondition(name_ + " exited (" + exit_status()->ToString() +
                                        ") without printing a line matching the pattern\n" +
                                        Describe());
    }
    if (SteadyClock::now() >= deadline) {
      return Status::TimedOut(name_ + ": no line matching the pattern within " +
                              std::to_string(timeout.count()) + " ms\n" + Describe());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string Subprocess::ReadOutput(OutputStream stream) const {
  return ReadFileOrEmpty(stream == OutputStream::kStdout ? stdout_path_ : stderr_path_);
}

std::string Subprocess::Tail(OutputStream stream, size_t lines, size_t max_bytes) const {
  const std::filesystem::path& path = stream == OutputStream::kStdout ? stdout_path_ : stderr_path_;
  uint64_t size = FileSize(path);
  uint64_t offset = size > max_bytes ? size - max_bytes : 0;
  return LastLines(ReadFrom(path, offset, max_bytes), lines);
}

std::string Subprocess::Describe(size_t lines) const {
  std::optional<ExitStatus> status = exit_status();
  std::string out = "--- " + name_ + " (pid " + std::to_string(pid_) + ", " +
                    (status ? status->ToString() : std::string("running")) + ")\n";
  out += "--- last lines of " + stdout_path_.string() + ":\n" + Tail(OutputStream::kStdout, lines);
  if (!out.empty() && out.back() != '\n') out += '\n';
  out += "--- last lines of " + stderr_path_.string() + ":\n" + Tail(OutputStream::kStderr, lines);
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out;
}

}  // namespace streams::test_support
