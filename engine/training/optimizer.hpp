// Keras 3's optimizers (keras/src/optimizers/*.py) on plain float buffers. A step is, in
// Keras's order (base_optimizer.py apply()):
//   0. the gradient hook: the gradients are complete here; a data-parallel all-reduce goes here
//   1. clip: clipnorm (each tensor: g * c / max(|g|, c)), or global_clipnorm (all tensors:
//      g * min(1, c / global norm)), or clipvalue (each element to [-c, c])
//   2. decoupled weight decay, when set: w -= w * weight_decay * lr, for every trainable weight
//      (biases included) that exclude_from_weight_decay does not match
//   3. the update, with lr = schedule(iterations):
//      sgd       momentum 0: w -= lr g; else m = momentum m - lr g; w += m
//                (nesterov: w += momentum m - lr g)
//      adam(w)   t = iterations + 1; m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
//                amsgrad: v_hat = max(v_hat, v), v := v_hat;
//                w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
//      rmsprop   v = rho v + (1 - rho) g^2; centered: a = rho a + (1 - rho) g, d = v - a^2 + eps,
//                else d = v + eps; inc = lr g / sqrt(d); momentum > 0: m = momentum m + inc,
//                w -= m; else w -= inc
//      adagrad   acc += g^2 (acc starts at initial_accumulator_value); w -= lr g / sqrt(acc + eps)
//   4. iterations += 1
// State slots are float buffers of the parameter's size, so a parameter may be stored in any
// layout (every rule is elementwise); slots() names them for checkpoints ("adam/momentum").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/training/learning_rate_schedule.hpp"
#include "framework/training_config.hpp"

namespace fg {

// A trainable weight as the optimizer sees it. `gradient` holds the complete gradient of the
// step's loss; clipping rewrites it in place.
struct Parameter {
  std::string name;  // "<node>.<param>", e.g. "dense_1.kernel"
  float* value = nullptr;
  float* gradient = nullptr;
  size_t size = 0;
};

// One state buffer of one parameter.
struct OptimizerSlot {
  std::string parameter;  // "<node>.<param>"
  std::string slot;       // "<optimizer>/<Keras variable name>": "adam/momentum", "adam/velocity"
  float* data = nullptr;
  size_t size = 0;
};

class Optimizer {
 public:
  explicit Optimizer(OptimizerSpec spec);

  // Allocates the state slots of these parameters (by name and size; the values are not read).
  // Later steps must pass parameters with the same names and sizes, in the same order.
  void build(const std::vector<Parameter>& params);
  bool built() const { return built_; }

  // Called at the start of step() with the complete local gradients, before clipping: the place
  // for a data-parallel all-reduce (sum or average the gradients across workers in place), so
  // that clipping, decay and update see the global gradient on every worker.
  using GradientHook = std::function<void(std::vector<Parameter>& params)>;
  void set_gradient_hook(GradientHook hook) { hook_ = std::move(hook); }

  // One optimizer step (see above). Builds on first use. Throws fg::Error when the parameters do
  // not match the built ones.
  void step(std::vector<Parameter>& params);

  int64_t iterations() const { return iterations_; }
  void set_iterations(int64_t iterations) { iterations_ = iterations; }  // resume
  double learning_rate() const { return schedule_.at(iterations_); }     // the next step's
  LearningRateSchedule& schedule() { return schedule_; }
  // True when weight decay applies to this parameter name.
  bool decays(const std::string& name) const;

  std::vector<OptimizerSlot> slots();
  const OptimizerSpec& spec() const { return spec_; }

 private:
  void clip(std::vector<Parameter>& params) const;
  void update(size_t index, Parameter& p, double lr);

  OptimizerSpec spec_;
  LearningRateSchedule schedule_;
  GradientHook hook_;
  bool built_ = false;
  int64_t iterations_ = 0;
  std::vector<std::string> names_;
  std::vector<size_t> sizes_;
  std::vector<bool> decay_;
  std::vector<std::string> slot_names_;                     // per slot kind
  std::vector<std::vector<std::vector<float>>> slot_data_;  // [kind][parameter] -> buffer
};

}  // namespace fg
