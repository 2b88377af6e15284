// A Plan is the compiled graph specialised to one set of concrete input shapes: one Kernel per
// live node (oneDNN primitives built, weights reordered once through the model's WeightCache),
// every activation, mask and temporary assigned an offset in one arena planned by liveness,
// and a pool of execution states so that several threads can run the same plan at once.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "kernels/kernel.hpp"
#include "kernels/tensor.hpp"

namespace fg {

class WeightCache;
struct PlanBuilder;
struct ArenaBuffer;

class Plan {
 public:
  Plan(const CompiledGraph& graph, const std::vector<Dims>& input_shapes,
       const WeightStore& weights, WeightCache& cache, int threads, bool optimize = true,
       size_t max_idle_states = 4, Precision precision = Precision::f32);
  ~Plan();

  // Inputs in graph-input order (already checked by Model::run).
  std::map<std::string, Tensor> run(const std::vector<const Tensor*>& inputs,
                                    const RunOptions& options) const;

  size_t arena_bytes() const { return arena_bytes_; }
  // Execution states kept for later runs (at most max_idle_states; ModelOptions).
  size_t idle_states() const;
  size_t unplanned_bytes() const;  // sum of all buffer sizes, i.e. without reuse
  double flops() const;            // whole batch, all steps
  // The largest primitive scratchpad of one step. Each step's scratchpad is an arena buffer live
  // during that step only, so it shares bytes with activations that are dead by then.
  size_t scratchpad_bytes() const { return scratchpad_bytes_; }
  // "" when no two arena buffers live at the same step share bytes and every view fits the
  // buffer it views; else the first violation. Checked on every plan in debug builds (!NDEBUG);
  // tests call it on every plan they build.
  std::string arena_problem() const;

  struct Step {
    int node = -1;     // compiled node index, -1 for an inserted reorder
    std::string name;  // node name (or "<node>/to_plain")
    std::shared_ptr<Kernel> kernel;
    std::vector<int> srcs, dsts, temps, src_masks, dst_masks;  // buffer ids (-1 = none)
    int scratchpad = -1;           // buffer id of the step's primitive scratchpad
    std::vector<int> out_tensors;  // tensor ids this step completes (for intermediates)
    // What the kernel decided about precision when the plan asked for another than f32 and the
    // op honours it (KernelBuild::precision): "bf16", or "f32: <why not bf16>"; else "".
    std::string precision;
  };
  const std::vector<Step>& steps() const { return steps_; }

 private:
  friend struct PlanBuilder;  // the passes that build a plan (plan.cpp)
  struct Buffer {
    dnnl::memory::desc desc;
    size_t bytes = 0;
    size_t offset = 0;
    int first = -1, last = -1;  // step range in which the buffer is live
    int input = -1;             // graph input index: bound to the caller's data, not in the arena
    int alias = -1;             // another buffer whose bytes this one views (flatten, reshape, ...)
  };
  int base_of(int b) const { return buffers_[b].alias >= 0 ? buffers_[b].alias : b; }
  struct ExecState;

  void plan_memory();
  std::vector<int> arena_buffer_ids() const;
  std::vector<ArenaBuffer> arena_buffers(const std::vector<int>& ids) const;
  std::unique_ptr<ExecState> make_state() const;
  void* allocate_arena() const;
  void check_inputs_finite(const std::vector<const Tensor*>& inputs) const;
  void check_step_finite(size_t step, ExecState& state) const;
  Tensor copy_out(int tensor, ExecState& state) const;
  void run_steps(ExecState& state, const RunOptions& options) const;
  void execute_step(size_t step, ExecContext& ctx) const;
  StepTiming step_timing(size_t step, double start_ms, double duration_ms) const;

  const CompiledGraph& graph_;
  std::vector<TensorType> types_;
  std::vector<Dims> input_shapes_;
  int threads_ = 1;
  size_t max_idle_states_ = 4;
  std::vector<Buffer> buffers_;
  std::vector<int> tensor_buffer_, mask_buffer_;  // per tensor id
  std::vector<Step> steps_;
  std::vector<double> step_flops_;  // per step, whole batch
  size_t arena_bytes_ = 0;
  size_t scratchpad_bytes_ = 0;
  int no_scratchpad_buffer_ = -1;
  std::vector<std::shared_ptr<Tensor>> folded_weights_;  // weights with a normalization folded in
  mutable std::mutex pool_mutex_;
  mutable std::vector<std::unique_ptr<ExecState>> pool_;
};

}  // namespace fg
