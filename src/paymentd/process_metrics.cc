#include "paymentd/process_metrics.h"

#include <dirent.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <exception>
#include <fstream>
#include <iterator>
#include <optional>

#include "paymentd/build_revision.h"

namespace paymentd {
namespace {

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path, std::ios::in | std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <typename T>
bool ParseNumber(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

// Entries of /proc/self/fd, without the one opendir itself holds.
std::optional<int64_t> OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  int64_t count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;
}

}  // namespace

streams::Result<ProcStat> ParseProcStat(std::string_view text) {
  // "pid (comm) state ppid ...": comm may contain anything, so fields are
  // counted from the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) {
    return streams::Status::Corruption("/proc/self/stat: no command name");
  }
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state).
  size_t pos = close + 1;
  while (pos < text.size()) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\n')) ++pos;
    size_t end = pos;
    while (end < text.size() && text[end] != ' ' && text[end] != '\n') ++end;
    if (end > pos) fields.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  auto field = [&](int number) { return fields[static_cast<size_t>(number - 3)]; };
  if (fields.size() < 22) {
    return streams::Status::Corruption("/proc/self/stat: " + std::to_string(fields.size() + 2) +
                                       " fields, expected at least 24");
  }
  ProcStat stat;
  if (!ParseNumber(field(14), stat.utime_ticks) || !ParseNumber(field(15), stat.stime_ticks) ||
      !ParseNumber(field(22), stat.start_ticks) || !ParseNumber(field(23), stat.vsize_bytes) ||
      !ParseNumber(field(24), stat.rss_pages)) {
    return streams::Status::Corruption("/proc/self/stat: a field is not a number");
  }
  return stat;
}

streams::Result<int64_t> ParseBootTime(std::string_view proc_stat) {
  size_t pos = 0;
  while (pos < proc_stat.size()) {
    size_t end = proc_stat.find('\n', pos);
    if (end == std::string_view::npos) end = proc_stat.size();
    std::string_view line = proc_stat.substr(pos, end - pos);
    if (line.substr(0, 6) == "btime ") {
      int64_t seconds = 0;
      if (ParseNumber(line.substr(6), seconds)) return seconds;
      return streams::Status::Corruption("/proc/stat: malformed btime line");
    }
    pos = end + 1;
  }
  return streams::Status::Corruption("/proc/stat: no btime line");
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  std::optional<std::string> stat_text = ReadFile("/proc/self/stat");
  streams::Result<ProcStat> stat =
      stat_text
          ? ParseProcStat(*stat_text)
          : streams::Result<ProcStat>(streams::Status::IoError("cannot read /proc/self/stat"));
  if (stat.ok() && ticks > 0) {
    out.push_back(Family(
        "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
        MetricType::Counter,
        static_cast<double>(stat->utime_ticks + stat->stime_ticks) / static_cast<double>(ticks)));
  }
  if (stat.ok() && page > 0) {
    out.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes.",
                         MetricType::Gauge,
                         static_cast<double>(stat->rss_pages) * static_cast<double>(page)));
    out.push_back(Family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                         MetricType::Gauge, static_cast<double>(stat->vsize_bytes)));
  }
  if (std::optional<int64_t> fds = OpenFds()) {
    out.push_back(Family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                         static_cast<double>(*fds)));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    out.push_back(Family("process_max_fds", "Maximum number of open file descriptors.",
                         MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  if (stat.ok() && ticks > 0) {
    std::optional<std::string> proc_stat = ReadFile("/proc/stat");
    streams::Result<int64_t> boot =
        proc_stat ? ParseBootTime(*proc_stat)
                  : streams::Result<int64_t>(streams::Status::IoError("cannot read /proc/stat"));
    if (boot.ok()) {
      out.push_back(Family("process_start_time_seconds",
                           "Start time of the process since unix epoch in seconds.",
                           MetricType::Gauge,
                           static_cast<double>(*boot) + static_cast<double>(stat->start_ticks) /
                                                            static_cast<double>(ticks)));
    }
  }
  return out;
}

std::string_view BuildVersion() { return kBuildVersion; }
std::string_view BuildRevision() { return kBuildRevision; }

streams::Status RegisterBuildInfo(prometheus::Registry& registry, std::string_view prefix) {
  try {
    prometheus::BuildGauge()
        .Name(std::string(prefix) + "_build_info")
        .Help("Always 1; the labels tell the version and source revision of the binary")
        .Register(registry)
        .Add({{"version", std::string(BuildVersion())}, {"revision", std::string(BuildRevision())}})
        .Set(1);
  } catch (const std::exception& e) {
    return streams::Status::InvalidArgument("build info metric '" + std::string(prefix) +
                                            "_build_info': " + e.what());
  }
  return streams::Status::Ok();
}

}  // namespace paymentd
