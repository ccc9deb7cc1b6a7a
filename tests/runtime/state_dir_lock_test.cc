#include "state_dir_lock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace streams::runtime::internal {
namespace {

using ::testing::HasSubstr;

class StateDirLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("state_dir_lock_test_" + std::to_string(::getpid())) / "app")
               .string();
  }
  void TearDown() override {
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }
  std::string dir_;
};

TEST_F(StateDirLockTest, SecondLockInSameProcessFails) {
  auto first = StateDirLock::Acquire(dir_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/.lock"));
  auto second = StateDirLock::Acquire(dir_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr("state directory " + dir_ + " is locked by another instance (pid " +
                        std::to_string(::getpid()) + ")"));
  first->reset();
  auto third = StateDirLock::Acquire(dir_);
  EXPECT_TRUE(third.ok()) << third.status();
}

TEST_F(StateDirLockTest, LockHeldByAnotherProcessNamesItsPid) {
  int ready[2];
  int release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lock = StateDirLock::Acquire(dir_);
    char byte = lock.ok() ? 1 : 0;
    (void)!::write(ready[1], &byte, 1);
    (void)!::read(release[0], &byte, 1);
    _exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ASSERT_EQ(byte, 1);
  auto second = StateDirLock::Acquire(dir_);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(),
              HasSubstr("is locked by another instance (pid " + std::to_string(child) + ")"));
  (void)!::write(release[1], &byte, 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  // The kernel released the dead child's lock.
  auto after = StateDirLock::Acquire(dir_);
  EXPECT_TRUE(after.ok()) << after.status();
}

}  // namespace
}  // namespace streams::runtime::internal
