// The two store kinds behind KeyValueStore: a RocksDB column family whose writes
// are staged in the task's write cache (one ordered map per column family, the
// last write of each key in the cycle), and a std::map with a staged overlay
// map. Both share StoreBase, which adds TTL prefixes/filtering and changelog
// records.
//
// Thread safety: not thread-safe; driven by the owning task's thread.
#pragma once

#include <rocksdb/db.h>

#include <map>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "merging_iterator.h"
#include "streams/state/key_value_store.h"
#include "streams/state/store_spec.h"
#include "streams/state/task_state.h"

namespace streams::state::internal {

// The staged writes of one column family in the current cycle: the last write
// of each key (std::nullopt = delete), in key order (for iterators). The
// task's write cache: Commit writes each key once, in one WriteBatch. Keys and
// values live in a per-cycle arena, released at once when the cycle ends.
struct ViewLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a < b; }
};
using StagedMap = std::pmr::map<std::pmr::string, std::optional<std::pmr::string>, ViewLess>;

class StagedWrites {
 public:
  StagedWrites() : map_(&arena_) {}
  StagedWrites(const StagedWrites&) = delete;
  StagedWrites& operator=(const StagedWrites&) = delete;

  StagedMap& map() { return map_; }
  const StagedMap& map() const { return map_; }
  bool empty() const { return map_.empty(); }
  // Stages `value` (std::nullopt: a delete) for `key`, replacing an earlier write.
  void Stage(std::string_view key, std::optional<std::string_view> value);
  // Drops every staged write and the arena's memory.
  void Clear() {
    map_.clear();
    arena_.release();
  }

 private:
  std::pmr::monotonic_buffer_resource arena_;
  StagedMap map_;
};

// Copies the entries of `staged` in [from, upper) (no upper: to the end).
template <typename Map>
Overlay CollectStaged(const Map& staged, std::string_view from,
                      const std::optional<std::string>& upper) {
  Overlay overlay;
  auto end = upper.has_value() ? staged.lower_bound(*upper) : staged.end();
  auto begin = staged.lower_bound(from);
  if (upper.has_value() && std::string_view(*upper) <= from) begin = end;
  for (auto it = begin; it != end; ++it) {
    if (it->second.has_value()) {
      overlay.emplace_back(std::string(it->first), std::string(*it->second));
    } else {
      overlay.emplace_back(std::string(it->first), std::nullopt);
    }
  }
  return overlay;
}

// What a store needs from its TaskState.
class StoreHost {
 public:
  virtual ~StoreHost() = default;
  // FailedPrecondition once the TaskState is closed.
  virtual Status CheckUsable() const = 0;
  virtual Timestamp CurrentStreamTime() const = 0;
  // Records a write for the changelog (`stored` absent = tombstone), unless the
  // store is not logged.
  virtual void RecordChangelog(const StoreSpec& spec, std::string_view key,
                               std::optional<std::string_view> stored) = 0;
  // Counter of live iterators (see TaskStateImpl::Commit).
  virtual int* open_iterators() = 0;
};

class StoreBase : public KeyValueStore {
 public:
  StoreBase(StoreSpec spec, StoreHost* host) : spec_(std::move(spec)), host_(host) {}

  const std::string& name() const final { return spec_.name; }
  const StoreSpec& spec() const { return spec_; }

  Result<std::optional<std::string>> Get(std::string_view key) final;
  Status Put(std::string_view key, std::string_view value) final;
  Status Delete(std::string_view key) final;
  Result<std::unique_ptr<KeyValueIterator>> Range(std::string_view from, std::string_view to) final;
  Result<std::unique_ptr<KeyValueIterator>> PrefixScan(std::string_view prefix) final;

  // Stages logged deletes of every entry expired at the current stream time and
  // returns how many. Zero for stores without TTL.
  virtual Result<size_t> PurgeExpired() = 0;

 protected:
  // Stored bytes (with the TTL prefix for TTL stores), staged overlay first.
  virtual Result<std::optional<std::string>> GetStored(std::string_view key) = 0;
  virtual Status StagePut(std::string_view key, std::string_view stored, Timestamp write_time) = 0;
  virtual Status StageDelete(std::string_view key) = 0;
  // Merged iterator over [from, upper) of stored entries; with `ttl` it filters
  // and strips like Range, without it returns stored bytes (used by purge).
  virtual Result<std::unique_ptr<KeyValueIterator>> NewStoredIterator(
      std::string_view from, std::optional<std::string> upper, std::optional<TtlFilter> ttl) = 0;

  // Stages a delete and logs its tombstone.
  Status StageLoggedDelete(std::string_view key);
  std::optional<TtlFilter> CurrentTtlFilter() const;

  StoreSpec spec_;
  StoreHost* host_;
};

class RocksDbStore final : public StoreBase {
 public:
  // `db`, `cf`, `index_cf` (non-null iff spec.ttl), `staged` (the writes of
  // `cf`) and `index_staged` (of `index_cf`; non-null iff index_cf is) are
  // borrowed from the TaskState, which commits and clears them.
  RocksDbStore(StoreSpec spec, StoreHost* host, rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
               rocksdb::ColumnFamilyHandle* index_cf, StagedWrites* staged,
               StagedWrites* index_staged)
      : StoreBase(std::move(spec), host),
        db_(db),
        cf_(cf),
        index_cf_(index_cf),
        staged_(staged),
        index_staged_(index_staged) {}

  uint64_t ApproximateNumEntries() override;
  Result<size_t> PurgeExpired() override;

  // Adds the restore writes of `records` (stored bytes, in changelog order) to
  // `out`: the last record of each key only, in key order.
  // Corruption for TTL values without their timestamp prefix.
  Status AppendRestore(const std::vector<ChangelogRecord>& records, rocksdb::WriteBatch* out);

  rocksdb::ColumnFamilyHandle* cf() const { return cf_; }

 protected:
  Result<std::optional<std::string>> GetStored(std::string_view key) override;
  Status StagePut(std::string_view key, std::string_view stored, Timestamp write_time) override;
  Status StageDelete(std::string_view key) override;
  Result<std::unique_ptr<KeyValueIterator>> NewStoredIterator(
      std::string_view from, std::optional<std::string> upper,
      std::optional<TtlFilter> ttl) override;

 private:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* cf_;
  rocksdb::ColumnFamilyHandle* index_cf_;
  StagedWrites* staged_;
  StagedWrites* index_staged_;
};

class InMemoryStore final : public StoreBase {
 public:
  InMemoryStore(StoreSpec spec, StoreHost* host) : StoreBase(std::move(spec), host) {}

  uint64_t ApproximateNumEntries() override { return committed_.size(); }
  Result<size_t> PurgeExpired() override;

  bool HasStaged() const { return !staged_.empty(); }
  // Moves the staged overlay into the committed map.
  void ApplyStaged();
  void ClearStaged() { staged_.clear(); }
  // Corruption (and nothing applied) for TTL values without their prefix.
  Status ValidateRestore(const std::vector<ChangelogRecord>& records) const;
  // Applies restore records to the committed map. Precondition: ValidateRestore OK.
  void ApplyRestore(const std::vector<ChangelogRecord>& records);
  // Bytes of keys and values of the committed map.
  uint64_t committed_bytes() const { return committed_bytes_; }

 protected:
  Result<std::optional<std::string>> GetStored(std::string_view key) override;
  Status StagePut(std::string_view key, std::string_view stored, Timestamp write_time) override;
  Status StageDelete(std::string_view key) override;
  Result<std::unique_ptr<KeyValueIterator>> NewStoredIterator(
      std::string_view from, std::optional<std::string> upper,
      std::optional<TtlFilter> ttl) override;

 private:
  void CommitPut(const std::string& key, std::string value);
  void CommitDelete(const std::string& key);

  CommittedMap committed_;
  std::map<std::string, std::optional<std::string>, std::less<>> staged_;
  uint64_t committed_bytes_ = 0;
};

}  // namespace streams::state::internal
