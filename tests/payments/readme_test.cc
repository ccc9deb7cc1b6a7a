// Keeps src/payments/README.md in sync with the decline code and
// configuration key tables of the code.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "payments/decline_codes.h"
#include "payments/payments_config.h"

namespace payments {
namespace {

class ReadmeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream in(PAYMENTS_README_PATH);
    ASSERT_TRUE(in.good()) << PAYMENTS_README_PATH;
    std::stringstream ss;
    ss << in.rdbuf();
    readme_ = ss.str();
  }
  std::string readme_;
};

TEST_F(ReadmeTest, ListsEveryDeclineCodeWithItsDescription) {
  for (const auto& info : kDeclineCodes) {
    std::string row =
        "| `" + std::string(info.code) + "` | " + std::string(info.description) + " |";
    EXPECT_NE(readme_.find(row), std::string::npos) << "missing row: " << row;
  }
}

TEST_F(ReadmeTest, ListsEveryConfigKeyWithDefault) {
  for (const auto& info : kPaymentsConfigKeys) {
    std::string row = "| `" + std::string(info.key) + "` | `" + std::string(info.default_value) +
                      "` | " + std::string(info.description) + " |";
    EXPECT_NE(readme_.find(row), std::string::npos) << "missing row: " << row;
  }
}

}  // namespace
}  // namespace payments
