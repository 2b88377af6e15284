#include "cli/commands.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>

#include "framework/compiler.hpp"
#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "cli/profile_report.hpp"
#include "engine/model.hpp"
#include "engine/npy.hpp"
#include "engine/plan.hpp"
#include "engine/weights.hpp"
#include "layers/registry.hpp"

namespace fg::cli {

std::map<std::string, std::vector<int64_t>> parse_dims(const std::vector<std::string>& specs) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& spec : specs) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      throw UsageError(
          fmt::format("--dim takes NAME=SIZE (e.g. --dim audio=16000), got '{}'", spec));
    std::string name = spec.substr(0, eq);
    std::vector<int64_t> sizes;
    size_t pos = eq + 1;
    while (pos <= spec.size()) {
      size_t comma = spec.find(',', pos);
      std::string part =
          spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      try {
        size_t used = 0;
        long long v = std::stoll(part, &used);
        if (used != part.size() || v < 1) throw std::invalid_argument(part);
        sizes.push_back(v);
      } catch (const std::exception&) {
        throw UsageError(fmt::format("--dim {}: '{}' is not a positive size", name, part));
      }
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    out[name] = sizes;
  }
  return out;
}

std::shared_ptr<CompiledGraph> load(const std::string& path) {
  auto def = load_graph_file(path);
  auto graph = std::make_shared<CompiledGraph>(compile_graph(def, builtin_ops()));
  for (const auto& w : graph->warnings()) std::cerr << w.format() << "\n";
  return graph;
}

// Sizes for null dims: --dim, else the input's default_shape, else 100.
std::map<std::string, std::vector<int64_t>> dims_with_defaults(
    const CompiledGraph& g, std::map<std::string, std::vector<int64_t>> dims) {
  for (const auto& in : g.def().inputs) {
    if (dims.count(in.name)) continue;
    std::vector<int64_t> sizes;
    for (size_t k = 0; k < in.shape.size(); ++k)
      if (in.shape[k] == kDynamic)
        sizes.push_back(in.default_shape.empty() ? 100 : in.default_shape[k]);
    if (!sizes.empty()) dims[in.name] = sizes;
  }
  return dims;
}

// Deterministic synthetic input: floats in [0, 1); token ids in [1, vocab) where vocab is the
// smallest input_dim of the embeddings that read it.
Tensor synthetic_input(const CompiledGraph& g, const InputDef& in, const Dims& shape,
                       uint64_t seed) {
  Tensor t(in.dtype, shape);
  uint64_t state = seed * 0x9e3779b97f4a7c15ULL + std::hash<std::string>{}(in.name);
  auto next = [&]() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  if (in.dtype == DType::f32) {
    float* p = t.mutable_data<float>();
    for (size_t i = 0; i < t.size(); ++i) p[i] = static_cast<float>(next() % 1000000) / 1000000.f;
  } else {
    int64_t vocab = 100;
    for (const auto& n : g.nodes()) {
      if (std::find(n.def->inputs.begin(), n.def->inputs.end(), in.name) == n.def->inputs.end())
        continue;
      auto it = n.def->attrs.find("input_dim");
      if (it != n.def->attrs.end()) {
        try {
          vocab = std::min<int64_t>(vocab == 100 ? INT32_MAX : vocab,
                                    std::stoll(it->second.value.scalar));
        } catch (const std::exception&) {
        }
      }
    }
    int32_t* p = t.mutable_data<int32_t>();
    for (size_t i = 0; i < t.size(); ++i)
      p[i] = vocab > 1 ? 1 + static_cast<int32_t>(next() % (vocab - 1)) : 0;
  }
  return t;
}

namespace {

struct Options {
  std::vector<std::string> graphs;
  std::string graph;
  std::vector<std::string> dims;
  int64_t batch = 0;
  bool json = false;
  std::string output;
  uint64_t seed = 0;
  std::string weights;
  std::vector<std::string> inputs;
  std::string output_dir = "out";
  std::string dump_dir;
  int threads = 0;
  int top = 3;
  bool per_node = false;
  bool no_optimize = false;
  std::string trace;
};

Options opts;

int cmd_validate() {
  int failures = 0;
  for (const auto& path : opts.graphs) {
    try {
      auto def = load_graph_file(path);
      auto graph = compile_graph(def, builtin_ops());
      for (const auto& w : graph.warnings()) std::cerr << w.format() << "\n";
      std::cout << path << ": ok\n";
    } catch (const Error& e) {
      std::cerr << e.what() << "\n";
      ++failures;
    }
  }
  return failures ? 1 : 0;
}

int cmd_summary() {
  auto graph = load(opts.graph);
  SummaryOptions so{opts.batch, parse_dims(opts.dims)};
  Summary s = summarize(*graph, so);
  std::cout << (opts.json ? format_summary_json(s) : format_summary_table(s));
  return 0;
}

int cmd_dot() {
  auto graph = load(opts.graph);
  SummaryOptions so{opts.batch, parse_dims(opts.dims)};
  std::string dot = format_dot(*graph, so);
  if (opts.output.empty()) {
    std::cout << dot;
  } else {
    std::string tmp = opts.output + ".tmp";
    {
      std::ofstream out(tmp);
      out << dot;
      if (!out) throw Error("cannot write the DOT file").in_file(opts.output);
    }
    std::filesystem::rename(tmp, opts.output);
  }
  return 0;
}

int cmd_init() {
  auto graph = load(opts.graph);
  WeightStore store = WeightStore::initialize(*graph, opts.seed);
  store.save_safetensors(opts.output);
  int64_t count = 0;
  for (const auto& [k, t] : store.tensors()) count += static_cast<int64_t>(t.size());
  std::cout << fmt::format("wrote {} tensors ({} parameters) to {} (seed {})\n",
                           store.tensors().size(), group_digits(count), opts.output, opts.seed);
  return 0;
}

bool is_softmax_head(const NodeDef& n) {
  if (n.op == "softmax") return true;
  auto it = n.attrs.find("activation");
  return it != n.attrs.end() && it->second.value.scalar == "softmax";
}

int cmd_run() {
  auto graph = load(opts.graph);
  const auto& def = graph->def();
  WeightStore weights;
  if (opts.weights.empty()) {
    weights = WeightStore::initialize(*graph, opts.seed);
    std::cout << fmt::format(
        "weights: Keras-style initial weights, seed {} (pass --weights W.safetensors for trained "
        "ones)\n",
        opts.seed);
  } else {
    weights = WeightStore::load_safetensors(opts.weights);
    std::cout << "weights: " << opts.weights << "\n";
    for (const auto& w : weights.warnings()) std::cerr << w.format() << "\n";
  }
  // Inputs: files, else synthetic ones of the declared shapes.
  std::map<std::string, std::string> files;
  for (const auto& spec : opts.inputs) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      throw UsageError(fmt::format("--input takes NAME=FILE.npy, got '{}'", spec));
    files[spec.substr(0, eq)] = spec.substr(eq + 1);
  }
  std::vector<std::string> names;
  for (const auto& in : def.inputs) names.push_back(in.name);
  for (const auto& [name, file] : files)
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw UsageError(fmt::format("--input {}: the graph has no input '{}'; {}", name, name,
                                   did_you_mean(name, names)));
  std::map<std::string, Tensor> inputs;
  int64_t batch = opts.batch;
  for (const auto& in : def.inputs) {
    auto it = files.find(in.name);
    if (it == files.end()) continue;
    Tensor t = read_npy(it->second, in.dtype, in.name);
    if (t.shape().empty())
      throw Error(fmt::format("input '{}' needs at least a batch dimension", in.name))
          .in_file(it->second);
    if (batch > 0 && t.shape()[0] != batch)
      throw Error(
          fmt::format("input '{}' has batch {} but --batch is {}", in.name, t.shape()[0], batch))
          .in_file(it->second);
    batch = t.shape()[0];
    inputs[in.name] = t;
  }
  if (batch <= 0) batch = 1;
  auto dims = dims_with_defaults(*graph, parse_dims(opts.dims));
  auto shapes = graph->concrete_input_shapes(batch, dims);
  for (size_t i = 0; i < def.inputs.size(); ++i)
    if (!inputs.count(def.inputs[i].name))
      inputs[def.inputs[i].name] = synthetic_input(*graph, def.inputs[i], shapes[i], 1);
  for (const auto& [name, t] : inputs)
    std::cout << fmt::format("input {}: {} {}{}\n", name, format_shape(t.shape()),
                             dtype_name(t.dtype()),
                             files.count(name) ? " from " + files[name] : " (synthetic)");

  Model model(graph, std::move(weights), ModelOptions{opts.threads, !opts.no_optimize});
  std::map<std::string, Tensor> intermediates;
  RunOptions ro;
  if (!opts.dump_dir.empty()) ro.intermediates = &intermediates;
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  auto outputs = model.run(inputs, ro);
  auto t1 = clock::now();
  std::vector<double> warm;
  for (int i = 0; i < 5; ++i) {
    auto a = clock::now();
    model.run(inputs);
    warm.push_back(std::chrono::duration<double, std::milli>(clock::now() - a).count());
  }
  std::sort(warm.begin(), warm.end());
  std::filesystem::create_directories(opts.output_dir);
  for (size_t k = 0; k < def.outputs.size(); ++k) {
    const std::string& name = def.outputs[k];
    const Tensor& t = outputs.at(name);
    std::string path = (std::filesystem::path(opts.output_dir) / (name + ".npy")).string();
    write_npy(path, t);
    std::cout << fmt::format("output {}: {} -> {}\n", name, format_shape(t.shape()), path);
    int producer = graph->tensors()[graph->output_tensors()[k]].producer;
    if (producer >= 0 && is_softmax_head(*graph->nodes()[producer].def) && t.shape().size() == 2) {
      int64_t classes = t.shape()[1];
      for (int64_t b = 0; b < t.shape()[0]; ++b) {
        const float* row = t.data<float>() + b * classes;
        std::vector<int64_t> idx(classes);
        std::iota(idx.begin(), idx.end(), 0);
        int top = static_cast<int>(std::min<int64_t>(opts.top, classes));
        std::partial_sort(idx.begin(), idx.begin() + top, idx.end(),
                          [&](int64_t a, int64_t c) { return row[a] > row[c]; });
        std::string line = fmt::format("  sample {}: ", b);
        for (int i = 0; i < top; ++i)
          line += fmt::format("{}class {} p={:.4f}", i ? ", " : "", idx[i], row[idx[i]]);
        std::cout << line << "\n";
      }
    }
  }
  if (!opts.dump_dir.empty()) {
    std::filesystem::create_directories(opts.dump_dir);
    for (const auto& [name, t] : intermediates)
      write_npy((std::filesystem::path(opts.dump_dir) / (name + ".npy")).string(), t);
    std::cout << fmt::format("wrote {} intermediate tensors to {}\n", intermediates.size(),
                             opts.dump_dir);
  }
  if (opts.per_node || !opts.trace.empty()) {
    auto runs = profile_runs(model, inputs, static_cast<int>(warm.size()));
    ProfileSummary prof = summarize_profile(runs);
    if (opts.per_node) std::cout << format_profile_table(prof);
    if (!opts.trace.empty()) {
      write_chrome_trace(opts.trace, {{fmt::format("batch {}", batch), runs[prof.median_run]}});
      std::cout << "trace: " << opts.trace << "\n";
    }
  }
  auto plan = model.plan_for(shapes);
  std::cout << fmt::format(
      "time: first run {:.2f} ms (includes building the plan), then median {:.2f} ms over {} "
      "runs\n",
      std::chrono::duration<double, std::milli>(t1 - t0).count(), warm[warm.size() / 2],
      warm.size());
  std::cout << fmt::format(
      "activation arena: {:.2f} MB planned ({:.2f} MB without reuse), threads {}\n",
      plan->arena_bytes() / 1e6, plan->unplanned_bytes() / 1e6, model.threads());
  return 0;
}

}  // namespace

void add_commands(CLI::App& app) {
  auto* validate = app.add_subcommand("validate", "Check graph files; print `ok` or the errors")
                       ->footer(
                           "Example:\n  graph-runner validate graphs/*.yaml\nExit status: 0 all "
                           "ok, 1 errors, 2 bad usage.");
  validate->add_option("graphs", opts.graphs, "Graph YAML files")
      ->required()
      ->check(CLI::ExistingFile);

  auto add_dims = [](CLI::App* c) {
    c->add_option("--dim", opts.dims,
                  "Size of an input's null dim: NAME=SIZE (NAME=A,B for several)");
    c->add_option("--batch", opts.batch, "Batch size to show (default: None)")
        ->check(CLI::PositiveNumber);
  };
  auto* summary =
      app.add_subcommand("summary",
                         "Keras-style table: node, op, output shape, params, FLOPs, inputs")
          ->footer(
              "Example:\n  graph-runner summary graphs/multimodal_fusion.yaml --dim text=100 --dim "
              "audio=16000\n"
              "FLOPs are 2 x multiply-accumulates of conv, dense and recurrent matmuls, per "
              "sample.");
  summary->add_option("graph", opts.graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  add_dims(summary);
  summary->add_flag("--json", opts.json, "Print JSON instead of a table");

  auto* dot =
      app.add_subcommand("dot",
                         "Graphviz DOT of the graph, shapes on the edges, one cluster per modality")
          ->footer(
              "Example:\n  graph-runner dot graphs/multimodal_fusion.yaml | dot -Tsvg > graph.svg");
  dot->add_option("graph", opts.graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  dot->add_option("-o,--output", opts.output, "Write to this file instead of stdout");
  add_dims(dot);

  auto* init =
      app.add_subcommand("init", "Write deterministic Keras-style initial weights (safetensors)")
          ->footer(
              "Example:\n  graph-runner init graphs/multimodal_fusion.yaml -o weights.safetensors "
              "--seed 1");
  init->add_option("graph", opts.graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  init->add_option("-o,--output", opts.output, "Output .safetensors file")->required();
  init->add_option("--seed", opts.seed, "Random seed (default 0)");

  auto* run = app.add_subcommand(
                     "run", "Run the graph on oneDNN and write every output as DIR/<output>.npy")
                  ->footer(
                      "Examples:\n  graph-runner run graphs/multimodal_fusion.yaml\n"
                      "  graph-runner run g.yaml --weights w.safetensors --input image=img.npy "
                      "--input text=t.npy --input audio=a.npy\n"
                      "Without --weights the weights of `init --seed 0` are used; without --input, "
                      "deterministic synthetic\n"
                      "inputs of the declared shapes (floats in [0, 1), token ids in [1, "
                      "input_dim)). Null dims come from\n"
                      "--dim, else the input's `default_shape` in the YAML, else 100. The batch is "
                      "--batch (default 1)\n"
                      "or the inputs' first dimension.");
  run->add_option("graph", opts.graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  run->add_option("--weights", opts.weights, "Weights (.safetensors)")->check(CLI::ExistingFile);
  run->add_option("--input", opts.inputs, "NAME=FILE.npy for a graph input");
  run->add_option("--output-dir", opts.output_dir, "Where to write <output>.npy (default: out)");
  run->add_option("--threads", opts.threads, "Threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--seed", opts.seed,
                  "Seed of the initial weights when --weights is not given (default 0)");
  run->add_option("--dump-intermediates", opts.dump_dir,
                  "Write every node's output as DIR/<node>.npy");
  run->add_option("--top", opts.top, "Classes to print per sample for a softmax head (default 3)")
      ->check(CLI::PositiveNumber);
  run->add_flag("--per-node", opts.per_node,
                "Profile 5 more runs: time per node and per branch, with share, GFLOP/s and "
                "oneDNN impl");
  run->add_option("--trace", opts.trace,
                  "Write a Chrome trace-event JSON (chrome://tracing, Perfetto) of a profiled run");
  run->add_flag(
      "--no-optimize", opts.no_optimize,
      "Run the unfused plan: one kernel per node, direct algorithms, plain layouts between "
      "ops, no folding (every node's output then exists for --dump-intermediates)");
  add_dims(run);

  add_bench_command(app);
}

int run_selected(CLI::App& app) {
  const std::string name = app.get_subcommands().front()->get_name();
  if (name == "validate") return cmd_validate();
  if (name == "summary") return cmd_summary();
  if (name == "dot") return cmd_dot();
  if (name == "init") return cmd_init();
  if (name == "run") return cmd_run();
  if (name == "bench") return cmd_bench();
  throw UsageError("unknown command " + name);
}

}  // namespace fg::cli
