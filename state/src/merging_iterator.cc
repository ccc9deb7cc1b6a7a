#include "merging_iterator.h"

#include "encoding.h"
#include "rocksdb_status.h"

namespace streams::state::internal {
namespace {

class RocksDbCursor final : public BaseCursor {
 public:
  RocksDbCursor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string_view from,
                std::optional<std::string> upper_bound)
      : upper_bound_(std::move(upper_bound)) {
    if (upper_bound_.has_value()) {
      upper_slice_ = rocksdb::Slice(*upper_bound_);
      read_options_.iterate_upper_bound = &upper_slice_;
    }
    iter_.reset(db->NewIterator(read_options_, cf));
    iter_->Seek(rocksdb::Slice(from.data(), from.size()));
  }
  bool Valid() const override { return iter_->Valid(); }
  void Next() override { iter_->Next(); }
  std::string_view key() const override { return iter_->key().ToStringView(); }
  std::string_view value() const override { return iter_->value().ToStringView(); }
  Status status() const override { return FromRocksDb(iter_->status(), "RocksDB iterator"); }

 private:
  // Declared before iter_: the iterator reads them until it is destroyed.
  std::optional<std::string> upper_bound_;
  rocksdb::Slice upper_slice_;
  rocksdb::ReadOptions read_options_;
  std::unique_ptr<rocksdb::Iterator> iter_;
};

class MapCursor final : public BaseCursor {
 public:
  MapCursor(const CommittedMap* map, std::string_view from,
            const std::optional<std::string>& upper_bound) {
    it_ = map->lower_bound(from);
    end_ = upper_bound.has_value() ? map->lower_bound(*upper_bound) : map->end();
    if (upper_bound.has_value() && std::string_view(*upper_bound) <= from) it_ = end_;
  }
  bool Valid() const override { return it_ != end_; }
  void Next() override { ++it_; }
  std::string_view key() const override { return it_->first; }
  std::string_view value() const override { return it_->second; }
  Status status() const override { return Status::Ok(); }

 private:
  CommittedMap::const_iterator it_;
  CommittedMap::const_iterator end_;
};

class MergingIterator final : public KeyValueIterator {
 public:
  MergingIterator(std::unique_ptr<BaseCursor> base, Overlay overlay, std::optional<TtlFilter> ttl,
                  int* open_iterators)
      : base_(std::move(base)),
        overlay_(std::move(overlay)),
        ttl_(ttl),
        open_iterators_(open_iterators) {
    if (open_iterators_ != nullptr) ++*open_iterators_;
    Settle();
  }
  ~MergingIterator() override {
    if (open_iterators_ != nullptr) --*open_iterators_;
  }

  bool Valid() const override { return valid_; }
  void Next() override {
    if (!valid_) return;
    if (from_overlay_) {
      // An equal base key is shadowed by the overlay entry: skip it too.
      if (base_->Valid() && base_->key() == overlay_[pos_].first) base_->Next();
      ++pos_;
    } else {
      base_->Next();
    }
    Settle();
  }
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }
  Status status() const override { return status_; }

 private:
  // Positions on the next visible entry at or after the sources' positions.
  void Settle() {
    valid_ = false;
    while (true) {
      bool base_ok = base_->Valid();
      if (!base_ok) {
        Status s = base_->status();
        if (!s.ok()) {
          status_ = std::move(s);
          return;
        }
      }
      bool overlay_ok = pos_ < overlay_.size();
      if (!base_ok && !overlay_ok) return;
      std::optional<std::string_view> value;
      if (overlay_ok && (!base_ok || std::string_view(overlay_[pos_].first) <= base_->key())) {
        from_overlay_ = true;
        key_ = overlay_[pos_].first;
        if (overlay_[pos_].second.has_value()) value = *overlay_[pos_].second;
      } else {
        from_overlay_ = false;
        key_ = base_->key();
        value = base_->value();
      }
      if (value.has_value() && ttl_.has_value()) {
        Result<Timestamp> written = DecodeTtlTimestamp(*value);
        if (!written.ok()) {
          status_ = written.status();
          return;
        }
        if (IsExpired(*written, ttl_->ttl_millis, ttl_->stream_time)) {
          value.reset();
        } else {
          value->remove_prefix(kTtlPrefixBytes);
        }
      }
      if (value.has_value()) {
        value_ = *value;
        valid_ = true;
        return;
      }
      // Tombstone or expired: skip this key in both sources.
      if (from_overlay_) {
        if (base_ok && base_->key() == overlay_[pos_].first) base_->Next();
        ++pos_;
      } else {
        base_->Next();
      }
    }
  }

  std::unique_ptr<BaseCursor> base_;
  Overlay overlay_;
  size_t pos_ = 0;
  std::optional<TtlFilter> ttl_;
  int* open_iterators_;
  bool valid_ = false;
  bool from_overlay_ = false;
  std::string_view key_;
  std::string_view value_;
  Status status_;
};

}  // namespace

std::unique_ptr<BaseCursor> NewRocksDbCursor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                             std::string_view from,
                                             std::optional<std::string> upper_bound) {
  return std::make_unique<RocksDbCursor>(db, cf, from, std::move(upper_bound));
}

std::unique_ptr<BaseCursor> NewMapCursor(const CommittedMap* map, std::string_view from,
                                         const std::optional<std::string>& upper_bound) {
  return std::make_unique<MapCursor>(map, from, upper_bound);
}

std::unique_ptr<KeyValueIterator> NewMergingIterator(std::unique_ptr<BaseCursor> base,
                                                     Overlay overlay, std::optional<TtlFilter> ttl,
                                                     int* open_iterators) {
  return std::make_unique<MergingIterator>(std::move(base), std::move(overlay), ttl,
                                           open_iterators);
}

}  // namespace streams::state::internal
