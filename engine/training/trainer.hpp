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
class Preprocessors;

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
  TrainingSession(std::shared_ptr<const GraphDef> graph, const TrainerOptions& options);
  ~TrainingSession();

  FitResult fit(const std::string& data_dir, const FitOptions& options);
  EvaluateResult evaluate(const std::string& data_dir) const;
  // The same on arrays in memory (open_array_data): the tensors as the graph takes them, so
  // nothing is adapted.
  FitResult fit(const ArrayData& data, const FitOptions& options);
  EvaluateResult evaluate(const ArrayData& data) const;
  // Keras's train_on_batch: one optimizer step on in-memory tensors (inputs by input name,
  // targets by output name); the step's logs. `profile`: per-step timings (TrainingPlan).
  TrainingLogs train_on_batch(const std::map<std::string, Tensor>& inputs,
                              const std::map<std::string, Tensor>& targets,
                              std::vector<StepTiming>* profile = nullptr);
  // Targets that fit the trained outputs for these inputs (one-hot or class ids of sample i %
  // classes, 0.5 for regression), for benchmarks.
  std::map<std::string, Tensor> synthetic_targets(
      const std::map<std::string, Tensor>& inputs) const;
  // The estimated FLOPs of one training step at these inputs' shapes (0 before a step ran).
  double step_flops(const std::map<std::string, Tensor>& inputs);
  void save(const std::string& path) const;
  void for_each_input_batch(
      const std::string& data_dir, int64_t max_rows,
      const std::function<void(const std::map<std::string, Tensor>&)>& visit) const;
  void resume(const std::string& checkpoint);
  // Trainer::set_fit_overrides: epochs, batch size, shuffle and validation split anew.
  void set_fit_overrides(const TrainingOverrides& overrides);
  // Trainer::set_data_options: the table pipeline's settings anew.
  void set_data_options(int workers, const std::string& cache_dir, bool skip_bad_rows);

  int64_t initial_epoch() const { return progress_.epochs_done; }
  const std::vector<EpochResult>& history() const { return progress_.history; }
  WeightStore weights() const { return params_->to_weight_store(); }
  const TrainingConfig& config() const { return config_; }
  std::vector<std::string> log_names(bool with_validation) const;
  const CompiledGraph& graph() const { return *graph_; }
  int threads() const { return threads_; }
  // The graph's preprocessing with what was learnt (adapted, or read from the weights).
  const Preprocessors& preprocessors() const { return *preprocessors_; }

 private:
  // Running means of one pass over the data (an epoch, or an evaluation).
  struct EpochState {
    MeanAccumulator loss;
    std::vector<MeanAccumulator> output_losses;
    std::vector<std::vector<MeanAccumulator>> metrics;  // per output, per metric
    int64_t samples = 0;

    explicit EpochState(const std::vector<TrainedOutput>& outputs)
        : output_losses(outputs.size()), metrics(outputs.size()) {
      for (size_t k = 0; k < outputs.size(); ++k) metrics[k].resize(outputs[k].spec.metrics.size());
    }
  };
  void resolve_metrics(const Batch& batch);
  TrainingPlan& plan_for(const Batch& batch);
  double train_step(const Batch& batch, int64_t epoch, int64_t step_in_epoch, EpochState& state);
  double add_losses_and_metrics(const Batch& batch, TrainingPlan& plan, bool with_gradient,
                                EpochState& state);
  void copy_batch_to_plan(const Batch& batch, TrainingPlan& plan) const;
  void refuse_int8_training() const;
  // Validation during fit runs in f32; evaluate() in TrainerOptions::evaluate_precision.
  EvaluateResult evaluate_dataset(const Dataset& data, Precision precision = Precision::f32,
                                  std::optional<Precision> against = std::nullopt) const;
  void add_batch_logs(const Batch& batch, const std::map<std::string, Tensor>& outs,
                      EpochState& state) const;
  TrainingLogs epoch_logs(const EpochState& state, const std::string& prefix) const;
  // fit's body, for every kind of training data: the validation data (FitOptions, else the
  // split of `all`), the epochs, the checkpoints.
  FitResult fit_dataset(const Dataset& all, const FitOptions& options);
  std::optional<Dataset> open_validation(const FitOptions& options) const;
  void run_epoch(const Dataset& train, int64_t epoch, const FitOptions& options,
                 EpochResult& result);
  bool end_epoch(EpochResult& result, FitResult& fit);
  void check_monitors(bool validation) const;
  void check_checkpoint_fits(const SafetensorsContents& file, const nlohmann::json& state,
                             const std::string& path) const;
  void restore_checkpoint(const SafetensorsContents& file, const nlohmann::json& state,
                          const std::string& path);
  // Learns vocabularies and class lists from the training table when the graph asks for it.
  void adapt_preprocessing(const std::string& data_path);
  void check_vocabulary_fits() const;
  // `cache_part`: a sub-folder of the cache (the validation table's), "" = the cache itself.
  Dataset open_data(const std::string& path, const std::string& cache_part = "") const;
  Dataset open_arrays(const ArrayData& data) const;
  std::vector<OutputTraining> output_specs() const;

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
  Precision evaluate_precision_ = Precision::f32;
  std::optional<Precision> evaluate_against_;
  // The int8 nodes of a quantized weights file (evaluate runs them; fit refuses them). The
  // parameters hold their dequantized kernels.
  std::map<std::string, Int8Node> int8_nodes_;
  int workers_ = 1;  // batch decode threads (BatchPrefetcher)
  std::string cache_dir_;
  bool skip_bad_rows_ = false;
  std::shared_ptr<Preprocessors> preprocessors_;
  uint64_t seed_ = 0;
  std::vector<StepTiming>* profile_ = nullptr;  // train_on_batch's, while it runs
  std::map<std::vector<Dims>, std::unique_ptr<TrainingPlan>> plans_;  // by input shapes
};

}  // namespace fg
