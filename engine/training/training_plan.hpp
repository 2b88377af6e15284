// A TrainingPlan is the compiled graph specialised to one batch for training: the training-mode
// forward of every node, the losses' slot, and the backward steps that framework/autodiff.hpp
// decides, all ordinary kernels (kernels/training_kernel.hpp) over plain buffers. Activations,
// saved tensors, gradients of activations, temporaries and scratchpads share one arena planned
// by liveness (engine/arena_planner.hpp: a forward output lives until the last backward step
// that reads it); parameters and their gradients live outside it, in the ParameterStore.
//
// One step of training, as the trainer drives it:
//   fill input(i) for every graph input           (the batch)
//   forward(step)                                  training-mode forward
//   read prediction(k), write prediction_gradient(k) for every loss
//   backward(step)                                 parameter gradients land in the store
// Between backward() and the optimizer the gradients are complete: the place for an all-reduce.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "engine/training/parameter_store.hpp"
#include "framework/compiler.hpp"
#include "kernels/kernel.hpp"

namespace fg {

class WeightCache;

// A tensor a loss reads; `logits` when the loss takes the logits of the producer's final
// softmax / sigmoid (the producer then writes its pre-activation, TrainingKernelContext).
struct LossTap {
  int tensor = -1;
  bool logits = false;
};

struct TrainingPlanOptions {
  int threads = 1;
  uint64_t seed = 0;  // per-node random streams (dropout) derive from it
  // Debug: the arena starts filled with NaN (not zeros), so a read before a write shows.
  bool fill_arena_with_nan = false;
};

class TrainingPlan {
 public:
  TrainingPlan(const CompiledGraph& graph, const std::vector<Dims>& input_shapes,
               const std::vector<LossTap>& losses, ParameterStore& params,
               const TrainingPlanOptions& options);
  ~TrainingPlan();
  TrainingPlan(const TrainingPlan&) = delete;
  TrainingPlan& operator=(const TrainingPlan&) = delete;

  int64_t batch() const { return input_shapes_.at(0).at(0); }
  void* input(size_t i);  // graph input i, its declared dtype, the plan's full shape
  const float* prediction(size_t k) const;
  float* prediction_gradient(size_t k);
  const TensorType& prediction_type(size_t k) const;

  void forward(int64_t step);
  void backward(int64_t step);
  // When set, forward() and backward() append one entry per executed step (the stream is
  // waited on after each). FLOPs: the node's forward FLOPs for a forward step and twice them
  // for a backward step (an estimate: data and weight gradients each cost about a forward).
  void set_profile(std::vector<StepTiming>* profile) { profile_ = profile; }
  double flops() const;  // the whole step, by the same estimate
  // Reruns forward and backward of `step` checking every tensor each step writes, and
  // describes the first non-finite one ("" when all are finite), e.g. "the output of node
  // 'dense' (op dense): 3 of 320 values are NaN or Inf, the first at index 7".
  std::string find_non_finite(int64_t step);

  size_t arena_bytes() const { return arena_bytes_; }
  std::string arena_problem() const;  // as Plan::arena_problem

  enum class StepKind { forward, loss, sum, zero, backward };
  struct Step {
    StepKind kind = StepKind::forward;
    int node = -1;
    std::string name;  // "<node>", "<node>/backward", "<tensor>/sum", ...
    std::shared_ptr<Kernel> kernel;
    std::vector<int> srcs, dsts, temps, src_masks, dst_masks;  // buffer ids (-1 = none)
    int scratchpad = -1;
  };
  const std::vector<Step>& steps() const { return steps_; }

 private:
  friend struct TrainingPlanBuilder;  // the passes that build a plan (training_plan.cpp)
  struct Buffer {
    dnnl::memory::desc desc;
    size_t bytes = 0;
    size_t offset = 0;
    int first = -1, last = -1;  // steps in which it is live
    void* external = nullptr;   // a parameter or its gradient: not in the arena
    std::string what;           // for messages: "output of node 'x'", ...
  };
  struct BoundStep;

  void check_tensor_sizes() const;
  void run_steps(size_t first, size_t last, int64_t step, bool check);
  std::string check_step(size_t s) const;

  const CompiledGraph& graph_;
  std::vector<Dims> input_shapes_;
  std::vector<TensorType> types_;
  std::vector<LossTap> losses_;
  int threads_ = 1;
  std::vector<Buffer> buffers_;
  std::vector<int> input_buffer_, prediction_buffer_, prediction_gradient_buffer_;
  std::vector<Step> steps_;
  size_t loss_step_ = 0;
  size_t arena_bytes_ = 0;
  std::unique_ptr<WeightCache> weight_cache_;  // for forward-only nodes' inference kernels
  std::shared_ptr<void> arena_;
  std::unique_ptr<dnnl::stream> stream_;
  std::vector<dnnl::memory> memories_;  // per buffer
  std::vector<std::unique_ptr<BoundStep>> bound_;
  std::vector<double> step_flops_;
  std::vector<StepTiming>* profile_ = nullptr;
};

}  // namespace fg
