#include "engine/training/learning_rate_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace fg {

LearningRateSchedule::LearningRateSchedule(LearningRateSpec spec) : spec_(std::move(spec)) {}

double LearningRateSchedule::at(int64_t step_count) const {
  const double step = static_cast<double>(step_count);
  const LearningRateSpec& s = spec_;
  switch (s.kind) {
    case ScheduleKind::constant:
      return s.value;
    case ScheduleKind::exponential_decay: {
      double p = step / static_cast<double>(s.decay_steps);
      if (s.staircase) p = std::floor(p);
      return s.initial_learning_rate * std::pow(s.decay_rate, p);
    }
    case ScheduleKind::cosine_decay: {
      const double decay_steps = static_cast<double>(s.decay_steps);
      auto decayed = [&](double at, double from) {
        const double cosine = 0.5 * (1.0 + std::cos(M_PI * at / decay_steps));
        return from * ((1.0 - s.alpha) * cosine + s.alpha);
      };
      if (!s.warmup_target) return decayed(std::min(step, decay_steps), s.initial_learning_rate);
      const double warmup = static_cast<double>(s.warmup_steps);
      const double at = std::min(step, decay_steps + warmup);
      if (at < warmup)
        return (*s.warmup_target - s.initial_learning_rate) * (at / warmup) +
               s.initial_learning_rate;
      return decayed(at - warmup, *s.warmup_target);
    }
    case ScheduleKind::piecewise_constant: {
      for (size_t i = 0; i < s.boundaries.size(); ++i)
        if (step_count <= s.boundaries[i]) return s.values[i];
      return s.values.back();
    }
  }
  return s.value;
}

void LearningRateSchedule::set_constant(double value) {
  if (!is_constant())
    throw Error("the learning rate follows a schedule and cannot be set")
        .at(spec_.loc)
        .hint("reduce_on_plateau needs a constant learning_rate");
  spec_.value = value;
}

}  // namespace fg
