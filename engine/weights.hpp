// Weights: a map "<node>.<param>" -> f32 tensor in the Keras shape.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/compiler.hpp"
#include "kernels/int8_weights.hpp"
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
  // f32); the file is not read again afterwards. An int8-quantized file (`graph-runner
  // quantize`, the "fusiongraph.quantization" metadata, docs/quantization.md) gives int8_nodes():
  // their kernels are not among tensors(). Throws fg::Error.
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

  // int8 weights by node (its weights node: the owner of shared weights), see
  // kernels/int8_weights.hpp. A node here has no "<node>.kernel" among tensors().
  const std::map<std::string, Int8Node>& int8_nodes() const { return int8_nodes_; }
  const Int8Node* int8_node(const std::string& node) const;
  // Adds (or replaces) a node's int8 form and drops its f32 kernel; the quantization metadata
  // (method, sample count) is set_metadata's "fusiongraph.quantization" key, rewritten on save.
  void set_int8_node(const std::string& node, Int8Node int8);
  bool is_quantized() const { return !int8_nodes_.empty(); }
  // An int8 node's kernel in float32 (q * scale), made on first use and kept by the store (its
  // copies share it): for plans that run the node in float. Thread-safe.
  const Tensor& dequantized_kernel(const std::string& node) const;

  // Checks the store against the graph's weight specs; reports every problem at once
  // (missing, unexpected, wrong shape) in one fg::Error.
  void validate(const CompiledGraph& graph) const;

  // Writes all tensors as F32 safetensors (int8 nodes as I8 kernels, F32 scales, I32 zero
  // points), atomically (temp file + rename).
  void save_safetensors(const std::string& path) const;

  // The same checks and initial values for an explicit list of "<node>.<param>" -> spec
  // (what CompiledGraph::all_weights() returns); the graph versions call these.
  using SpecList = std::vector<std::pair<std::string, WeightSpec>>;
  void validate(const SpecList& specs) const;
  static WeightStore initialize(const SpecList& specs, uint64_t seed);

 private:
  // The int8 part of a loaded file: moves each quantized node's tensors out of `tensors_`.
  void take_int8_nodes();
  std::map<std::string, Tensor> tensors_with_int8() const;
  std::map<std::string, std::string> metadata_with_int8() const;

  std::map<std::string, Tensor> tensors_;
  std::map<std::string, Int8Node> int8_nodes_;
  struct DequantizedKernels;
  std::shared_ptr<DequantizedKernels> dequantized_;
  std::shared_ptr<const FileContents> file_;  // set when loaded from a safetensors file
  std::string source_ = "<weights>";
  std::map<std::string, std::string> metadata_;
  std::vector<Diagnostic> warnings_;
};

}  // namespace fg
