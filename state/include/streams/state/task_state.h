// TaskState: the local state of one task (one input partition): one RocksDB
// instance with a column family per persistent store, plus in-memory stores,
// plus the task's checkpoint.
//
// Commit protocol (the engine's exactly-once contract for local state):
//   1. The task processes records; stores stage their writes (reads see them).
//   2. The runtime sends TakeChangelog() records and outputs to Kafka and
//      commits the Kafka transaction.
//   3. Only then, Commit(checkpoint) applies all staged writes of all stores and
//      the checkpoint in ONE atomic RocksDB WriteBatch.
//   If the Kafka transaction aborts, Abort() drops every staged write. Local state
//   is therefore never ahead of the last committed transaction; it may be behind
//   (crash between 2 and 3), which restore from the changelog repairs.
//
// Thread safety: not thread-safe; owned and driven by one thread at a time.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "streams/kafka_types.h"
#include "streams/result.h"
#include "streams/state/key_value_store.h"
#include "streams/state/state_resources.h"
#include "streams/state/store_spec.h"
#include "streams/status.h"

namespace streams::state {

// What has been committed: where to resume input and where to resume restoring.
struct Checkpoint {
  // Input partition -> next offset to consume.
  std::map<TopicPartition, Offset> input_offsets;
  // Store name -> next changelog offset to restore from.
  std::map<std::string, Offset> changelog_offsets;
  // The task's stream time at commit (the largest record timestamp seen).
  std::optional<Timestamp> stream_time;
  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// One staged write, to be sent to the store's changelog topic (key = store key,
// value absent = tombstone). `timestamp` is the stream time of the write.
struct ChangelogRecord {
  std::string store;
  std::string key;
  std::optional<std::string> value;
  Timestamp timestamp;
};

class TaskState {
 public:
  // Opens (creating when missing) the database at `directory` with a store per
  // spec. Column families of stores no longer in `specs` are kept untouched.
  // Errors: InvalidArgument (duplicate or bad store name), IoError (RocksDB
  // could not open; a lock held by another process is reported naming the
  // directory). `resources` is borrowed and must outlive the TaskState.
  static Result<std::unique_ptr<TaskState>> Open(const std::string& directory,
                                                 const std::vector<StoreSpec>& specs,
                                                 StateResources* resources);

  virtual ~TaskState() = default;

  // The store named `name`, or nullptr. The pointer lives as long as this object.
  virtual KeyValueStore* GetStore(std::string_view name) = 0;
  virtual const std::vector<StoreSpec>& specs() const = 0;

  // The checkpoint of the last Commit (empty for a new database). In-memory
  // stores never have a changelog offset: they restore from the beginning.
  virtual const Checkpoint& checkpoint() const = 0;

  // Sets the stream time used for TTL reads and for changelog timestamps of the
  // following writes. Stream time never goes back: an older value is ignored.
  virtual void AdvanceStreamTime(Timestamp stream_time) = 0;
  virtual Timestamp stream_time() const = 0;

  // Stages tombstones for every entry of TTL stores that expired by stream time.
  // Returns how many entries were purged.
  virtual Result<size_t> PurgeExpired() = 0;

  // Moves out the changelog records of writes staged since the last call, in
  // write order (the last write of a key in a cycle wins when replayed).
  // Records are coalesced: only the last write of each (store, key) since the
  // previous call is returned, at the position of that last write. Values are the
  // stored bytes (for TTL stores: 8-byte big-endian write time + value), which
  // ApplyRestoreBatch expects back. Commit() keeps records not yet taken.
  virtual std::vector<ChangelogRecord> TakeChangelog() = 0;

  // True when writes are staged and not yet committed or aborted.
  virtual bool HasStagedWrites() const = 0;

  // Atomically applies every staged write and `checkpoint` (replacing the
  // previous one) in one WriteBatch. On error nothing is applied and the
  // staged writes remain, so the caller may retry or Abort().
  // Changelog offsets of in-memory stores are dropped from the stored checkpoint.
  // Errors: FailedPrecondition (closed, or store iterators still open), IoError
  // and others translated from RocksDB.
  virtual Status Commit(const Checkpoint& checkpoint) = 0;

  // Drops every staged write (and changelog records not yet taken). Reads then
  // see the last committed state again: stream time also returns to its value
  // at the last Commit (or restore), the one exception to "never goes back".
  virtual void Abort() = 0;

  // Restore: applies changelog records read from `store`'s changelog directly
  // (not staged, not re-logged), and records `next_offset` (the offset after the
  // last record applied) as the store's checkpointed changelog offset, in one
  // atomic batch. A record with no value deletes the key.
  // Precondition: no staged writes (FailedPrecondition otherwise). Errors:
  // NotFound (unknown store), Corruption (a TTL store value shorter than its
  // 8-byte timestamp; nothing applied), RocksDB errors. In-memory stores apply
  // to memory and never get a checkpointed offset. Stream time advances to the
  // largest record timestamp and is checkpointed with the batch.
  virtual Status ApplyRestoreBatch(std::string_view store,
                                   const std::vector<ChangelogRecord>& records,
                                   Offset next_offset) = 0;

  // Approximate bytes on disk plus memtables, for metrics.
  virtual uint64_t ApproximateSizeBytes() = 0;

  // Flushes memtables and closes the database; staged writes are dropped.
  // Idempotent. The destructor closes too. FailedPrecondition while store
  // iterators are open. After Close every store operation fails with
  // FailedPrecondition (store pointers stay valid until destruction).
  virtual Status Close() = 0;
};

// Removes the database at `directory` (used when a task is closed dirty and must
// rebuild from its changelog). Errors: IoError.
Status DestroyTaskState(const std::string& directory);

}  // namespace streams::state
