#include "stores.h"

#include <algorithm>
#include <string>
#include <vector>

#include "encoding.h"
#include "rocksdb_status.h"

namespace streams::state::internal {
namespace {

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

}  // namespace

void StagedWrites::Stage(std::string_view key, std::optional<std::string_view> value) {
  auto it = map_.lower_bound(key);
  if (it == map_.end() || it->first != key) {
    it = map_.emplace_hint(it, std::piecewise_construct, std::forward_as_tuple(key),
                           std::forward_as_tuple());
  }
  if (value.has_value()) {
    // optional is not allocator-aware: the string gets the arena explicitly.
    it->second.emplace(value->data(), value->size(), map_.get_allocator());
  } else {
    it->second.reset();
  }
}

// ---------------------------------------------------------------- StoreBase

std::optional<TtlFilter> StoreBase::CurrentTtlFilter() const {
  if (!spec_.ttl.has_value()) return std::nullopt;
  return TtlFilter{spec_.ttl->count(), host_->CurrentStreamTime()};
}

Result<std::optional<std::string>> StoreBase::Get(std::string_view key) {
  STREAMS_RETURN_IF_ERROR(host_->CheckUsable());
  STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> stored, GetStored(key));
  if (!stored.has_value() || !spec_.ttl.has_value()) return stored;
  STREAMS_ASSIGN_OR_RETURN(Timestamp written, DecodeTtlTimestamp(*stored));
  if (IsExpired(written, spec_.ttl->count(), host_->CurrentStreamTime())) {
    return std::optional<std::string>();
  }
  stored->erase(0, kTtlPrefixBytes);
  return stored;
}

Status StoreBase::Put(std::string_view key, std::string_view value) {
  STREAMS_RETURN_IF_ERROR(host_->CheckUsable());
  Timestamp now = host_->CurrentStreamTime();
  if (spec_.ttl.has_value()) {
    std::string stored = EncodeTtlValue(now, value);
    STREAMS_RETURN_IF_ERROR(StagePut(key, stored, now));
    host_->RecordChangelog(spec_, key, stored);
  } else {
    STREAMS_RETURN_IF_ERROR(StagePut(key, value, now));
    host_->RecordChangelog(spec_, key, value);
  }
  return Status::Ok();
}

Status StoreBase::Delete(std::string_view key) {
  STREAMS_RETURN_IF_ERROR(host_->CheckUsable());
  return StageLoggedDelete(key);
}

Status StoreBase::StageLoggedDelete(std::string_view key) {
  STREAMS_RETURN_IF_ERROR(StageDelete(key));
  host_->RecordChangelog(spec_, key, std::nullopt);
  return Status::Ok();
}

Result<std::unique_ptr<KeyValueIterator>> StoreBase::Range(std::string_view from,
                                                           std::string_view to) {
  STREAMS_RETURN_IF_ERROR(host_->CheckUsable());
  std::optional<std::string> upper;
  if (!to.empty()) {
    upper = std::string(to);
    // An empty range: position both sources at their end.
    if (to <= from) from = to;
  }
  return NewStoredIterator(from, std::move(upper), CurrentTtlFilter());
}

Result<std::unique_ptr<KeyValueIterator>> StoreBase::PrefixScan(std::string_view prefix) {
  STREAMS_RETURN_IF_ERROR(host_->CheckUsable());
  return NewStoredIterator(prefix, PrefixUpperBound(prefix), CurrentTtlFilter());
}

// ---------------------------------------------------------------- RocksDbStore

uint64_t RocksDbStore::ApproximateNumEntries() {
  if (!host_->CheckUsable().ok()) return 0;
  uint64_t n = 0;
  if (!db_->GetIntProperty(cf_, "rocksdb.estimate-num-keys", &n)) return 0;
  return n;
}

Result<std::optional<std::string>> RocksDbStore::GetStored(std::string_view key) {
  if (auto it = staged_->map().find(key); it != staged_->map().end()) {
    if (!it->second.has_value()) return std::optional<std::string>();
    return std::optional<std::string>(std::in_place, it->second->data(), it->second->size());
  }
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_, ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocksDb(s, "get from store " + spec_.name);
  return std::optional<std::string>(std::in_place, value.data(), value.size());
}

Status RocksDbStore::StagePut(std::string_view key, std::string_view stored, Timestamp write_time) {
  if (index_staged_ != nullptr) {
    // A write staged earlier in this cycle at another time is superseded: its
    // index entry would only be dropped as stale by PurgeExpired, so it is not
    // written at all.
    StagedMap& staged = staged_->map();
    if (auto it = staged.find(key);
        it != staged.end() && it->second.has_value() && it->second->size() >= kTtlPrefixBytes) {
      const auto previous = static_cast<int64_t>(ReadBigEndian64(it->second->data()));
      if (previous != write_time.millis()) {
        StagedMap& index = index_staged_->map();
        auto index_it = index.find(EncodeTtlIndexKey(previous, key));
        if (index_it != index.end() && index_it->second.has_value()) index.erase(index_it);
      }
    }
    index_staged_->Stage(EncodeTtlIndexKey(write_time.millis(), key), std::string_view());
  }
  staged_->Stage(key, stored);
  return Status::Ok();
}

Status RocksDbStore::StageDelete(std::string_view key) {
  // The key's TTL index entry, if any, becomes stale and is dropped by PurgeExpired.
  staged_->Stage(key, std::nullopt);
  return Status::Ok();
}

Result<std::unique_ptr<KeyValueIterator>> RocksDbStore::NewStoredIterator(
    std::string_view from, std::optional<std::string> upper, std::optional<TtlFilter> ttl) {
  Overlay overlay = CollectStaged(staged_->map(), from, upper);
  return NewMergingIterator(NewRocksDbCursor(db_, cf_, from, std::move(upper)), std::move(overlay),
                            ttl, host_->open_iterators());
}

Result<size_t> RocksDbStore::PurgeExpired() {
  STREAMS_RETURN_IF_ERROR(host_->CheckUsable());
  if (!spec_.ttl.has_value() || index_cf_ == nullptr) return size_t{0};
  int64_t ttl = spec_.ttl->count();
  std::optional<int64_t> cutoff = ExpiryCutoff(ttl, host_->CurrentStreamTime());
  if (!cutoff.has_value()) return size_t{0};
  // Index entries with write time <= cutoff.
  std::optional<std::string> upper;
  if (*cutoff < INT64_MAX) upper = EncodeTtlIndexKey(*cutoff + 1, "");
  Overlay overlay = CollectStaged(index_staged_->map(), "", upper);
  std::unique_ptr<KeyValueIterator> it = NewMergingIterator(
      NewRocksDbCursor(db_, index_cf_, "", upper), std::move(overlay), std::nullopt, nullptr);
  size_t purged = 0;
  for (; it->Valid(); it->Next()) {
    std::string index_key(it->key());
    STREAMS_ASSIGN_OR_RETURN(auto decoded, DecodeTtlIndexKey(index_key));
    auto [written, key] = decoded;
    STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> stored, GetStored(key));
    if (stored.has_value()) {
      STREAMS_ASSIGN_OR_RETURN(Timestamp current, DecodeTtlTimestamp(*stored));
      // Only the entry this index key describes; a newer write has its own index entry.
      if (current.millis() == written) {
        STREAMS_RETURN_IF_ERROR(StageLoggedDelete(key));
        ++purged;
      }
    }
    index_staged_->Stage(index_key, std::nullopt);
  }
  STREAMS_RETURN_IF_ERROR(it->status());
  return purged;
}

Status RocksDbStore::AppendRestore(const std::vector<ChangelogRecord>& records,
                                   rocksdb::WriteBatch* out) {
  // Only the last record of each key counts (a later one replaces it), and a
  // memtable takes keys in order much faster than at random: each insert
  // starts its skip-list search where the previous one ended. So each key is
  // written once, the store's keys in key order, then the expiry index's.
  std::vector<const ChangelogRecord*> last;
  last.reserve(records.size());
  for (const ChangelogRecord& record : records) last.push_back(&record);
  std::stable_sort(
      last.begin(), last.end(),
      [](const ChangelogRecord* a, const ChangelogRecord* b) { return a->key < b->key; });
  std::vector<std::string> index_keys;
  if (index_cf_ != nullptr) index_keys.reserve(last.size());
  for (size_t i = 0; i < last.size(); ++i) {
    if (i + 1 < last.size() && last[i + 1]->key == last[i]->key) continue;  // Superseded.
    const ChangelogRecord& record = *last[i];
    if (!record.value.has_value()) {
      STREAMS_RETURN_IF_ERROR(
          FromRocksDb(out->Delete(cf_, record.key), "restore delete in " + spec_.name));
      continue;
    }
    STREAMS_RETURN_IF_ERROR(
        FromRocksDb(out->Put(cf_, record.key, *record.value), "restore put in " + spec_.name));
    if (index_cf_ != nullptr) {
      Result<Timestamp> written = DecodeTtlTimestamp(*record.value);
      if (!written.ok()) {
        return written.status().WithContext("restore of store " + spec_.name);
      }
      index_keys.push_back(EncodeTtlIndexKey(written->millis(), record.key));
    }
  }
  std::sort(index_keys.begin(), index_keys.end());
  for (const std::string& index_key : index_keys) {
    STREAMS_RETURN_IF_ERROR(
        FromRocksDb(out->Put(index_cf_, index_key, ""), "restore TTL index put in " + spec_.name));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- InMemoryStore

Result<std::optional<std::string>> InMemoryStore::GetStored(std::string_view key) {
  if (auto it = staged_.find(key); it != staged_.end()) return it->second;
  if (auto it = committed_.find(key); it != committed_.end()) {
    return std::optional<std::string>(it->second);
  }
  return std::optional<std::string>();
}

Status InMemoryStore::StagePut(std::string_view key, std::string_view stored,
                               Timestamp write_time) {
  auto it = staged_.find(key);
  if (it == staged_.end()) {
    staged_.emplace(std::string(key), std::string(stored));
  } else {
    it->second = std::string(stored);
  }
  return Status::Ok();
}

Status InMemoryStore::StageDelete(std::string_view key) {
  auto it = staged_.find(key);
  if (it == staged_.end()) {
    staged_.emplace(std::string(key), std::nullopt);
  } else {
    it->second.reset();
  }
  return Status::Ok();
}

Result<std::unique_ptr<KeyValueIterator>> InMemoryStore::NewStoredIterator(
    std::string_view from, std::optional<std::string> upper, std::optional<TtlFilter> ttl) {
  Overlay overlay = CollectStaged(staged_, from, upper);
  return NewMergingIterator(NewMapCursor(&committed_, from, upper), std::move(overlay), ttl,
                            host_->open_iterators());
}

Result<size_t> InMemoryStore::PurgeExpired() {
  STREAMS_RETURN_IF_ERROR(host_->CheckUsable());
  if (!spec_.ttl.has_value()) return size_t{0};
  int64_t ttl = spec_.ttl->count();
  Timestamp now = host_->CurrentStreamTime();
  // A full scan of committed + staged entries; the iterator works on a copy of the
  // overlay, so staging deletes while iterating is safe.
  std::vector<std::string> expired;
  {
    STREAMS_ASSIGN_OR_RETURN(auto it, NewStoredIterator("", std::nullopt, std::nullopt));
    for (; it->Valid(); it->Next()) {
      STREAMS_ASSIGN_OR_RETURN(Timestamp written, DecodeTtlTimestamp(it->value()));
      if (IsExpired(written, ttl, now)) expired.emplace_back(it->key());
    }
    STREAMS_RETURN_IF_ERROR(it->status());
  }
  for (const std::string& key : expired) STREAMS_RETURN_IF_ERROR(StageLoggedDelete(key));
  return expired.size();
}

void InMemoryStore::CommitPut(const std::string& key, std::string value) {
  auto it = committed_.find(key);
  if (it == committed_.end()) {
    committed_bytes_ += key.size() + value.size();
    committed_.emplace(key, std::move(value));
  } else {
    committed_bytes_ = committed_bytes_ - it->second.size() + value.size();
    it->second = std::move(value);
  }
}

void InMemoryStore::CommitDelete(const std::string& key) {
  auto it = committed_.find(key);
  if (it == committed_.end()) return;
  committed_bytes_ -= it->first.size() + it->second.size();
  committed_.erase(it);
}

void InMemoryStore::ApplyStaged() {
  for (auto& [key, value] : staged_) {
    if (value.has_value()) {
      CommitPut(key, std::move(*value));
    } else {
      CommitDelete(key);
    }
  }
  staged_.clear();
}

Status InMemoryStore::ValidateRestore(const std::vector<ChangelogRecord>& records) const {
  if (!spec_.ttl.has_value()) return Status::Ok();
  for (const ChangelogRecord& record : records) {
    if (!record.value.has_value()) continue;
    Result<Timestamp> written = DecodeTtlTimestamp(*record.value);
    if (!written.ok()) return written.status().WithContext("restore of store " + spec_.name);
  }
  return Status::Ok();
}

void InMemoryStore::ApplyRestore(const std::vector<ChangelogRecord>& records) {
  for (const ChangelogRecord& record : records) {
    if (record.value.has_value()) {
      CommitPut(record.key, *record.value);
    } else {
      CommitDelete(record.key);
    }
  }
}

}  // namespace streams::state::internal
