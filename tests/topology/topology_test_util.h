// Helpers shared by the topology tests.
#pragma once

#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "streams/processor.h"
#include "streams/serde.h"
#include "streams/state/key_value_store.h"
#include "streams/status.h"

namespace streams::testing {

// int64 as decimal text (readable in assertions). Errors: Corruption.
class Int64Serde final : public Serde<int64_t> {
 public:
  std::string Serialize(std::string_view topic, const int64_t& value) const override {
    return std::to_string(value);
  }
  Result<int64_t> Deserialize(std::string_view topic,
                              std::optional<std::string_view> data) const override {
    if (!data || data->empty()) {
      return Status::Corruption("empty int64 on topic '" + std::string(topic) + "'");
    }
    int64_t value = 0;
    auto [end, ec] = std::from_chars(data->data(), data->data() + data->size(), value);
    if (ec != std::errc() || end != data->data() + data->size()) {
      return Status::Corruption("not a decimal int64 on topic '" + std::string(topic) + "'");
    }
    return value;
  }
};

inline SerdePtr<int64_t> Int64SerdeInstance() {
  static const auto instance = std::make_shared<const Int64Serde>();
  return instance;
}

// Every entry of `store` (staged writes included), or an empty map for nullptr.
inline std::map<std::string, std::string> StoreContents(state::KeyValueStore* store) {
  std::map<std::string, std::string> out;
  if (store == nullptr) return out;
  auto it = store->Range("", "");
  if (!it.ok()) return out;
  for (; (*it)->Valid(); (*it)->Next()) {
    out.emplace(std::string((*it)->key()), std::string((*it)->value()));
  }
  return out;
}

// A processor built from lambdas, for small test topologies.
template <typename KIn, typename VIn, typename KOut = KIn, typename VOut = VIn>
class LambdaProcessor : public Processor<KIn, VIn, KOut, VOut> {
 public:
  using Context = ProcessorContext<KOut, VOut>;
  using InitFn = std::function<Status(Context&)>;
  using ProcessFn = std::function<Status(Context&, const Record<KIn, VIn>&)>;

  LambdaProcessor(InitFn init, ProcessFn process)
      : init_(std::move(init)), process_(std::move(process)) {}
  Status Init(Context& context) override {
    context_ = &context;
    return init_ ? init_(context) : Status::Ok();
  }
  Status Process(const Record<KIn, VIn>& record) override { return process_(*context_, record); }

 private:
  InitFn init_;
  ProcessFn process_;
  Context* context_ = nullptr;
};

}  // namespace streams::testing
