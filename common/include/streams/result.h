// Result<T>: a value of type T or an error Status.
//
// Thread safety: like T; distinct objects may be used from distinct threads.
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "streams/status.h"

namespace streams {

template <typename T>
class [[nodiscard]] Result {
 public:
  // A successful result holding `value`.
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  // A failed result; `status` must not be OK.
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "Result constructed from an OK status without a value");
    if (status_.ok()) status_ = Status::Internal("Result constructed from OK status without value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // Precondition: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T&& operator*() && { return std::move(*value_); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace streams

#define STREAMS_CONCAT_INNER_(a, b) a##b
#define STREAMS_CONCAT_(a, b) STREAMS_CONCAT_INNER_(a, b)

// Declares `lhs` from a Result expression, or returns its error Status.
// Usage: STREAMS_ASSIGN_OR_RETURN(auto db, Open(path));
#define STREAMS_ASSIGN_OR_RETURN(lhs, expr) \
  STREAMS_ASSIGN_OR_RETURN_IMPL_(STREAMS_CONCAT_(streams_result_, __LINE__), lhs, expr)
#define STREAMS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
