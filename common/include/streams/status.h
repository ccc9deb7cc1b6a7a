// Status: the outcome of an operation that returns no value.
//
// Errors inside the engine are values, never exceptions. librdkafka, RocksDB and
// libpqxx errors are translated into a Status at the boundary where they occur.
//
// Thread safety: a Status is an immutable value; distinct objects may be used
// from distinct threads, and a const Status may be shared.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace streams {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // The caller passed something malformed (config, record, name).
  kNotFound,            // A named thing (store, key, topic) does not exist.
  kAlreadyExists,       // A name is taken.
  kFailedPrecondition,  // The object is not in a state where the call is allowed.
  kCorruption,          // Stored or received bytes do not decode.
  kIoError,             // Disk or network I/O failed.
  kAborted,             // A transaction was aborted; retrying the cycle may succeed.
  kFenced,              // Another instance took over (producer fenced); fatal for the task.
  kTimedOut,            // A deadline passed.
  kUnavailable,         // A dependency (broker, database) is unreachable for now; retriable.
  kInternal,            // A bug or an unexpected library error.
};

// Returns the stable name of `code`, e.g. "InvalidArgument".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status IoError(std::string msg) { return {StatusCode::kIoError, std::move(msg)}; }
  static Status Aborted(std::string msg) { return {StatusCode::kAborted, std::move(msg)}; }
  static Status Fenced(std::string msg) { return {StatusCode::kFenced, std::move(msg)}; }
  static Status TimedOut(std::string msg) { return {StatusCode::kTimedOut, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

  // "OK" or "<CodeName>: <message>".
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

}  // namespace streams

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define STREAMS_RETURN_IF_ERROR(expr)                   \
  do {                                                  \
    ::streams::Status streams_status_ = (expr);         \
    if (!streams_status_.ok()) return streams_status_;  \
  } while (false)
