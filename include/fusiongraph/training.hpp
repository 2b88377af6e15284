// Training with Keras's semantics: a Trainer compiles a graph with its `training:` section (loss,
// optimizer, metrics, fit settings), then fits it on a data folder, evaluates, saves a
// checkpoint that is also a plain weights file, and resumes from one. See docs/training.md.
//
//   fg::TrainerOptions options;
//   options.init_seed = 0;                         // or options.weights_file
//   fg::Trainer trainer("graphs/multimodal_fusion.yaml", options);
//   fg::FitOptions fit;
//   fit.save_path = "trained.safetensors";         // written atomically after every epoch
//   fg::FitResult result = trainer.fit("data/train", fit);
//   fg::EvaluateResult eval = trainer.evaluate("data/test");
//
// Every failure is an fg::Error; a failed step never overwrites an earlier checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/model.hpp"
#include "engine/weights.hpp"
#include "framework/registry.hpp"
#include "framework/training_config.hpp"
#include "fusiongraph.hpp"
#include "fusiongraph/data.hpp"

namespace fg {

// Values of the `training:` section that a caller (graph-runner train's flags) overrides.
struct TrainingOverrides {
  std::optional<int64_t> epochs;      // the total to reach (Keras: initial_epoch .. epochs)
  std::optional<int64_t> batch_size;  // 1 or more
  std::optional<double> learning_rate;
  std::optional<bool> shuffle;
  std::optional<uint64_t> seed;
  // Keras's validation_split, in [0, 1) (an fg::Error otherwise): 0 turns the graph's split off.
  std::optional<double> validation_split;
};

struct TrainerOptions {
  const OpRegistry* ops = nullptr;  // nullptr = the built-ins
  int threads = 0;                  // 0 = all cores, else 1..kMaxThreads
  // Initial weights: a safetensors file in Keras layouts, weights already in memory, or
  // Keras-style initialisation from a seed (default: training.seed, else 0). At most one (an
  // fg::Error otherwise). Learnt preprocessing in the file's or the store's metadata
  // (kPreprocessingMetadataKey) is loaded from either.
  std::string weights_file;
  std::optional<uint64_t> init_seed;
  std::optional<WeightStore> weights;  // weights already in memory (Keras layouts)
  TrainingOverrides overrides;
  // Tables (docs/data.md): threads that decode and preprocess batches ahead of the model (0: 2,
  // or the hardware threads when fewer); the batches do not depend on it.
  int workers = 0;
  // The precision evaluate() runs the inference plan in (CompileOptions::precision: bf16 where
  // the CPU has native bf16); training and fit's validation always run in f32.
  // Unset: int8 for an int8-quantized weights_file (`graph-runner quantize`), else f32. A
  // quantized file can be evaluated but not trained (fit and train_on_batch throw).
  std::optional<Precision> evaluate_precision;
  // When set, evaluate() runs every batch through a second plan in this precision (same weights,
  // same samples) and compares the two (EvaluateResult::against): graph-runner evaluate
  // --against. Equal to evaluate_precision is an fg::Error.
  std::optional<Precision> evaluate_against;
  std::string cache_dir;       // preprocessed shards ("" = decode every epoch)
  bool skip_bad_rows = false;  // skip rows that fail to decode (listed in skipped_rows)
};

// Keras's logs: names in Keras's order ("loss", "accuracy", ...; "val_" for validation).
using TrainingLogs = std::vector<std::pair<std::string, double>>;

struct BatchProgress {
  int64_t epoch = 0;           // from 0
  int64_t epochs = 0;          // the total
  int64_t step = 0;            // batches done in this epoch (1..steps)
  int64_t steps = 0;           // batches per epoch
  int64_t samples = 0;         // samples done in this epoch
  double elapsed_seconds = 0;  // since the epoch began
  TrainingLogs logs;           // running means over the epoch so far (training only)
};

struct EpochResult {
  int64_t epoch = 0;  // from 0 (Keras's CSVLogger column)
  int64_t epochs = 0;
  TrainingLogs logs;  // training, then validation values
  double seconds = 0;
  int64_t samples = 0;  // training samples in the epoch
  double samples_per_second = 0;
  double learning_rate = 0;  // at the end of the epoch
};

struct FitResult {
  std::vector<EpochResult> history;  // this call's epochs
  bool stopped_early = false;
  std::optional<int64_t> best_epoch;  // early stopping's, when it ran
  // skip_bad_rows: the rows left out of the training and validation tables, one message each.
  std::vector<std::string> skipped_rows;
};

// One output of the evaluate_precision plan against the same output of the evaluate_against
// plan (engine/output_difference.hpp): relative error |a - b| / max(|b|, 1e-3) over every value
// (b from the evaluate_against plan), and for outputs trained with a crossentropy the top-1
// agreement, the fraction of rows (samples; positions of a sequence output) whose class is the
// same in both: the argmax over the class axis (categorical losses), or for binary crossentropy
// each value's side of 0.5 (0 from logits).
struct OutputAgreement {
  std::string output;
  double max_relative_error = 0;
  double mean_relative_error = 0;
  std::optional<double> top1_agreement;  // none: not a classification output
};

// evaluate() with TrainerOptions::evaluate_against: the second plan's loss and metrics (the
// names of EvaluateResult::logs) and how each graph output differs, in output order.
struct PrecisionComparison {
  Precision precision = Precision::f32;  // evaluate_against
  TrainingLogs logs;
  std::vector<OutputAgreement> outputs;
  double relative_error_floor = 0;  // the eps of the relative errors (kRelativeErrorFloor)
};

struct EvaluateResult {
  Precision precision = Precision::f32;  // what the logs were computed in (evaluate_precision)
  TrainingLogs logs;
  int64_t samples = 0;
  std::vector<std::string> skipped_rows;       // skip_bad_rows: the rows left out
  std::optional<PrecisionComparison> against;  // set with TrainerOptions::evaluate_against
};

// Called by fit() on the thread that trains. Exceptions they throw stop training.
class TrainingCallback {
 public:
  virtual ~TrainingCallback() = default;
  // `names`: the log names an epoch will carry, in order (e.g. for a CSV header).
  virtual void on_train_begin(const std::vector<std::string>& names) { (void)names; }
  virtual void on_epoch_begin(int64_t epoch, int64_t epochs, int64_t steps) {
    (void)epoch, (void)epochs, (void)steps;
  }
  virtual void on_batch_end(const BatchProgress& progress) { (void)progress; }
  virtual void on_epoch_end(const EpochResult& epoch) { (void)epoch; }
  virtual void on_train_end(const FitResult& result) { (void)result; }
};

// One array of in-memory training data (a NumPy array, say): its dtype as a NumPy descr, one of
// the dtypes a .npy data file may hold ("<f4", "<f8", "<i4", "<i8"; "=" for the native order is
// accepted; other dtypes are an fg::Error, so a caller converts e.g. uint8 or bool first), its
// full shape (samples first) and C-contiguous data, which `keep` keeps alive while the data set
// is used (null `keep`: the caller keeps the data alive during fit / evaluate). Null data with
// elements is an fg::Error. Converted as the files are: f64 rounds to f32, ints become f32 for
// float inputs, i64 -> i32 for int inputs and class ids (a value outside int32 is an fg::Error).
struct HostArray {
  std::string descr;
  Dims shape;
  const void* data = nullptr;
  std::shared_ptr<const void> keep;
};

// Training data in memory (Keras's fit(x=..., y=...)): an array per graph input and one per
// output that needs targets, samples first. Checked, converted and batched exactly as the files
// of a .npy data folder (the same names, dtypes, per-sample shapes, lengths and class ids), so
// that fitting on arrays and on the folder they were saved to gives the same weights.
struct ArrayData {
  std::map<std::string, HostArray> inputs;   // by graph input name
  std::map<std::string, HostArray> targets;  // by output name
  std::string name = "arrays";               // names the data in messages ("arrays: input 'x' ...")
};

struct FitOptions {
  std::string validation_data;  // a data folder; else training.validation_split, if any
  // Validation data in memory instead (at most one of the two: an fg::Error otherwise). Its
  // messages say "validation arrays" unless it is given another name.
  std::optional<ArrayData> validation_arrays;
  // Written atomically after every epoch and at the end: weights (Keras layouts) plus the
  // training state under the reserved "__training__." prefix (docs/formats.md).
  std::string save_path;
  std::vector<TrainingCallback*> callbacks;
};

class TrainingSession;  // engine/training/trainer.hpp

class Trainer {
 public:
  Trainer(const std::string& graph_path, const TrainerOptions& options = {});
  // A graph read already (load_graph_string, an importer); its `training:` section as parsed.
  explicit Trainer(std::shared_ptr<const GraphDef> graph, const TrainerOptions& options = {});
  ~Trainer();
  Trainer(Trainer&&) noexcept;
  Trainer& operator=(Trainer&&) noexcept;

  // Trains from epoch initial_epoch() up to the configured total. Throws fg::Error (data that
  // does not fit the graph, a non-finite loss naming the epoch, step and first node).
  FitResult fit(const std::string& data_dir, const FitOptions& options = {});
  // Loss and metrics over a data folder, in inference mode (batch size: the configured one).
  EvaluateResult evaluate(const std::string& data_dir) const;
  // The same on arrays in memory (ArrayData): the same result as on the folder the arrays were
  // saved to (np.save per name), bit for bit; errors name the array ("arrays: input 'x'") where
  // the folder's name the file. The arrays are the graph's input tensors: nothing is adapted
  // (a graph with raw-input preprocessing takes them as already preprocessed, as a folder).
  // Validation: FitOptions::validation_arrays or validation_data, else the configured split.
  FitResult fit(const ArrayData& data, const FitOptions& options = {});
  EvaluateResult evaluate(const ArrayData& data) const;
  // The graph inputs of the first `max_rows` samples of a data folder or table (all of them
  // for 0), batch by batch (the configured batch size, file order), decoded and preprocessed
  // as evaluate() does: what `graph-runner quantize` calibrates on.
  void for_each_input_batch(
      const std::string& data_dir, int64_t max_rows,
      const std::function<void(const std::map<std::string, Tensor>&)>& visit) const;

  // Keras's train_on_batch: one optimizer step on in-memory tensors (inputs by input name,
  // targets by output name, batch first); returns the batch's loss and metrics. `profile`, when
  // set, gets one entry per executed step: "<node>" forward, "<node>/backward", sums.
  TrainingLogs train_on_batch(const std::map<std::string, Tensor>& inputs,
                              const std::map<std::string, Tensor>& targets,
                              std::vector<StepTiming>* profile = nullptr);
  // As Session::input_shapes / synthetic_inputs, for this graph.
  std::map<std::string, Dims> input_shapes(
      int64_t batch, const std::map<std::string, std::vector<int64_t>>& null_dims = {}) const;
  std::map<std::string, Tensor> synthetic_inputs(const std::map<std::string, Dims>& shapes,
                                                 uint64_t seed = 1) const;
  int threads() const;
  // Targets that fit the trained outputs for these inputs (one-hot / class ids of sample
  // i % classes, 0.5 for regression losses), for benchmarks and smoke tests.
  std::map<std::string, Tensor> synthetic_targets(
      const std::map<std::string, Tensor>& inputs) const;
  // Estimated FLOPs of one training step at these inputs' shapes (forward + 2x forward for the
  // backward); 0 until a step at those shapes ran.
  double step_flops(const std::map<std::string, Tensor>& inputs);

  // Weights + training state, atomically (see FitOptions::save_path).
  void save(const std::string& path) const;
  // Restores weights and training state from a checkpoint written by save(). Throws fg::Error
  // for a file that is not a checkpoint of this graph (naming the weight that does not match).
  void resume(const std::string& checkpoint);

  // Changes epochs, batch_size, shuffle and validation_split for the next fit / evaluate (each
  // given value replaces the current one, those not given return to the graph's values); the
  // weights, optimizer state and epochs done stay (a Keras model's second fit call). The
  // learning rate and the seed are fixed when the trainer is made: giving them is an fg::Error.
  void set_fit_overrides(const TrainingOverrides& overrides);
  // Changes TrainerOptions' workers, cache_dir and skip_bad_rows for the next fit / evaluate
  // (same rules; fg::Error for workers outside 0..kMaxThreads); nothing else changes.
  void set_data_options(int workers, const std::string& cache_dir, bool skip_bad_rows);

  int64_t initial_epoch() const;  // epochs done so far (0, or the checkpoint's)
  // Every epoch trained so far, the checkpoint's included (for learning curves on resume).
  const std::vector<EpochResult>& history() const;
  WeightStore weights() const;           // current weights, Keras layouts
  const TrainingConfig& config() const;  // after the overrides
  // The graph's raw-input preprocessing with what this trainer learnt (vocabularies and class
  // lists adapted from a training table, or read from the initial weights / checkpoint).
  RawInputs raw_inputs() const;
  std::vector<std::string> log_names(bool with_validation) const;

 private:
  std::unique_ptr<TrainingSession> impl_;
};

}  // namespace fg

// The callbacks graph-runner train uses (Keras's progress bar, CSVLogger, learning curves).
#include "engine/training/progress_bar.hpp"
#include "engine/training/training_log.hpp"
