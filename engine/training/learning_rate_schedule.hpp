// Keras 3's learning-rate schedules (keras/src/optimizers/schedules/learning_rate_schedule.py),
// evaluated at the optimizer's iteration count before the step (Keras: schedule(iterations)).
#pragma once

#include <cstdint>

#include "framework/training_config.hpp"

namespace fg {

class LearningRateSchedule {
 public:
  explicit LearningRateSchedule(LearningRateSpec spec);

  // constant:            value
  // exponential_decay:   initial * decay_rate ^ (step / decay_steps)   (floor of it: staircase)
  // cosine_decay:        without warmup_target: initial * decayed(min(step, decay_steps));
  //                      with it: step < warmup_steps: linear from initial to warmup_target,
  //                      else warmup_target * decayed(min(step, warmup + decay) - warmup),
  //                      decayed(s) = (1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha
  // piecewise_constant:  values[0] for step <= boundaries[0], values[i] for
  //                      boundaries[i-1] < step <= boundaries[i], values.back() after
  double at(int64_t step) const;

  bool is_constant() const { return spec_.kind == ScheduleKind::constant; }
  // Replaces a constant rate (reduce-on-plateau); throws fg::Error for a schedule, as Keras
  // refuses to set the rate of an optimizer built with one.
  void set_constant(double value);
  const LearningRateSpec& spec() const { return spec_; }

 private:
  LearningRateSpec spec_;
};

}  // namespace fg
