#include "engine/quantization/quantizer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "framework/error.hpp"
#include "layers/registry.hpp"

namespace fg::quantization {
namespace {

bool has_int8_kernel(const std::string& op, bool dynamic) {
  if (dynamic) return op == "dense";
  return op == "dense" || op == "conv1d" || op == "conv2d";
}

// The graph with the input of every node in `taps` as an extra output (unless it is a graph
// input or an output already), so that one f32 run shows the calibration tensors.
std::shared_ptr<const GraphDef> tapped_graph(const GraphDef& graph,
                                             const std::vector<const NodeDef*>& taps) {
  auto tapped = std::make_shared<GraphDef>(graph);
  std::set<std::string> seen(graph.outputs.begin(), graph.outputs.end());
  for (const InputDef& in : graph.inputs) seen.insert(in.name);
  for (const NodeDef* n : taps) {
    const std::string& t = n->inputs.at(0);
    if (!seen.insert(t).second) continue;
    tapped->outputs.push_back(t);
    tapped->output_locs.push_back(n->loc);
    tapped->output_preprocessing.emplace_back();
  }
  return tapped;
}

std::shared_ptr<const CompiledGraph> compiled(std::shared_ptr<const GraphDef> graph) {
  return std::make_shared<const CompiledGraph>(compile_graph(std::move(graph), builtin_ops()));
}

void check_keep_float(const GraphDef& graph, const std::set<std::string>& keep) {
  std::vector<std::string> names;
  for (const NodeDef& n : graph.nodes) names.push_back(n.name);
  for (const std::string& k : keep)
    if (std::find(names.begin(), names.end(), k) == names.end())
      throw Error(fmt::format("--keep-float: graph '{}' has no node '{}'", graph.name, k))
          .hint(did_you_mean(k, names));
}

std::string metadata_json(const QuantizeOptions& o, int64_t samples) {
  nlohmann::json j;
  j["format"] = "fusiongraph-int8-1";
  j["method"] = o.dynamic ? "dynamic" : calibration_method_name(o.method);
  if (!o.dynamic && o.method == CalibrationMethod::percentile) j["percentile"] = o.percentile;
  j["samples"] = samples;
  j["nodes"] = nlohmann::json::object();  // filled in by WeightStore on save
  return j.dump();
}

}  // namespace

std::vector<const NodeDef*> quantizable_nodes(const GraphDef& graph, bool dynamic) {
  std::set<std::string> owners;  // nodes whose weights other nodes share
  for (const NodeDef& n : graph.nodes)
    if (!n.weights_of.empty()) owners.insert(n.weights_of);
  std::vector<const NodeDef*> out;
  for (const NodeDef& n : graph.nodes)
    if (has_int8_kernel(n.op, dynamic) && n.inputs.size() == 1 && n.weights_of.empty() &&
        !owners.count(n.name))
      out.push_back(&n);
  return out;
}

QuantizeResult quantize(std::shared_ptr<const GraphDef> graph, const WeightStore& weights,
                        const InputBatches& batches, const QuantizeOptions& options) {
  check_keep_float(*graph, options.keep_float);
  if (weights.is_quantized())
    throw Error("the weights are int8-quantized already")
        .in_file(weights.source())
        .hint("quantize the float32 weights the quantized file was made from");
  QuantizeResult result;
  result.weights = weights;
  std::vector<const NodeDef*> nodes;
  for (const NodeDef* n : quantizable_nodes(*graph, options.dynamic)) {
    if (options.keep_float.count(n->name))
      result.kept_float.push_back(n->name + " (--keep-float)");
    else
      nodes.push_back(n);
  }
  std::vector<TensorObserver> observers;
  if (!options.dynamic) {
    for (const NodeDef* n : nodes) observers.emplace_back(n->inputs.at(0));
    ModelOptions mo;
    mo.threads = options.threads;
    Model model(compiled(tapped_graph(*graph, nodes)), weights, mo);
    batches([&](const std::map<std::string, Tensor>& inputs) {
      const std::map<std::string, Tensor> outputs = model.run(inputs);
      for (size_t i = 0; i < nodes.size(); ++i) {
        const std::string& t = nodes[i]->inputs.at(0);
        auto it = outputs.find(t);
        const Tensor* x = it != outputs.end() ? &it->second : nullptr;
        if (x == nullptr) {
          auto in = inputs.find(t);
          if (in != inputs.end()) x = &in->second;
        }
        if (x == nullptr || x->dtype() != DType::f32)
          throw Error(fmt::format("internal: no float32 calibration tensor '{}'", t))
              .node(nodes[i]->name, nodes[i]->op);
        observers[i].observe(x->data<float>(), x->size());
      }
      result.samples += inputs.empty() ? 0 : inputs.begin()->second.shape().at(0);
    });
    if (result.samples == 0)
      throw Error("the calibration data has no samples")
          .hint("give --calibration-data a data folder or table with rows, or use --dynamic");
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeDef& n = *nodes[i];
    const Tensor* kernel = weights.find(n.name + ".kernel");
    if (kernel == nullptr)
      throw Error(fmt::format("weight '{}.kernel' is missing", n.name)).node(n.name, n.op);
    Int8Node q = quantize_kernel(*kernel);
    QuantizedNode row{n.name, n.op};
    if (!options.dynamic) {
      const ActivationQuantization a =
          activation_quantization(observers[i], options.method, options.percentile);
      q.input = a.is_unsigned ? Int8Node::Input::u8 : Int8Node::Input::s8;
      q.input_scale = a.scale;
      row.threshold = observers[i].threshold(options.method, options.percentile);
      row.max_abs = observers[i].max_abs();
    }
    row.input = q.input;
    row.input_scale = q.input_scale;
    result.weights.set_int8_node(n.name, std::move(q));
    result.nodes.push_back(row);
  }
  result.weights.set_metadata("fusiongraph.quantization", metadata_json(options, result.samples));
  return result;
}

namespace {

// Sum of squared differences and of squared references over every output of a batch.
struct ErrorSums {
  double diff = 0, ref = 0;
  void add(const std::map<std::string, Tensor>& got, const std::map<std::string, Tensor>& want) {
    for (const auto& [name, w] : want) {
      const Tensor& g = got.at(name);
      for (size_t i = 0; i < w.size(); ++i) {
        const double d = static_cast<double>(g.data<float>()[i]) - w.data<float>()[i];
        diff += d * d;
        ref += static_cast<double>(w.data<float>()[i]) * w.data<float>()[i];
      }
    }
  }
  double relative() const { return ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff); }
};

}  // namespace

double measure_sensitivity(std::shared_ptr<const GraphDef> graph, const WeightStore& f32_weights,
                           QuantizeResult& result, const InputBatches& batches, int threads) {
  const auto compiled_graph = compiled(graph);
  ModelOptions f32;
  f32.threads = threads;
  Model reference(compiled_graph, f32_weights, f32);
  std::vector<std::map<std::string, Tensor>> inputs, wanted;
  batches([&](const std::map<std::string, Tensor>& batch) {
    std::map<std::string, Tensor> copy;  // the batch's buffers may be reused by the next one
    for (const auto& [name, t] : batch) {
      Tensor owned(t.dtype(), t.shape());
      std::memcpy(owned.mutable_data<char>(), t.raw(), t.bytes());
      copy.emplace(name, std::move(owned));
    }
    inputs.push_back(std::move(copy));
    wanted.push_back(reference.run(batch));
  });
  ModelOptions int8 = f32;
  int8.precision = Precision::int8;
  const auto error_of = [&](const WeightStore& store) {
    Model model(compiled_graph, store, int8);
    ErrorSums sums;
    for (size_t b = 0; b < inputs.size(); ++b) sums.add(model.run(inputs[b]), wanted[b]);
    return sums.relative();
  };
  for (QuantizedNode& row : result.nodes) {
    WeightStore one = f32_weights;
    one.set_int8_node(row.node, *result.weights.int8_node(row.node));
    row.error = error_of(one);
  }
  return error_of(result.weights);
}

}  // namespace fg::quantization
