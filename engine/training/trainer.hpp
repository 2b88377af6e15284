// The engine behind fg::Trainer (include/fusiongraph/training.hpp): Keras's fit / evaluate over
// a TrainingPlan per batch size, the losses and metrics of engine/training/, the optimizer, the
// epoch callbacks, and checkpoints (engine/training/checkpoint.hpp).
#pragma once

#include <fusiongraph/training.hpp>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/safetensors.hpp"
#include "engine/training/epoch_callbacks.hpp"
#include "engine/training/metrics.hpp"
#include "engine/training/optimizer.hpp"
#include "engine/training/parameter_store.hpp"
#include "engine/training/training_plan.hpp"
#include "framework/compiler.hpp"
#include "framework/training_config.hpp"

namespace fg {

class Dataset;
struct Batch;

// One trained output: what its loss reads and its metrics.
struct TrainedOutput {
  OutputTraining spec;
  LossTap tap;
  std::vector<Metric> metrics;  // resolved from the first batch's shapes
  bool metrics_resolved = false;
};

// The state a checkpoint carries besides weights and optimizer slots.
struct TrainingProgress {
  int64_t epochs_done = 0;
  std::optional<EarlyStopping::State> early_stopping;
  std::optional<ReduceLrOnPlateau::State> reduce_on_plateau;
  std::optional<double> learning_rate;  // a constant rate changed by reduce-on-plateau
  std::vector<EpochResult> history;     // every epoch so far (for the curves)
};

class TrainingSession {
 public:
  TrainingSession(const std::string& graph_path, const TrainerOptions& options);
  ~TrainingSession();

  FitResult fit(const std::string& data_dir, const FitOptions& options);
  EvaluateResult evaluate(const std::string& data_dir) const;
  void save(const std::string& path) const;
  void resume(const std::string& checkpoint);

  int64_t initial_epoch() const { return progress_.epochs_done; }
  const std::vector<EpochResult>& history() const { return progress_.history; }
  WeightStore weights() const { return params_->to_weight_store(); }
  const TrainingConfig& config() const { return config_; }
  std::vector<std::string> log_names(bool with_validation) const;
  const CompiledGraph& graph() const { return *graph_; }

 private:
  struct EpochState;
  void resolve_metrics(const Batch& batch);
  TrainingPlan& plan_for(int64_t batch);
  double train_step(const Batch& batch, int64_t epoch, int64_t step_in_epoch, EpochState& state);
  double add_losses_and_metrics(const Batch& batch, TrainingPlan& plan, bool with_gradient,
                                EpochState& state);
  void copy_batch_to_plan(const Batch& batch, TrainingPlan& plan) const;
  EvaluateResult evaluate_dataset(const Dataset& data) const;
  TrainingLogs epoch_logs(const EpochState& state, const std::string& prefix) const;
  void run_epoch(const Dataset& train, int64_t epoch, const FitOptions& options,
                 EpochResult& result);
  bool end_epoch(EpochResult& result, FitResult& fit);
  void check_checkpoint_fits(const SafetensorsContents& file, const nlohmann::json& state,
                             const std::string& path) const;
  void restore_checkpoint(const SafetensorsContents& file, const nlohmann::json& state,
                          const std::string& path);

  std::shared_ptr<const CompiledGraph> graph_;
  TrainingConfig config_;
  std::vector<TrainedOutput> outputs_;
  std::unique_ptr<ParameterStore> params_;
  std::unique_ptr<Optimizer> optimizer_;
  std::optional<EarlyStopping> early_stopping_;
  std::optional<ReduceLrOnPlateau> reduce_on_plateau_;
  std::optional<WeightStore> best_weights_;
  // The last epoch's weights when the end of fit restored the best ones (what resume continues).
  std::optional<WeightStore> resume_weights_;
  TrainingProgress progress_;
  int threads_ = 1;
  uint64_t seed_ = 0;
  std::map<int64_t, std::unique_ptr<TrainingPlan>> plans_;  // by batch size (full, last)
};

}  // namespace fg
