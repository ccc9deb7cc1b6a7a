// StateResources: memory shared by every RocksDB instance of a process.
//
// One block cache and one write-buffer manager bound the memory of all task
// databases together, whatever the number of tasks.
//
// Thread safety: thread-safe; shared by all tasks of all threads.
#pragma once

#include <cstddef>
#include <memory>

#include "streams/result.h"

namespace rocksdb {
class Cache;
class WriteBufferManager;
}  // namespace rocksdb

namespace streams::state {

struct StateOptions {
  // Shared LRU block cache for all task databases.
  size_t block_cache_bytes = 64 << 20;
  // Upper bound of all memtables of all task databases together.
  size_t write_buffer_bytes = 64 << 20;
  // Per column family memtable size.
  size_t write_buffer_size_per_store = 8 << 20;
  // fsync the WAL on every commit. Off by default: the changelog is the source
  // of truth and restore repairs a lost tail.
  bool sync_commits = false;
};

class StateResources {
 public:
  // Creates the shared cache and write-buffer manager. Fails with
  // InvalidArgument for zero sizes. The returned object must outlive every
  // TaskState opened with it.
  static Result<std::unique_ptr<StateResources>> Create(const StateOptions& options);

  const StateOptions& options() const { return options_; }
  const std::shared_ptr<rocksdb::Cache>& block_cache() const { return block_cache_; }
  const std::shared_ptr<rocksdb::WriteBufferManager>& write_buffer_manager() const {
    return write_buffer_manager_;
  }

 private:
  StateResources() = default;
  StateOptions options_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffer_manager_;
};

}  // namespace streams::state
