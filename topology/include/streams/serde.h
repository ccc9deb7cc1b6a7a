// Serde<T>: converts between typed values and the bytes of Kafka records.
//
// Thread safety: implementations must be thread-safe (const and stateless);
// one instance is shared by all tasks of all threads.
#pragma once

#include <google/protobuf/message_lite.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "streams/result.h"

namespace streams {

template <typename T>
class Serde {
 public:
  using Type = T;
  virtual ~Serde() = default;
  // Returns the bytes of `value`. Never fails for a valid T.
  virtual std::string Serialize(std::string_view topic, const T& value) const = 0;
  // Parses `data` (absent for a null key or value). Errors: Corruption with a
  // message naming the topic and what was wrong; never throws or crashes.
  virtual Result<T> Deserialize(std::string_view topic,
                                std::optional<std::string_view> data) const = 0;
};

// UTF-8 or binary strings, as is. A null record field deserializes to "".
class StringSerde final : public Serde<std::string> {
 public:
  std::string Serialize(std::string_view topic, const std::string& value) const override {
    return value;
  }
  Result<std::string> Deserialize(std::string_view topic,
                                  std::optional<std::string_view> data) const override {
    return data ? std::string(*data) : std::string();
  }
};

// Protobuf messages in their binary wire format. A null record field and bytes
// that do not parse as M are Corruption errors.
template <typename M>
class ProtobufSerde final : public Serde<M> {
  static_assert(std::is_base_of_v<google::protobuf::MessageLite, M>);

 public:
  std::string Serialize(std::string_view topic, const M& value) const override {
    return value.SerializeAsString();
  }
  Result<M> Deserialize(std::string_view topic,
                        std::optional<std::string_view> data) const override {
    if (!data) {
      return Status::Corruption("null payload on topic '" + std::string(topic) + "', expected " +
                                M().GetTypeName());
    }
    M message;
    if (!message.ParseFromArray(data->data(), static_cast<int>(data->size()))) {
      return Status::Corruption("payload of " + std::to_string(data->size()) + " bytes on topic '" +
                                std::string(topic) + "' is not a valid " + M().GetTypeName());
    }
    return message;
  }
};

// Shared, immutable serde instances.
template <typename T>
using SerdePtr = std::shared_ptr<const Serde<T>>;

inline SerdePtr<std::string> StringSerdeInstance() {
  static const auto instance = std::make_shared<const StringSerde>();
  return instance;
}

template <typename M>
SerdePtr<M> ProtobufSerdeInstance() {
  static const auto instance = std::make_shared<const ProtobufSerde<M>>();
  return instance;
}

}  // namespace streams
