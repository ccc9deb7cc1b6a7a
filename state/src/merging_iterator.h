// The iterator of every store: committed entries (a cursor over RocksDB or over
// a std::map) overlaid with a copy of the staged writes taken at creation, with
// TTL filtering and stripping of the timestamp prefix.
//
// Thread safety: not thread-safe (like the store it reads).
#pragma once

#include <rocksdb/db.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "streams/kafka_types.h"
#include "streams/state/key_value_store.h"
#include "streams/status.h"

namespace streams::state::internal {

// A forward cursor over committed entries in [from, upper bound).
class BaseCursor {
 public:
  virtual ~BaseCursor() = default;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  virtual Status status() const = 0;
};

// Over a column family of a RocksDB instance (an implicit snapshot taken at creation).
// `db` and `cf` are borrowed and must outlive the cursor.
std::unique_ptr<BaseCursor> NewRocksDbCursor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                             std::string_view from,
                                             std::optional<std::string> upper_bound);

// Over a map, which must not change while the cursor lives.
using CommittedMap = std::map<std::string, std::string, std::less<>>;
std::unique_ptr<BaseCursor> NewMapCursor(const CommittedMap* map, std::string_view from,
                                         const std::optional<std::string>& upper_bound);

// Staged writes in key order; nullopt = tombstone.
using Overlay = std::vector<std::pair<std::string, std::optional<std::string>>>;

struct TtlFilter {
  int64_t ttl_millis;
  Timestamp stream_time;  // as of the iterator's creation
};

// Merges `base` with `overlay` (overlay wins on equal keys; tombstones hide keys).
// With `ttl`, expired entries are skipped and values are returned without their
// 8-byte timestamp prefix; without it values are returned as stored.
// `open_iterators` (may be null) is incremented now and decremented on destruction.
std::unique_ptr<KeyValueIterator> NewMergingIterator(std::unique_ptr<BaseCursor> base,
                                                     Overlay overlay, std::optional<TtlFilter> ttl,
                                                     int* open_iterators);

}  // namespace streams::state::internal
