// Weights: a map "<node>.<param>" -> f32 tensor in the Keras shape.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "framework/compiler.hpp"
#include "runtime/tensor.hpp"

namespace fg {

class WeightStore {
 public:
  WeightStore() = default;
  // Memory-maps a safetensors file (F32 borrowed, F16/BF16 converted to f32). Throws fg::Error.
  static WeightStore load_safetensors(const std::string& path);
  // Deterministic Keras-style initial weights (graph-runner init).
  static WeightStore initialize(const CompiledGraph& graph, uint64_t seed);

  void set(const std::string& key, Tensor tensor);
  const Tensor* find(const std::string& key) const;
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  const std::string& source() const { return source_; }  // file name for messages
  void set_source(std::string source) { source_ = std::move(source); }

  // Checks the store against the graph's weight specs; reports every problem at once
  // (missing, unexpected, wrong shape) in one fg::Error.
  void validate(const CompiledGraph& graph) const;

  // Writes all tensors as F32 safetensors, atomically (temp file + rename).
  void save_safetensors(const std::string& path) const;

 private:
  std::map<std::string, Tensor> tensors_;
  std::string source_ = "<weights>";
};

}  // namespace fg
