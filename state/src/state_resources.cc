#include "streams/state/state_resources.h"

#include <rocksdb/cache.h>
#include <rocksdb/write_buffer_manager.h>

namespace streams::state {

Result<std::unique_ptr<StateResources>> StateResources::Create(const StateOptions& options) {
  if (options.block_cache_bytes == 0 || options.write_buffer_bytes == 0 ||
      options.write_buffer_size_per_store == 0) {
    return Status::InvalidArgument(
        "state options: block_cache_bytes, write_buffer_bytes and write_buffer_size_per_store "
        "must be > 0");
  }
  std::unique_ptr<StateResources> resources(new StateResources());
  resources->options_ = options;
  resources->block_cache_ = rocksdb::NewLRUCache(options.block_cache_bytes);
  if (resources->block_cache_ == nullptr) {
    return Status::Internal("rocksdb::NewLRUCache returned no cache");
  }
  // Memtable memory is charged to the block cache, so the cache bounds both.
  resources->write_buffer_manager_ = std::make_shared<rocksdb::WriteBufferManager>(
      options.write_buffer_bytes, resources->block_cache_);
  return resources;
}

}  // namespace streams::state
