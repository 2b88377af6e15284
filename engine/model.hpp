// Running a compiled graph: Model owns the CompiledGraph, the weights, and a cache of Plans
// (one per concrete input-shape signature, least recently used ones dropped past a bound).
// run() is thread-safe: plans are shared, each call borrows its own activation arena, and a
// plan is built outside the cache's lock, so runs of cached shapes never wait for a build.
#pragma once

#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/weights.hpp"
#include "framework/compiler.hpp"
#include "kernels/precision.hpp"
#include "kernels/tensor.hpp"

namespace fg {

class Plan;
class WeightCache;

// Time of one executed step (a node, or a layout conversion the plan inserted).
struct StepTiming {
  std::string name;    // node name, or "<node>/to_plain"
  std::string op;      // op name ("reorder" for inserted conversions)
  std::string branch;  // the graph input the node descends from ("" for fusion nodes)
  std::string impl;    // oneDNN implementation(s), e.g. "jit:avx2"; "" for plain C++
  double start_ms = 0, duration_ms = 0;  // from the start of the run
  double flops = 0;                      // for the whole batch
  // When the plan asked for another precision than f32 and the node's op honours it (dense,
  // conv): what the kernel got, "bf16", or "f32: <why not bf16>" (also appended to impl in
  // brackets); else "".
  std::string precision;
};

// Called around each executed step's kernel, with the step's index in Plan::steps() (tests
// count allocations inside kernels; a checker can read each node's output after its step).
class StepObserver {
 public:
  virtual ~StepObserver() = default;
  virtual void before_step(size_t step) = 0;
  virtual void after_step(size_t step) = 0;
};

struct RunOptions {
  // When set, every node's output is copied here by node name (graph-runner --dump-intermediates).
  std::map<std::string, Tensor>* intermediates = nullptr;
  // When set, filled with one entry per executed step (the stream is waited on after each
  // step, so the times are exact but the run is slightly slower).
  std::vector<StepTiming>* profile = nullptr;
  StepObserver* observer = nullptr;
  // Debug: fill the activation arena with NaN bytes before the run, so that a kernel reading a
  // buffer before anything wrote it shows in the outputs (the test helpers turn it on).
  bool fill_arena_with_nan = false;
  // Checks the float32 graph inputs, then after each step the tensors it completes
  // (Plan::Step::out_tensors, graph outputs included), for NaN and Inf, and throws an fg::Error
  // at the first non-finite one, naming the input or the node, op and tensor, the count of
  // non-finite values and the first index (graph-runner run --check-numerics). The stream is
  // waited on after each step. In an optimized plan a node folded or fused into its producer
  // reports for both (run with optimize off to see each node). See docs/limits.md.
  bool check_numerics = false;
};

struct ModelOptions {
  int threads = 0;  // 0 = all cores
  // Graph-level optimizations of the plan (views instead of copies, Winograd
  // convolutions, ...). Off gives the plain
  // one-kernel-per-node plan, which tests compare against.
  bool optimize = true;
  // The arithmetic of the ops that have reduced-precision kernels (kernels/precision.hpp): bf16
  // runs dense, conv1d and conv2d with bf16 inputs and weights (f32 accumulation and outputs)
  // where the CPU has native bf16; everything else, and every op on a CPU without it, in f32.
  Precision precision = Precision::f32;
  // Memory budget of one plan in bytes (engine/memory_budget.hpp); 0 = physical memory.
  uint64_t max_memory = 0;
  // The plan cache keeps the plans of the most recently used input shapes: at most
  // max_cached_plans of them, and at most max_cached_plan_bytes of activation arenas
  // (Plan::arena_bytes times the plan's idle execution states, at least one), checked whenever
  // a new plan is added. Past either bound the least recently used plans are dropped (a run
  // still holding one finishes with it); the newest plan always stays.
  size_t max_cached_plans = 16;
  size_t max_cached_plan_bytes = size_t{1} << 30;  // 1 GiB
  // Each plan keeps at most this many idle execution states (arena, stream, bound arguments)
  // for later runs; a run that finds none idle makes one, and past this bound the state is
  // freed when the run ends. Concurrent runs of one plan beyond it pay for a new state.
  size_t max_idle_states = 4;
  // Test hook: called with the input shapes in the thread that builds a new plan, before it
  // builds (outside the cache's lock). An exception it throws fails that build.
  std::function<void(const std::vector<Dims>&)> on_plan_build;
};

// "" unless `precision` is bf16 and the CPU (as oneDNN sees it) has no native bf16: then a
// message naming the ISA oneDNN found and saying that the ops run in f32.
std::string precision_warning(Precision precision);

class Model {
 public:
  Model(std::shared_ptr<const CompiledGraph> graph, WeightStore weights, ModelOptions options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const CompiledGraph& graph() const { return *graph_; }
  const WeightStore& weights() const { return weights_; }

  // Inputs by graph-input name; outputs by output name. Throws fg::Error for missing / unknown
  // inputs, wrong dtypes or shapes that do not fit the declared ones.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                    const RunOptions& options = {}) const;

  // The plan for these full input shapes (built and cached on first use; one thread builds it
  // while others asking for the same shapes wait for it, and a failed build is not cached: the
  // next call builds again).
  std::shared_ptr<Plan> plan_for(const std::vector<Dims>& input_shapes) const;
  size_t cached_plans() const;  // including plans being built
  // Throws the fg::Error a plan for these shapes would (memory budget, shape errors) without
  // building it, so callers can refuse before allocating the inputs.
  void check_memory_budget(const std::vector<Dims>& input_shapes) const;
  int threads() const { return options_.threads; }
  Precision precision() const { return options_.precision; }
  // "" unless the model asks for bf16 and the CPU has no native bf16 (the ISA oneDNN found is
  // named): then every op runs in f32, and this says so once for the caller to report.
  std::string precision_warning() const;

 private:
  std::shared_ptr<const CompiledGraph> graph_;
  WeightStore weights_;
  ModelOptions options_;
  std::unique_ptr<WeightCache> weight_cache_;
  struct CachedPlan {
    std::shared_future<std::shared_ptr<Plan>> plan;
    bool ready = false;           // built (a plan being built is never dropped)
    size_t bytes = 0;             // its arena bytes, once ready
    std::shared_ptr<Plan> built;  // once ready
    uint64_t last_use = 0;        // use_clock_ at the last plan_for
  };
  std::shared_ptr<Plan> build_plan(const std::vector<Dims>& input_shapes,
                                   std::promise<std::shared_ptr<Plan>>& promise) const;
  void drop_least_recently_used(const std::vector<Dims>& keep) const;  // with mutex_ held

  mutable std::mutex mutex_;  // guards plans_ and use_clock_, never held while building
  mutable std::map<std::vector<Dims>, CachedPlan> plans_;
  mutable uint64_t use_clock_ = 0;
};

}  // namespace fg
