#include "engine/training/epoch_callbacks.hpp"

#include <algorithm>
#include <cmath>

namespace fg {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

bool monitor_maximizes(const std::string& monitor, MonitorMode mode) {
  if (mode != MonitorMode::auto_mode) return mode == MonitorMode::max;
  const std::string name = monitor.rfind("val_", 0) == 0 ? monitor.substr(4) : monitor;
  if (ends_with(name, "loss")) return false;
  return ends_with(name, "accuracy") || ends_with(name, "acc");  // accuracy metrics go "up"
}

EarlyStopping::EarlyStopping(EarlyStoppingSpec spec) : spec_(std::move(spec)) {
  maximize_ = monitor_maximizes(spec_.monitor, spec_.mode);
}

// Keras: min_delta = |min_delta|, negated for a decreasing monitor, and an improvement is
// monitor_op(value - min_delta, reference).
bool EarlyStopping::improves(double value, double reference) const {
  const double delta = std::abs(spec_.min_delta);
  return maximize_ ? value - delta > reference : value + delta < reference;
}

EarlyStopping::Decision EarlyStopping::on_epoch_end(int64_t epoch, std::optional<double> value) {
  Decision d;
  if (!value || epoch < spec_.start_from_epoch) return d;
  if (spec_.restore_best_weights && !has_best_weights_) {
    // "If best weights were never set, then the current weights are the best."
    d.save_best_weights = true;
    has_best_weights_ = true;
    best_epoch_ = epoch;
  }
  ++wait_;
  if (!best_ || improves(*value, *best_)) {
    best_ = *value;
    best_epoch_ = epoch;
    if (spec_.restore_best_weights) d.save_best_weights = true;
    if (!spec_.baseline || improves(*value, *spec_.baseline)) wait_ = 0;
    return d;
  }
  if (wait_ >= spec_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    d.stop = true;
  }
  return d;
}

void EarlyStopping::restore(const State& s) {
  wait_ = s.wait;
  stopped_epoch_ = s.stopped_epoch;
  best_epoch_ = s.best_epoch;
  best_ = s.best;
  has_best_weights_ = s.has_best_weights;
}

ReduceLrOnPlateau::ReduceLrOnPlateau(ReduceOnPlateauSpec spec) : spec_(std::move(spec)) {
  maximize_ = monitor_maximizes(spec_.monitor, spec_.mode);
}

std::optional<double> ReduceLrOnPlateau::on_epoch_end(std::optional<double> value,
                                                      double learning_rate) {
  if (!value) return std::nullopt;
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  // keras/src/callbacks/monitor_callback.py _is_improvement: a first value always improves
  const double delta = std::abs(spec_.min_delta);
  const bool better = !best_ || (maximize_ ? *value - delta > *best_ : *value + delta < *best_);
  if (better) {
    best_ = *value;
    wait_ = 0;
    return std::nullopt;
  }
  if (cooldown_counter_ > 0) return std::nullopt;
  ++wait_;
  if (wait_ < spec_.patience) return std::nullopt;
  // Keras compares with np.float32(min_lr)
  if (!(learning_rate > static_cast<double>(static_cast<float>(spec_.min_lr)))) return std::nullopt;
  cooldown_counter_ = spec_.cooldown;
  wait_ = 0;
  return std::max(learning_rate * spec_.factor, spec_.min_lr);
}

void ReduceLrOnPlateau::restore(const State& s) {
  wait_ = s.wait;
  cooldown_counter_ = s.cooldown_counter;
  best_ = s.best;
}

}  // namespace fg
