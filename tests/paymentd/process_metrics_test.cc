// ProcessCollector (the process_* metrics of every daemon) and RegisterBuildInfo.
#include "paymentd/process_metrics.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>

namespace paymentd {
namespace {

TEST(ParseProcStatTest, ReadsTheFieldsAfterTheCommandName) {
  // The command name may hold spaces and parentheses.
  const std::string text =
      "4242 (pay (d) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 25 0 0 20 0 9 0 "
      "123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n";
  auto stat = ParseProcStat(text);
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->utime_ticks, 150u);
  EXPECT_EQ(stat->stime_ticks, 25u);
  EXPECT_EQ(stat->start_ticks, 123456u);
  EXPECT_EQ(stat->vsize_bytes, 987654321u);
  EXPECT_EQ(stat->rss_pages, 2048);
}

TEST(ParseProcStatTest, RejectsTruncatedOrMalformedText) {
  EXPECT_FALSE(ParseProcStat("").ok());
  EXPECT_FALSE(ParseProcStat("1 (x) S 1 2 3").ok());
  EXPECT_FALSE(ParseProcStat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 25 0 0 20 0 9 0 1 2 3").ok());
}

TEST(ParseBootTimeTest, FindsTheBtimeLine) {
  auto boot = ParseBootTime("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n");
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(*boot, 1700000000);
  EXPECT_FALSE(ParseBootTime("cpu 1 2 3\n").ok());
  EXPECT_FALSE(ParseBootTime("btime x\n").ok());
}

TEST(ProcessCollectorTest, ReportsThisProcess) {
  std::map<std::string, prometheus::MetricFamily> families;
  for (auto& family : ProcessCollector().Collect()) families[family.name] = family;
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds"}) {
    ASSERT_EQ(families.count(name), 1u) << name;
    ASSERT_EQ(families[name].metric.size(), 1u) << name;
    EXPECT_FALSE(families[name].help.empty()) << name;
  }
  EXPECT_EQ(families["process_cpu_seconds_total"].type, prometheus::MetricType::Counter);
  EXPECT_GE(families["process_cpu_seconds_total"].metric[0].counter.value, 0);
  const double rss = families["process_resident_memory_bytes"].metric[0].gauge.value;
  EXPECT_GT(rss, 1 << 20);
  EXPECT_GE(families["process_virtual_memory_bytes"].metric[0].gauge.value, rss);
  // stdin, stdout and stderr at least; the directory listing's own fd is not counted.
  const double fds = families["process_open_fds"].metric[0].gauge.value;
  EXPECT_GE(fds, 3);
  EXPECT_LE(fds, families["process_max_fds"].metric[0].gauge.value);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double start = families["process_start_time_seconds"].metric[0].gauge.value;
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 3600);  // This test process started less than an hour ago.
}

TEST(BuildInfoTest, RegistersAGaugeOfOneWithVersionAndRevision) {
  prometheus::Registry registry;
  ASSERT_TRUE(RegisterBuildInfo(registry, "paymentd").ok());
  auto families = registry.Collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "paymentd_build_info");
  EXPECT_EQ(families[0].type, prometheus::MetricType::Gauge);
  ASSERT_EQ(families[0].metric.size(), 1u);
  EXPECT_EQ(families[0].metric[0].gauge.value, 1);
  std::map<std::string, std::string> labels;
  for (const auto& label : families[0].metric[0].label) labels[label.name] = label.value;
  EXPECT_EQ(labels["version"], BuildVersion());
  EXPECT_EQ(labels["revision"], BuildRevision());
  EXPECT_FALSE(BuildVersion().empty());
  EXPECT_FALSE(BuildRevision().empty());

  EXPECT_FALSE(RegisterBuildInfo(registry, "bad name").ok());
}

}  // namespace
}  // namespace paymentd
