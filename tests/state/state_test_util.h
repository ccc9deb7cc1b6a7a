// Helpers shared by the state tests: a temporary directory and status matchers.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "streams/state/task_state.h"

namespace streams::state::testing {

// A fresh directory, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "state_test_XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

#define ASSERT_OK(expr)                    \
  do {                                     \
    ::streams::Status s_ = (expr);         \
    ASSERT_TRUE(s_.ok()) << s_.ToString(); \
  } while (false)

#define EXPECT_OK(expr)                    \
  do {                                     \
    ::streams::Status s_ = (expr);         \
    EXPECT_TRUE(s_.ok()) << s_.ToString(); \
  } while (false)

// A store spec (avoids designated initializers, which -Wextra flags when partial).
inline StoreSpec Spec(std::string name, StoreKind kind = StoreKind::kPersistent,
                      std::optional<std::chrono::milliseconds> ttl = std::nullopt,
                      bool logged = true) {
  StoreSpec spec;
  spec.name = std::move(name);
  spec.kind = kind;
  spec.ttl = ttl;
  spec.logged = logged;
  return spec;
}

// A checkpoint holding only a stream time.
inline Checkpoint AtStreamTime(int64_t millis) {
  Checkpoint cp;
  cp.stream_time = Timestamp(millis);
  return cp;
}

inline std::unique_ptr<StateResources> SmallResources() {
  StateOptions options;
  options.block_cache_bytes = 8 << 20;
  options.write_buffer_bytes = 8 << 20;
  options.write_buffer_size_per_store = 1 << 20;
  auto r = StateResources::Create(options);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

// All entries of an iterator as (key, value) pairs; fails the test on error.
inline std::vector<std::pair<std::string, std::string>> Drain(KeyValueIterator* it) {
  std::vector<std::pair<std::string, std::string>> out;
  for (; it->Valid(); it->Next())
    out.emplace_back(std::string(it->key()), std::string(it->value()));
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

inline const char* KindName(StoreKind kind) {
  return kind == StoreKind::kPersistent ? "Persistent" : "InMemory";
}

}  // namespace streams::state::testing
