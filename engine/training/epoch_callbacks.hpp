// Keras 3's EarlyStopping and ReduceLROnPlateau (keras/src/callbacks/) as small state machines
// fed once per epoch with the monitored value. They decide; the trainer acts (copies the best
// weights, stops, sets the learning rate). Their state is plain numbers, for checkpoints.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "framework/training_config.hpp"

namespace fg {

class EarlyStopping {
 public:
  explicit EarlyStopping(EarlyStoppingSpec spec);

  struct Decision {
    bool save_best_weights = false;  // copy the current weights: they are the best so far
    bool stop = false;               // stop training after this epoch
  };
  // `epoch` counts from 0; `value` is the monitored log entry (none: not logged this epoch).
  // Keras 3 (early_stopping.py on_epoch_end): skipped before start_from_epoch; wait += 1; an
  // improvement (first value, or value - min_delta beats best in the mode's direction) records
  // the best and resets wait only if the baseline is beaten too; else stop once
  // wait >= patience and epoch > 0.
  Decision on_epoch_end(int64_t epoch, std::optional<double> value);
  // Keras restores at the end of training (on_train_end) when restore_best_weights is set and
  // best weights were saved.
  bool restore_at_end() const { return spec_.restore_best_weights && has_best_weights_; }

  bool maximizes() const { return maximize_; }
  struct State {
    int64_t wait = 0;
    int64_t stopped_epoch = 0;
    int64_t best_epoch = 0;
    std::optional<double> best;
    bool has_best_weights = false;
  };
  State state() const { return {wait_, stopped_epoch_, best_epoch_, best_, has_best_weights_}; }
  void restore(const State& s);

 private:
  bool improves(double value, double reference) const;

  EarlyStoppingSpec spec_;
  bool maximize_ = false;
  int64_t wait_ = 0, stopped_epoch_ = 0, best_epoch_ = 0;
  std::optional<double> best_;
  bool has_best_weights_ = false;
};

class ReduceLrOnPlateau {
 public:
  explicit ReduceLrOnPlateau(ReduceOnPlateauSpec spec);

  // Keras 3 (reduce_lr_on_plateau.py on_epoch_end): in cooldown, count it down and reset wait;
  // an improvement (a first value, or one that beats best by more than min_delta) resets wait;
  // otherwise, out of
  // cooldown, wait += 1 and at patience, if lr > min_lr, lr = max(lr * factor, min_lr), start
  // the cooldown and reset wait. Returns the new rate when it changes.
  std::optional<double> on_epoch_end(std::optional<double> value, double learning_rate);

  bool maximizes() const { return maximize_; }
  struct State {
    int64_t wait = 0;
    int64_t cooldown_counter = 0;
    std::optional<double> best;
  };
  State state() const { return {wait_, cooldown_counter_, best_}; }
  void restore(const State& s);

 private:
  ReduceOnPlateauSpec spec_;
  bool maximize_ = false;
  int64_t wait_ = 0, cooldown_counter_ = 0;
  std::optional<double> best_;
};

// Keras 3's "auto" direction (keras/src/callbacks/monitor_callback.py, shared by EarlyStopping
// and ReduceLROnPlateau): a loss decreases; a metric follows its _direction: accuracies increase,
// mse / mae decrease. (Older Keras ReduceLROnPlateau looked for "acc" in the name: the same
// answers for FusionGraph's metrics.)
bool monitor_maximizes(const std::string& monitor, MonitorMode mode);

}  // namespace fg
