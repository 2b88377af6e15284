// graph-runner run: one graph on given or synthetic inputs; outputs written as a set.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>

#include "cli/commands.hpp"
#include "cli/json_text.hpp"
#include "cli/predictions.hpp"
#include "cli/profile_report.hpp"
#include "cli/run_table.hpp"

namespace fg::cli {

namespace {

// The file that marks a directory graph-runner wrote (and may therefore replace); written last.
constexpr const char* kManifest = "manifest.json";

struct RunCommandOptions {
  std::string graph;
  std::string weights;
  std::vector<std::string> inputs;
  std::vector<std::string> dims;
  int64_t batch = 0;
  uint64_t seed = 0;
  std::string output_dir = "out";
  std::string output;  // predictions CSV
  std::string data;    // a table to predict (run_table.cpp)
  int workers = 0;
  std::string dump_dir;
  std::string trace;
  std::string max_memory = "0";
  std::string precision;
  int threads = 0;
  int top = 3;
  bool per_node = false;
  bool no_optimize = false;
  bool check_numerics = false;
};

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Every destination is checked before any work is done.
void check_destinations(const RunCommandOptions& o) {
  if (o.data.empty()) check_directory_destination(o.output_dir, kManifest, "--output-dir");
  if (!o.dump_dir.empty())
    check_directory_destination(o.dump_dir, kManifest, "--dump-intermediates");
  if (!o.trace.empty()) check_file_destination(o.trace, "--trace");
  if (!o.output.empty()) check_file_destination(o.output, "--output");
}

void check_input_names(const Session& session, const std::map<std::string, std::string>& files) {
  const auto names = session.input_names();
  for (const auto& [name, file] : files)
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw UsageError(fmt::format("--input {}={}: the graph has no input '{}'; {}", name, file,
                                   name, did_you_mean(name, names)));
}

// A value that names an existing .npy file is a tensor, whatever the input's preprocessing.
bool is_npy_file(const std::string& value) {
  if (value.size() < 4) return false;
  std::string ext = value.substr(value.size() - 4);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  std::error_code ec;
  return ext == ".npy" && std::filesystem::is_regular_file(value, ec);
}

struct RunInputs {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> files;  // the inputs read from .npy files
  std::map<std::string, std::string> raw;    // the inputs preprocessed from a path or text
  int64_t batch = 1;
};

// Values of inputs that declare preprocessing (and are no .npy file): one sample.
void preprocess_raw_values(const RawInputs& raw, const RunCommandOptions& o,
                           const std::map<std::string, std::string>& values, RunInputs& in) {
  std::map<std::string, std::vector<std::string>> batch;
  for (const auto& [name, value] : values)
    if (raw.takes_raw(name) && !is_npy_file(value)) {
      batch[name] = {value};
      in.raw[name] = value;
    } else {
      in.files[name] = value;
    }
  if (batch.empty()) return;
  if (o.batch > 1)
    throw UsageError(
        fmt::format("--batch {}: the raw values of --input ({}) make one sample; "
                    "use --data TABLE for several",
                    o.batch, batch.begin()->first));
  RawBatchOptions options;
  options.threads = std::max(1, o.workers);
  in.tensors = raw.batch(batch, options);
}

// Inputs from .npy files or raw values (all of one batch, which --batch must match), the rest
// synthetic.
RunInputs read_inputs(const Session& session, const RawInputs& raw, const RunCommandOptions& o,
                      const std::map<std::string, std::string>& values,
                      const std::map<std::string, std::vector<int64_t>>& dims) {
  RunInputs in;
  check_input_names(session, values);
  preprocess_raw_values(raw, o, values, in);
  int64_t batch = in.raw.empty() ? o.batch : 1;
  for (const auto& [name, path] : in.files) {
    Tensor t = read_npy(path, session.input_type(name).dtype, name);
    if (t.shape().empty())
      throw Error(fmt::format("input '{}' needs at least a batch dimension", name)).in_file(path);
    if (batch > 0 && t.shape()[0] != batch)
      throw Error(fmt::format("input '{}' has batch {} but {} {}", name, t.shape()[0],
                              !in.raw.empty() ? "the raw values of --input make"
                              : o.batch > 0   ? "--batch is"
                                              : "another input has batch",
                              batch))
          .in_file(path);
    batch = t.shape()[0];
    in.tensors[name] = std::move(t);
  }
  in.batch = batch > 0 ? batch : 1;
  std::map<std::string, Dims> shapes = session.input_shapes(in.batch, dims), missing;
  for (const auto& [name, t] : in.tensors) shapes[name] = t.shape();
  for (const auto& [name, shape] : shapes)
    if (!in.tensors.count(name)) missing[name] = shape;
  // The plan's memory budget before the synthetic inputs are made (they may be the largest part).
  session.check_memory_budget(shapes);
  for (auto& [name, t] : session.synthetic_inputs(missing, 1)) in.tensors[name] = std::move(t);
  return in;
}

struct Timed {
  std::map<std::string, Tensor> outputs;
  std::map<std::string, Tensor> intermediates;
  double first_ms = 0;          // includes building the plan
  std::vector<double> warm_ms;  // sorted
};

Timed run_timed(const Session& session, const std::map<std::string, Tensor>& inputs,
                const RunCommandOptions& o) {
  Timed t;
  RunOptions ro;
  if (!o.dump_dir.empty()) ro.intermediates = &t.intermediates;
  ro.check_numerics = o.check_numerics;
  const auto start = Clock::now();
  t.outputs = session.run(inputs, ro);
  t.first_ms = ms_between(start, Clock::now());
  for (int i = 0; i < 5; ++i) {
    const auto a = Clock::now();
    session.run(inputs);
    t.warm_ms.push_back(ms_between(a, Clock::now()));
  }
  std::sort(t.warm_ms.begin(), t.warm_ms.end());
  return t;
}

void add_classes(const RawInputs& raw, const std::string& output, const Tensor& t,
                 nlohmann::ordered_json& entry) {
  entry["classes"] = raw.class_names(output);
  nlohmann::ordered_json predicted = nlohmann::ordered_json::array();
  for (int64_t b = 0; b < t.shape()[0]; ++b)
    predicted.push_back(raw.top_classes(output, t, b, 1)[0].name);
  entry["predicted"] = predicted;
}

// Writes `tensors` as DIR/<name>.npy plus the manifest, replacing DIR as a whole.
// `classes` (run): per output with class names, they and each sample's predicted class are
// added to its manifest entry.
void write_tensor_set(const std::string& dir, const std::string& graph, const char* what,
                      const std::map<std::string, Tensor>& tensors,
                      const RawInputs* classes = nullptr) {
  replace_directory(dir, kManifest, [&](const std::string& tmp) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& [name, t] : tensors) {
      write_npy((std::filesystem::path(tmp) / (name + ".npy")).string(), t);
      list.push_back({{"name", name},
                      {"file", name + ".npy"},
                      {"dtype", dtype_name(t.dtype())},
                      {"shape", t.shape()}});
      if (classes && !classes->class_names(name).empty())
        add_classes(*classes, name, t, list.back());
    }
    const nlohmann::ordered_json manifest = {{"graph", graph}, {what, list}};
    write_file_atomic((std::filesystem::path(tmp) / kManifest).string(), {json_text(manifest)});
  });
}

std::string top_classes(const Tensor& t, int64_t sample, int top_wanted) {
  const int64_t classes = t.shape()[1];
  const float* row = t.data<float>() + sample * classes;
  std::vector<int64_t> idx(classes);
  std::iota(idx.begin(), idx.end(), 0);
  const int top = static_cast<int>(std::min<int64_t>(top_wanted, classes));
  std::partial_sort(idx.begin(), idx.begin() + top, idx.end(),
                    [&](int64_t a, int64_t c) { return row[a] > row[c]; });
  std::string line = fmt::format("  sample {}: ", sample);
  for (int i = 0; i < top; ++i)
    line += fmt::format("{}class {} p={:.4f}", i ? ", " : "", idx[i], row[idx[i]]);
  return line;
}

void print_outputs(const Session& session, const RawInputs& raw, const Timed& t,
                   const RunCommandOptions& o) {
  for (const auto& name : session.output_names()) {
    const Tensor& out = t.outputs.at(name);
    std::cout << fmt::format("output {}: {} -> {}\n", name, format_shape(out.shape()),
                             (std::filesystem::path(o.output_dir) / (name + ".npy")).string());
    if (!raw.class_names(name).empty())
      for (int64_t b = 0; b < out.shape()[0]; ++b)
        std::cout << format_top_classes(raw, name, out, b, o.top) << "\n";
    else if (session.output_is_probabilities(name) && out.shape().size() == 2)
      for (int64_t b = 0; b < out.shape()[0]; ++b) std::cout << top_classes(out, b, o.top) << "\n";
  }
}

void profile(const Session& session, const RunInputs& in, const RunCommandOptions& o) {
  auto runs = profile_runs(session, in.tensors, 5);
  const ProfileSummary prof = summarize_profile(runs);
  if (o.per_node) std::cout << format_profile_table(prof);
  if (!o.trace.empty()) {
    write_chrome_trace(o.trace, {{fmt::format("batch {}", in.batch), runs[prof.median_run]}});
    std::cout << "trace: " << o.trace << "\n";
  }
}

std::map<std::string, Dims> shapes_of(const std::map<std::string, Tensor>& tensors) {
  std::map<std::string, Dims> out;
  for (const auto& [name, t] : tensors) out[name] = t.shape();
  return out;
}

std::string input_origin(const RunInputs& in, const std::string& name) {
  if (in.files.count(name)) return " from " + in.files.at(name);
  if (in.raw.count(name)) return fmt::format(" preprocessed from '{}'", in.raw.at(name));
  return " (synthetic)";
}

// --data predicts a table: the flags of single runs do not apply.
void check_table_flags(const RunCommandOptions& o) {
  if (o.data.empty()) return;
  if (o.output.empty())
    throw UsageError("--data TABLE needs --output FILE.csv for the predictions");
  const std::pair<bool, const char*> single[] = {
      {!o.inputs.empty(), "--input"}, {!o.dump_dir.empty(), "--dump-intermediates"},
      {o.per_node, "--per-node"},     {!o.trace.empty(), "--trace"},
      {!o.dims.empty(), "--dim"},     {o.check_numerics, "--check-numerics"}};
  for (const auto& [given, flag] : single)
    if (given)
      throw UsageError(
          fmt::format("{} does not go with --data (a table is predicted in "
                      "batches)",
                      flag));
}

int cmd_run(const RunCommandOptions& o) {
  check_table_flags(o);
  const auto files = parse_inputs(o.inputs);
  const auto dims = parse_dims(o.dims);
  const uint64_t max_memory = parse_memory_size("--max-memory", o.max_memory);
  const std::optional<Precision> precision = parse_precision_option(o.precision);
  check_destinations(o);
  const Session session =
      load_session(o.graph, o.weights, o.seed, o.threads, !o.no_optimize, max_memory, precision);
  if (o.weights.empty())
    std::cout << fmt::format(
        "weights: Keras-style initial weights, seed {} (pass --weights W.safetensors for trained "
        "ones)\n",
        o.seed);
  else
    std::cout << "weights: " << o.weights << "\n";
  const RawInputs raw(session, o.weights);
  if (!o.data.empty()) return run_table(session, raw, {o.data, o.output, o.batch, o.workers});
  const RunInputs in = read_inputs(session, raw, o, files, dims);
  for (const auto& [name, t] : in.tensors)
    std::cout << fmt::format("input {}: {} {}{}\n", name, format_shape(t.shape()),
                             dtype_name(t.dtype()), input_origin(in, name));
  const Timed t = run_timed(session, in.tensors, o);
  write_tensor_set(o.output_dir, o.graph, "outputs", t.outputs, &raw);
  print_outputs(session, raw, t, o);
  if (!o.output.empty()) {
    PredictionTable predictions(session, raw);
    predictions.add(t.outputs);
    predictions.write(o.output);
    std::cout << fmt::format("wrote {} prediction{} to {}\n", predictions.rows(),
                             predictions.rows() == 1 ? "" : "s", o.output);
  }
  if (!o.dump_dir.empty()) {
    write_tensor_set(o.dump_dir, o.graph, "intermediates", t.intermediates);
    std::cout << fmt::format("wrote {} intermediate tensors to {}\n", t.intermediates.size(),
                             o.dump_dir);
  }
  if (o.per_node || !o.trace.empty()) profile(session, in, o);
  const PlanFigures plan = session.plan_figures(shapes_of(in.tensors));
  std::cout << fmt::format(
      "time: first run {:.2f} ms (includes building the plan), then median {:.2f} ms over {} "
      "runs\n",
      t.first_ms, t.warm_ms[t.warm_ms.size() / 2], t.warm_ms.size());
  std::cout << fmt::format(
      "activation arena: {:.2f} MB planned ({:.2f} MB without reuse), threads {}\n",
      plan.arena_bytes / 1e6, plan.unplanned_arena_bytes / 1e6, session.threads());
  return 0;
}

constexpr const char* kRunFooter =
    "Examples:\n  graph-runner run graphs/multimodal_fusion.yaml\n"
    "  graph-runner run g.yaml --weights w.safetensors --input image=img.npy "
    "--input text=t.npy --input audio=a.npy\n"
    "Without --weights the weights of `init --seed 0` are used; without --input, deterministic "
    "synthetic\n"
    "inputs of the declared shapes (floats in [0, 1), token ids in [1, n) for the smallest "
    "input_dim n\n"
    "among the embeddings reading them). Null dims come from --dim, else the input's "
    "`default_shape`\n"
    "in the YAML, else 100. The batch is --batch (default 1) or the inputs' first dimension.\n"
    "--output-dir (and --dump-intermediates) are written as a set: a new directory with the "
    ".npy files\n"
    "and manifest.json replaces the old one in one rename, so readers see all old or all new "
    "files.\n"
    "An existing directory is only replaced if it is empty or holds a manifest.json.\n"
    "Raw values, for inputs that declare `preprocessing:` (a .npy file is still read as a "
    "tensor):\n"
    "  graph-runner run g.yaml --weights trained.safetensors --input image=shoe.png "
    "--input audio=say.wav \\\n"
    "      --input text=\"a leather ankle boot\" [--output prediction.csv]\n"
    "  graph-runner run g.yaml --weights trained.safetensors --data test.csv --output "
    "predictions.csv\n"
    "Category outputs print their top classes by name; --output writes a header line, then a "
    "row per\n"
    "sample (table order): the predicted class, then each class's probability in class order.";

}  // namespace

Command add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunCommandOptions>();
  auto* c = app.add_subcommand("run",
                               "Run the graph on oneDNN and write every output as DIR/<output>.npy")
                ->footer(kRunFooter);
  c->add_option("graph", o->graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  c->add_option("--weights", o->weights, "Weights (.safetensors)")->check(CLI::ExistingFile);
  c->add_option("--input", o->inputs,
                "NAME=FILE.npy for a graph input (each input once); for an input that declares "
                "preprocessing, NAME=PATH (image, audio) or NAME=TEXT (text)");
  c->add_option("--output-dir", o->output_dir, "Where to write <output>.npy (default: out)");
  c->add_option("--output", o->output,
                "Write the predictions as CSV: per category output the predicted class, then "
                "each class's probability");
  c->add_option("--data", o->data,
                "Predict every row of a table (.csv, .tsv, .jsonl: a column per input) in "
                "batches of --batch (default 32) into --output")
      ->check(CLI::ExistingFile);
  c->add_option("--workers", o->workers,
                "Threads decoding and preprocessing raw values (default 0: all cores)")
      ->check(integer_in(0, 1024));
  add_threads_option(c, o->threads);
  add_seed_option(c, o->seed,
                  "Seed of the initial weights when --weights is not given (default 0)");
  c->add_option("--dump-intermediates", o->dump_dir, "Write every node's output as DIR/<node>.npy");
  c->add_option("--top", o->top, "Classes to print per sample for a softmax head (default 3)")
      ->check(integer_in(1, 1000000));
  c->add_flag("--per-node", o->per_node,
              "Profile 5 more runs: time per node and per branch, with share, GFLOP/s and "
              "oneDNN impl");
  c->add_option("--trace", o->trace,
                "Write a Chrome trace-event JSON (chrome://tracing, Perfetto) of a profiled run");
  c->add_flag("--no-optimize", o->no_optimize,
              "Run the unfused plan: one kernel per node, direct algorithms, plain layouts between "
              "ops, no folding (every node's output then exists for --dump-intermediates)");
  c->add_option("--dim", o->dims, "Size of an input's null dim: NAME=SIZE (NAME=A,B for several)");
  c->add_option("--batch", o->batch, "Batch size (default 1, or the inputs' first dimension)")
      ->check(integer_in(1, INT64_MAX));
  add_max_memory_option(c, o->max_memory);
  add_precision_option(c, o->precision);
  c->add_flag("--check-numerics", o->check_numerics,
              "Stop at the first graph input or node output holding NaN or Inf, naming it (the "
              "first run checks every node's output)");
  return {c, [o] { return cmd_run(*o); }};
}

}  // namespace fg::cli
