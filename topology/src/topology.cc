#include "streams/topology.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace streams {
namespace {

using internal::NodeKind;
using internal::NodeSpec;

constexpr size_t kMaxNameLength = 249;  // Kafka's limit for topic names.

// Names of nodes, stores and topics: [A-Za-z0-9._-]{1,249}.
bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string KindName(NodeKind kind) {
  switch (kind) {
    case NodeKind::kSource:
      return "source";
    case NodeKind::kProcessor:
      return "processor";
    case NodeKind::kSink:
      return "sink";
  }
  return "node";
}

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

// Tarjan's strongly connected components over `edges` (parent -> children by
// index), restricted to `candidates`. Returns the components that contain a
// cycle (more than one node, or a node that is its own parent), each sorted by
// node index, in order of their smallest index.
std::vector<std::vector<size_t>> FindCycles(const std::vector<std::vector<size_t>>& edges,
                                            const std::vector<bool>& candidates) {
  const size_t n = edges.size();
  std::vector<int> index(n, -1), low(n, 0);
  std::vector<bool> on_stack(n, false);
  std::vector<size_t> stack;
  std::vector<std::vector<size_t>> cycles;
  int next_index = 0;

  std::function<void(size_t)> visit = [&](size_t v) {
    index[v] = low[v] = next_index++;
    stack.push_back(v);
    on_stack[v] = true;
    for (size_t w : edges[v]) {
      if (!candidates[w]) continue;
      if (index[w] < 0) {
        visit(w);
        low[v] = std::min(low[v], low[w]);
      } else if (on_stack[w]) {
        low[v] = std::min(low[v], index[w]);
      }
    }
    if (low[v] == index[v]) {
      std::vector<size_t> component;
      size_t w;
      do {
        w = stack.back();
        stack.pop_back();
        on_stack[w] = false;
        component.push_back(w);
      } while (w != v);
      const bool self_loop = std::find(edges[v].begin(), edges[v].end(), v) != edges[v].end();
      if (component.size() > 1 || self_loop) {
        std::sort(component.begin(), component.end());
        cycles.push_back(std::move(component));
      }
    }
  };
  for (size_t v = 0; v < n; ++v) {
    if (candidates[v] && index[v] < 0) visit(v);
  }
  std::sort(cycles.begin(), cycles.end());
  return cycles;
}

}  // namespace

const internal::NodeSpec* Topology::FindNode(std::string_view name) const {
  for (const NodeSpec& node : nodes_) {
    if (node.name == name) return &node;
  }
  return nullptr;
}

std::string Topology::ChangelogTopic(std::string_view application_id, std::string_view store) {
  std::string topic(application_id);
  topic += '-';
  topic += store;
  topic += "-changelog";
  return topic;
}

std::string Topology::Describe() const {
  std::string out = "Topologies:\n   Sub-topology: 0\n";
  auto sorted = [](std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    return names;
  };
  for (const NodeSpec& node : nodes_) {
    switch (node.kind) {
      case NodeKind::kSource:
        out += "    Source: " + node.name + " (topics: [" + Join(node.topics, ", ") + "])\n";
        break;
      case NodeKind::kProcessor:
        out += "    Processor: " + node.name + " (stores: [" + Join(sorted(node.stores), ", ") +
               "])\n";
        break;
      case NodeKind::kSink:
        out += "    Sink: " + node.name +
               " (topic: " + (node.topics.empty() ? std::string() : node.topics.front()) + ")\n";
        break;
    }
    if (node.kind != NodeKind::kSink) {
      out += "      --> " +
             (node.children.empty() ? std::string("none") : Join(sorted(node.children), ", ")) +
             "\n";
    }
    if (node.kind != NodeKind::kSource) {
      out += "      <-- " +
             (node.parents.empty() ? std::string("none") : Join(sorted(node.parents), ", ")) + "\n";
    }
  }
  out += "\n";
  return out;
}

void TopologyBuilder::AddNode(internal::NodeSpec spec) { nodes_.push_back(std::move(spec)); }

TopologyBuilder& TopologyBuilder::SetTimestampPolicy(TimestampPolicy policy) {
  timestamp_policy_ = policy;
  return *this;
}

TopologyBuilder& TopologyBuilder::SetDeadLetterRedactor(Redactor redactor) {
  dead_letter_redactor_ = std::move(redactor);
  return *this;
}

TopologyBuilder& TopologyBuilder::AddStateStore(state::StoreSpec spec,
                                                std::vector<std::string> processors) {
  stores_.emplace_back(std::move(spec), std::move(processors));
  return *this;
}

TopologyBuilder& TopologyBuilder::ConnectProcessorAndStateStores(std::string processor,
                                                                 std::vector<std::string> stores) {
  connections_.emplace_back(std::move(processor), std::move(stores));
  return *this;
}

Result<std::unique_ptr<Topology>> TopologyBuilder::Build() && {
  std::vector<std::string> problems;
  const size_t n = nodes_.size();

  // --- Node names. The first node of a duplicated name is the one used below.
  std::map<std::string, size_t, std::less<>> by_name;
  std::vector<bool> usable(n, true);  // False for a duplicate (ignored by graph checks).
  for (size_t i = 0; i < n; ++i) {
    const NodeSpec& node = nodes_[i];
    if (!IsValidName(node.name)) {
      problems.push_back("invalid node name " + Quote(node.name) +
                         " (expected 1-249 characters of [A-Za-z0-9._-])");
    }
    auto [it, inserted] = by_name.emplace(node.name, i);
    if (!inserted) {
      usable[i] = false;
      problems.push_back("duplicate node name " + Quote(node.name) + " (a " +
                         KindName(nodes_[it->second].kind) + " and a " + KindName(node.kind) + ")");
    }
  }

  // --- Store names.
  std::map<std::string, size_t, std::less<>> store_by_name;
  for (size_t i = 0; i < stores_.size(); ++i) {
    const state::StoreSpec& spec = stores_[i].first;
    if (!IsValidName(spec.name)) {
      problems.push_back("invalid store name " + Quote(spec.name) +
                         " (expected 1-249 characters of [A-Za-z0-9._-])");
    }
    if (spec.ttl && spec.ttl->count() <= 0) {
      problems.push_back("store " + Quote(spec.name) + " has a non-positive ttl of " +
                         std::to_string(spec.ttl->count()) + " ms");
    }
    if (!store_by_name.emplace(spec.name, i).second) {
      problems.push_back("duplicate store name " + Quote(spec.name));
    }
  }

  if (timestamp_policy_.max_lead && timestamp_policy_.max_lead->count() <= 0) {
    problems.push_back("timestamp policy max_lead must be positive, got " +
                       std::to_string(timestamp_policy_.max_lead->count()) + " ms");
  }

  // --- Per-node checks and edges (parent -> child by index).
  std::vector<std::vector<size_t>> children(n);
  std::vector<std::vector<size_t>> parents(n);
  std::map<std::string, std::string> topic_reader;  // topic -> first source reading it.
  bool has_source = false;
  for (size_t i = 0; i < n; ++i) {
    if (!usable[i]) continue;
    const NodeSpec& node = nodes_[i];
    const std::string who = KindName(node.kind) + " " + Quote(node.name);
    switch (node.kind) {
      case NodeKind::kSource: {
        has_source = true;
        if (!node.parents.empty()) {
          problems.push_back(who + " cannot have parents (has " + Join(node.parents, ", ") + ")");
        }
        if (node.topics.empty()) problems.push_back(who + " has no topics");
        std::set<std::string> seen;
        for (const std::string& topic : node.topics) {
          if (!IsValidName(topic)) {
            problems.push_back(who + " reads invalid topic name " + Quote(topic));
          }
          if (!seen.insert(topic).second) continue;
          auto [it, inserted] = topic_reader.emplace(topic, node.name);
          if (!inserted) {
            problems.push_back("topic " + Quote(topic) + " is read by more than one source (" +
                               Quote(it->second) + " and " + Quote(node.name) + ")");
          }
        }
        break;
      }
      case NodeKind::kProcessor:
      case NodeKind::kSink:
        if (node.parents.empty()) problems.push_back(who + " has no parents");
        if (node.kind == NodeKind::kSink &&
            (node.topics.size() != 1 || !IsValidName(node.topics.front()))) {
          problems.push_back(who + " writes invalid topic name " +
                             Quote(node.topics.empty() ? "" : node.topics.front()));
        }
        break;
    }
    if (node.kind == NodeKind::kSource) continue;  // Its parents were reported above.
    std::set<std::string> seen_parents;
    for (const std::string& parent_name : node.parents) {
      if (!seen_parents.insert(parent_name).second) {
        problems.push_back(who + " lists parent " + Quote(parent_name) + " more than once");
        continue;
      }
      auto it = by_name.find(parent_name);
      if (it == by_name.end()) {
        problems.push_back(who + " has unknown parent " + Quote(parent_name));
        continue;
      }
      const NodeSpec& parent = nodes_[it->second];
      if (parent.kind == NodeKind::kSink) {
        problems.push_back(who + " has parent " + Quote(parent_name) +
                           ", which is a sink and cannot have children");
        continue;
      }
      children[it->second].push_back(i);
      parents[i].push_back(it->second);
      if (parent.key_out && parent.value_out && node.key_in && node.value_in &&
          (*parent.key_out != *node.key_in || *parent.value_out != *node.value_in)) {
        problems.push_back("type mismatch: " + who + " expects records <" + node.key_in_name +
                           ", " + node.value_in_name + "> but its parent " + Quote(parent.name) +
                           " forwards <" + parent.key_out_name + ", " + parent.value_out_name +
                           ">");
      }
    }
  }
  if (!has_source) problems.push_back("the topology has no source node");

  // --- Store connections: store -> processors, in order of connection.
  std::vector<std::vector<std::string>> node_stores(n);
  std::vector<bool> store_connected(stores_.size(), false);
  auto connect = [&](const std::string& processor, const std::string& store) {
    auto store_it = store_by_name.find(store);
    auto node_it = by_name.find(processor);
    bool ok = true;
    if (store_it == store_by_name.end()) {
      problems.push_back("processor " + Quote(processor) + " is connected to unknown store " +
                         Quote(store));
      ok = false;
    }
    if (node_it == by_name.end()) {
      problems.push_back("store " + Quote(store) + " is connected to unknown processor " +
                         Quote(processor));
      ok = false;
    } else if (nodes_[node_it->second].kind != NodeKind::kProcessor) {
      problems.push_back("store " + Quote(store) + " cannot be connected to " +
                         KindName(nodes_[node_it->second].kind) + " " + Quote(processor) +
                         " (only processors have stores)");
      ok = false;
    }
    if (!ok) return;
    store_connected[store_it->second] = true;
    auto& list = node_stores[node_it->second];
    if (std::find(list.begin(), list.end(), store) == list.end()) list.push_back(store);
  };
  for (const auto& [spec, processors] : stores_) {
    for (const std::string& processor : processors) connect(processor, spec.name);
  }
  for (const auto& [processor, stores] : connections_) {
    for (const std::string& store : stores) connect(processor, store);
  }
  for (size_t i = 0; i < stores_.size(); ++i) {
    const std::string& name = stores_[i].first.name;
    // A duplicate store name is reported above; judge the name by its first spec.
    if (store_by_name.at(name) != i) continue;
    if (!store_connected[i]) {
      problems.push_back("store " + Quote(name) + " is not connected to any processor");
    }
  }

  // --- Topological order (Kahn, ties broken by the order nodes were added).
  std::vector<size_t> in_degree(n, 0);
  for (size_t i = 0; i < n; ++i) in_degree[i] = parents[i].size();
  std::set<size_t> ready;
  for (size_t i = 0; i < n; ++i) {
    if (usable[i] && in_degree[i] == 0) ready.insert(i);
  }
  std::vector<size_t> order;
  while (!ready.empty()) {
    const size_t v = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(v);
    for (size_t child : children[v]) {
      if (--in_degree[child] == 0) ready.insert(child);
    }
  }
  size_t usable_count = static_cast<size_t>(std::count(usable.begin(), usable.end(), true));
  if (order.size() != usable_count) {
    std::vector<bool> unordered(n, false);
    for (size_t i = 0; i < n; ++i) unordered[i] = usable[i] && in_degree[i] > 0;
    for (const std::vector<size_t>& cycle : FindCycles(children, unordered)) {
      std::vector<std::string> names;
      for (size_t v : cycle) names.push_back(Quote(nodes_[v].name));
      problems.push_back("cycle among nodes " + Join(names, ", "));
    }
  }

  if (!problems.empty()) {
    std::string message = "invalid topology (" + std::to_string(problems.size()) +
                          (problems.size() == 1 ? " problem): " : " problems): ");
    message += Join(problems, "; ");
    return Status::InvalidArgument(std::move(message));
  }

  // --- Freeze.
  auto topology = std::unique_ptr<Topology>(new Topology());
  std::set<std::string> source_topics, sink_topics;
  std::vector<std::string> names;
  for (const NodeSpec& node : nodes_) names.push_back(node.name);
  for (size_t v : order) {
    NodeSpec node = std::move(nodes_[v]);
    node.children.clear();
    for (size_t child : children[v]) node.children.push_back(names[child]);
    node.stores = std::move(node_stores[v]);
    if (node.kind == NodeKind::kSource) {
      source_topics.insert(node.topics.begin(), node.topics.end());
    } else if (node.kind == NodeKind::kSink) {
      sink_topics.insert(node.topics.begin(), node.topics.end());
    }
    topology->nodes_.push_back(std::move(node));
  }
  for (auto& [spec, processors] : stores_) topology->stores_.push_back(std::move(spec));
  topology->source_topics_.assign(source_topics.begin(), source_topics.end());
  topology->sink_topics_.assign(sink_topics.begin(), sink_topics.end());
  topology->timestamp_policy_ = timestamp_policy_;
  topology->dead_letter_redactor_ = std::move(dead_letter_redactor_);
  return topology;
}

}  // namespace streams
