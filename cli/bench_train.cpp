// graph-runner bench --train: training steps (forward, backward, optimizer) per batch size on
// synthetic inputs and targets, with bench's statistics and JSON (docs/performance.md).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fusiongraph/training.hpp>
#include <iostream>
#include <numeric>

#include "cli/commands.hpp"
#include "cli/json_text.hpp"
#include "cli/perf/process_stats.hpp"
#include "cli/profile_report.hpp"

namespace fg::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct TrainBatchResult {
  int64_t batch = 0;
  double first_step_ms = 0;
  std::vector<double> times_ms;
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
  double samples_per_s = 0, gflops = 0, foreign_cpu = 0;
  double flops = 0;
  bool profiled = false;
  ProfileSummary profile;
};

double ms_since(Clock::time_point a) {
  return std::chrono::duration<double, std::milli>(Clock::now() - a).count();
}

TrainBatchResult measure_training(Trainer& trainer, int64_t batch, const TrainBenchOptions& o) {
  TrainBatchResult r;
  r.batch = batch;
  const auto inputs = trainer.synthetic_inputs(trainer.input_shapes(batch, parse_dims(o.dims)));
  const auto targets = trainer.synthetic_targets(inputs);
  auto t0 = Clock::now();
  trainer.train_on_batch(inputs, targets);
  r.first_step_ms = ms_since(t0);
  for (int i = 0; i < o.warmup; ++i) trainer.train_on_batch(inputs, targets);
  perf::CpuContention contention;
  contention.start();
  for (int i = 0; i < o.iterations; ++i) {
    t0 = Clock::now();
    trainer.train_on_batch(inputs, targets);
    r.times_ms.push_back(ms_since(t0));
  }
  r.foreign_cpu = contention.foreign();
  r.median_ms = perf::median(r.times_ms);
  r.p10_ms = perf::percentile(r.times_ms, 10);
  r.p90_ms = perf::percentile(r.times_ms, 90);
  r.flops = trainer.step_flops(inputs);
  r.samples_per_s = r.median_ms > 0 ? batch / (r.median_ms * 1e-3) : 0;
  r.gflops = r.median_ms > 0 ? r.flops / (r.median_ms * 1e-3) / 1e9 : 0;
  if (o.per_node) {
    std::vector<std::vector<StepTiming>> runs(static_cast<size_t>(std::max(1, o.iterations)));
    for (auto& run : runs) trainer.train_on_batch(inputs, targets, &run);
    r.profile = summarize_profile(runs);
    r.profiled = true;
  }
  return r;
}

nlohmann::ordered_json result_json(const TrainBatchResult& r) {
  nlohmann::ordered_json b = {{"batch", r.batch},
                              {"first_step_ms", r.first_step_ms},
                              {"median_ms", r.median_ms},
                              {"p10_ms", r.p10_ms},
                              {"p90_ms", r.p90_ms},
                              {"samples_per_s", r.samples_per_s},
                              {"flops", r.flops},
                              {"gflops", r.gflops},
                              {"foreign_cpu", r.foreign_cpu},
                              {"times_ms", r.times_ms}};
  if (r.profiled) add_profile_json(b, r.profile);
  return b;
}

}  // namespace

int cmd_bench_train(const TrainBenchOptions& o) {
  const auto start = Clock::now();
  const std::vector<int64_t> batches = parse_sizes("--batch", o.batches);
  TrainerOptions options;
  options.threads = o.threads;
  options.weights_file = o.weights;
  if (o.weights.empty()) options.init_seed = o.seed;
  Trainer trainer(o.graph, options);
  const double load_ms = ms_since(start);
  std::vector<TrainBatchResult> results;
  for (int64_t b : batches) {
    results.push_back(measure_training(trainer, b, o));
    if (!o.json)
      std::cerr << fmt::format("batch {}: median {:.1f} ms per training step\n", b,
                               results.back().median_ms);
  }
  const int64_t maxrss = perf::max_rss_bytes(), hwm = perf::proc_status_bytes("VmHWM");
  if (o.json) {
    nlohmann::ordered_json j = {{"schema", "fusiongraph-bench-train/1"},
                                {"graph", o.graph},
                                {"optimizer", trainer.config().optimizer.name},
                                {"threads", trainer.threads()},
                                {"warmup", o.warmup},
                                {"iterations", o.iterations},
                                {"load_ms", load_ms}};
    j["machine"] = {
        {"cpu_model", perf::cpu_model()},
        {"logical_cpus", static_cast<int64_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)))}};
    j["memory"] = {{"ru_maxrss_bytes", maxrss}, {"vm_hwm_bytes", hwm}};
    j["batches"] = nlohmann::ordered_json::array();
    for (const auto& r : results) j["batches"].push_back(result_json(r));
    std::cout << json_text(j);
    return 0;
  }
  std::cout << fmt::format("graph: {}, training steps ({} optimizer), {} threads\n", o.graph,
                           trainer.config().optimizer.name, trainer.threads());
  std::cout << fmt::format("{} warm-up and {} timed steps per batch size; setup {:.0f} ms\n",
                           o.warmup, o.iterations, load_ms);
  std::cout << fmt::format("{:>6}  {:>11}  {:>10}  {:>10}  {:>10}  {:>9}  {:>8}  {:>7}\n", "batch",
                           "first ms", "median ms", "p10 ms", "p90 ms", "samples/s", "GFLOP/s",
                           "foreign");
  for (const auto& r : results)
    std::cout << fmt::format(
        "{:>6}  {:>11.1f}  {:>10.1f}  {:>10.1f}  {:>10.1f}  {:>9.2f}  {:>8.1f}  "
        "{:>6.0f}%\n",
        r.batch, r.first_step_ms, r.median_ms, r.p10_ms, r.p90_ms, r.samples_per_s, r.gflops,
        100 * r.foreign_cpu);
  std::cout << fmt::format("memory: peak resident {:.1f} MB (ru_maxrss), VmHWM {:.1f} MB\n",
                           maxrss / 1e6, hwm / 1e6);
  if (o.per_node)
    for (const auto& r : results)
      std::cout << fmt::format("\nbatch {} ", r.batch) << format_profile_table(r.profile);
  return 0;
}

}  // namespace fg::cli
