// KeyValueStore: a byte-oriented, ordered key-value store owned by one task.
//
// Writes are staged: they are visible to reads on this store at once, but become
// durable only when the owning TaskState commits, and vanish when it aborts.
// Every write also yields a changelog record (see TaskState::TakeChangelog).
//
// Thread safety: not thread-safe. A store belongs to one task, and a task is
// driven by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "streams/result.h"
#include "streams/status.h"

namespace streams::state {

// Iterates entries in ascending byte order of key. Reflects committed data
// overlaid with this cycle's staged writes, as of its creation.
// Lifetime: must be destroyed before the store's TaskState is committed,
// aborted or closed.
class KeyValueIterator {
 public:
  virtual ~KeyValueIterator() = default;
  virtual bool Valid() const = 0;
  // Precondition: Valid().
  virtual void Next() = 0;
  // Precondition: Valid(). The views stay valid until the next Next().
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Non-OK when iteration stopped because of an error (not at the end).
  virtual Status status() const = 0;
};

class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;

  virtual const std::string& name() const = 0;

  // Returns the value for `key`, std::nullopt when absent (or expired, for a
  // store with a TTL), or an error (IoError, Corruption) from the storage.
  virtual Result<std::optional<std::string>> Get(std::string_view key) = 0;

  // Stages key -> value. Returns an error only when the storage fails.
  virtual Status Put(std::string_view key, std::string_view value) = 0;

  // Stages the removal of `key` (absent keys are fine: a tombstone is still logged).
  virtual Status Delete(std::string_view key) = 0;

  // Entries with from <= key < to, in key order. An empty `to` means "to the end".
  virtual Result<std::unique_ptr<KeyValueIterator>> Range(std::string_view from,
                                                          std::string_view to) = 0;

  // Entries whose key starts with `prefix`, in key order.
  virtual Result<std::unique_ptr<KeyValueIterator>> PrefixScan(std::string_view prefix) = 0;

  // An estimate of the number of committed entries (for metrics); cheap.
  virtual uint64_t ApproximateNumEntries() = 0;
};

}  // namespace streams::state
