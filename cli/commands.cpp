// graph-runner validate, summary, dot and init, and what the commands share.
#include "cli/commands.hpp"

#include <fmt/format.h>

#include <iostream>
#include <memory>

namespace fg::cli {

namespace {

void print_warnings(const std::vector<Diagnostic>& warnings) {
  for (const auto& w : warnings) std::cerr << w.format() << "\n";
}

std::shared_ptr<const CompiledGraph> compile_printing_warnings(const std::string& path) {
  auto graph = compile_file(path);
  print_warnings(graph->warnings());
  return graph;
}

// --- validate ---

struct ValidateOptions {
  std::vector<std::string> graphs;
  std::string weights;
};

// --weights: the file against the graph's weight specs (every problem in one error); NaN and
// Inf values are warnings (count and first tensor), printed like the graph's.
std::string check_weights_file(const CompiledGraph& graph, const std::string& path) {
  const WeightStore weights = WeightStore::load_safetensors(path);
  weights.validate(graph);
  print_warnings(weights.warnings());
  return fmt::format(" (weights {}: {} tensors{})", path, weights.tensors().size(),
                     weights.warnings().empty() ? "" : ", with warnings");
}

int cmd_validate(const ValidateOptions& o) {
  int failures = 0;
  for (const auto& path : o.graphs) {
    try {
      const auto graph = compile_printing_warnings(path);
      const std::string weights = o.weights.empty() ? "" : check_weights_file(*graph, o.weights);
      std::cout << path << ": ok" << weights << "\n";
    } catch (const Error& e) {
      std::cerr << e.what() << "\n";
      ++failures;
    }
  }
  return failures ? 1 : 0;
}

Command add_validate_command(CLI::App& app) {
  auto o = std::make_shared<ValidateOptions>();
  auto* c = app.add_subcommand("validate", "Check graph files; print `ok` or the errors")
                ->footer(
                    "Example:\n  graph-runner validate graphs/*.yaml\n  graph-runner validate "
                    "g.yaml --weights "
                    "w.safetensors\nExit status: 0 all "
                    "ok, 1 errors, 2 bad usage.");
  c->add_option("graphs", o->graphs, "Graph YAML files")->required()->check(CLI::ExistingFile);
  c->add_option("--weights", o->weights,
                "Also check this weights file (.safetensors) against each graph: missing, "
                "unexpected or misshapen tensors are errors, NaN or Inf values warnings")
      ->check(CLI::ExistingFile);
  return {c, [o] { return cmd_validate(*o); }};
}

// --- summary and dot: the graph at given sizes ---

struct DescribeOptions {
  std::string graph;
  std::vector<std::string> dims;
  int64_t batch = 0;
  bool json = false;   // summary
  std::string output;  // dot
};

SummaryOptions summary_options(const DescribeOptions& o) {
  return SummaryOptions{o.batch, parse_dims(o.dims)};
}

int cmd_summary(const DescribeOptions& o) {
  const SummaryOptions so = summary_options(o);
  const Summary s = summarize(*compile_printing_warnings(o.graph), so);
  std::cout << (o.json ? format_summary_json(s) : format_summary_table(s));
  return 0;
}

int cmd_dot(const DescribeOptions& o) {
  const SummaryOptions so = summary_options(o);
  if (!o.output.empty()) check_file_destination(o.output, "-o/--output");
  const std::string dot = format_dot(*compile_printing_warnings(o.graph), so);
  if (o.output.empty())
    std::cout << dot;
  else
    write_file_atomic(o.output, {dot});
  return 0;
}

CLI::App* add_describe_command(CLI::App& app, const char* name, const char* what,
                               const char* footer, DescribeOptions& o) {
  auto* c = app.add_subcommand(name, what)->footer(footer);
  c->add_option("graph", o.graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  c->add_option("--dim", o.dims, "Size of an input's null dim: NAME=SIZE (NAME=A,B for several)");
  c->add_option("--batch", o.batch, "Batch size to show (default: None)")
      ->check(integer_in(1, INT64_MAX));
  return c;
}

Command add_summary_command(CLI::App& app) {
  auto o = std::make_shared<DescribeOptions>();
  auto* c = add_describe_command(
      app, "summary", "Keras-style table: node, op, output shape, params, FLOPs, inputs",
      "Example:\n  graph-runner summary graphs/multimodal_fusion.yaml --dim text=100 --dim "
      "audio=16000\n"
      "FLOPs are 2 x multiply-accumulates of conv, dense and recurrent matmuls, per sample.",
      *o);
  c->add_flag("--json", o->json, "Print JSON instead of a table");
  return {c, [o] { return cmd_summary(*o); }};
}

Command add_dot_command(CLI::App& app) {
  auto o = std::make_shared<DescribeOptions>();
  auto* c = add_describe_command(
      app, "dot", "Graphviz DOT of the graph, shapes on the edges, one cluster per modality",
      "Example:\n  graph-runner dot graphs/multimodal_fusion.yaml | dot -Tsvg > graph.svg\n"
      "-o writes the file atomically (a temporary beside it, then rename).",
      *o);
  c->add_option("-o,--output", o->output, "Write to this file instead of stdout");
  return {c, [o] { return cmd_dot(*o); }};
}

// --- init ---

struct InitOptions {
  std::string graph;
  std::string output;
  uint64_t seed = 0;
};

int cmd_init(const InitOptions& o) {
  check_file_destination(o.output, "-o/--output");
  const Session session = load_session(o.graph, "", o.seed, 0, true);
  session.weights().save_safetensors(o.output);
  int64_t count = 0;
  for (const auto& [name, t] : session.weights().tensors()) count += static_cast<int64_t>(t.size());
  std::cout << fmt::format("wrote {} tensors ({} parameters) to {} (seed {})\n",
                           session.weights().tensors().size(), group_digits(count), o.output,
                           o.seed);
  return 0;
}

Command add_init_command(CLI::App& app) {
  auto o = std::make_shared<InitOptions>();
  auto* c =
      app.add_subcommand("init", "Write deterministic Keras-style initial weights (safetensors)")
          ->footer(
              "Example:\n  graph-runner init graphs/multimodal_fusion.yaml -o weights.safetensors "
              "--seed 1");
  c->add_option("graph", o->graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  c->add_option("-o,--output", o->output, "Output .safetensors file")->required();
  add_seed_option(c, o->seed, "Random seed (default 0)");
  return {c, [o] { return cmd_init(*o); }};
}

}  // namespace

Session load_session(const std::string& graph, const std::string& weights, uint64_t seed,
                     int threads, bool optimize, uint64_t max_memory,
                     std::optional<Precision> precision) {
  CompileOptions options;
  options.threads = threads;
  options.optimize = optimize;
  options.precision = precision;
  options.max_memory = max_memory;
  if (weights.empty())
    options.init_seed = seed;
  else
    options.weights_file = weights;
  Session session = load(graph, options);
  print_warnings(session.warnings());
  print_warnings(session.weights().warnings());  // NaN or Inf in a weights file
  if (const std::string w = session.precision_warning(); !w.empty())
    std::cerr << "warning: " << w << "\n";
  return session;
}

void add_precision_option(CLI::App* command, std::string& precision) {
  command->add_option(
      "--precision", precision,
      fmt::format("Arithmetic precision: {} (default: int8 for weights from `graph-runner "
                  "quantize`, else f32). bf16 runs dense and convolution layers with bfloat16 "
                  "inputs and weights (f32 accumulation and outputs) where the CPU has native bf16 "
                  "(AVX-512 BF16); int8 runs them with int8 inputs and weights where it has VNNI "
                  "(calibrated scales from a quantized file, else dense layers quantized per "
                  "batch); else f32 with a warning",
                  fmt::join(precision_names(), " or ")));
}

std::optional<Precision> parse_precision_option(const std::string& name, const std::string& flag) {
  if (name.empty()) return std::nullopt;
  try {
    return parse_precision(name);
  } catch (const Error&) {
    throw UsageError(fmt::format("{}: unknown precision '{}'; expected one of: {}", flag, name,
                                 fmt::join(precision_names(), ", ")));
  }
}

void add_threads_option(CLI::App* command, int& threads) {
  command
      ->add_option("--threads", threads,
                   fmt::format("Threads: 1..{}, or 0 for all cores (default 0)", kMaxThreads))
      ->check(integer_in(0, kMaxThreads));
}

void add_max_memory_option(CLI::App* command, std::string& max_memory) {
  command->add_option(
      "--max-memory", max_memory,
      "Memory budget of a plan: bytes, or with a K, M, G or T suffix (powers of 1024), e.g. 8G; "
      "inputs whose plan would need more are refused before anything is allocated (default 0: "
      "the machine's physical memory)");
}

void add_seed_option(CLI::App* command, uint64_t& seed, const std::string& description) {
  command->add_option("--seed", seed, description)->check(unsigned_64());
}

std::vector<Command> add_commands(CLI::App& app) {
  return {add_validate_command(app), add_summary_command(app),  add_dot_command(app),
          add_init_command(app),     add_run_command(app),      add_bench_command(app),
          add_train_command(app),    add_evaluate_command(app), add_bench_data_command(app),
          add_import_command(app),   add_verify_command(app),   add_quantize_command(app)};
}

int run_selected(const std::vector<Command>& commands) {
  for (const Command& c : commands)
    if (c.app->parsed()) return c.run();
  throw UsageError("no command given");
}

}  // namespace fg::cli
