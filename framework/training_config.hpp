// The `training:` section of a graph file: loss, optimizer, learning-rate schedule, metrics and
// fit settings with Keras 3's names and defaults. Parsing validates everything that the section
// alone decides (keys, types, ranges, combinations) and points at the offending value;
// resolve_training_outputs() then checks the section against a compiled graph (losses for outputs
// that exist and fit them). Groundwork for training: nothing here runs a step (docs/training.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framework/error.hpp"
#include "framework/graph_def.hpp"

namespace fg {

class CompiledGraph;

enum class LossKind {
  categorical_crossentropy,
  sparse_categorical_crossentropy,
  binary_crossentropy,
  mean_squared_error,
  mean_absolute_error,
  huber,
};

// One loss with its Keras arguments. Written as a name (`mse`) or as a mapping
// (`{name: categorical_crossentropy, from_logits: true, label_smoothing: 0.1}`).
struct LossSpec {
  LossKind kind = LossKind::mean_squared_error;
  std::string name;              // as written: "mse" and "mean_squared_error" are both kept
  bool from_logits = false;      // crossentropies
  double label_smoothing = 0.0;  // categorical and binary crossentropy, in [0, 1]
  double delta = 1.0;            // huber
  SourceLoc loc;
};

// A metric as written: a name, or `{name: top_k_categorical_accuracy, k: 3}` /
// `{name: binary_accuracy, threshold: 0.7}`. `accuracy` / `acc` stay as written here: they are
// resolved from the target and prediction shapes when data arrives (engine/training/metrics.hpp).
struct MetricSpec {
  std::string name;  // canonical: "accuracy", "categorical_accuracy", "mse", ... ("acc" ->
                     // "accuracy", "mean_squared_error" -> "mse", "mean_absolute_error" -> "mae")
  std::string written;  // as written, for the logs' column names (Keras names metrics as written)
  int64_t k = 5;        // top_k_categorical_accuracy (Keras default 5)
  double threshold = 0.5;  // binary_accuracy (Keras default 0.5)
  SourceLoc loc;
};

enum class ScheduleKind { constant, exponential_decay, cosine_decay, piecewise_constant };

// `learning_rate:` a number, or a mapping with one key naming the schedule:
//   {exponential_decay: {initial_learning_rate, decay_steps, decay_rate, staircase}}
//   {cosine_decay: {initial_learning_rate, decay_steps, alpha, warmup_target, warmup_steps}}
//   {piecewise_constant: {boundaries, values}}
struct LearningRateSpec {
  ScheduleKind kind = ScheduleKind::constant;
  double value = 0.001;  // constant
  double initial_learning_rate = 0.0;
  int64_t decay_steps = 0;
  double decay_rate = 0.0;
  bool staircase = false;
  double alpha = 0.0;
  std::optional<double> warmup_target;
  int64_t warmup_steps = 0;
  std::vector<int64_t> boundaries;
  std::vector<double> values;
  SourceLoc loc;
};

enum class OptimizerKind { adam, adamw, sgd, rmsprop, adagrad };

// An optimizer with every Keras 3 argument FusionGraph implements. Defaults are Keras 3's
// (keras/src/optimizers/<name>.py); weight_decay is unset (Keras None) except for AdamW (0.004).
struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::adam;
  std::string name = "adam";
  LearningRateSpec learning_rate;          // default 0.001, SGD 0.01
  double beta_1 = 0.9, beta_2 = 0.999;     // adam, adamw
  double epsilon = 1e-7;                   // adam, adamw, rmsprop, adagrad
  bool amsgrad = false;                    // adam, adamw
  double momentum = 0.0;                   // sgd, rmsprop
  bool nesterov = false;                   // sgd
  double rho = 0.9;                        // rmsprop
  bool centered = false;                   // rmsprop
  double initial_accumulator_value = 0.1;  // adagrad
  std::optional<double> weight_decay;      // decoupled: w -= w * weight_decay * lr
  std::optional<double> clipnorm, clipvalue, global_clipnorm;  // at most one
  // Regular expressions searched (Keras: re.search) in each weight's parameter name ("bias")
  // and full key ("dense_1.bias"); a weight that matches is not decayed.
  std::vector<std::string> exclude_from_weight_decay;
  std::vector<SourceLoc> exclude_locs;
  SourceLoc loc;
};

enum class MonitorMode { auto_mode, min, max };

// keras.callbacks.ReduceLROnPlateau's arguments and defaults (Keras 3).
struct ReduceOnPlateauSpec {
  std::string monitor = "val_loss";
  double factor = 0.1;
  int64_t patience = 10;
  MonitorMode mode = MonitorMode::auto_mode;
  double min_delta = 1e-4;
  int64_t cooldown = 0;
  double min_lr = 0.0;
  SourceLoc loc, monitor_loc;
};

// keras.callbacks.EarlyStopping's arguments and defaults (Keras 3).
struct EarlyStoppingSpec {
  std::string monitor = "val_loss";
  double min_delta = 0.0;
  int64_t patience = 0;
  MonitorMode mode = MonitorMode::auto_mode;
  std::optional<double> baseline;
  bool restore_best_weights = false;
  int64_t start_from_epoch = 0;
  SourceLoc loc, monitor_loc;
};

struct TrainingConfig {
  // Either one loss for every output (`loss: mse`), or one per output name.
  std::optional<LossSpec> loss;
  std::vector<std::pair<std::string, LossSpec>> output_losses;
  std::vector<SourceLoc> output_loss_locs;  // where each output name's loss is
  // loss_weights: a mapping output -> weight, or a list in the graph's output order.
  std::vector<std::pair<std::string, double>> loss_weights;
  std::vector<double> loss_weight_list;
  SourceLoc loss_weights_loc;
  OptimizerSpec optimizer;
  // metrics: a list for every output, or a mapping output -> list.
  std::vector<MetricSpec> metrics;
  std::vector<std::pair<std::string, std::vector<MetricSpec>>> output_metrics;
  std::vector<SourceLoc> output_metric_locs;
  int64_t batch_size = 32;  // Keras fit's defaults
  int64_t epochs = 1;
  bool shuffle = true;
  std::optional<int64_t> seed;
  double validation_split = 0.0;
  std::optional<ReduceOnPlateauSpec> reduce_on_plateau;
  std::optional<EarlyStoppingSpec> early_stopping;
  SourceLoc loc;
};

// Parses and validates a `training:` mapping. Throws fg::Error at the offending value.
TrainingConfig parse_training_config(const Value& section);

// One graph output's share of the training objective.
struct OutputTraining {
  std::string output;
  int tensor = -1;               // tensor id in the compiled graph
  std::optional<LossSpec> loss;  // none: the output is not trained (Keras: a loss dict may
                                 // leave outputs out)
  double loss_weight = 1.0;
  std::vector<MetricSpec> metrics;
};

// Checks the section against the graph: every output named by a loss, a loss weight or a metric
// exists, some output gets a loss, each loss fits its output (a float output; a class axis of
// at least 2 for categorical losses), exclude_from_weight_decay patterns match some weight, and
// monitors name a logged value. Returns one entry per graph output, in output order.
std::vector<OutputTraining> resolve_training_outputs(const TrainingConfig& config,
                                                     const CompiledGraph& graph);

// The names the logs carry for the resolved outputs, as Keras: "loss" and each metric's written
// name for one output; "loss", "<output>_loss" and "<output>_<metric>" for several.
std::vector<std::string> logged_names(const std::vector<OutputTraining>& outputs);

std::string loss_kind_name(LossKind kind);  // the canonical Keras name
std::string optimizer_kind_name(OptimizerKind kind);

}  // namespace fg
