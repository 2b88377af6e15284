// TrainingSession's in-memory batches: train_on_batch, synthetic targets and step FLOPs, for
// benchmarks (graph-runner bench --train) and callers that feed their own tensors.
#include <fmt/format.h>

#include "engine/scoped_flush_denormals.hpp"
#include "engine/training/dataset.hpp"
#include "engine/training/trainer.hpp"

namespace fg {
namespace {

// A Batch over the caller's tensors (copies share their storage), checked against the graph.
Batch batch_of(const CompiledGraph& graph, const std::vector<TrainedOutput>& outputs,
               const std::map<std::string, Tensor>& inputs,
               const std::map<std::string, Tensor>& targets) {
  Batch b;
  for (const InputDef& in : graph.def().inputs) {
    auto it = inputs.find(in.name);
    if (it == inputs.end()) throw Error(fmt::format("no tensor for graph input '{}'", in.name));
    if (it->second.dtype() != in.dtype)
      throw Error(fmt::format("input '{}' is {}, the graph declares {}", in.name,
                              dtype_name(it->second.dtype()), dtype_name(in.dtype)));
    b.input_names.push_back(in.name);
    b.inputs.push_back(it->second);
  }
  b.rows = b.inputs.empty() ? 0 : b.inputs.front().shape().at(0);
  std::vector<Dims> shapes;
  for (const Tensor& t : b.inputs) shapes.push_back(t.shape());
  const std::vector<TensorType> types = graph.bind(shapes);  // throws for inputs that do not fit
  for (const TrainedOutput& o : outputs) {
    auto it = targets.find(o.spec.output);
    if (it == targets.end())
      throw Error(fmt::format("no targets for trained output '{}'", o.spec.output));
    const Tensor& t = it->second;
    const Dims& out = types[o.spec.tensor].shape;
    const bool sparse = o.spec.loss->kind == LossKind::sparse_categorical_crossentropy;
    Dims ids(out.begin(), out.end() - 1), ids1 = ids;
    ids1.push_back(1);
    const bool fits = sparse ? t.dtype() == DType::i32 && (t.shape() == ids || t.shape() == ids1)
                             : t.dtype() == DType::f32 && t.shape() == out;
    if (!fits)
      throw Error(fmt::format("the targets of '{}' are {} {}, the output needs {} {}",
                              o.spec.output, dtype_name(t.dtype()), format_shape(t.shape()),
                              sparse ? "int32 class ids" : "float32",
                              format_shape(sparse ? ids : out)));
    b.target_names.push_back(o.spec.output);
    b.targets.push_back(t);
  }
  return b;
}

}  // namespace

TrainingLogs TrainingSession::train_on_batch(const std::map<std::string, Tensor>& inputs,
                                             const std::map<std::string, Tensor>& targets,
                                             std::vector<StepTiming>* profile) {
  refuse_int8_training();
  const ScopedFlushDenormals flush(threads_);
  const Batch batch = batch_of(*graph_, outputs_, inputs, targets);
  TrainingPlan& plan = plan_for(batch);
  plan.set_profile(profile);
  profile_ = profile;
  EpochState state(outputs_);
  try {
    train_step(batch, progress_.epochs_done, 0, state);
  } catch (...) {
    plan.set_profile(nullptr);
    profile_ = nullptr;
    throw;
  }
  plan.set_profile(nullptr);
  profile_ = nullptr;
  return epoch_logs(state, "");
}

std::map<std::string, Tensor> TrainingSession::synthetic_targets(
    const std::map<std::string, Tensor>& inputs) const {
  std::vector<Dims> shapes;
  for (const InputDef& in : graph_->def().inputs) shapes.push_back(inputs.at(in.name).shape());
  const std::vector<TensorType> types = graph_->bind(shapes);
  std::map<std::string, Tensor> out;
  for (const TrainedOutput& o : outputs_) {
    const Dims& shape = types[o.spec.tensor].shape;
    const int64_t classes = shape.back(), positions = num_elements(shape) / classes;
    if (o.spec.loss->kind == LossKind::sparse_categorical_crossentropy) {
      Tensor t(DType::i32, Dims(shape.begin(), shape.end() - 1));
      for (int64_t i = 0; i < positions; ++i)
        t.mutable_data<int32_t>()[i] = static_cast<int32_t>(i % classes);
      out[o.spec.output] = t;
      continue;
    }
    Tensor t(DType::f32, shape);
    float* p = t.mutable_data<float>();
    const bool one_hot = o.spec.loss->kind == LossKind::categorical_crossentropy;
    for (int64_t i = 0; i < positions; ++i)
      for (int64_t c = 0; c < classes; ++c)
        p[i * classes + c] = one_hot ? (c == i % classes ? 1.f : 0.f) : 0.5f;
    out[o.spec.output] = t;
  }
  return out;
}

double TrainingSession::step_flops(const std::map<std::string, Tensor>& inputs) {
  std::vector<Dims> shapes;
  for (const InputDef& in : graph_->def().inputs) shapes.push_back(inputs.at(in.name).shape());
  auto it = plans_.find(shapes);
  return it == plans_.end() ? 0.0 : it->second->flops();
}

}  // namespace fg
