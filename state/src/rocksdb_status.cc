#include "rocksdb_status.h"

#include <string>

namespace streams::state::internal {

Status FromRocksDb(const rocksdb::Status& status, std::string_view context) {
  if (status.ok()) return Status::Ok();
  std::string message = std::string(context) + ": " + status.ToString();
  switch (status.code()) {
    case rocksdb::Status::kNotFound:
      return Status::NotFound(std::move(message));
    case rocksdb::Status::kCorruption:
      return Status::Corruption(std::move(message));
    case rocksdb::Status::kInvalidArgument:
      return Status::InvalidArgument(std::move(message));
    case rocksdb::Status::kIOError:
      return Status::IoError(std::move(message));
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kShutdownInProgress:
      return Status::Unavailable(std::move(message));
    case rocksdb::Status::kTimedOut:
      return Status::TimedOut(std::move(message));
    case rocksdb::Status::kAborted:
      return Status::Aborted(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

}  // namespace streams::state::internal
