// Keeps src/payments/README.md and the project README in sync with the
// decline code and configuration key tables of the code.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "payments/decline_codes.h"
#include "payments/payments_config.h"

namespace payments {
namespace {

class ReadmeTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    std::ifstream in(GetParam());
    ASSERT_TRUE(in.good()) << GetParam();
    std::stringstream ss;
    ss << in.rdbuf();
    readme_ = ss.str();
  }
  std::string readme_;
};

TEST_P(ReadmeTest, ListsEveryDeclineCodeWithItsDescription) {
  for (const auto& info : kDeclineCodes) {
    std::string row =
        "| `" + std::string(info.code) + "` | " + std::string(info.description) + " |";
    EXPECT_NE(readme_.find(row), std::string::npos) << "missing row: " << row;
  }
}

TEST_P(ReadmeTest, ListsEveryConfigKeyWithDefault) {
  for (const auto& info : kPaymentsConfigKeys) {
    std::string row = "| `" + std::string(info.key) + "` | `" + std::string(info.default_value) +
                      "` | " + std::string(info.description) + " |";
    EXPECT_NE(readme_.find(row), std::string::npos) << "missing row: " << row;
  }
}

INSTANTIATE_TEST_SUITE_P(Readmes, ReadmeTest,
                         ::testing::Values(PAYMENTS_README_PATH, ROOT_README_PATH));

}  // namespace
}  // namespace payments
