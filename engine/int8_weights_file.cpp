// The int8 part of a weights file (WeightStore's int8 members). `graph-runner quantize` writes,
// beside the float weights of the nodes it leaves alone, for each quantized node N:
//   N.kernel             I8   the Keras kernel shape: per-output-channel symmetric s8 values
//   N.kernel_scale       F32  [channels]: kernel[..., c] ~= N.kernel[..., c] * scale[c]
//   N.input_scale        F32  [1], static nodes only: input ~= q * scale
//   N.input_zero_point   I32  [1], static nodes only: always 0 (symmetric)
// and the metadata key "fusiongraph.quantization", a JSON object:
//   {"format": "fusiongraph-int8-1", "method": "entropy", "samples": 256,
//    "nodes": {"N": "u8" | "s8" | "dynamic", ...}}
// (docs/quantization.md). Every inconsistency is an fg::Error naming the file and the tensor.
#include <fmt/format.h>

#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>

#include "engine/weights.hpp"
#include "framework/error.hpp"

namespace fg {
namespace {

constexpr const char* kQuantizationKey = "fusiongraph.quantization";
constexpr const char* kFormat = "fusiongraph-int8-1";

Error bad_file(const std::string& path, const std::string& message) {
  return Error(message).in_file(path).hint(
      "write the file again with `graph-runner quantize`, from the float32 weights");
}

Int8Node::Input parse_input(const std::string& text, const std::string& node,
                            const std::string& path) {
  for (Int8Node::Input input : {Int8Node::Input::dynamic, Int8Node::Input::u8, Int8Node::Input::s8})
    if (text == int8_input_name(input)) return input;
  throw bad_file(path, fmt::format("the quantization metadata gives node '{}' the input '{}': "
                                   "expected \"u8\", \"s8\" or \"dynamic\"",
                                   node, text));
}

// Takes "<node>.<param>" out of `tensors`, checking its dtype and element count (0: any).
Tensor take(std::map<std::string, Tensor>& tensors, const std::string& node,
            const std::string& param, DType dtype, size_t count, const std::string& path) {
  const std::string key = node + "." + param;
  auto it = tensors.find(key);
  if (it == tensors.end())
    throw bad_file(path, fmt::format("int8 node '{}' has no tensor '{}'", node, key));
  Tensor t = std::move(it->second);
  tensors.erase(it);
  if (t.dtype() != dtype)
    throw bad_file(path, fmt::format("tensor '{}': expected {}, found {}", key, dtype_name(dtype),
                                     dtype_name(t.dtype())));
  if (count != 0 && t.size() != count)
    throw bad_file(path,
                   fmt::format("tensor '{}': expected {} value{}, found {} (shape {})", key, count,
                               count == 1 ? "" : "s", t.size(), format_shape(t.shape())));
  return t;
}

std::vector<float> positive_scales(const Tensor& t, const std::string& key,
                                   const std::string& path) {
  std::vector<float> out(t.data<float>(), t.data<float>() + t.size());
  for (size_t i = 0; i < out.size(); ++i)
    if (!(std::isfinite(out[i]) && out[i] > 0))
      throw bad_file(path, fmt::format("tensor '{}': scale {} at index {} is not a positive finite "
                                       "number",
                                       key, out[i], i));
  return out;
}

Int8Node read_node(std::map<std::string, Tensor>& tensors, const std::string& node,
                   Int8Node::Input input, const std::string& path) {
  Int8Node n;
  n.input = input;
  n.kernel = take(tensors, node, "kernel", DType::i8, 0, path);
  if (n.kernel.shape().empty() || n.kernel.size() == 0)
    throw bad_file(path, fmt::format("tensor '{}.kernel' has shape {}: expected the Keras kernel "
                                     "shape (output channels last, no empty axis)",
                                     node, format_shape(n.kernel.shape())));
  const auto channels = static_cast<size_t>(n.kernel.shape().back());
  const Tensor scales = take(tensors, node, "kernel_scale", DType::f32, channels, path);
  n.kernel_scales = positive_scales(scales, node + ".kernel_scale", path);
  for (size_t i = 0; i < n.kernel.size(); ++i)
    if (n.kernel.data<int8_t>()[i] == -128)
      throw bad_file(path, fmt::format("tensor '{}.kernel': value -128 at flat index {} (symmetric "
                                       "int8 weights lie in [-127, 127])",
                                       node, i));
  if (input == Int8Node::Input::dynamic) return n;
  const Tensor scale = take(tensors, node, "input_scale", DType::f32, 1, path);
  n.input_scale = positive_scales(scale, node + ".input_scale", path)[0];
  const Tensor zero = take(tensors, node, "input_zero_point", DType::i32, 1, path);
  if (zero.data<int32_t>()[0] != 0)
    throw bad_file(path, fmt::format("tensor '{}.input_zero_point' is {}: FusionGraph's int8 "
                                     "activations are symmetric (zero point 0)",
                                     node, zero.data<int32_t>()[0]));
  return n;
}

Tensor scalar_tensor(float value) {
  Tensor t(DType::f32, {1});
  t.mutable_data<float>()[0] = value;
  return t;
}

}  // namespace

const Int8Node* WeightStore::int8_node(const std::string& node) const {
  auto it = int8_nodes_.find(node);
  return it == int8_nodes_.end() ? nullptr : &it->second;
}

struct WeightStore::DequantizedKernels {
  std::mutex mutex;
  std::map<std::string, Tensor> kernels;
};

const Tensor& WeightStore::dequantized_kernel(const std::string& node) const {
  const Int8Node* n = int8_node(node);
  if (n == nullptr) throw Error(fmt::format("internal: node '{}' is not int8", node));
  if (!dequantized_) throw Error("internal: the store has no dequantized-kernel cache");
  std::lock_guard<std::mutex> lock(dequantized_->mutex);
  auto it = dequantized_->kernels.find(node);
  if (it == dequantized_->kernels.end())
    it = dequantized_->kernels.emplace(node, n->dequantized_kernel()).first;
  return it->second;
}

void WeightStore::set_int8_node(const std::string& node, Int8Node int8) {
  if (!dequantized_) dequantized_ = std::make_shared<DequantizedKernels>();
  std::lock_guard<std::mutex> lock(dequantized_->mutex);
  dequantized_->kernels.erase(node);
  tensors_.erase(node + ".kernel");
  int8_nodes_.insert_or_assign(node, std::move(int8));
}

void WeightStore::take_int8_nodes() {
  auto meta = metadata_.find(kQuantizationKey);
  if (meta == metadata_.end()) return;
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(meta->second);
  } catch (const nlohmann::json::exception& e) {
    throw bad_file(source_, fmt::format("the quantization metadata is not JSON ({})", e.what()));
  }
  if (!json.is_object() || !json.contains("format") || json["format"] != kFormat)
    throw bad_file(source_,
                   fmt::format("the quantization metadata has no \"format\": \"{}\"", kFormat));
  if (!json.contains("nodes") || !json["nodes"].is_object())
    throw bad_file(source_, "the quantization metadata has no \"nodes\" object");
  for (const auto& [node, value] : json["nodes"].items()) {
    if (!value.is_string())
      throw bad_file(source_, fmt::format("the quantization metadata gives node '{}' a {}: "
                                          "expected \"u8\", \"s8\" or \"dynamic\"",
                                          node, value.type_name()));
    const Int8Node::Input input = parse_input(value.get<std::string>(), node, source_);
    int8_nodes_.emplace(node, read_node(tensors_, node, input, source_));
  }
  dequantized_ = std::make_shared<DequantizedKernels>();
}

std::map<std::string, std::string> WeightStore::metadata_with_int8() const {
  std::map<std::string, std::string> out = metadata_;
  nlohmann::json json = nlohmann::json::object();
  auto it = metadata_.find(kQuantizationKey);
  if (it != metadata_.end()) json = nlohmann::json::parse(it->second, nullptr, false);
  if (!json.is_object()) json = nlohmann::json::object();
  json["format"] = kFormat;
  nlohmann::json nodes = nlohmann::json::object();
  for (const auto& [node, n] : int8_nodes_) nodes[node] = int8_input_name(n.input);
  json["nodes"] = std::move(nodes);
  out[kQuantizationKey] = json.dump();
  return out;
}

std::map<std::string, Tensor> WeightStore::tensors_with_int8() const {
  std::map<std::string, Tensor> out = tensors_;
  for (const auto& [node, n] : int8_nodes_) {
    out[node + ".kernel"] = n.kernel;
    Tensor scales(DType::f32, {static_cast<Dim>(n.kernel_scales.size())});
    std::copy(n.kernel_scales.begin(), n.kernel_scales.end(), scales.mutable_data<float>());
    out[node + ".kernel_scale"] = std::move(scales);
    if (n.input == Int8Node::Input::dynamic) continue;
    out[node + ".input_scale"] = scalar_tensor(n.input_scale);
    out[node + ".input_zero_point"] = Tensor(DType::i32, {1});
  }
  return out;
}

}  // namespace fg
