#include "engine/training/parameter_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace fg {
namespace {

Tensor copy_of(const Tensor& t) {
  Tensor out(DType::f32, t.shape());
  std::memcpy(out.mutable_data<float>(), t.data<float>(), t.bytes());
  return out;
}

}  // namespace

ParameterStore::ParameterStore(const CompiledGraph& graph, const WeightStore& initial) {
  initial.validate(graph);
  std::vector<TensorType> types;
  for (const TensorInfo& t : graph.tensors()) types.push_back(t.type);
  by_node_.resize(graph.nodes().size());
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const NodeDef& def = *graph.nodes()[n].def;
    if (!def.weights_of.empty()) continue;  // shares the owner's entries (below)
    const std::vector<WeightSpec> specs = graph.node_weights(n, types);
    for (size_t i = 0; i < specs.size(); ++i) {
      StoredParameter p;
      p.key = def.name + "." + specs[i].param;
      p.node = static_cast<int>(n);
      p.index = i;
      p.spec = specs[i];
      p.trainable = specs[i].trainable && def.trainable;
      p.value = copy_of(*initial.find(p.key));
      if (p.trainable) {
        p.gradient = Tensor(DType::f32, p.value.shape());
        std::fill_n(p.gradient.mutable_data<float>(), p.gradient.size(), 0.0f);
      }
      by_node_[n].push_back(static_cast<int>(entries_.size()));
      entries_.push_back(std::move(p));
    }
  }
  // A node with `weights_of` uses the owner's parameters: one value, one gradient (the
  // training plan sums the gradients of every node using it).
  for (size_t n = 0; n < graph.nodes().size(); ++n)
    if (!graph.nodes()[n].def->weights_of.empty()) by_node_[n] = by_node_[graph.weights_owner(n)];
}

bool ParameterStore::is_shared(int entry) const {
  int users = 0;
  for (const std::vector<int>& node : by_node_)
    users += static_cast<int>(std::count(node.begin(), node.end(), entry));
  return users > 1;
}

const StoredParameter* ParameterStore::find(const std::string& key) const {
  for (const StoredParameter& p : entries_)
    if (p.key == key) return &p;
  return nullptr;
}

bool ParameterStore::node_trains_weights(int node) const {
  for (int i : by_node_.at(node))
    if (entries_[i].trainable) return true;
  return false;
}

std::vector<Parameter> ParameterStore::trainable_parameters() {
  std::vector<Parameter> out;
  for (StoredParameter& p : entries_)
    if (p.trainable)
      out.push_back(
          {p.key, p.value.mutable_data<float>(), p.gradient.mutable_data<float>(), p.value.size()});
  return out;
}

WeightStore ParameterStore::to_weight_store() const {
  WeightStore store;
  for (const StoredParameter& p : entries_) store.set(p.key, copy_of(p.value));
  return store;
}

void ParameterStore::assign(const WeightStore& weights) {
  for (StoredParameter& p : entries_) {
    const Tensor* t = weights.find(p.key);
    if (t == nullptr)
      throw Error(fmt::format("the weights have no '{}'", p.key)).in_file(weights.source());
    if (t->shape() != p.value.shape())
      throw Error(fmt::format("weight '{}' has shape {}, the graph needs {}", p.key,
                              format_shape(t->shape()), format_shape(p.value.shape())))
          .in_file(weights.source());
    std::memcpy(p.value.mutable_data<float>(), t->data<float>(), p.value.bytes());
  }
}

}  // namespace fg
