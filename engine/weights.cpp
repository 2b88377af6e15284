#include "engine/weights.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "engine/file_io.hpp"
#include "engine/safetensors.hpp"
#include "framework/error.hpp"

namespace fg {

WeightStore WeightStore::load_safetensors(const std::string& path) {
  WeightStore store;
  SafetensorsContents contents = read_safetensors(path);
  // A training checkpoint is a weights file too: its training state (keys under the prefix
  // that no node name can take, engine/training/checkpoint.cpp) is not a weight. The weights
  // are then copied, so that the optimizer slots' bytes are not kept alive with the file.
  bool dropped = false;
  for (auto it = contents.tensors.begin(); it != contents.tensors.end();) {
    const bool state = it->first.rfind("__training__.", 0) == 0;
    dropped = dropped || state;
    it = state ? contents.tensors.erase(it) : std::next(it);
  }
  if (dropped) {
    for (auto& [key, t] : contents.tensors) {
      Tensor owned(t.dtype(), t.shape());
      std::memcpy(owned.mutable_data<char>(), t.raw(), t.bytes());
      t = std::move(owned);
    }
    contents.file.reset();
  }
  store.tensors_ = std::move(contents.tensors);
  store.file_ = std::move(contents.file);
  store.source_ = path;
  store.metadata_ = std::move(contents.metadata);
  store.metadata_.erase("fusiongraph.training");  // the state of the dropped training tensors
  store.take_int8_nodes();
  store.warnings_ = check_finite(store.tensors_, path);
  return store;
}

std::vector<Diagnostic> WeightStore::check_finite(const std::map<std::string, Tensor>& tensors,
                                                  const std::string& source) {
  size_t count = 0;
  std::string first_key;
  size_t first_index = 0;
  float first_value = 0;
  for (const auto& [key, t] : tensors) {
    if (t.dtype() != DType::f32 || t.raw() == nullptr) continue;
    const float* p = t.data<float>();
    for (size_t i = 0; i < t.size(); ++i) {
      if (std::isfinite(p[i])) continue;
      if (count++ == 0) {
        first_key = key;
        first_index = i;
        first_value = p[i];
      }
    }
  }
  if (count == 0) return {};
  return {Diagnostic{
      SourceLoc{source, 0, 0}, "",
      fmt::format("{} non-finite weight value{} (NaN or Inf); the first is {} in tensor '{}' at "
                  "flat index {}",
                  count, count == 1 ? "" : "s", first_value, first_key, first_index)}};
}

void WeightStore::set(const std::string& key, Tensor tensor) {
  tensors_.insert_or_assign(key, std::move(tensor));
}

void WeightStore::erase(const std::string& key) {
  tensors_.erase(key);
}

const Tensor* WeightStore::find(const std::string& key) const {
  auto it = tensors_.find(key);
  return it == tensors_.end() ? nullptr : &it->second;
}

void WeightStore::save_safetensors(const std::string& path) const {
  if (int8_nodes_.empty())
    write_safetensors(path, tensors_, metadata_);
  else
    write_safetensors(path, tensors_with_int8(), metadata_with_int8());
}

void WeightStore::validate(const CompiledGraph& graph) const {
  validate(graph.all_weights());
}

WeightStore WeightStore::initialize(const CompiledGraph& graph, uint64_t seed) {
  return initialize(graph.all_weights(), seed);
}

namespace {

std::string node_of(const std::string& key, const WeightSpec& spec) {
  if (key.size() > spec.param.size() + 1 &&
      key.compare(key.size() - spec.param.size(), spec.param.size(), spec.param) == 0)
    return key.substr(0, key.size() - spec.param.size() - 1);
  return key;
}

}  // namespace

void WeightStore::validate(const SpecList& specs) const {
  std::vector<std::string> problems;
  std::vector<std::string> expected;
  size_t missing = 0;
  for (const auto& [key, spec] : specs) {
    expected.push_back(key);
    const std::string where = fmt::format("node '{}', param '{}'", node_of(key, spec), spec.param);
    const Tensor* t = find(key);
    const Int8Node* int8 = spec.param == "kernel" ? int8_node(node_of(key, spec)) : nullptr;
    if (int8 != nullptr) {
      if (int8->kernel.shape() != spec.shape)
        problems.push_back(fmt::format("int8 kernel of node '{}': expected shape {}, found {}",
                                       node_of(key, spec), format_shape(spec.shape),
                                       format_shape(int8->kernel.shape())));
    } else if (t == nullptr) {
      ++missing;
      problems.push_back(fmt::format("missing tensor '{}' ({}): expected Keras shape {}", key,
                                     where, format_shape(spec.shape)));
    } else if (t->dtype() != DType::f32) {
      problems.push_back(fmt::format("tensor '{}' ({}): expected float32, found {}", key, where,
                                     dtype_name(t->dtype())));
    } else if (t->shape() != spec.shape) {
      Dims reversed(spec.shape.rbegin(), spec.shape.rend());
      problems.push_back(fmt::format("tensor '{}' ({}): expected shape {}, found {}{}", key, where,
                                     format_shape(spec.shape), format_shape(t->shape()),
                                     spec.shape.size() == 2 && t->shape() == reversed
                                         ? " (transposed? Keras kernels are [in, out])"
                                         : ""));
    }
  }
  const std::set<std::string> expected_set(expected.begin(), expected.end());
  for (const auto& [node, int8] : int8_nodes_)
    if (!expected_set.count(node + ".kernel"))
      problems.push_back(fmt::format(
          "int8 node '{}' has no kernel in the graph (a quantized file of another graph?)", node));
  for (const auto& [key, tensor] : tensors_) {
    if (expected_set.count(key)) continue;
    std::string guess = closest_match(key, expected);
    problems.push_back(fmt::format("unexpected tensor '{}'{}", key,
                                   guess.empty() ? ": the graph has no such weight"
                                                 : fmt::format(": did you mean '{}'?", guess)));
  }
  if (problems.empty()) return;
  std::string message =
      fmt::format("the weights do not match the graph ({} problem{}):", problems.size(),
                  problems.size() == 1 ? "" : "s");
  for (const auto& p : problems) message += "\n  " + p;
  Error error(message);
  error.in_file(source_);
  if (!specs.empty() && missing == specs.size()) {
    error.hint(
        "none of the graph's weights is in the file; keys must be '<node>.<param>' "
        "(graph-runner init writes a matching file)");
  }
  throw error;
}

}  // namespace fg
