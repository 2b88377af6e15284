// Running a compiled graph: Model owns the CompiledGraph, the weights, and a cache of Plans
// (one per concrete input-shape signature). run() is thread-safe: plans are shared, each call
// borrows its own activation arena.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/weights.hpp"
#include "framework/compiler.hpp"
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
};

struct ModelOptions {
  int threads = 0;  // 0 = all cores
  // Graph-level optimizations of the plan (views instead of copies, Winograd
  // convolutions, ...). Off gives the plain
  // one-kernel-per-node plan, which tests compare against.
  bool optimize = true;
  // Memory budget of one plan in bytes (engine/memory_budget.hpp); 0 = physical memory.
  uint64_t max_memory = 0;
};

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

  // The plan for these full input shapes (built and cached on first use).
  std::shared_ptr<Plan> plan_for(const std::vector<Dims>& input_shapes) const;
  size_t cached_plans() const;
  int threads() const { return options_.threads; }

 private:
  std::shared_ptr<const CompiledGraph> graph_;
  WeightStore weights_;
  ModelOptions options_;
  std::unique_ptr<WeightCache> weight_cache_;
  mutable std::mutex mutex_;
  mutable std::map<std::vector<Dims>, std::shared_ptr<Plan>> plans_;
};

}  // namespace fg
