// Internal: an exclusive lock on an application's state directory.
//
// flock(LOCK_EX | LOCK_NB) on "<dir>/.lock", which holds the owner's pid. The
// lock belongs to the open file description, so a second instance in the same
// process is refused as well as one in another process; the kernel releases it
// when the process dies.
//
// Thread safety: not thread-safe; owned by one KafkaStreams instance.
#pragma once

#include <memory>
#include <string>

#include "streams/result.h"

namespace streams::runtime::internal {

class StateDirLock {
 public:
  // Creates `directory` (and parents) when missing and locks it. Errors:
  // FailedPrecondition "state directory <dir> is locked by another instance
  // (pid N)", IoError (cannot create or open).
  static Result<std::unique_ptr<StateDirLock>> Acquire(const std::string& directory);

  // Releases the lock.
  ~StateDirLock();
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

  const std::string& directory() const { return directory_; }

 private:
  StateDirLock(std::string directory, int fd) : directory_(std::move(directory)), fd_(fd) {}
  std::string directory_;
  int fd_;
};

}  // namespace streams::runtime::internal
