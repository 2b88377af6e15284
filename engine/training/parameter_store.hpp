// The live weights of a graph being trained: every "<node>.<param>" tensor in its Keras layout
// (owned, mutable), and for each trainable one a gradient buffer of the same shape that the
// backward steps overwrite each step (a node with `weights_of` shares its owner's entries; the
// training plan sums their gradients into the one buffer). Moving statistics and frozen weights
// have no gradient. Optimizer rules are elementwise, so they run over these buffers directly.
#pragma once

#include <string>
#include <vector>

#include "engine/training/optimizer.hpp"
#include "engine/weights.hpp"
#include "framework/compiler.hpp"

namespace fg {

struct StoredParameter {
  std::string key;  // "<node>.<param>"
  int node = -1;
  size_t index = 0;  // in the node's weights() order
  WeightSpec spec;
  bool trainable = false;  // spec.trainable and the node's `trainable`
  Tensor value;            // f32, Keras shape
  Tensor gradient;         // same shape when trainable, else empty
};

class ParameterStore {
 public:
  // Copies `initial` (validated against the graph: every weight present with its shape).
  ParameterStore(const CompiledGraph& graph, const WeightStore& initial);

  std::vector<StoredParameter>& entries() { return entries_; }
  const std::vector<StoredParameter>& entries() const { return entries_; }
  // The node's parameters in weights() order (empty for a node without weights).
  const std::vector<int>& of_node(int node) const { return by_node_.at(node); }
  const StoredParameter* find(const std::string& key) const;
  bool node_trains_weights(int node) const;
  // Used by more than one node (`weights_of`): its gradient is the sum of theirs.
  bool is_shared(int entry) const;

  // The trainable ones, for Optimizer::step (names, values, gradients).
  std::vector<Parameter> trainable_parameters();
  // A copy of every value, for saving or for an inference model.
  WeightStore to_weight_store() const;
  // Overwrites the values from `weights` (same keys and shapes; checked).
  void assign(const WeightStore& weights);

 private:
  std::vector<StoredParameter> entries_;
  std::vector<std::vector<int>> by_node_;
};

}  // namespace fg
