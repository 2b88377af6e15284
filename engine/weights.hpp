// Weights: a map "<node>.<param>" -> f32 tensor in the Keras shape.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/compiler.hpp"
#include "kernels/tensor.hpp"

namespace fg {

class FileContents;

// The initial value of one weight: deterministic in (seed, key), independent of the standard
// library's random engines. See docs/formats.md for the initialisers.
Tensor initial_weight(const std::string& key, const WeightSpec& spec, uint64_t seed);

class WeightStore {
 public:
  WeightStore() = default;
  // Reads a safetensors file into owned memory (F32 borrowed from it, F16/BF16 converted to
  // f32); the file is not read again afterwards. Throws fg::Error.
  static WeightStore load_safetensors(const std::string& path);
  // Deterministic Keras-style initial weights (graph-runner init).
  static WeightStore initialize(const CompiledGraph& graph, uint64_t seed);

  void set(const std::string& key, Tensor tensor);
  void erase(const std::string& key);  // no-op when absent
  // Warnings about the values (load_safetensors fills them): NaN or Inf weights, with their
  // count and the first tensor holding one. Printed like the graph's warnings.
  const std::vector<Diagnostic>& warnings() const { return warnings_; }
  // Counts the non-finite float32 values of every tensor; a warning when there are any.
  static std::vector<Diagnostic> check_finite(const std::map<std::string, Tensor>& tensors,
                                              const std::string& source);
  const Tensor* find(const std::string& key) const;
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  const std::string& source() const { return source_; }  // file name for messages
  void set_source(std::string source) { source_ = std::move(source); }
  // The safetensors header's __metadata__ (string values), read and written with the tensors;
  // e.g. "fusiongraph.preprocessing" (engine/data/preprocessors.hpp).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  void set_metadata(const std::string& key, std::string value) {
    metadata_[key] = std::move(value);
  }

  // Checks the store against the graph's weight specs; reports every problem at once
  // (missing, unexpected, wrong shape) in one fg::Error.
  void validate(const CompiledGraph& graph) const;

  // Writes all tensors as F32 safetensors, atomically (temp file + rename).
  void save_safetensors(const std::string& path) const;

  // The same checks and initial values for an explicit list of "<node>.<param>" -> spec
  // (what CompiledGraph::all_weights() returns); the graph versions call these.
  using SpecList = std::vector<std::pair<std::string, WeightSpec>>;
  void validate(const SpecList& specs) const;
  static WeightStore initialize(const SpecList& specs, uint64_t seed);

 private:
  std::map<std::string, Tensor> tensors_;
  std::shared_ptr<const FileContents> file_;  // set when loaded from a safetensors file
  std::string source_ = "<weights>";
  std::map<std::string, std::string> metadata_;
  std::vector<Diagnostic> warnings_;
};

}  // namespace fg
