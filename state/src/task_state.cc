#include "streams/state/task_state.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <unordered_map>
#include <utility>

#include "encoding.h"
#include "rocksdb_status.h"
#include "stores.h"

namespace streams::state {
namespace {

using internal::FromRocksDb;
using internal::InMemoryStore;
using internal::RocksDbStore;
using internal::StoreBase;

constexpr char kCheckpointCf[] = "__checkpoint";
constexpr char kCheckpointKey[] = "checkpoint";
constexpr char kTtlIndexCfPrefix[] = "__ttl_index.";

std::string TtlIndexCfName(const std::string& store) { return kTtlIndexCfPrefix + store; }

Status ValidateSpecs(const std::vector<StoreSpec>& specs) {
  std::set<std::string_view> names;
  for (const StoreSpec& spec : specs) {
    if (spec.name.empty()) return Status::InvalidArgument("store name is empty");
    for (char c : spec.name) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-';
      if (!ok) {
        return Status::InvalidArgument("store name '" + spec.name +
                                       "' has characters outside [A-Za-z0-9._-]");
      }
    }
    if (spec.name.starts_with("__")) {
      return Status::InvalidArgument("store name '" + spec.name +
                                     "' starts with '__', which is reserved");
    }
    if (!names.insert(spec.name).second) {
      return Status::InvalidArgument("duplicate store name '" + spec.name + "'");
    }
    if (spec.ttl.has_value() && spec.ttl->count() <= 0) {
      return Status::InvalidArgument("store '" + spec.name + "' has a non-positive ttl");
    }
  }
  return Status::Ok();
}

bool IsLockError(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  std::string text = s.ToString();
  return text.find("/LOCK") != std::string::npos || text.find("lock hold") != std::string::npos;
}

// Whether a column family is a store (point lookups) or the library's own
// (an expiry index, only scanned; the checkpoint, read once per open).
bool IsStoreCf(const std::string& name) {
  return name != kCheckpointCf && name.rfind(kTtlIndexCfPrefix, 0) != 0;
}

// The memtable arena's block: RocksDB's default is an eighth of the write
// buffer (1 MB of 8 MB), allocated by a column family's first write. With
// many tasks x 7 column families those first blocks alone exceeded the
// shared write-buffer budget, so every commit made the write-buffer manager
// flush a memtable of a few hundred entries.
constexpr size_t kArenaBlockBytes = 64 << 10;

rocksdb::ColumnFamilyOptions MakeCfOptions(const StateResources& resources, bool store) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = resources.options().write_buffer_size_per_store;
  cf.arena_block_size = std::min(kArenaBlockBytes, cf.write_buffer_size);
  if (store) {
    // A bloom filter over the keys of each memtable (allocated with the
    // memtable: 5% of its size): a lookup of an absent key (every new
    // idempotency key) skips the memtables' skip lists. The library's own
    // column families are never looked up by key.
    cf.memtable_prefix_bloom_size_ratio = 0.05;
    cf.memtable_whole_key_filtering = true;
  }
  // No compression for the small, hot upper levels (snappy cost CPU on every
  // flush and read of a block); the larger lower levels stay compressed.
  cf.compression_per_level.assign(static_cast<size_t>(cf.num_levels), rocksdb::kSnappyCompression);
  for (size_t level = 0; level < 2 && level < cf.compression_per_level.size(); ++level) {
    cf.compression_per_level[level] = rocksdb::kNoCompression;
  }
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = resources.block_cache();
  // Index and filter blocks live in the shared cache too, so it bounds them.
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

rocksdb::DBOptions MakeDbOptions(const StateResources& resources) {
  rocksdb::DBOptions db;
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  db.write_buffer_manager = resources.write_buffer_manager();
  db.keep_log_file_num = 2;
  db.max_background_jobs = 2;
  // Reopening after a crash replays the write-ahead log. Every commit writes
  // the small checkpoint column family, which never fills its memtable, so
  // without a bound its unflushed entries would keep every WAL file since
  // the last flush (up to 4 x the memtables' sizes): past this total the
  // column families holding the oldest WAL file are flushed.
  db.max_total_wal_size = 4 * resources.options().write_buffer_size_per_store;
  // The replayed memtables stay in memory (backed by the kept WAL) instead of
  // being written out as level-0 files before the task can start.
  db.avoid_flush_during_recovery = true;
  return db;
}

class TaskStateImpl final : public TaskState, public internal::StoreHost {
 public:
  TaskStateImpl(std::string directory, std::vector<StoreSpec> specs, StateResources* resources)
      : directory_(std::move(directory)), specs_(std::move(specs)), resources_(resources) {}

  ~TaskStateImpl() override {
    Status s = CloseInternal(/*force=*/true);
    if (!s.ok()) spdlog::warn("closing task state {}: {}", directory_, s.ToString());
  }

  Status OpenDb() {
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    if (ec) {
      return Status::IoError("cannot create state directory " + directory_ + ": " + ec.message());
    }
    rocksdb::DBOptions db_options = MakeDbOptions(*resources_);

    // Existing column families (all of them are opened, known or not).
    std::vector<std::string> existing;
    if (std::filesystem::exists(std::filesystem::path(directory_) / "CURRENT", ec)) {
      STREAMS_RETURN_IF_ERROR(
          FromRocksDb(rocksdb::DB::ListColumnFamilies(db_options, directory_, &existing),
                      "list column families of " + directory_));
    }
    std::vector<std::string> wanted = {rocksdb::kDefaultColumnFamilyName, kCheckpointCf};
    for (const StoreSpec& spec : specs_) {
      if (spec.kind != StoreKind::kPersistent) continue;
      wanted.push_back(spec.name);
      if (spec.ttl.has_value()) wanted.push_back(TtlIndexCfName(spec.name));
    }
    for (const std::string& name : existing) {
      if (std::find(wanted.begin(), wanted.end(), name) == wanted.end()) wanted.push_back(name);
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& name : wanted) {
      descriptors.emplace_back(name, MakeCfOptions(*resources_, IsStoreCf(name)));
    }

    rocksdb::DB* db = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::Status s = rocksdb::DB::Open(db_options, directory_, descriptors, &handles, &db);
    if (IsLockError(s)) {
      return Status::IoError("state directory " + directory_ + " is locked by another process (" +
                             s.ToString() + ")");
    }
    STREAMS_RETURN_IF_ERROR(FromRocksDb(s, "open state directory " + directory_));
    db_.reset(db);
    handles_ = std::move(handles);
    for (size_t i = 0; i < wanted.size(); ++i) cf_by_name_[wanted[i]] = handles_[i];
    checkpoint_cf_ = cf_by_name_.at(kCheckpointCf);

    // The last checkpoint.
    std::string encoded;
    s = db_->Get(rocksdb::ReadOptions(), checkpoint_cf_, kCheckpointKey, &encoded);
    if (!s.IsNotFound()) {
      STREAMS_RETURN_IF_ERROR(FromRocksDb(s, "read checkpoint of " + directory_));
      Result<Checkpoint> decoded = internal::DecodeCheckpoint(encoded);
      if (!decoded.ok()) return decoded.status().WithContext("checkpoint of " + directory_);
      checkpoint_ = std::move(decoded).value();
    }
    stream_time_ = checkpoint_.stream_time.value_or(Timestamp(0));
    committed_stream_time_ = stream_time_;

    for (const StoreSpec& spec : specs_) {
      std::unique_ptr<StoreBase> store;
      if (spec.kind == StoreKind::kPersistent) {
        rocksdb::ColumnFamilyHandle* cf = cf_by_name_.at(spec.name);
        rocksdb::ColumnFamilyHandle* index_cf =
            spec.ttl.has_value() ? cf_by_name_.at(TtlIndexCfName(spec.name)) : nullptr;
        internal::StagedWrites* staged = AddStaged(cf);
        internal::StagedWrites* index_staged = index_cf != nullptr ? AddStaged(index_cf) : nullptr;
        store = std::make_unique<RocksDbStore>(spec, this, db_.get(), cf, index_cf, staged,
                                               index_staged);
      } else {
        auto in_memory = std::make_unique<InMemoryStore>(spec, this);
        in_memory_.push_back(in_memory.get());
        store = std::move(in_memory);
      }
      by_name_.emplace(spec.name, store.get());
      stores_.push_back(std::move(store));
    }
    return Status::Ok();
  }

  // ---- TaskState

  KeyValueStore* GetStore(std::string_view name) override {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  const std::vector<StoreSpec>& specs() const override { return specs_; }
  const Checkpoint& checkpoint() const override { return checkpoint_; }

  void AdvanceStreamTime(Timestamp stream_time) override {
    stream_time_ = std::max(stream_time_, stream_time);
  }
  Timestamp stream_time() const override { return stream_time_; }

  Result<size_t> PurgeExpired() override {
    STREAMS_RETURN_IF_ERROR(CheckUsable());
    size_t purged = 0;
    for (const auto& store : stores_) {
      if (!store->spec().ttl.has_value()) continue;
      STREAMS_ASSIGN_OR_RETURN(size_t n, store->PurgeExpired());
      purged += n;
    }
    return purged;
  }

  std::vector<ChangelogRecord> TakeChangelog() override {
    std::vector<ChangelogRecord> out;
    out.reserve(pending_live_);
    for (auto& record : pending_) {
      if (record.has_value()) out.push_back(std::move(*record));
    }
    ClearPending();
    return out;
  }

  bool HasStagedWrites() const override {
    for (const auto& [cf, staged] : staged_) {
      if (!staged->empty()) return true;
    }
    return std::any_of(in_memory_.begin(), in_memory_.end(),
                       [](const InMemoryStore* s) { return s->HasStaged(); });
  }

  Status Commit(const Checkpoint& checkpoint) override {
    STREAMS_RETURN_IF_ERROR(CheckUsable());
    STREAMS_RETURN_IF_ERROR(CheckNoOpenIterators("Commit"));
    Checkpoint committed = checkpoint;
    for (const InMemoryStore* store : in_memory_) committed.changelog_offsets.erase(store->name());

    // The write cache: the last write of each key of the cycle, once.
    rocksdb::WriteBatch batch(staged_bytes_hint_);
    for (const auto& [cf, staged] : staged_) {
      for (const auto& [key, value] : staged->map()) {
        const rocksdb::Slice k(key.data(), key.size());
        rocksdb::Status s = value.has_value()
                                ? batch.Put(cf, k, rocksdb::Slice(value->data(), value->size()))
                                : batch.Delete(cf, k);
        STREAMS_RETURN_IF_ERROR(FromRocksDb(s, "stage commit"));
      }
    }
    STREAMS_RETURN_IF_ERROR(FromRocksDb(
        batch.Put(checkpoint_cf_, kCheckpointKey, internal::EncodeCheckpoint(committed)),
        "stage checkpoint"));
    STREAMS_RETURN_IF_ERROR(Write(&batch, "commit"));

    // The RocksDB write succeeded: in-memory stores apply at the same point.
    for (InMemoryStore* store : in_memory_) store->ApplyStaged();
    // The next cycle's batch is probably about as large.
    staged_bytes_hint_ = batch.GetDataSize();
    ClearStaged();
    checkpoint_ = std::move(committed);
    if (checkpoint_.stream_time.has_value()) AdvanceStreamTime(*checkpoint_.stream_time);
    committed_stream_time_ = stream_time_;
    return Status::Ok();
  }

  void Abort() override {
    ClearStaged();
    for (InMemoryStore* store : in_memory_) store->ClearStaged();
    ClearPending();
    stream_time_ = committed_stream_time_;
  }

  Status ApplyRestoreBatch(std::string_view store_name, const std::vector<ChangelogRecord>& records,
                           Offset next_offset) override {
    STREAMS_RETURN_IF_ERROR(CheckUsable());
    STREAMS_RETURN_IF_ERROR(CheckNoOpenIterators("ApplyRestoreBatch"));
    if (HasStagedWrites()) {
      return Status::FailedPrecondition("ApplyRestoreBatch on " + directory_ +
                                        " with staged writes; commit or abort first");
    }
    auto it = by_name_.find(store_name);
    if (it == by_name_.end()) {
      return Status::NotFound("no store '" + std::string(store_name) + "' in " + directory_);
    }
    StoreBase* store = it->second;

    Checkpoint updated = checkpoint_;
    std::optional<Timestamp> max_time;
    for (const ChangelogRecord& record : records) {
      if (!max_time.has_value() || record.timestamp > *max_time) max_time = record.timestamp;
    }
    if (max_time.has_value() &&
        (!updated.stream_time.has_value() || *updated.stream_time < *max_time)) {
      updated.stream_time = *max_time;
    }

    rocksdb::WriteBatch batch;
    auto* in_memory = dynamic_cast<InMemoryStore*>(store);
    if (in_memory != nullptr) {
      STREAMS_RETURN_IF_ERROR(in_memory->ValidateRestore(records));
    } else {
      STREAMS_RETURN_IF_ERROR(static_cast<RocksDbStore*>(store)->AppendRestore(records, &batch));
      updated.changelog_offsets.insert_or_assign(std::string(store_name), next_offset);
    }
    STREAMS_RETURN_IF_ERROR(
        FromRocksDb(batch.Put(checkpoint_cf_, kCheckpointKey, internal::EncodeCheckpoint(updated)),
                    "stage checkpoint"));
    STREAMS_RETURN_IF_ERROR(Write(&batch, "restore of store " + std::string(store_name)));
    if (in_memory != nullptr) in_memory->ApplyRestore(records);
    checkpoint_ = std::move(updated);
    if (max_time.has_value()) AdvanceStreamTime(*max_time);
    committed_stream_time_ = stream_time_;
    return Status::Ok();
  }

  uint64_t ApproximateSizeBytes() override {
    if (closed_) return 0;
    uint64_t total = 0;
    for (rocksdb::ColumnFamilyHandle* cf : handles_) {
      uint64_t value = 0;
      if (db_->GetIntProperty(cf, rocksdb::DB::Properties::kTotalSstFilesSize, &value)) {
        total += value;
      }
      if (db_->GetIntProperty(cf, rocksdb::DB::Properties::kCurSizeAllMemTables, &value)) {
        total += value;
      }
    }
    for (const InMemoryStore* store : in_memory_) total += store->committed_bytes();
    return total;
  }

  Status Close() override { return CloseInternal(/*force=*/false); }

  // ---- StoreHost

  Status CheckUsable() const override {
    if (closed_) return Status::FailedPrecondition("task state " + directory_ + " is closed");
    return Status::Ok();
  }
  Timestamp CurrentStreamTime() const override { return stream_time_; }

  void RecordChangelog(const StoreSpec& spec, std::string_view key,
                       std::optional<std::string_view> stored) override {
    if (!spec.logged) return;
    // Coalescing: only the last write of a (store, key) in a cycle is kept, at the
    // position of that last write. Store names never contain '\0'.
    std::string id = spec.name;
    id.push_back('\0');
    id.append(key);
    auto [it, inserted] = pending_index_.try_emplace(std::move(id), pending_.size());
    if (!inserted) {
      pending_[it->second].reset();
      it->second = pending_.size();
    } else {
      ++pending_live_;
    }
    pending_.push_back(ChangelogRecord{
        spec.name, std::string(key),
        stored.has_value() ? std::optional<std::string>(std::string(*stored)) : std::nullopt,
        stream_time_});
    if (pending_.size() > 1024 && pending_.size() > 2 * pending_live_) CompactPending();
  }

  int* open_iterators() override { return &open_iterators_; }

 private:
  Status CheckNoOpenIterators(std::string_view operation) const {
    if (open_iterators_ == 0) return Status::Ok();
    return Status::FailedPrecondition(std::string(operation) + " on " + directory_ + " with " +
                                      std::to_string(open_iterators_) +
                                      " store iterator(s) still open");
  }

  internal::StagedWrites* AddStaged(rocksdb::ColumnFamilyHandle* cf) {
    staged_.emplace_back(cf, std::make_unique<internal::StagedWrites>());
    return staged_.back().second.get();
  }

  void ClearStaged() {
    for (auto& [cf, staged] : staged_) staged->Clear();
  }

  Status Write(rocksdb::WriteBatch* batch, std::string_view what) {
    rocksdb::WriteOptions options;
    options.sync = resources_->options().sync_commits;
    return FromRocksDb(db_->Write(options, batch), std::string(what) + " of " + directory_);
  }

  void ClearPending() {
    pending_.clear();
    pending_index_.clear();
    pending_live_ = 0;
  }

  void CompactPending() {
    std::vector<std::optional<ChangelogRecord>> live;
    live.reserve(pending_live_);
    for (auto& record : pending_) {
      if (!record.has_value()) continue;
      std::string id = record->store;
      id.push_back('\0');
      id.append(record->key);
      pending_index_[id] = live.size();
      live.push_back(std::move(record));
    }
    pending_ = std::move(live);
  }

  Status CloseInternal(bool force) {
    if (closed_) return Status::Ok();
    if (!force) STREAMS_RETURN_IF_ERROR(CheckNoOpenIterators("Close"));
    Abort();
    closed_ = true;
    if (db_ == nullptr) return Status::Ok();  // Open failed before the DB was opened.
    Status result = FromRocksDb(db_->Flush(rocksdb::FlushOptions(), handles_),
                                "flush state directory " + directory_);
    for (rocksdb::ColumnFamilyHandle* cf : handles_) {
      Status s = FromRocksDb(db_->DestroyColumnFamilyHandle(cf), "release column family");
      if (result.ok()) result = s;
    }
    handles_.clear();
    cf_by_name_.clear();
    Status s = FromRocksDb(db_->Close(), "close state directory " + directory_);
    if (result.ok()) result = s;
    db_.reset();
    return result;
  }

  std::string directory_;
  std::vector<StoreSpec> specs_;
  StateResources* resources_;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // owned; released in CloseInternal
  std::map<std::string, rocksdb::ColumnFamilyHandle*> cf_by_name_;
  rocksdb::ColumnFamilyHandle* checkpoint_cf_ = nullptr;
  // The write cache: staged writes of every column family of the persistent
  // stores (store and TTL index), the last one per key.
  std::vector<std::pair<rocksdb::ColumnFamilyHandle*, std::unique_ptr<internal::StagedWrites>>>
      staged_;
  size_t staged_bytes_hint_ = 0;

  std::vector<std::unique_ptr<StoreBase>> stores_;
  std::map<std::string, StoreBase*, std::less<>> by_name_;
  std::vector<InMemoryStore*> in_memory_;

  Checkpoint checkpoint_;
  Timestamp stream_time_;
  Timestamp committed_stream_time_;

  std::vector<std::optional<ChangelogRecord>> pending_;
  std::unordered_map<std::string, size_t> pending_index_;
  size_t pending_live_ = 0;

  int open_iterators_ = 0;
  bool closed_ = false;
};

}  // namespace

Result<std::unique_ptr<TaskState>> TaskState::Open(const std::string& directory,
                                                   const std::vector<StoreSpec>& specs,
                                                   StateResources* resources) {
  if (resources == nullptr) return Status::InvalidArgument("TaskState::Open: resources is null");
  if (directory.empty()) return Status::InvalidArgument("TaskState::Open: directory is empty");
  STREAMS_RETURN_IF_ERROR(ValidateSpecs(specs));
  auto state = std::make_unique<TaskStateImpl>(directory, specs, resources);
  STREAMS_RETURN_IF_ERROR(state->OpenDb());
  return std::unique_ptr<TaskState>(std::move(state));
}

Status DestroyTaskState(const std::string& directory) {
  std::error_code ec;
  if (!std::filesystem::exists(directory, ec)) {
    if (ec) return Status::IoError("cannot stat " + directory + ": " + ec.message());
    return Status::Ok();
  }
  if (std::filesystem::exists(std::filesystem::path(directory) / "CURRENT", ec)) {
    rocksdb::Status s = rocksdb::DestroyDB(directory, rocksdb::Options());
    if (IsLockError(s)) {
      return Status::IoError("state directory " + directory + " is locked by another process (" +
                             s.ToString() + ")");
    }
    if (!s.ok())
      return Status::IoError("destroy state directory " + directory + ": " + s.ToString());
  }
  std::filesystem::remove_all(directory, ec);
  if (ec) return Status::IoError("remove state directory " + directory + ": " + ec.message());
  return Status::Ok();
}

}  // namespace streams::state
