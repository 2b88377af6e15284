#include "engine/training/trainer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "engine/data/batch_prefetcher.hpp"
#include "engine/data/preprocessors.hpp"
#include "engine/data/table.hpp"
#include "engine/data/table_source.hpp"
#include "engine/model.hpp"
#include "engine/output_difference.hpp"
#include "engine/scoped_flush_denormals.hpp"
#include "engine/scoped_omp_threads.hpp"
#include "engine/training/dataset.hpp"
#include "engine/training/losses.hpp"
#include "framework/yaml_loader.hpp"
#include "fusiongraph/fusiongraph.hpp"
#include "layers/registry.hpp"

namespace fg {
namespace {

constexpr int kMaxTrainingThreads = 1024;

TrainingConfig config_of(const GraphDef& def, const TrainingOverrides& o) {
  if (!def.training)
    throw Error("the graph has no `training:` section")
        .in_file(def.file)
        .hint(
            "add one (docs/training.md), e.g.\n  training:\n    loss: "
            "categorical_crossentropy\n    optimizer: adam\n    metrics: [accuracy]");
  TrainingConfig c = parse_training_config(*def.training);
  if (o.epochs) {
    if (*o.epochs < 1) throw Error(fmt::format("epochs must be 1 or more, got {}", *o.epochs));
    c.epochs = *o.epochs;
  }
  if (o.batch_size) {
    if (*o.batch_size < 1)
      throw Error(fmt::format("the batch size must be 1 or more, got {}", *o.batch_size));
    c.batch_size = *o.batch_size;
  }
  if (o.learning_rate) {
    if (!(*o.learning_rate > 0) || !std::isfinite(*o.learning_rate))
      throw Error(
          fmt::format("the learning rate must be a positive number, got {}", *o.learning_rate));
    c.optimizer.learning_rate = LearningRateSpec{};
    c.optimizer.learning_rate.value = *o.learning_rate;
  }
  if (o.shuffle) c.shuffle = *o.shuffle;
  if (o.seed) c.seed = static_cast<int64_t>(*o.seed);
  if (o.validation_split) {
    if (!(*o.validation_split >= 0.0 && *o.validation_split < 1.0))
      throw Error(fmt::format("validation_split must be in [0, 1) (0: no split), got {}",
                              *o.validation_split));
    c.validation_split = *o.validation_split;
  }
  return c;
}

// True when the loss takes the logits of the producer's final softmax / sigmoid (the fused
// step of Keras's TensorFlow backend): a crossentropy on probabilities, the producer ending in
// the matching activation, and no other reader of the probabilities.
bool fuses_with_logits(const CompiledGraph& graph, const LossSpec& loss, int tensor) {
  if (loss.from_logits) return false;
  const int producer = graph.tensors()[tensor].producer;
  if (producer < 0) return false;
  const std::string act = graph.nodes()[producer].op->traits().final_activation;
  const bool softmax_loss = loss.kind == LossKind::categorical_crossentropy ||
                            loss.kind == LossKind::sparse_categorical_crossentropy;
  const bool fits = (softmax_loss && act == "softmax") ||
                    (loss.kind == LossKind::binary_crossentropy && act == "sigmoid");
  if (!fits) return false;
  for (const CompiledNode& n : graph.nodes())
    for (int t : n.inputs)
      if (t == tensor) return false;
  return true;
}

// Probabilities from logits over the last axis (softmax) or elementwise (sigmoid), for metrics.
void probabilities_from_logits(const std::string& act, const float* logits, int64_t n, int64_t last,
                               std::vector<float>& out) {
  out.resize(static_cast<size_t>(n));
  if (act == "sigmoid") {
    for (int64_t i = 0; i < n; ++i) out[i] = 1.f / (1.f + std::exp(-logits[i]));
    return;
  }
  for (int64_t r = 0; r < n / last; ++r) {
    const float* z = logits + r * last;
    float m = z[0];
    for (int64_t c = 1; c < last; ++c) m = std::max(m, z[c]);
    double s = 0;
    for (int64_t c = 0; c < last; ++c) s += std::exp(static_cast<double>(z[c] - m));
    for (int64_t c = 0; c < last; ++c)
      out[r * last + c] = static_cast<float>(std::exp(static_cast<double>(z[c] - m)) / s);
  }
}

bool is_sparse(const LossSpec& loss) {
  return loss.kind == LossKind::sparse_categorical_crossentropy;
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::optional<double> find_log(const TrainingLogs& logs, const std::string& name) {
  for (const auto& [k, v] : logs)
    if (k == name) return v;
  return std::nullopt;
}

// The first parameter whose gradient holds a NaN or an Inf (x * 0 is NaN exactly for those),
// or nullptr: one vectorised pass over the gradients.
const Parameter* first_non_finite_gradient(const std::vector<Parameter>& params, int threads) {
  for (const Parameter& p : params) {
    const auto n = static_cast<int64_t>(p.size);
    const float* g = p.gradient;
    float probe = 0.f;
#pragma omp parallel for num_threads(threads) reduction(+ : probe) schedule(static)
    for (int64_t i = 0; i < n; ++i) probe += g[i] * 0.f;
    if (probe != 0.f || std::isnan(probe)) return &p;
  }
  return nullptr;
}

Error non_finite_error(const std::string& what, int64_t epoch, int64_t step_in_epoch,
                       const std::string& where) {
  return Error(
             fmt::format("{} at epoch {}, step {}: {}", what, epoch + 1, step_in_epoch + 1, where))
      .hint(
          "lower the learning rate, check the data for NaN or Inf, or clip gradients "
          "(optimizer: {clipnorm: 1.0}); the last checkpoint was not overwritten");
}

// The initial weights: the file, the weights in memory, or Keras-style ones from the seed.
WeightStore initial_weights(const CompiledGraph& graph, const TrainerOptions& options,
                            uint64_t config_seed) {
  if (!options.weights_file.empty()) return WeightStore::load_safetensors(options.weights_file);
  if (options.weights) return *options.weights;
  return WeightStore::initialize(graph, options.init_seed.value_or(config_seed));
}

}  // namespace

TrainingSession::TrainingSession(std::shared_ptr<const GraphDef> def,
                                 const TrainerOptions& options) {
  if (options.threads < 0 || options.threads > kMaxTrainingThreads)
    throw Error(fmt::format("threads must be 0 (all cores) or 1..{}, got {}", kMaxTrainingThreads,
                            options.threads));
  threads_ = options.threads == 0 ? omp_get_num_procs() : options.threads;
  evaluate_against_ = options.evaluate_against;
  const int weight_sources = (options.weights_file.empty() ? 0 : 1) + (options.init_seed ? 1 : 0) +
                             (options.weights ? 1 : 0);
  if (weight_sources > 1)
    throw Error(
        "TrainerOptions: give the initial weights as a file, a seed or weights in memory, not "
        "more than one (weights_file, init_seed, weights)");
  const OpRegistry builtins = options.ops ? OpRegistry() : builtin_ops();
  graph_ = std::make_shared<const CompiledGraph>(
      compile_graph(def, options.ops ? *options.ops : builtins));
  config_ = config_of(*def, options.overrides);
  seed_ = config_.seed ? static_cast<uint64_t>(*config_.seed) : 0;
  for (const OutputTraining& o : resolve_training_outputs(config_, *graph_)) {
    if (!o.loss) continue;
    TrainedOutput t{o, {o.tensor, fuses_with_logits(*graph_, *o.loss, o.tensor)}, {}, false};
    outputs_.push_back(std::move(t));
  }
  set_data_options(options.workers, options.cache_dir, options.skip_bad_rows);
  preprocessors_ = std::make_shared<Preprocessors>(Preprocessors::for_graph(*def));
  WeightStore initial = initial_weights(*graph_, options, seed_);
  int8_nodes_ = initial.int8_nodes();
  for (const auto& [node, int8] : int8_nodes_)
    initial.set(node + ".kernel", int8.dequantized_kernel());
  evaluate_precision_ =
      options.evaluate_precision.value_or(int8_nodes_.empty() ? Precision::f32 : Precision::int8);
  auto state = initial.metadata().find(kPreprocessingMetadataKey);
  if (state != initial.metadata().end()) {
    preprocessors_->load_state_json(
        state->second,
        options.weights ? "the initial weights (TrainerOptions::weights)" : options.weights_file);
    check_vocabulary_fits();
  }
  params_ = std::make_unique<ParameterStore>(*graph_, initial);
  optimizer_ = std::make_unique<Optimizer>(config_.optimizer);
  if (config_.early_stopping) early_stopping_.emplace(*config_.early_stopping);
  if (config_.reduce_on_plateau) reduce_on_plateau_.emplace(*config_.reduce_on_plateau);
}

TrainingSession::~TrainingSession() = default;

void TrainingSession::set_data_options(int workers, const std::string& cache_dir,
                                       bool skip_bad_rows) {
  if (workers < 0 || workers > kMaxTrainingThreads)
    throw Error(fmt::format("workers must be 0 (the default) or 1..{}, got {}", kMaxTrainingThreads,
                            workers));
  workers_ = workers == 0 ? default_data_workers() : workers;
  cache_dir_ = cache_dir;
  skip_bad_rows_ = skip_bad_rows;
}

void TrainingSession::set_fit_overrides(const TrainingOverrides& overrides) {
  if (overrides.learning_rate || overrides.seed)
    throw Error("the learning rate and the seed are set when the trainer is made, not per fit")
        .hint("give them in TrainerOptions::overrides (graph-runner train --learning-rate --seed)");
  const TrainingConfig fresh = config_of(graph_->def(), overrides);  // checks every value
  config_.epochs = fresh.epochs;
  config_.batch_size = fresh.batch_size;
  config_.shuffle = fresh.shuffle;
  config_.validation_split = fresh.validation_split;
}

std::vector<std::string> TrainingSession::log_names(bool with_validation) const {
  std::vector<std::string> names;  // as the epochs' logs name them
  for (const auto& [name, value] : epoch_logs(EpochState(outputs_), "")) names.push_back(name);
  if (with_validation) {
    const size_t n = names.size();
    for (size_t i = 0; i < n; ++i) names.push_back("val_" + names[i]);
  }
  return names;
}

// The plan for a batch's input shapes (the data fixes null dims); the full batch's and the last
// partial batch's plans are kept.
TrainingPlan& TrainingSession::plan_for(const Batch& batch) {
  std::vector<Dims> shapes;
  const auto& inputs = graph_->def().inputs;
  for (const InputDef& in : inputs) shapes.push_back(batch.input(in.name)->shape());
  auto it = plans_.find(shapes);
  if (it != plans_.end()) return *it->second;
  if (plans_.size() >= 2) plans_.erase(plans_.begin());
  std::vector<LossTap> taps;
  for (const auto& o : outputs_) taps.push_back(o.tap);
  TrainingPlanOptions po;
  po.threads = threads_;
  po.seed = seed_;
  auto plan = std::make_unique<TrainingPlan>(*graph_, shapes, taps, *params_, po);
  return *plans_.emplace(shapes, std::move(plan)).first->second;
}

void TrainingSession::resolve_metrics(const Batch& batch) {
  for (TrainedOutput& o : outputs_) {
    if (o.metrics_resolved) continue;
    const Dims& pred = graph_->tensors()[o.spec.tensor].type.shape;
    const Tensor& target = *batch.target(o.spec.output);
    Dims pred_shape = pred;
    pred_shape[0] = target.shape()[0];
    for (const MetricSpec& m : o.spec.metrics)
      o.metrics.emplace_back(m, resolve_metric(m.name, pred_shape, target.shape()));
    o.metrics_resolved = true;
  }
}

void TrainingSession::copy_batch_to_plan(const Batch& batch, TrainingPlan& plan) const {
  const auto& inputs = graph_->def().inputs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = *batch.input(inputs[i].name);
    std::memcpy(plan.input(i), t.raw(), t.bytes());
  }
}

// Losses (and their gradients when asked) and metrics of one batch in `plan`; returns the
// batch's total loss (the weighted sum over outputs).
double TrainingSession::add_losses_and_metrics(const Batch& batch, TrainingPlan& plan,
                                               bool with_gradient, EpochState& state) {
  double total = 0;
  const int64_t n = plan.batch();
  std::vector<float> probabilities;
  for (size_t k = 0; k < outputs_.size(); ++k) {
    TrainedOutput& o = outputs_[k];
    const Tensor& target = *batch.target(o.spec.output);
    const TensorType& type = plan.prediction_type(k);
    LossInput in;
    in.prediction = plan.prediction(k);
    in.shape = type.shape;
    in.output = o.spec.output;
    in.prediction_is_logits = o.tap.logits;
    if (is_sparse(*o.spec.loss)) {
      in.ids = target.data<int32_t>();
      in.ids_shape = target.shape();
    } else {
      in.target = target.data<float>();
    }
    float* gradient = with_gradient ? plan.prediction_gradient(k) : nullptr;
    const double loss = compute_loss(*o.spec.loss, in, gradient);
    if (gradient != nullptr && o.spec.loss_weight != 1.0) {
      const size_t size = static_cast<size_t>(num_elements(type.shape));
      for (size_t i = 0; i < size; ++i) gradient[i] *= static_cast<float>(o.spec.loss_weight);
    }
    total += o.spec.loss_weight * loss;
    state.output_losses[k].add(loss * n, static_cast<double>(n));
    MetricInput mi;
    mi.prediction = in.prediction;
    if (o.tap.logits) {
      const std::string act =
          graph_->nodes()[graph_->tensors()[o.tap.tensor].producer].op->traits().final_activation;
      probabilities_from_logits(act, in.prediction, num_elements(type.shape), type.shape.back(),
                                probabilities);
      mi.prediction = probabilities.data();
    }
    mi.shape = type.shape;
    mi.target = in.target;
    mi.ids = in.ids;
    mi.ids_shape = in.ids_shape;
    mi.output = o.spec.output;
    for (size_t m = 0; m < o.metrics.size(); ++m) {
      o.metrics[m].reset();
      o.metrics[m].update(mi);
      state.metrics[k][m].add(o.metrics[m].accumulator().total, o.metrics[m].accumulator().count);
    }
  }
  state.loss.add(total * n, static_cast<double>(n));
  state.samples += n;
  return total;
}

TrainingLogs TrainingSession::epoch_logs(const EpochState& state, const std::string& prefix) const {
  TrainingLogs logs{{prefix + "loss", state.loss.result()}};
  // Keras (and logged_names, which monitors are checked against): names carry the output's name
  // when the model has several outputs, even if only one of them has a loss.
  const bool several = graph_->def().outputs.size() > 1;
  for (size_t k = 0; k < outputs_.size(); ++k) {
    const TrainedOutput& o = outputs_[k];
    if (several)
      logs.push_back({prefix + o.spec.output + "_loss", state.output_losses[k].result()});
    for (size_t m = 0; m < o.spec.metrics.size(); ++m) {
      const std::string name = o.spec.metrics[m].written;
      const double v = m < state.metrics[k].size() ? state.metrics[k][m].result() : 0.0;
      logs.push_back({prefix + (several ? o.spec.output + "_" + name : name), v});
    }
  }
  return logs;
}

// One optimizer step on one batch: forward, losses, backward, then (gradients complete: the
// optimizer's gradient hook is where a data-parallel all-reduce goes) the update.
double TrainingSession::train_step(const Batch& batch, int64_t epoch, int64_t step_in_epoch,
                                   EpochState& state) {
  TrainingPlan& plan = plan_for(batch);
  resolve_metrics(batch);
  copy_batch_to_plan(batch, plan);
  const int64_t step = optimizer_->iterations();
  plan.forward(step);
  const double loss = add_losses_and_metrics(batch, plan, /*with_gradient=*/true, state);
  if (!std::isfinite(loss)) {
    std::string where = plan.find_non_finite(step);
    if (where.empty()) where = "every node's output is finite: the loss itself is not (targets?)";
    throw non_finite_error(fmt::format("the loss is {}", loss), epoch, step_in_epoch, where);
  }
  plan.backward(step);
  // The gradients are complete here: Optimizer's gradient hook (a data-parallel all-reduce)
  // runs first inside step().
  const auto update_start = Clock::now();
  {
    const ScopedOmpThreads scoped_threads(threads_);
    std::vector<Parameter> trainable = params_->trainable_parameters();
    // A finite loss can still come with NaN gradients (a NaN input that a ReLU hides in the
    // forward): stop before the optimizer spreads it into the weights.
    if (const Parameter* bad = first_non_finite_gradient(trainable, threads_)) {
      std::string where = plan.find_non_finite(step);
      if (where.empty()) where = "no step's output or gradient is (a weight's gradient sum?)";
      throw non_finite_error(fmt::format("the gradient of weight '{}' holds NaN or Inf", bad->name),
                             epoch, step_in_epoch, where);
    }
    optimizer_->step(trainable);
  }
  if (profile_ != nullptr) {
    StepTiming t;
    t.name = "optimizer";
    t.op = config_.optimizer.name;
    t.impl = "(plain C++)";
    t.duration_ms = 1e3 * seconds_since(update_start);
    profile_->push_back(std::move(t));
  }
  return loss;
}

void TrainingSession::run_epoch(const Dataset& train, int64_t epoch, const FitOptions& options,
                                EpochResult& result) {
  const int64_t n = train.size(), batch = config_.batch_size;
  const int64_t steps = (n + batch - 1) / batch;
  for (TrainingCallback* cb : options.callbacks) cb->on_epoch_begin(epoch, config_.epochs, steps);
  EpochState state(outputs_);
  const auto start = Clock::now();
  // Batches are gathered (tables: decoded) ahead on the workers, in the epoch's order.
  BatchPrefetcher batches(train, epoch_order(n, seed_, epoch, config_.shuffle), batch, workers_);
  for (int64_t s = 0; s < steps; ++s) {
    train_step(*batches.next(), epoch, s, state);
    BatchProgress progress{epoch,
                           config_.epochs,
                           s + 1,
                           steps,
                           state.samples,
                           seconds_since(start),
                           epoch_logs(state, "")};
    for (TrainingCallback* cb : options.callbacks) cb->on_batch_end(progress);
  }
  result.epoch = epoch;
  result.epochs = config_.epochs;
  result.logs = epoch_logs(state, "");
  result.seconds = seconds_since(start);
  result.samples = state.samples;
  result.samples_per_second = result.seconds > 0 ? state.samples / result.seconds : 0;
}

// Early stopping and reduce-on-plateau after an epoch; true when training stops.
bool TrainingSession::end_epoch(EpochResult& result, FitResult& fit) {
  bool stop = false;
  if (reduce_on_plateau_) {
    auto lr = reduce_on_plateau_->on_epoch_end(
        find_log(result.logs, config_.reduce_on_plateau->monitor), optimizer_->learning_rate());
    if (lr) {
      optimizer_->schedule().set_constant(*lr);
      progress_.learning_rate = *lr;
    }
  }
  if (early_stopping_) {
    auto d = early_stopping_->on_epoch_end(result.epoch,
                                           find_log(result.logs, config_.early_stopping->monitor));
    if (d.save_best_weights) best_weights_ = params_->to_weight_store();
    if (d.stop) {
      stop = true;
      fit.stopped_early = true;
    }
    fit.best_epoch = early_stopping_->state().best_epoch;
  }
  result.learning_rate = optimizer_->learning_rate();
  return stop;
}

// A callback watching a validation value needs validation data (Keras only warns, and then the
// callback never acts).
void TrainingSession::check_monitors(bool validation) const {
  auto check = [&](const std::string& monitor, const SourceLoc& loc, const char* what) {
    if (validation || monitor.rfind("val_", 0) != 0) return;
    throw Error(fmt::format("{} monitors '{}', but this fit has no validation data", what, monitor))
        .at(loc)
        .hint(
            "give a validation folder (--validation-data), set validation_split, or monitor a "
            "training value such as 'loss'");
  };
  if (config_.early_stopping)
    check(config_.early_stopping->monitor, config_.early_stopping->monitor_loc, "early_stopping");
  if (config_.reduce_on_plateau)
    check(config_.reduce_on_plateau->monitor, config_.reduce_on_plateau->monitor_loc,
          "reduce_on_plateau");
}

void TrainingSession::refuse_int8_training() const {
  if (int8_nodes_.empty()) return;
  throw Error(fmt::format("the initial weights are int8-quantized ({} node{}, e.g. '{}'): they can "
                          "be evaluated but not trained",
                          int8_nodes_.size(), int8_nodes_.size() == 1 ? "" : "s",
                          int8_nodes_.begin()->first))
      .hint(
          "train from the float32 weights, then quantize the result with `graph-runner "
          "quantize`");
}

FitResult TrainingSession::fit(const std::string& data_dir, const FitOptions& options) {
  refuse_int8_training();
  adapt_preprocessing(data_dir);
  return fit_dataset(open_data(data_dir), options);
}

FitResult TrainingSession::fit(const ArrayData& data, const FitOptions& options) {
  refuse_int8_training();
  return fit_dataset(open_arrays(data), options);
}

// The validation data FitOptions gives (a folder or table, or arrays), if any.
std::optional<Dataset> TrainingSession::open_validation(const FitOptions& options) const {
  if (!options.validation_data.empty() && options.validation_arrays)
    throw Error(
        "FitOptions: give the validation data as a folder (validation_data) or as arrays "
        "(validation_arrays), not both");
  if (!options.validation_data.empty()) return open_data(options.validation_data, "validation");
  if (!options.validation_arrays) return std::nullopt;
  ArrayData named = *options.validation_arrays;
  if (named.name == ArrayData().name) named.name = "validation arrays";
  return open_arrays(named);
}

FitResult TrainingSession::fit_dataset(const Dataset& all, const FitOptions& options) {
  const ScopedFlushDenormals flush(threads_);
  std::optional<Dataset> validation = open_validation(options);
  Dataset train = all;
  FitResult result;
  result.skipped_rows = all.skipped();
  if (validation) {
    const std::vector<std::string> skipped = validation->skipped();
    result.skipped_rows.insert(result.skipped_rows.end(), skipped.begin(), skipped.end());
  } else if (config_.validation_split > 0) {  // Keras: the last samples, before shuffling
    const int64_t keep = validation_split_at(all.size(), config_.validation_split);
    validation = all.slice(keep, all.size());
    train = all.slice(0, keep);
  }
  check_monitors(validation.has_value());
  for (TrainingCallback* cb : options.callbacks)
    cb->on_train_begin(log_names(validation.has_value()));
  // Early stopping's restore_best_weights: the model becomes the best epoch's weights, the
  // checkpoint keeps the last epoch's so that a resumed fit continues exactly.
  auto restore_best_weights = [&] {
    if (!resume_weights_) resume_weights_ = params_->to_weight_store();
    params_->assign(*best_weights_);
  };
  for (int64_t epoch = progress_.epochs_done; epoch < config_.epochs; ++epoch) {
    if (resume_weights_) {
      params_->assign(*resume_weights_);
      resume_weights_.reset();
    }
    EpochResult er;
    run_epoch(train, epoch, options, er);
    if (validation) {
      const EvaluateResult v = evaluate_dataset(*validation);
      for (const auto& [k, val] : v.logs) er.logs.push_back({"val_" + k, val});
    }
    const bool stop = end_epoch(er, result);
    progress_.epochs_done = epoch + 1;
    progress_.history.push_back(er);
    result.history.push_back(er);
    if (stop && early_stopping_->restore_at_end() && best_weights_) restore_best_weights();
    if (!options.save_path.empty()) save(options.save_path);
    for (TrainingCallback* cb : options.callbacks) cb->on_epoch_end(er);
    if (stop) break;
  }
  if (!result.stopped_early && early_stopping_ && early_stopping_->restore_at_end() &&
      best_weights_) {
    restore_best_weights();
    if (!options.save_path.empty()) save(options.save_path);
  }
  for (TrainingCallback* cb : options.callbacks) cb->on_train_end(result);
  return result;
}

// One batch's losses and metrics of every trained output, from the model's outputs `outs`.
void TrainingSession::add_batch_logs(const Batch& b, const std::map<std::string, Tensor>& outs,
                                     EpochState& state) const {
  const int64_t count = b.rows;
  double total = 0;
  for (size_t k = 0; k < outputs_.size(); ++k) {
    const TrainedOutput& o = outputs_[k];
    const Tensor& pred = outs.at(o.spec.output);
    const Tensor& target = *b.target(o.spec.output);
    LossInput in;
    in.prediction = pred.data<float>();
    in.shape = pred.shape();
    in.output = o.spec.output;
    if (is_sparse(*o.spec.loss)) {
      in.ids = target.data<int32_t>();
      in.ids_shape = target.shape();
    } else {
      in.target = target.data<float>();
    }
    const double loss = compute_loss(*o.spec.loss, in, nullptr);
    total += o.spec.loss_weight * loss;
    state.output_losses[k].add(loss * count, static_cast<double>(count));
    MetricInput mi;
    mi.prediction = in.prediction;
    mi.shape = in.shape;
    mi.target = in.target;
    mi.ids = in.ids;
    mi.ids_shape = in.ids_shape;
    mi.output = o.spec.output;
    for (size_t m = 0; m < o.spec.metrics.size(); ++m) {
      Metric metric(o.spec.metrics[m],
                    resolve_metric(o.spec.metrics[m].name, pred.shape(), target.shape()));
      metric.update(mi);
      state.metrics[k][m].add(metric.accumulator().total, metric.accumulator().count);
    }
  }
  state.loss.add(total * count, static_cast<double>(count));
  state.samples += count;
}

namespace {

// evaluate --against: the running differences of one graph output between the two plans.
struct OutputComparison {
  std::string output;
  std::optional<LossSpec> loss;  // of a trained output: crossentropies get a top-1 agreement
  RelativeError error;
  Top1Agreement agreement;

  void add(const Tensor& got, const Tensor& reference) {
    if (got.shape() != reference.shape() || got.dtype() != DType::f32)
      throw Error(
          fmt::format("evaluate --against: output '{}' is {} in one plan and {} in the other",
                      output, format_shape(got.shape()), format_shape(reference.shape())));
    error.add(got.data<float>(), reference.data<float>(), got.size());
    if (!classification()) return;
    const bool binary = loss->kind == LossKind::binary_crossentropy;
    const int64_t classes = binary || got.shape().empty() ? 1 : got.shape().back();
    const double threshold = loss->from_logits ? 0.0 : 0.5;
    agreement.add(got.data<float>(), reference.data<float>(),
                  static_cast<int64_t>(got.size()) / std::max<int64_t>(classes, 1), classes,
                  threshold);
  }
  bool classification() const {
    return loss && (loss->kind == LossKind::categorical_crossentropy ||
                    loss->kind == LossKind::sparse_categorical_crossentropy ||
                    loss->kind == LossKind::binary_crossentropy);
  }
  OutputAgreement result() const {
    OutputAgreement r{output, error.max(), error.mean(), std::nullopt};
    if (classification()) r.top1_agreement = agreement.fraction();
    return r;
  }
};

}  // namespace

void TrainingSession::for_each_input_batch(
    const std::string& data_dir, int64_t max_rows,
    const std::function<void(const std::map<std::string, Tensor>&)>& visit) const {
  Dataset data = open_data(data_dir);
  if (max_rows > 0 && max_rows < data.size()) data = data.slice(0, max_rows);
  BatchPrefetcher batches(data, epoch_order(data.size(), seed_, 0, /*shuffle=*/false),
                          config_.batch_size, workers_);
  while (const Batch* b = batches.next()) {
    std::map<std::string, Tensor> inputs;
    for (size_t i = 0; i < b->input_names.size(); ++i) inputs[b->input_names[i]] = b->inputs[i];
    visit(inputs);
  }
}

// Keras's evaluate: inference mode (dropout off, moving statistics), batches of batch_size,
// losses from the model's outputs as returned (probabilities: clipped as Keras's backends
// without cached logits do). With `against`, every batch also runs through a plan in that
// precision, which gets its own logs, and each graph output of the two is compared.
EvaluateResult TrainingSession::evaluate_dataset(const Dataset& data, Precision precision,
                                                 std::optional<Precision> against) const {
  if (against && *against == precision)
    throw Error(fmt::format("evaluate: the precision to compare against (evaluate_against, "
                            "--against) is {}, the precision evaluated itself",
                            precision_name(*against)))
        .hint(fmt::format("compare two different precisions, e.g. evaluate_precision bf16 "
                          "against f32 (--precision bf16 --against f32; choices: {})",
                          fmt::join(precision_names(), ", ")));
  const WeightStore weights = params_->to_weight_store();
  auto model_in = [&](Precision p) {
    ModelOptions mo;
    mo.threads = threads_;
    mo.precision = p;
    WeightStore store = weights;
    if (p == Precision::int8)
      for (const auto& [node, int8] : int8_nodes_) store.set_int8_node(node, int8);
    return std::make_unique<Model>(graph_, std::move(store), mo);
  };
  const std::unique_ptr<Model> model = model_in(precision);
  const std::unique_ptr<Model> reference = against ? model_in(*against) : nullptr;
  EpochState state(outputs_), reference_state(outputs_);
  std::vector<OutputComparison> comparisons;
  for (const std::string& name : graph_->def().outputs) {
    OutputComparison c{name, std::nullopt, {}, {}};
    for (const TrainedOutput& o : outputs_)
      if (o.spec.output == name) c.loss = o.spec.loss;
    comparisons.push_back(std::move(c));
  }
  const int64_t n = data.size(), batch = config_.batch_size;
  BatchPrefetcher batches(data, epoch_order(n, seed_, 0, /*shuffle=*/false), batch, workers_);
  while (const Batch* next = batches.next()) {
    const Batch& b = *next;
    std::map<std::string, Tensor> inputs;
    for (size_t i = 0; i < b.input_names.size(); ++i) inputs[b.input_names[i]] = b.inputs[i];
    const auto outs = model->run(inputs);
    add_batch_logs(b, outs, state);
    if (!reference) continue;
    const auto reference_outs = reference->run(inputs);
    add_batch_logs(b, reference_outs, reference_state);
    for (OutputComparison& c : comparisons) c.add(outs.at(c.output), reference_outs.at(c.output));
  }
  EvaluateResult result{precision, epoch_logs(state, ""), state.samples, data.skipped(),
                        std::nullopt};
  if (against) {
    PrecisionComparison pc{*against, epoch_logs(reference_state, ""), {}, kRelativeErrorFloor};
    for (const OutputComparison& c : comparisons) pc.outputs.push_back(c.result());
    result.against = std::move(pc);
  }
  return result;
}

EvaluateResult TrainingSession::evaluate(const std::string& data_dir) const {
  if (is_table_path(data_dir) && preprocessors_->needs_adapt())
    throw Error(
        "the graph's preprocessing learns its vocabulary or classes from the training "
        "data, but the weights hold none (no \"fusiongraph.preprocessing\" metadata)")
        .in_file(data_dir)
        .hint(
            "evaluate with weights written by `graph-runner train --save` on a table, or list "
            "the classes / give a vocabulary file in the graph");
  return evaluate_dataset(open_data(data_dir), evaluate_precision_, evaluate_against_);
}

EvaluateResult TrainingSession::evaluate(const ArrayData& data) const {
  return evaluate_dataset(open_arrays(data), evaluate_precision_, evaluate_against_);
}

std::vector<OutputTraining> TrainingSession::output_specs() const {
  std::vector<OutputTraining> specs;
  for (const auto& o : outputs_) specs.push_back(o.spec);
  return specs;
}

Dataset TrainingSession::open_arrays(const ArrayData& data) const {
  return open_array_data(data, *graph_, output_specs());
}

Dataset TrainingSession::open_data(const std::string& path, const std::string& cache_part) const {
  const std::vector<OutputTraining> specs = output_specs();
  DatasetOptions options;
  options.preprocessors = preprocessors_;
  options.skip_bad_rows = skip_bad_rows_;
  options.workers = workers_;
  options.cache_dir =
      cache_dir_.empty() || cache_part.empty() ? cache_dir_ : cache_dir_ + "/" + cache_part;
  return open_dataset(path, *graph_, specs, options);
}

void TrainingSession::adapt_preprocessing(const std::string& data_path) {
  if (!preprocessors_->needs_adapt() || !is_table_path(data_path)) return;
  preprocessors_->adapt(Table::read(data_path));
  check_vocabulary_fits();
}

// A text input's ids must fit every embedding that reads the input directly.
void TrainingSession::check_vocabulary_fits() const {
  for (const InputDef& input : graph_->def().inputs) {
    const TextVectorizer* text = preprocessors_->text(input.name);
    if (text == nullptr || text->vocabulary().empty()) continue;
    for (const NodeDef& node : graph_->def().nodes) {
      if (node.op != "embedding" ||
          std::find(node.inputs.begin(), node.inputs.end(), input.name) == node.inputs.end())
        continue;
      auto attr = node.attrs.find("input_dim");
      if (attr == node.attrs.end()) continue;
      int64_t input_dim = 0;
      try {
        input_dim = std::stoll(attr->second.value.scalar);
      } catch (const std::exception&) {
        continue;  // the compiler checked it; nothing to compare
      }
      if (text->vocabulary_size() <= input_dim) continue;
      throw Error(fmt::format("input '{}' has a vocabulary of {} ids (with padding and OOV), but "
                              "embedding '{}' reads it with input_dim {}: ids from {} would be "
                              "out of range",
                              input.name, text->vocabulary_size(), node.name, input_dim, input_dim))
          .at(attr->second.value.loc)
          .hint(fmt::format("set max_tokens: {} in the input's preprocessing, or input_dim: {}",
                            input_dim, text->vocabulary_size()));
    }
  }
}

}  // namespace fg

namespace fg {

Trainer::Trainer(const std::string& graph_path, const TrainerOptions& options)
    : impl_(std::make_unique<TrainingSession>(load_graph_file(graph_path), options)) {}
Trainer::Trainer(std::shared_ptr<const GraphDef> graph, const TrainerOptions& options)
    : impl_(std::make_unique<TrainingSession>(std::move(graph), options)) {}
Trainer::~Trainer() = default;
Trainer::Trainer(Trainer&&) noexcept = default;
Trainer& Trainer::operator=(Trainer&&) noexcept = default;

FitResult Trainer::fit(const std::string& data_dir, const FitOptions& options) {
  return impl_->fit(data_dir, options);
}
EvaluateResult Trainer::evaluate(const std::string& data_dir) const {
  return impl_->evaluate(data_dir);
}
FitResult Trainer::fit(const ArrayData& data, const FitOptions& options) {
  return impl_->fit(data, options);
}
EvaluateResult Trainer::evaluate(const ArrayData& data) const {
  return impl_->evaluate(data);
}
void Trainer::for_each_input_batch(
    const std::string& data_dir, int64_t max_rows,
    const std::function<void(const std::map<std::string, Tensor>&)>& visit) const {
  impl_->for_each_input_batch(data_dir, max_rows, visit);
}
RawInputs Trainer::raw_inputs() const {
  return RawInputs(impl_->graph(), impl_->preprocessors());
}
void Trainer::save(const std::string& path) const {
  impl_->save(path);
}
void Trainer::resume(const std::string& checkpoint) {
  impl_->resume(checkpoint);
}
void Trainer::set_fit_overrides(const TrainingOverrides& overrides) {
  impl_->set_fit_overrides(overrides);
}
void Trainer::set_data_options(int workers, const std::string& cache_dir, bool skip_bad_rows) {
  impl_->set_data_options(workers, cache_dir, skip_bad_rows);
}
int64_t Trainer::initial_epoch() const {
  return impl_->initial_epoch();
}
const std::vector<EpochResult>& Trainer::history() const {
  return impl_->history();
}
WeightStore Trainer::weights() const {
  return impl_->weights();
}
const TrainingConfig& Trainer::config() const {
  return impl_->config();
}
std::vector<std::string> Trainer::log_names(bool with_validation) const {
  return impl_->log_names(with_validation);
}

TrainingLogs Trainer::train_on_batch(const std::map<std::string, Tensor>& inputs,
                                     const std::map<std::string, Tensor>& targets,
                                     std::vector<StepTiming>* profile) {
  return impl_->train_on_batch(inputs, targets, profile);
}
std::map<std::string, Tensor> Trainer::synthetic_targets(
    const std::map<std::string, Tensor>& inputs) const {
  return impl_->synthetic_targets(inputs);
}
std::map<std::string, Dims> Trainer::input_shapes(
    int64_t batch, const std::map<std::string, std::vector<int64_t>>& null_dims) const {
  return input_shapes_for(impl_->graph(), batch, null_dims);
}
std::map<std::string, Tensor> Trainer::synthetic_inputs(const std::map<std::string, Dims>& shapes,
                                                        uint64_t seed) const {
  return synthetic_inputs_for(impl_->graph(), shapes, seed);
}
int Trainer::threads() const {
  return impl_->threads();
}
double Trainer::step_flops(const std::map<std::string, Tensor>& inputs) {
  return impl_->step_flops(inputs);
}

}  // namespace fg
