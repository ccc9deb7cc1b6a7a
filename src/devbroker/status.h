// A minimal error-as-value type used at module boundaries.

#ifndef DEVBROKER_STATUS_H_
#define DEVBROKER_STATUS_H_

#include <string>
#include <utility>

namespace devbroker {

// Thread-safety: a value type; const methods are safe to call concurrently.
class Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status Error(std::string message) {
    Status s;
    s.ok_ = false;
    s.message_ = std::move(message);
    return s;
  }
  bool ok() const { return ok_; }
  const std::string& message() const { return message_; }

 private:
  bool ok_ = true;
  std::string message_;
};

}  // namespace devbroker

#endif  // DEVBROKER_STATUS_H_
