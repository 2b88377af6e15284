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
#include <memory>
#include <numeric>

#include "cli/commands.hpp"
#include "cli/json_text.hpp"
#include "cli/perf/fma_peak.hpp"
#include "cli/perf/process_stats.hpp"
#include "cli/profile_report.hpp"

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
  bool train = false;
  std::string trace;
  std::string max_memory = "0";
  std::string precision;
};

using Clock = std::chrono::steady_clock;
// Taken during static initialization, before main(): shared libraries are loaded by then.
const Clock::time_point g_process_start = Clock::now();

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
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
  Clock::time_point first_run_end;
  std::vector<double> times_ms;
  double median_ms = 0, p10_ms = 0, p90_ms = 0, min_ms = 0, max_ms = 0, mean_ms = 0;
  double samples_per_s = 0, gflops = 0, peak_fraction = 0, foreign_cpu = 0;
  PlanFigures plan;
  bool profiled = false;
  ProfileSummary profile;
  std::vector<StepTiming> trace_steps;
};

// What the whole run measured besides the batches.
struct BenchRun {
  Clock::time_point start;
  double graph_ms = 0, weights_ms = 0, model_ms = 0;  // loading, split by Session::load_times
  double first_run_ms = 0, cold_start_ms = 0;         // of the first batch size
  std::vector<int64_t> batches;
  std::vector<BatchResult> results;
  perf::PeakResult peak;
  int64_t maxrss = 0, hwm = 0;
};

std::string weights_label(const BenchOptions& o) {
  return o.weights.empty() ? fmt::format("initial weights, seed {}", o.seed) : o.weights;
}

// Input files: NAME=FILE.npy, with at least as many samples as the largest batch.
std::map<std::string, Tensor> read_input_files(const Session& session,
                                               const std::map<std::string, std::string>& paths,
                                               int64_t max_batch) {
  std::map<std::string, Tensor> files;
  const auto names = session.input_names();
  for (const auto& [name, path] : paths) {
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw UsageError(fmt::format("--input {}: the graph has no input '{}'; {}", name, name,
                                   did_you_mean(name, names)));
    Tensor t = read_npy(path, session.input_type(name).dtype, name);
    if (t.shape().empty() || t.shape()[0] < max_batch)
      throw Error(fmt::format("input '{}' has {} samples but the largest --batch is {}", name,
                              t.shape().empty() ? 0 : t.shape()[0], max_batch))
          .in_file(path);
    files[name] = std::move(t);
  }
  return files;
}

std::map<std::string, Tensor> batch_inputs(
    const Session& session, const std::map<std::string, Tensor>& files, int64_t batch,
    const std::map<std::string, std::vector<int64_t>>& dims) {
  std::map<std::string, Dims> shapes = session.input_shapes(batch, dims), synthetic;
  for (const auto& [name, t] : files) {
    shapes[name] = t.shape();
    shapes[name][0] = batch;
  }
  for (const auto& [name, shape] : shapes)
    if (!files.count(name)) synthetic[name] = shape;
  session.check_memory_budget(shapes);  // before the inputs are made
  std::map<std::string, Tensor> inputs = session.synthetic_inputs(synthetic, 1);
  for (const auto& [name, t] : files) inputs[name] = first_samples(t, batch);
  return inputs;
}

void add_statistics(BatchResult& r) {
  const auto& t = r.times_ms;
  r.median_ms = perf::median(t);
  r.p10_ms = perf::percentile(t, 10);
  r.p90_ms = perf::percentile(t, 90);
  r.min_ms = *std::min_element(t.begin(), t.end());
  r.max_ms = *std::max_element(t.begin(), t.end());
  r.mean_ms = std::accumulate(t.begin(), t.end(), 0.0) / static_cast<double>(t.size());
  r.samples_per_s = r.median_ms > 0 ? r.batch / (r.median_ms * 1e-3) : 0;
  r.gflops = r.median_ms > 0 ? r.plan.flops / (r.median_ms * 1e-3) / 1e9 : 0;
}

BatchResult measure_batch(const Session& session, const std::map<std::string, Tensor>& inputs,
                          int64_t batch, const BenchOptions& o) {
  BatchResult r;
  r.batch = batch;
  for (const auto& [name, t] : inputs) r.input_shapes[name] = t.shape();
  const auto t0 = Clock::now();
  session.run(inputs);
  r.first_run_end = Clock::now();
  r.first_run_ms = ms_between(t0, r.first_run_end);
  for (int i = 0; i < o.warmup; ++i) session.run(inputs);
  perf::CpuContention contention;
  contention.start();
  for (int i = 0; i < o.iterations; ++i) {
    const auto a = Clock::now();
    session.run(inputs);
    r.times_ms.push_back(ms_between(a, Clock::now()));
  }
  r.foreign_cpu = contention.foreign();
  r.plan = session.plan_figures(r.input_shapes);
  add_statistics(r);
  if (o.per_node || !o.trace.empty()) {
    auto runs = profile_runs(session, inputs, o.iterations);
    r.profile = summarize_profile(runs);
    r.trace_steps = runs[r.profile.median_run];
    r.profiled = true;
  }
  return r;
}

nlohmann::ordered_json batch_json(const BatchResult& r) {
  nlohmann::ordered_json b = {{"batch", r.batch}, {"inputs", r.input_shapes}};
  b["first_run_ms"] = r.first_run_ms;
  b["median_ms"] = r.median_ms;
  b["p10_ms"] = r.p10_ms;
  b["p90_ms"] = r.p90_ms;
  b["min_ms"] = r.min_ms;
  b["max_ms"] = r.max_ms;
  b["mean_ms"] = r.mean_ms;
  b["samples_per_s"] = r.samples_per_s;
  b["flops"] = r.plan.flops;
  b["gflops"] = r.gflops;
  b["peak_fraction"] = r.peak_fraction;
  b["arena_bytes"] = r.plan.arena_bytes;
  b["scratchpad_bytes"] = r.plan.scratchpad_bytes;
  b["foreign_cpu"] = r.foreign_cpu;
  b["times_ms"] = r.times_ms;
  if (r.profiled) add_profile_json(b, r.profile);
  return b;
}

nlohmann::ordered_json bench_json(const Session& session, const BenchOptions& o,
                                  const BenchRun& run) {
  nlohmann::ordered_json j = {{"schema", kSchema},
                              {"graph", o.graph},
                              {"graph_name", session.name()},
                              {"weights", weights_label(o)},
                              {"weights_bytes", session.weight_bytes()},
                              {"threads", session.threads()},
                              {"optimize", !o.no_optimize},
                              {"precision", precision_name(session.precision())},
                              {"warmup", o.warmup},
                              {"iterations", o.iterations}};
  j["machine"] = {
      {"cpu_model", perf::cpu_model()},
      {"logical_cpus", static_cast<int64_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)))},
      {"onednn_isa", cpu_isa()}};
  if (const std::string w = session.precision_warning(); !w.empty()) j["precision_warning"] = w;
  j["peak"] = {{"gflops", run.peak.gflops},
               {"kernel", run.peak.kernel},
               {"threads", run.peak.threads},
               {"seconds", run.peak.seconds}};
  j["cold_start"] = {
      {"load_graph_ms", run.graph_ms},
      {"load_weights_ms", run.weights_ms},
      {"model_ms", run.model_ms},
      {"first_run_ms", run.first_run_ms},
      {"first_batch", run.batches.front()},
      {"total_ms", run.cold_start_ms},
      {"since_process_start_ms", run.cold_start_ms + ms_between(g_process_start, run.start)}};
  j["memory"] = {{"ru_maxrss_bytes", run.maxrss}, {"vm_hwm_bytes", run.hwm}};
  j["batches"] = nlohmann::ordered_json::array();
  for (const auto& r : run.results) j["batches"].push_back(batch_json(r));
  return j;
}

std::string format_dims(const Dims& d) {
  return fmt::format("[{}]", fmt::join(d, ", "));
}

void print_bench_text(const Session& session, const BenchOptions& o, const BenchRun& run) {
  std::string shapes;
  for (const auto& [name, shape] : run.results.front().input_shapes)
    shapes += fmt::format("{}{} {}", shapes.empty() ? "" : ", ", name, format_dims(shape));
  const std::string precision =
      session.precision() == Precision::f32
          ? ""
          : fmt::format(", precision {} on {}", precision_name(session.precision()), cpu_isa());
  std::cout << fmt::format("graph: {} ({}), {} threads{}{}, inputs at batch {}: {}\n", o.graph,
                           session.name(), session.threads(), o.no_optimize ? ", unfused plan" : "",
                           precision, run.results.front().batch, shapes);
  std::cout << fmt::format("weights: {} ({:.1f} MB)\n", weights_label(o),
                           session.weight_bytes() / 1e6);
  std::cout << fmt::format(
      "cold start: {:.1f} ms = graph {:.1f} + weights {:.1f} + model {:.1f} + first run {:.1f} "
      "(batch {}, includes building the plan)\n",
      run.cold_start_ms, run.graph_ms, run.weights_ms, run.model_ms, run.first_run_ms,
      run.batches.front());
  std::cout << fmt::format(
      "peak: {:.1f} GFLOP/s FP32 (FMA kernel {}, {} threads, measured by this tool)\n",
      run.peak.gflops, run.peak.kernel, run.peak.threads);
  std::cout << fmt::format("{} warm-up and {} timed runs per batch size\n", o.warmup, o.iterations);
  std::cout << fmt::format("{:>6}  {:>10}  {:>10}  {:>10}  {:>10}  {:>8}  {:>7}  {:>9}  {:>7}\n",
                           "batch", "median ms", "p10 ms", "p90 ms", "samples/s", "GFLOP/s",
                           "% peak", "arena MB", "foreign");
  for (const auto& r : run.results)
    std::cout << fmt::format(
        "{:>6}  {:>10.3f}  {:>10.3f}  {:>10.3f}  {:>10.2f}  {:>8.1f}  {:>6.1f}%  {:>9.2f}  "
        "{:>6.0f}%\n",
        r.batch, r.median_ms, r.p10_ms, r.p90_ms, r.samples_per_s, r.gflops, 100 * r.peak_fraction,
        r.plan.arena_bytes / 1e6, 100 * r.foreign_cpu);
  std::cout << fmt::format("memory: peak resident {:.1f} MB (ru_maxrss), VmHWM {:.1f} MB\n",
                           run.maxrss / 1e6, run.hwm / 1e6);
  if (o.per_node)
    for (const auto& r : run.results)
      std::cout << fmt::format("\nbatch {} ", r.batch) << format_profile_table(r.profile);
  if (!o.trace.empty()) std::cout << "trace: " << o.trace << "\n";
}

void write_trace(const BenchOptions& o, const BenchRun& run) {
  std::vector<TraceRun> runs;
  for (const auto& r : run.results)
    runs.push_back({fmt::format("batch {}", r.batch), r.trace_steps});
  write_chrome_trace(o.trace, runs);
}

int cmd_bench(const BenchOptions& o) {
  if (o.train) {
    if (!o.inputs.empty() || !o.trace.empty() || o.no_optimize)
      throw UsageError("--train takes synthetic inputs only, without --trace or --no-optimize");
    return cmd_bench_train({o.graph, o.batches, o.weights, o.dims, o.seed, o.threads, o.warmup,
                            o.iterations, o.json, o.per_node});
  }
  BenchRun run;
  run.start = Clock::now();
  run.batches = parse_sizes("--batch", o.batches);
  const auto paths = parse_inputs(o.inputs);
  const auto dims = parse_dims(o.dims);
  const uint64_t max_memory = parse_memory_size("--max-memory", o.max_memory);
  const std::optional<Precision> precision = parse_precision_option(o.precision);
  if (!o.trace.empty()) check_file_destination(o.trace, "--trace");
  const Session session =
      load_session(o.graph, o.weights, o.seed, o.threads, !o.no_optimize, max_memory, precision);
  const LoadTimes& load = session.load_times();
  run.weights_ms = load.weights_ms;
  run.model_ms = load.model_ms;
  run.graph_ms = ms_between(run.start, Clock::now()) - run.weights_ms - run.model_ms;
  const auto files =
      read_input_files(session, paths, *std::max_element(run.batches.begin(), run.batches.end()));
  for (int64_t batch : run.batches) {
    run.results.push_back(
        measure_batch(session, batch_inputs(session, files, batch, dims), batch, o));
    if (run.results.size() == 1) {
      run.first_run_ms = run.results.front().first_run_ms;
      run.cold_start_ms = ms_between(run.start, run.results.front().first_run_end);
    }
    if (!o.json)
      std::cerr << fmt::format("batch {}: median {:.3f} ms\n", batch, run.results.back().median_ms);
  }
  run.peak = perf::measure_fma_peak(session.threads(), o.peak_seconds);
  for (auto& r : run.results)
    r.peak_fraction = run.peak.gflops > 0 ? r.gflops / run.peak.gflops : 0;
  run.maxrss = perf::max_rss_bytes();
  run.hwm = perf::proc_status_bytes("VmHWM");
  if (!o.trace.empty()) write_trace(o, run);
  if (o.json)
    std::cout << json_text(bench_json(session, o, run));
  else
    print_bench_text(session, o, run);
  return 0;
}

constexpr const char* kBenchFooter =
    "Examples:\n  graph-runner bench graphs/multimodal_fusion.yaml --batch 1,8,32 --threads 2\n"
    "  graph-runner bench g.yaml --batch 1 --per-node --trace trace.json\n"
    "  graph-runner bench g.yaml --weights w.safetensors --input image=img.npy --json\n"
    "Inputs are synthetic (as in `run`) unless --input gives a .npy whose first B samples are "
    "used.\n"
    "Null dims come from --dim, else the input's default_shape, else 100. --json prints the\n"
    "schema \"fusiongraph-bench/1\" described in docs/performance.md.";

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* c = app.add_subcommand("bench",
                               "Latency, throughput, GFLOP/s (and share of a measured FMA peak), "
                               "memory and cold start per batch size")
                ->footer(kBenchFooter);
  c->add_option("graph", o->graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  c->add_option("--batch", o->batches, "Batch sizes, comma-separated (default 1,8,32)");
  c->add_option("--dim", o->dims, "Size of an input's null dim: NAME=SIZE (NAME=A,B for several)");
  add_threads_option(c, o->threads);
  c->add_option("--warmup", o->warmup, "Untimed runs per batch size (default 2)")
      ->check(integer_in(0, 1000000));
  c->add_option("--iterations", o->iterations, "Timed runs per batch size (default 10)")
      ->check(integer_in(1, 1000000));
  c->add_option("--weights", o->weights, "Weights (.safetensors); default: init --seed")
      ->check(CLI::ExistingFile);
  add_seed_option(c, o->seed, "Seed of the initial weights (default 0)");
  c->add_option("--input", o->inputs,
                "NAME=FILE.npy for a graph input (first B samples; each input once)");
  c->add_option("--peak-seconds", o->peak_seconds,
                "Time spent measuring the FMA peak (default 0.3)")
      ->check(finite_in(0.0, 60.0));
  add_max_memory_option(c, o->max_memory);
  add_precision_option(c, o->precision);
  c->add_flag("--json", o->json, "Print JSON (schema fusiongraph-bench/1) instead of text");
  c->add_flag("--train", o->train,
              "Measure training steps (forward, backward, optimizer) with the graph's training: "
              "section on synthetic targets; --per-node shows forward and backward per node");
  c->add_flag("--per-node", o->per_node,
              "Also profile: time per node and per branch (median of --iterations runs)");
  c->add_option("--trace", o->trace,
                "Write a Chrome trace (chrome://tracing, Perfetto) of the median profiled run "
                "of each batch size");
  c->add_flag("--no-optimize", o->no_optimize,
              "Measure the unfused plan (one kernel per node, direct algorithms, plain layouts "
              "between ops), to see what the optimizations give");
  return {c, [o] { return cmd_bench(*o); }};
}

}  // namespace fg::cli
