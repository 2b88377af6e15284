// graph-runner quantize GRAPH --weights W (--calibration-data DATA | --dynamic) -o Q.safetensors:
// int8 post-training quantization (docs/quantization.md).
#include <fmt/format.h>

#include <fusiongraph/quantization.hpp>
#include <fusiongraph/training.hpp>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.hpp"

namespace fg::cli {
namespace {

struct QuantizeCommandOptions {
  std::string graph, weights, data, output, method = "percentile", keep_float;
  double percentile = 99.99;
  int64_t samples = 256, synthetic = 0;
  bool dynamic = false, report = false;
  int threads = 0;
};

std::set<std::string> split_names(const std::string& list) {
  std::set<std::string> out;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ','))
    if (!name.empty()) out.insert(name);
  return out;
}

void print_nodes(const quantization::QuantizeResult& r, bool dynamic, bool report) {
  size_t width = 4;
  for (const auto& n : r.nodes) width = std::max(width, n.node.size());
  std::cout << fmt::format("{:<{}}  {:<7}  {:<7}", "node", width, "op", "input");
  if (!dynamic)
    std::cout << fmt::format("  {:>11}  {:>11}  {:>11}", "max |x|", "threshold", "scale");
  if (report) std::cout << fmt::format("  {:>12}", "output error");
  std::cout << "\n";
  for (const auto& n : r.nodes) {
    std::cout << fmt::format("{:<{}}  {:<7}  {:<7}", n.node, width, n.op, int8_input_name(n.input));
    if (!dynamic)
      std::cout << fmt::format("  {:>11.4g}  {:>11.4g}  {:>11.4g}", n.max_abs, n.threshold,
                               n.input_scale);
    if (report) std::cout << fmt::format("  {:>12.3e}", n.error);
    std::cout << "\n";
  }
  for (const auto& k : r.kept_float) std::cout << "kept in float: " << k << "\n";
}

int cmd_quantize(const QuantizeCommandOptions& o) {
  const int sources = (o.dynamic ? 1 : 0) + (o.data.empty() ? 0 : 1) + (o.synthetic > 0 ? 1 : 0);
  if (sources != 1)
    throw UsageError(
        "give one of --calibration-data DATA (static int8: input scales calibrated on data), "
        "--synthetic-calibration N (on N synthetic inputs) or --dynamic (dense layers "
        "quantized per batch, no data)");
  if (o.report && o.dynamic)
    throw UsageError(
        "--report measures errors on the calibration data: it needs "
        "--calibration-data");
  quantization::QuantizeOptions options;
  options.method = quantization::parse_calibration_method(o.method);
  options.percentile = o.percentile;
  options.dynamic = o.dynamic;
  options.keep_float = split_names(o.keep_float);
  options.threads = o.threads;
  const std::shared_ptr<const GraphDef> graph = read_graph(o.graph);
  WeightStore weights = WeightStore::load_safetensors(o.weights);
  for (const Diagnostic& w : weights.warnings()) std::cerr << w.format() << "\n";
  const CompiledGraph compiled = compile_graph(graph, builtin_ops());
  weights.validate(compiled);

  std::optional<Trainer> data_reader;
  if (!o.data.empty()) {
    TrainerOptions t;
    t.threads = o.threads;
    t.weights_file = o.weights;  // its preprocessing state (vocabularies, class lists)
    data_reader.emplace(graph, t);
  }
  const quantization::InputBatches batches = [&](const auto& visit) {
    if (data_reader) {
      data_reader->for_each_input_batch(o.data, o.samples, visit);
      return;
    }
    // Synthetic inputs (Session::synthetic_inputs), batches of 8 with one seed each.
    for (int64_t done = 0, seed = 1; done < o.synthetic; ++seed) {
      const int64_t batch = std::min<int64_t>(8, o.synthetic - done);
      visit(synthetic_inputs_for(compiled, input_shapes_for(compiled, batch),
                                 static_cast<uint64_t>(seed)));
      done += batch;
    }
  };
  if (!o.data.empty())
    std::cerr << fmt::format("calibrating on up to {} samples of {} ({})...\n", o.samples, o.data,
                             o.method);
  else if (o.synthetic > 0)
    std::cerr << fmt::format("calibrating on {} synthetic samples ({})...\n", o.synthetic,
                             o.method);
  quantization::QuantizeResult result = quantization::quantize(graph, weights, batches, options);
  double all_error = -1;
  if (o.report) {
    std::cerr << "measuring each node's output error (one run over the samples per node)...\n";
    all_error = quantization::measure_sensitivity(graph, weights, result, batches, o.threads);
  }
  print_nodes(result, o.dynamic, o.report);
  if (o.report)
    std::cout << fmt::format(
        "output error with every node above in int8: {:.3e} (relative L2 "
        "over the calibration samples)\n",
        all_error);
  result.weights.save_safetensors(o.output);
  std::cout << fmt::format(
      "wrote {}: {} int8 node{} ({}){}\n", o.output, result.nodes.size(),
      result.nodes.size() == 1 ? "" : "s",
      o.dynamic ? "dynamic inputs" : fmt::format("{} calibration samples", result.samples),
      result.nodes.empty() ? "; the graph has no dense or convolution node to quantize" : "");
  if (const std::string w = precision_warning(Precision::int8); !w.empty())
    std::cerr << "warning: " << w << "\n";
  return 0;
}

}  // namespace

Command add_quantize_command(CLI::App& app) {
  auto o = std::make_shared<QuantizeCommandOptions>();
  auto* c =
      app.add_subcommand("quantize",
                         "int8 post-training quantization: s8 weights and calibrated input scales")
          ->footer(
              "Examples:\n  graph-runner quantize model.yaml --weights model.safetensors "
              "--calibration-data data/val -o model.int8.safetensors\n"
              "  graph-runner quantize model.yaml --weights model.safetensors --dynamic -o "
              "model.dyn.safetensors\n"
              "Then: graph-runner run model.yaml --weights model.int8.safetensors (runs int8; "
              "--per-node shows each node's precision).\n"
              "DATA: a data folder or table, as for evaluate (docs/data.md). See "
              "docs/quantization.md.");
  c->add_option("graph", o->graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  c->add_option("--weights", o->weights, "float32 weights (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--calibration-data", o->data, "Calibration data: a data folder or table")
      ->check(CLI::ExistingPath);
  c->add_option("-o,--output", o->output, "The quantized weights file to write")->required();
  c->add_option("--method", o->method,
                "Calibration: percentile (default, with --percentile), entropy or minmax")
      ->check(CLI::IsMember({"minmax", "percentile", "entropy"}));
  c->add_option("--percentile", o->percentile,
                "For --method percentile: the percentile of |x| kept (default 99.99)")
      ->check(CLI::Range(0.0, 100.0));
  c->add_option("--samples", o->samples,
                "Calibration samples: the first N of the data (default 256; 0 = all)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--synthetic-calibration", o->synthetic,
                "Calibrate on N synthetic inputs (floats in [0, 1), valid token ids) instead of "
                "data: for graphs without data, such as the reference graph with initial weights")
      ->check(CLI::PositiveNumber);
  c->add_flag("--dynamic", o->dynamic,
              "No calibration data: dense layers get s8 weights and quantize their input per "
              "batch");
  c->add_option("--keep-float", o->keep_float, "Nodes to leave in float: NODE,NODE,...");
  c->add_flag("--report", o->report,
              "Print each node's sensitivity: the output error with only that node in int8");
  add_threads_option(c, o->threads);
  return {c, [o] { return cmd_quantize(*o); }};
}

}  // namespace fg::cli
