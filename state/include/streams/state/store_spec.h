// StoreSpec: how a named store of a task is built.
//
// Thread safety: plain value.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace streams::state {

enum class StoreKind {
  kPersistent,  // A RocksDB column family in the task's database.
  kInMemory,    // A std::map with the same staging semantics; rebuilt from the changelog.
};

struct StoreSpec {
  // Unique within a topology; [A-Za-z0-9._-]+.
  std::string name;
  StoreKind kind = StoreKind::kPersistent;
  // Event-time expiry: an entry written at stream time T is gone for reads once
  // stream time passes T + ttl, and is purged (tombstoned in the changelog) by
  // TaskState::PurgeExpired. Absent: entries never expire.
  std::optional<std::chrono::milliseconds> ttl;
  // Whether writes produce changelog records (and the store is restored from them).
  bool logged = true;
};

}  // namespace streams::state
