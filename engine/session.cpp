// The public facade (include/fusiongraph/fusiongraph.hpp): Session = CompiledGraph + Model.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fusiongraph/fusiongraph.hpp>
#include <limits>

#include "engine/plan.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/registry.hpp"

namespace fg {

namespace {

WeightStore weights_for(const CompiledGraph& graph, const CompileOptions& options) {
  const int sources = (options.weights_file.empty() ? 0 : 1) + (options.weights ? 1 : 0) +
                      (options.init_seed ? 1 : 0);
  if (sources > 1)
    throw Error(
        "CompileOptions: give at most one weight source (weights_file, weights or init_seed)");
  if (!options.weights_file.empty()) return WeightStore::load_safetensors(options.weights_file);
  if (options.weights) return *options.weights;
  if (options.init_seed) return WeightStore::initialize(graph, *options.init_seed);
  const auto specs = graph.all_weights();
  if (!specs.empty())
    throw Error(fmt::format("graph '{}' has {} weight tensor{} (e.g. '{}' {}) but no weights "
                            "were given",
                            graph.def().name, specs.size(), specs.size() == 1 ? "" : "s",
                            specs.front().first, format_shape(specs.front().second.shape)))
        .in_file(graph.def().file)
        .hint(
            "set CompileOptions::weights_file (safetensors), weights (a WeightStore) or "
            "init_seed (Keras-style initial weights)");
  return WeightStore();
}

std::vector<std::string> input_names_of(const GraphDef& def) {
  std::vector<std::string> names;
  for (const auto& in : def.inputs) names.push_back(in.name);
  return names;
}

Error unknown_name(const std::string& what, const std::string& name,
                   const std::vector<std::string>& names, const std::string& graph) {
  return Error(fmt::format("graph '{}' has no {} '{}'", graph, what, name))
      .hint(did_you_mean(name, names));
}

void check_options(const CompileOptions& o) {
  if (o.threads < 0 || o.threads > kMaxThreads)
    throw Error(fmt::format("CompileOptions::threads is {}; expected 0 (all cores) or 1..{}",
                            o.threads, kMaxThreads));
  if (o.max_cached_plans < 1 || o.max_cached_plans > kMaxCachedPlans)
    throw Error(fmt::format("CompileOptions::max_cached_plans is {}; expected 1..{}",
                            o.max_cached_plans, kMaxCachedPlans));
  if (o.max_cached_plan_bytes < 1)
    throw Error(
        "CompileOptions::max_cached_plan_bytes is 0; expected 1 or more (bytes of activation "
        "arenas the plan cache keeps)");
  if (o.max_idle_states > kMaxIdleStates)
    throw Error(fmt::format("CompileOptions::max_idle_states is {}; expected 0..{}",
                            o.max_idle_states, kMaxIdleStates));
}

ModelOptions model_options(const CompileOptions& o, const WeightStore& weights) {
  ModelOptions m;
  m.threads = o.threads;
  m.optimize = o.optimize;
  m.precision = o.precision.value_or(weights.is_quantized() ? Precision::int8 : Precision::f32);
  m.max_memory = o.max_memory;
  m.max_cached_plans = o.max_cached_plans;
  m.max_cached_plan_bytes = o.max_cached_plan_bytes;
  m.max_idle_states = o.max_idle_states;
  return m;
}

// Full input shapes by name -> in graph-input order; every input must be there.
std::vector<Dims> ordered_shapes(const GraphDef& def,
                                 const std::map<std::string, Dims>& input_shapes) {
  std::vector<Dims> shapes;
  for (const auto& in : def.inputs) {
    auto it = input_shapes.find(in.name);
    if (it == input_shapes.end())
      throw Error(fmt::format("the shape of input '{}' is missing (the graph has inputs {})",
                              in.name, quoted_list(input_names_of(def))));
    shapes.push_back(it->second);
  }
  return shapes;
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// Token ids for an int32 input: below the smallest index range among the ops reading it.
int64_t index_bound(const CompiledGraph& graph, int tensor) {
  int64_t bound = std::numeric_limits<int64_t>::max();
  for (const auto& node : graph.nodes())
    for (size_t slot = 0; slot < node.inputs.size(); ++slot)
      if (node.inputs[slot] == tensor) {
        const int64_t n = node.op->index_range(slot);
        if (n > 0) bound = std::min(bound, n);
      }
  return bound == std::numeric_limits<int64_t>::max() ? 100 : bound;
}

// A small linear congruential generator: the same values on every platform.
class SyntheticValues {
 public:
  SyntheticValues(uint64_t seed, const std::string& name)
      : state_(seed * 0x9e3779b97f4a7c15ULL + std::hash<std::string>{}(name)) {}
  uint32_t next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state_ >> 33);
  }

 private:
  uint64_t state_;
};

template <typename T>
Tensor make(DType dtype, const Dims& shape, const std::vector<T>& values) {
  for (Dim d : shape)
    if (d < 0) throw Error(fmt::format("tensor shape {} has a negative dim", format_shape(shape)));
  Tensor t(dtype, shape);
  if (values.size() != t.size())
    throw Error(fmt::format("tensor of shape {} needs {} values, got {}", format_shape(shape),
                            t.size(), values.size()));
  std::copy(values.begin(), values.end(), t.template mutable_data<T>());
  return t;
}

}  // namespace

Session::Session(std::shared_ptr<const GraphDef> graph, const CompileOptions& options) {
  if (!graph) throw Error("Session: no graph given");
  check_options(options);
  const OpRegistry builtins = options.ops ? OpRegistry() : builtin_ops();
  const OpRegistry& ops = options.ops ? *options.ops : builtins;
  auto start = std::chrono::steady_clock::now();
  graph_ = std::make_shared<const CompiledGraph>(compile_graph(std::move(graph), ops));
  load_times_.compile_ms = ms_since(start);
  start = std::chrono::steady_clock::now();
  WeightStore weights = weights_for(*graph_, options);
  load_times_.weights_ms = ms_since(start);
  start = std::chrono::steady_clock::now();
  ModelOptions model = model_options(options, weights);
  model_ = std::make_shared<Model>(graph_, std::move(weights), std::move(model));
  load_times_.model_ms = ms_since(start);
}

const std::string& Session::name() const {
  return graph_->def().name;
}

std::vector<std::string> Session::input_names() const {
  return input_names_of(graph_->def());
}

std::vector<std::string> Session::output_names() const {
  return graph_->def().outputs;
}

TensorType Session::input_type(const std::string& name) const {
  const auto& def = graph_->def();
  for (size_t i = 0; i < def.inputs.size(); ++i)
    if (def.inputs[i].name == name) return graph_->tensors()[graph_->input_tensors()[i]].type;
  throw unknown_name("input", name, input_names(), def.name);
}

TensorType Session::output_type(const std::string& name) const {
  const auto& outs = graph_->def().outputs;
  for (size_t i = 0; i < outs.size(); ++i)
    if (outs[i] == name) return graph_->tensors()[graph_->output_tensors()[i]].type;
  throw unknown_name("output", name, outs, graph_->def().name);
}

std::map<std::string, TensorType> Session::output_types(
    const std::map<std::string, Dims>& input_shapes) const {
  const auto& def = graph_->def();
  const auto names = input_names();
  for (const auto& [name, shape] : input_shapes)
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw unknown_name("input", name, names, def.name);
  const std::vector<TensorType> types = graph_->bind(ordered_shapes(def, input_shapes));
  std::map<std::string, TensorType> out;
  for (size_t i = 0; i < def.outputs.size(); ++i)
    out[def.outputs[i]] = types[graph_->output_tensors()[i]];
  return out;
}

std::map<std::string, Dims> input_shapes_for(
    const CompiledGraph& graph, int64_t batch,
    const std::map<std::string, std::vector<int64_t>>& null_dims) {
  const CompiledGraph* graph_ = &graph;
  std::map<std::string, std::vector<int64_t>> dims = null_dims;
  const auto& def = graph_->def();
  for (const auto& in : def.inputs) {
    if (dims.count(in.name)) continue;
    std::vector<int64_t> sizes;
    for (size_t k = 0; k < in.shape.size(); ++k)
      if (in.shape[k] == kDynamic)
        sizes.push_back(in.default_shape.empty() ? 100 : in.default_shape[k]);
    if (!sizes.empty()) dims[in.name] = sizes;
  }
  const std::vector<Dims> shapes = graph_->concrete_input_shapes(batch, dims);
  std::map<std::string, Dims> out;
  for (size_t i = 0; i < def.inputs.size(); ++i) out[def.inputs[i].name] = shapes[i];
  return out;
}

std::map<std::string, Tensor> synthetic_inputs_for(const CompiledGraph& graph,
                                                   const std::map<std::string, Dims>& input_shapes,
                                                   uint64_t seed) {
  const CompiledGraph* graph_ = &graph;
  const auto& def = graph_->def();
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < def.inputs.size(); ++i) {
    const InputDef& in = def.inputs[i];
    auto it = input_shapes.find(in.name);
    if (it == input_shapes.end()) continue;
    Tensor t(in.dtype, it->second);
    SyntheticValues values(seed, in.name);
    if (in.dtype == DType::f32) {
      float* p = t.mutable_data<float>();
      for (size_t k = 0; k < t.size(); ++k)
        p[k] = static_cast<float>(values.next() % 1000000) / 1000000.f;
    } else {
      const int64_t bound =
          std::min<int64_t>(index_bound(*graph_, graph_->input_tensors()[i]), INT32_MAX);
      int32_t* p = t.mutable_data<int32_t>();
      for (size_t k = 0; k < t.size(); ++k)
        p[k] = bound > 1 ? 1 + static_cast<int32_t>(values.next() % (bound - 1)) : 0;
    }
    out[in.name] = std::move(t);
  }
  for (const auto& [name, shape] : input_shapes)
    if (!out.count(name)) {
      std::vector<std::string> names;
      for (const auto& in : def.inputs) names.push_back(in.name);
      throw unknown_name("input", name, names, def.name);
    }
  return out;
}

std::map<std::string, Dims> Session::input_shapes(
    int64_t batch, const std::map<std::string, std::vector<int64_t>>& null_dims) const {
  return input_shapes_for(*graph_, batch, null_dims);
}

std::map<std::string, Tensor> Session::synthetic_inputs(
    const std::map<std::string, Dims>& input_shapes, uint64_t seed) const {
  return synthetic_inputs_for(*graph_, input_shapes, seed);
}

bool Session::output_is_probabilities(const std::string& output) const {
  output_type(output);  // throws for an unknown name
  const auto& outs = graph_->def().outputs;
  const size_t k = std::find(outs.begin(), outs.end(), output) - outs.begin();
  const int producer = graph_->tensors()[graph_->output_tensors()[k]].producer;
  return producer >= 0 && graph_->nodes()[producer].op->traits().outputs_probabilities;
}

PlanFigures Session::plan_figures(const std::map<std::string, Dims>& input_shapes) const {
  const auto plan = model_->plan_for(ordered_shapes(graph_->def(), input_shapes));
  return {plan->arena_bytes(), plan->unplanned_bytes(), plan->scratchpad_bytes(), plan->flops()};
}

void Session::check_memory_budget(const std::map<std::string, Dims>& input_shapes) const {
  model_->check_memory_budget(ordered_shapes(graph_->def(), input_shapes));
}

std::map<std::string, Tensor> Session::run(const std::map<std::string, Tensor>& inputs,
                                           const RunOptions& options) const {
  return model_->run(inputs, options);
}

std::string Session::summary(const SummaryOptions& options) const {
  return format_summary_table(summarize(*graph_, options));
}

std::string Session::summary_json(const SummaryOptions& options) const {
  return format_summary_json(summarize(*graph_, options));
}

std::vector<std::pair<std::string, WeightSpec>> Session::weight_specs() const {
  return graph_->all_weights();
}

const std::vector<Diagnostic>& Session::warnings() const {
  return graph_->warnings();
}

int Session::threads() const {
  return model_->threads();
}

Precision Session::precision() const {
  return model_->precision();
}

std::string Session::precision_warning() const {
  return model_->precision_warning();
}

std::string cpu_isa() {
  return onednn::cpu_isa_name();
}

const WeightStore& Session::weights() const {
  return model_->weights();
}

size_t Session::weight_bytes() const {
  size_t bytes = 0;
  for (const auto& [name, t] : model_->weights().tensors()) bytes += t.bytes();
  return bytes;
}

const LoadTimes& Session::load_times() const {
  return load_times_;
}

const CompiledGraph& Session::graph() const {
  return *graph_;
}

const Model& Session::model() const {
  return *model_;
}

std::shared_ptr<const GraphDef> read_graph(const std::string& path) {
  return load_graph_file(path);
}

std::shared_ptr<const GraphDef> read_graph_string(const std::string& yaml,
                                                  const std::string& file) {
  return load_graph_string(yaml, file);
}

Session load(const std::string& path, const CompileOptions& options) {
  return Session(load_graph_file(path), options);
}

Session load_string(const std::string& yaml, const CompileOptions& options,
                    const std::string& file) {
  return Session(load_graph_string(yaml, file), options);
}

std::shared_ptr<const CompiledGraph> compile_file(const std::string& path, const OpRegistry* ops) {
  const OpRegistry builtins = ops ? OpRegistry() : builtin_ops();
  return std::make_shared<const CompiledGraph>(
      compile_graph(load_graph_file(path), ops ? *ops : builtins));
}

Tensor tensor_f32(const Dims& shape, const std::vector<float>& values) {
  return make(DType::f32, shape, values);
}

Tensor tensor_i32(const Dims& shape, const std::vector<int32_t>& values) {
  return make(DType::i32, shape, values);
}

std::vector<float> to_floats(const Tensor& tensor) {
  std::vector<float> out(tensor.size());
  if (tensor.dtype() == DType::f32)
    std::copy(tensor.data<float>(), tensor.data<float>() + tensor.size(), out.begin());
  else
    for (size_t i = 0; i < tensor.size(); ++i)
      out[i] = static_cast<float>(tensor.data<int32_t>()[i]);
  return out;
}

#ifndef FG_VERSION
#define FG_VERSION "unknown"
#endif
const char* version() {
  return FG_VERSION;
}

}  // namespace fg
