// Translation of rocksdb::Status into streams::Status at the RocksDB boundary.
#pragma once

#include <rocksdb/status.h>

#include <string_view>

#include "streams/status.h"

namespace streams::state::internal {

// Returns OK for an OK status, otherwise a Status whose code mirrors the RocksDB
// code (NotFound, Corruption, IOError -> IoError, Busy/TryAgain/ShutdownInProgress
// -> Unavailable, TimedOut, Aborted, InvalidArgument; anything else -> Internal)
// and whose message is "<context>: <rocksdb message>".
Status FromRocksDb(const rocksdb::Status& status, std::string_view context);

}  // namespace streams::state::internal
