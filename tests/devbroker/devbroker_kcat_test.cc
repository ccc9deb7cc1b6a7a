// kcat round trip against the real `devbroker` executable started as a
// subprocess on an ephemeral port (ctest labels: devbroker, kcat).

#include <signal.h>
#include <unistd.h>

#include <regex>

#include <gtest/gtest.h>

#include "test_util.h"

namespace devbroker::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kKcat[] = "/usr/bin/kcat";

class KcatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kKcat, X_OK) != 0) GTEST_SKIP() << "kcat not installed";
    broker_ = ChildProcess::Spawn(
        {DEVBROKER_BIN, "--listen", "127.0.0.1:0", "--log-level", "warn"},
        /*capture_stdout=*/true);
    ASSERT_NE(broker_, nullptr);
    std::string line;
    ASSERT_TRUE(broker_->ReadLine(&line, seconds(10)));
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m,
                                 std::regex(R"(devbroker listening on (\S+):(\d+))")))
        << line;
    bootstrap_ = m[1].str() + ":" + m[2].str();
  }

  void TearDown() override {
    if (broker_ != nullptr) {
      broker_->Kill(SIGTERM);
      EXPECT_EQ(broker_->Wait(seconds(10)), 0) << "devbroker did not exit cleanly";
    }
  }

  std::string Kcat(const std::string& args, const std::string& stdin_data = "") {
    std::string cmd;
    if (!stdin_data.empty()) cmd = "printf '" + stdin_data + "' | ";
    cmd += std::string("timeout 20 ") + kKcat + " -b " + bootstrap_ + " " + args;
    std::string out;
    int rc = RunCommand(cmd, &out, seconds(25));
    EXPECT_EQ(rc, 0) << cmd << "\n" << out;
    return out;
  }

  std::unique_ptr<ChildProcess> broker_;
  std::string bootstrap_;
};

TEST_F(KcatTest, ProduceAndConsumeRoundTrip) {
  Kcat("-P -t kcat-topic -p 0", "alpha\\nbeta\\ngamma\\n");
  EXPECT_EQ(Kcat("-C -t kcat-topic -p 0 -o beginning -e -q -f '%o:%s\\n'"),
            "0:alpha\n1:beta\n2:gamma\n");
  // Read-committed consumption and keyed messages work as well.
  Kcat("-P -t kcat-topic -p 1 -K :", "k1:v1\\nk2:v2\\n");
  EXPECT_EQ(Kcat("-C -t kcat-topic -p 1 -o beginning -e -q "
                 "-X isolation.level=read_committed -f '%k=%s\\n'"),
            "k1=v1\nk2=v2\n");
  std::string metadata = Kcat("-L -t kcat-topic");
  EXPECT_NE(metadata.find("topic \"kcat-topic\" with 4 partitions"),
            std::string::npos)
      << metadata;
}

TEST_F(KcatTest, BalancedConsumerGroupReadsEverything) {
  Kcat("-P -t kcat-group-topic -p 2", "one\\ntwo\\n");
  std::string out = Kcat("-G kcat-group -o beginning -e -q -f '%s\\n' kcat-group-topic");
  EXPECT_EQ(out, "one\ntwo\n");
}

}  // namespace
}  // namespace devbroker::testing
