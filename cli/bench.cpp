// graph-runner bench: latency / throughput per batch size, GFLOP/s and the share of a peak the
// tool measures itself, peak memory, arena size and cold start; text or stable JSON
// (schema "fusiongraph-bench/1", documented in docs/performance.md).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <map>

#include "framework/yaml_loader.hpp"
#include "cli/commands.hpp"
#include "cli/json_writer.hpp"
#include "cli/profile_report.hpp"
#include "engine/model.hpp"
#include "engine/npy.hpp"
#include "engine/perf/fma_peak.hpp"
#include "engine/perf/process_stats.hpp"
#include "engine/plan.hpp"
#include "engine/weights.hpp"

namespace fg::cli {

namespace {

constexpr const char* kSchema = "fusiongraph-bench/1";

struct BenchOptions {
  std::string graph;
  std::string batches = "1,8,32";
  std::vector<std::string> dims;
  std::vector<std::string> inputs;
  std::string weights;
  uint64_t seed = 0;
  int threads = 0;
  int warmup = 2;
  int iterations = 10;
  double peak_seconds = 0.3;
  bool json = false;
  bool per_node = false;
  bool no_optimize = false;
  std::string trace;
};

BenchOptions bopts;

using Clock = std::chrono::steady_clock;
// Taken during static initialization, before main(): shared libraries are loaded by then.
const Clock::time_point g_process_start = Clock::now();

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::vector<int64_t> parse_batches(const std::string& spec) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string part =
        spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      size_t used = 0;
      long long v = std::stoll(part, &used);
      if (used != part.size() || v < 1) throw std::invalid_argument(part);
      out.push_back(v);
    } catch (const std::exception&) {
      throw UsageError(fmt::format(
          "--batch takes positive sizes separated by commas (e.g. 1,8,32), got '{}'", spec));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// The first `batch` samples of `t` (a copy).
Tensor first_samples(const Tensor& t, int64_t batch) {
  Dims shape = t.shape();
  shape[0] = batch;
  Tensor out(t.dtype(), shape);
  std::memcpy(out.mutable_data<void>(), t.raw(), out.bytes());
  return out;
}

struct BatchResult {
  int64_t batch = 0;
  std::map<std::string, Dims> input_shapes;
  double first_run_ms = 0;  // includes building the plan for this shape
  std::vector<double> times_ms;
  double median_ms = 0, p10_ms = 0, p90_ms = 0, min_ms = 0, max_ms = 0, mean_ms = 0;
  double samples_per_s = 0, flops = 0, gflops = 0, peak_fraction = 0, foreign_cpu = 0;
  size_t arena_bytes = 0, scratchpad_bytes = 0;
  bool profiled = false;
  ProfileSummary profile;
  std::vector<StepTiming> trace_steps;
};

std::string format_dims(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

}  // namespace

int cmd_bench() {
  const auto t_start = Clock::now();
  const auto& o = bopts;
  if (o.iterations < 1) throw UsageError("--iterations must be at least 1");
  if (o.warmup < 0) throw UsageError("--warmup must be 0 or more");
  const std::vector<int64_t> batches = parse_batches(o.batches);
  auto user_dims = parse_dims(o.dims);

  auto graph = load(o.graph);
  const auto t_graph = Clock::now();
  const auto& def = graph->def();
  WeightStore weights;
  std::string weights_label;
  if (o.weights.empty()) {
    weights = WeightStore::initialize(*graph, o.seed);
    weights_label = fmt::format("initial weights, seed {}", o.seed);
  } else {
    weights = WeightStore::load_safetensors(o.weights);
    weights_label = o.weights;
  }
  const auto t_weights = Clock::now();
  int64_t weight_bytes = 0;
  for (const auto& [k, t] : weights.tensors()) weight_bytes += static_cast<int64_t>(t.bytes());

  // Input files: NAME=FILE.npy, with at least as many samples as the largest batch.
  std::vector<std::string> names;
  for (const auto& in : def.inputs) names.push_back(in.name);
  std::map<std::string, Tensor> files;
  const int64_t max_batch = *std::max_element(batches.begin(), batches.end());
  for (const auto& spec : o.inputs) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      throw UsageError(fmt::format("--input takes NAME=FILE.npy, got '{}'", spec));
    std::string name = spec.substr(0, eq), path = spec.substr(eq + 1);
    auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end())
      throw UsageError(fmt::format("--input {}: the graph has no input '{}'; {}", name, name,
                                   did_you_mean(name, names)));
    Tensor t = read_npy(path, def.inputs[it - names.begin()].dtype, name);
    if (t.shape().empty() || t.shape()[0] < max_batch)
      throw Error(fmt::format("input '{}' has {} samples but the largest --batch is {}", name,
                              t.shape().empty() ? 0 : t.shape()[0], max_batch))
          .in_file(path);
    files[name] = std::move(t);
  }

  Model model(graph, std::move(weights), ModelOptions{o.threads, !o.no_optimize});
  const auto t_model = Clock::now();
  auto dims = dims_with_defaults(*graph, user_dims);

  std::vector<BatchResult> results;
  double cold_start_ms = 0, first_run_ms = 0;
  for (size_t bi = 0; bi < batches.size(); ++bi) {
    BatchResult r;
    r.batch = batches[bi];
    auto shapes = graph->concrete_input_shapes(r.batch, dims);
    std::map<std::string, Tensor> inputs;
    std::vector<Dims> actual;
    for (size_t i = 0; i < def.inputs.size(); ++i) {
      auto f = files.find(def.inputs[i].name);
      Tensor t = f != files.end() ? first_samples(f->second, r.batch)
                                  : synthetic_input(*graph, def.inputs[i], shapes[i], 1);
      r.input_shapes[def.inputs[i].name] = t.shape();
      actual.push_back(t.shape());
      inputs[def.inputs[i].name] = std::move(t);
    }
    auto t0 = Clock::now();
    model.run(inputs);
    auto t1 = Clock::now();
    r.first_run_ms = ms_between(t0, t1);
    if (bi == 0) {
      first_run_ms = r.first_run_ms;
      cold_start_ms = ms_between(t_start, t1);
    }
    for (int i = 0; i < o.warmup; ++i) model.run(inputs);
    perf::CpuContention contention;
    contention.start();
    for (int i = 0; i < o.iterations; ++i) {
      auto a = Clock::now();
      model.run(inputs);
      r.times_ms.push_back(ms_between(a, Clock::now()));
    }
    r.foreign_cpu = contention.foreign();
    r.median_ms = perf::median(r.times_ms);
    r.p10_ms = perf::percentile(r.times_ms, 10);
    r.p90_ms = perf::percentile(r.times_ms, 90);
    r.min_ms = *std::min_element(r.times_ms.begin(), r.times_ms.end());
    r.max_ms = *std::max_element(r.times_ms.begin(), r.times_ms.end());
    double sum = 0;
    for (double t : r.times_ms) sum += t;
    r.mean_ms = sum / static_cast<double>(r.times_ms.size());
    auto plan = model.plan_for(actual);
    r.flops = plan->flops();
    r.arena_bytes = plan->arena_bytes();
    r.scratchpad_bytes = plan->scratchpad_bytes();
    r.samples_per_s = r.median_ms > 0 ? r.batch / (r.median_ms * 1e-3) : 0;
    r.gflops = r.median_ms > 0 ? r.flops / (r.median_ms * 1e-3) / 1e9 : 0;
    if (o.per_node || !o.trace.empty()) {
      auto runs = profile_runs(model, inputs, o.iterations);
      r.profile = summarize_profile(runs);
      r.trace_steps = runs[r.profile.median_run];
      r.profiled = true;
    }
    if (!o.json) std::cerr << fmt::format("batch {}: median {:.3f} ms\n", r.batch, r.median_ms);
    results.push_back(std::move(r));
  }

  const perf::PeakResult peak = perf::measure_fma_peak(model.threads(), o.peak_seconds);
  for (auto& r : results) r.peak_fraction = peak.gflops > 0 ? r.gflops / peak.gflops : 0;
  const int64_t maxrss = perf::max_rss_bytes();
  const int64_t hwm = perf::proc_status_bytes("VmHWM");

  if (!o.trace.empty()) {
    std::vector<TraceRun> runs;
    for (const auto& r : results) runs.push_back({fmt::format("batch {}", r.batch), r.trace_steps});
    write_chrome_trace(o.trace, runs);
  }

  const double graph_ms = ms_between(t_start, t_graph), weights_ms = ms_between(t_graph, t_weights),
               model_ms = ms_between(t_weights, t_model);
  if (o.json) {
    JsonWriter w;
    w.begin_object();
    w.member("schema", kSchema);
    w.member("graph", o.graph).member("graph_name", def.name);
    w.member("weights", o.weights.empty() ? weights_label : o.weights);
    w.member("weights_bytes", weight_bytes);
    w.member("threads", model.threads());
    w.member("optimize", !o.no_optimize);
    w.member("warmup", o.warmup).member("iterations", o.iterations);
    w.key("machine").begin_object();
    w.member("cpu_model", perf::cpu_model());
    w.member("logical_cpus", static_cast<int64_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))));
    w.end_object();
    w.key("peak").begin_object();
    w.member("gflops", peak.gflops).member("kernel", peak.kernel).member("threads", peak.threads);
    w.member("seconds", peak.seconds);
    w.end_object();
    w.key("cold_start").begin_object();
    w.member("load_graph_ms", graph_ms).member("load_weights_ms", weights_ms);
    w.member("model_ms", model_ms).member("first_run_ms", first_run_ms);
    w.member("first_batch", batches.front());
    w.member("total_ms", cold_start_ms);
    w.member("since_process_start_ms", cold_start_ms + ms_between(g_process_start, t_start));
    w.end_object();
    w.key("memory").begin_object();
    w.member("ru_maxrss_bytes", maxrss).member("vm_hwm_bytes", hwm);
    w.end_object();
    w.key("batches").begin_array();
    for (const auto& r : results) {
      w.begin_object();
      w.member("batch", r.batch);
      w.key("inputs").begin_object(true);
      for (const auto& [name, shape] : r.input_shapes) {
        w.key(name).begin_array(true);
        for (auto d : shape) w.value(static_cast<int64_t>(d));
        w.end_array();
      }
      w.end_object();
      w.member("first_run_ms", r.first_run_ms);
      w.member("median_ms", r.median_ms).member("p10_ms", r.p10_ms).member("p90_ms", r.p90_ms);
      w.member("min_ms", r.min_ms).member("max_ms", r.max_ms).member("mean_ms", r.mean_ms);
      w.member("samples_per_s", r.samples_per_s);
      w.member("flops", r.flops).member("gflops", r.gflops);
      w.member("peak_fraction", r.peak_fraction);
      w.member("arena_bytes", r.arena_bytes).member("scratchpad_bytes", r.scratchpad_bytes);
      w.member("foreign_cpu", r.foreign_cpu);
      w.number_array("times_ms", r.times_ms);
      if (r.profiled) write_profile_json(w, r.profile);
      w.end_object();
    }
    w.end_array();
    w.end_object();
    std::cout << w.str();
    return 0;
  }

  std::string shapes;
  for (const auto& [name, shape] : results.front().input_shapes)
    shapes += fmt::format("{}{} {}", shapes.empty() ? "" : ", ", name, format_dims(shape));
  std::cout << fmt::format("graph: {} ({}), {} threads{}, inputs at batch {}: {}\n", o.graph,
                           def.name, model.threads(), o.no_optimize ? ", unfused plan" : "",
                           results.front().batch, shapes);
  std::cout << fmt::format("weights: {} ({:.1f} MB)\n", weights_label, weight_bytes / 1e6);
  std::cout << fmt::format(
      "cold start: {:.1f} ms = graph {:.1f} + weights {:.1f} + model {:.1f} + first run {:.1f} "
      "(batch {}, includes building the plan)\n",
      cold_start_ms, graph_ms, weights_ms, model_ms, first_run_ms, batches.front());
  std::cout << fmt::format(
      "peak: {:.1f} GFLOP/s FP32 (FMA kernel {}, {} threads, measured by this tool)\n", peak.gflops,
      peak.kernel, peak.threads);
  std::cout << fmt::format("{} warm-up and {} timed runs per batch size\n", o.warmup, o.iterations);
  std::cout << fmt::format("{:>6}  {:>10}  {:>10}  {:>10}  {:>10}  {:>8}  {:>7}  {:>9}  {:>7}\n",
                           "batch", "median ms", "p10 ms", "p90 ms", "samples/s", "GFLOP/s",
                           "% peak", "arena MB", "foreign");
  for (const auto& r : results)
    std::cout << fmt::format(
        "{:>6}  {:>10.3f}  {:>10.3f}  {:>10.3f}  {:>10.2f}  {:>8.1f}  {:>6.1f}%  {:>9.2f}  "
        "{:>6.0f}%\n",
        r.batch, r.median_ms, r.p10_ms, r.p90_ms, r.samples_per_s, r.gflops, 100 * r.peak_fraction,
        r.arena_bytes / 1e6, 100 * r.foreign_cpu);
  std::cout << fmt::format("memory: peak resident {:.1f} MB (ru_maxrss), VmHWM {:.1f} MB\n",
                           maxrss / 1e6, hwm / 1e6);
  if (o.per_node)
    for (const auto& r : results)
      std::cout << fmt::format("\nbatch {} ", r.batch) << format_profile_table(r.profile);
  if (!o.trace.empty()) std::cout << "trace: " << o.trace << "\n";
  return 0;
}

void add_bench_command(CLI::App& app) {
  auto* bench =
      app.add_subcommand("bench",
                         "Latency, throughput, GFLOP/s (and share of a measured FMA peak), memory "
                         "and cold start per batch size")
          ->footer(
              "Examples:\n  graph-runner bench graphs/multimodal_fusion.yaml --batch 1,8,32 "
              "--threads 2\n"
              "  graph-runner bench g.yaml --batch 1 --per-node --trace trace.json\n"
              "  graph-runner bench g.yaml --weights w.safetensors --input image=img.npy --json\n"
              "Inputs are synthetic (as in `run`) unless --input gives a .npy whose first B "
              "samples are used.\n"
              "Null dims come from --dim, else the input's default_shape, else 100. --json "
              "prints the\n"
              "schema \"fusiongraph-bench/1\" described in docs/performance.md.");
  bench->add_option("graph", bopts.graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  bench->add_option("--batch", bopts.batches, "Batch sizes, comma-separated (default 1,8,32)");
  bench->add_option("--dim", bopts.dims,
                    "Size of an input's null dim: NAME=SIZE (NAME=A,B for several)");
  bench->add_option("--threads", bopts.threads, "Threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  bench->add_option("--warmup", bopts.warmup, "Untimed runs per batch size (default 2)")
      ->check(CLI::NonNegativeNumber);
  bench->add_option("--iterations", bopts.iterations, "Timed runs per batch size (default 10)")
      ->check(CLI::PositiveNumber);
  bench->add_option("--weights", bopts.weights, "Weights (.safetensors); default: init --seed")
      ->check(CLI::ExistingFile);
  bench->add_option("--seed", bopts.seed, "Seed of the initial weights (default 0)");
  bench->add_option("--input", bopts.inputs, "NAME=FILE.npy for a graph input (first B samples)");
  bench
      ->add_option("--peak-seconds", bopts.peak_seconds,
                   "Time spent measuring the FMA peak (default 0.3)")
      ->check(CLI::Range(0.0, 60.0));
  bench->add_flag("--json", bopts.json, "Print JSON (schema fusiongraph-bench/1) instead of text");
  bench->add_flag("--per-node", bopts.per_node,
                  "Also profile: time per node and per branch (median of --iterations runs)");
  bench->add_option("--trace", bopts.trace,
                    "Write a Chrome trace (chrome://tracing, Perfetto) of the median profiled run "
                    "of each batch size");
  bench->add_flag("--no-optimize", bopts.no_optimize,
                  "Measure the unfused plan (one kernel per node, direct algorithms, plain layouts "
                  "between ops), to see what the optimizations give");
}

}  // namespace fg::cli
