// TrainingSession::save / resume: one safetensors file that is both the trained model and the
// checkpoint (docs/formats.md). Every weight under its "<node>.<param>" key in Keras layout;
// the optimizer's slots under "__training__.<optimizer>/<slot>.<node>.<param>", early
// stopping's best weights under "__training__.best.<node>.<param>", and when the end of fit
// restored those (restore_best_weights) the last epoch's weights, which a resume continues from,
// under "__training__.current.<node>.<param>"; the scalar state as JSON
// strings in the header's __metadata__. Node names cannot start with "__" (the YAML loader
// refuses them), so no weight key can collide with the prefix.
#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/data/preprocessors.hpp"
#include "engine/safetensors.hpp"
#include "engine/training/trainer.hpp"

namespace fg {
namespace {

constexpr const char* kPrefix = "__training__.";
constexpr const char* kFormat = "fusiongraph-checkpoint-1";

using Json = nlohmann::json;

Tensor copy_floats(const float* data, const Dims& shape) {
  Tensor t(DType::f32, shape);
  std::memcpy(t.mutable_data<float>(), data, t.bytes());
  return t;
}

Json optional_number(const std::optional<double>& v) {
  return v ? Json(*v) : Json(nullptr);
}
std::optional<double> number_or_none(const Json& j) {
  return j.is_null() ? std::nullopt : std::optional<double>(j.get<double>());
}

Json history_json(const std::vector<EpochResult>& history) {
  Json out = Json::array();
  for (const EpochResult& e : history) {
    Json logs = Json::array();
    for (const auto& [k, v] : e.logs) logs.push_back({k, v});
    out.push_back({{"epoch", e.epoch},
                   {"logs", logs},
                   {"seconds", e.seconds},
                   {"samples", e.samples},
                   {"learning_rate", e.learning_rate}});
  }
  return out;
}

std::vector<EpochResult> history_from(const Json& j) {
  std::vector<EpochResult> out;
  for (const Json& e : j) {
    EpochResult r;
    r.epoch = e.at("epoch").get<int64_t>();
    for (const Json& kv : e.at("logs"))
      r.logs.push_back({kv.at(0).get<std::string>(), kv.at(1).get<double>()});
    r.seconds = e.at("seconds").get<double>();
    r.samples = e.at("samples").get<int64_t>();
    r.samples_per_second = r.seconds > 0 ? r.samples / r.seconds : 0;
    r.learning_rate = e.at("learning_rate").get<double>();
    out.push_back(r);
  }
  return out;
}

Error not_a_checkpoint(const std::string& path, const std::string& why) {
  return Error(fmt::format("not a FusionGraph training checkpoint: {}", why))
      .in_file(path)
      .hint(
          "--resume takes a file written by `graph-runner train --save`; to start training "
          "from plain weights use --weights");
}

}  // namespace

void TrainingSession::save(const std::string& path) const {
  std::map<std::string, Tensor> tensors;
  for (const StoredParameter& p : params_->entries())
    tensors[p.key] = copy_floats(p.value.data<float>(), p.value.shape());
  for (const OptimizerSlot& s : const_cast<Optimizer&>(*optimizer_).slots()) {
    const StoredParameter* p = params_->find(s.parameter);
    tensors[kPrefix + s.slot + "." + s.parameter] = copy_floats(s.data, p->value.shape());
  }
  if (best_weights_)
    for (const auto& [k, t] : best_weights_->tensors())
      tensors[std::string(kPrefix) + "best." + k] = copy_floats(t.data<float>(), t.shape());
  if (resume_weights_)
    for (const auto& [k, t] : resume_weights_->tensors())
      tensors[std::string(kPrefix) + "current." + k] = copy_floats(t.data<float>(), t.shape());
  Json state{{"format", kFormat},
             {"graph", graph_->def().name},
             {"optimizer", config_.optimizer.name},
             {"optimizer_built", optimizer_->built()},
             {"iterations", optimizer_->iterations()},
             {"epochs_done", progress_.epochs_done},
             {"seed", seed_},
             {"learning_rate", optional_number(progress_.learning_rate)},
             {"history", history_json(progress_.history)}};
  if (early_stopping_) {
    const auto s = early_stopping_->state();
    state["early_stopping"] = {{"wait", s.wait},
                               {"stopped_epoch", s.stopped_epoch},
                               {"best_epoch", s.best_epoch},
                               {"best", optional_number(s.best)},
                               {"has_best_weights", s.has_best_weights}};
  }
  if (reduce_on_plateau_) {
    const auto s = reduce_on_plateau_->state();
    state["reduce_on_plateau"] = {{"wait", s.wait},
                                  {"cooldown_counter", s.cooldown_counter},
                                  {"best", optional_number(s.best)}};
  }
  std::map<std::string, std::string> metadata{{"fusiongraph.training", state.dump()}};
  if (!preprocessors_->config().empty())
    metadata[kPreprocessingMetadataKey] = preprocessors_->state_json();
  write_safetensors(path, tensors, metadata);
}

// Everything is checked before anything changes: a checkpoint that does not fit leaves the
// trainer as it was.
void TrainingSession::resume(const std::string& path) {
  SafetensorsContents file = read_safetensors(path);
  auto it = file.metadata.find("fusiongraph.training");
  if (it == file.metadata.end())
    throw not_a_checkpoint(path, "it holds no training state (a plain weights file?)");
  for (const auto& [key, t] : file.tensors)
    if (t.dtype() != DType::f32)
      throw not_a_checkpoint(
          path, fmt::format("tensor '{}' is {}: a checkpoint holds float32 tensors only", key,
                            dtype_name(t.dtype())));
  try {
    const Json state = Json::parse(it->second);
    if (state.at("format").get<std::string>() != kFormat)
      throw not_a_checkpoint(path, "its training state has another format");
    check_checkpoint_fits(file, state, path);
    auto pre = file.metadata.find(kPreprocessingMetadataKey);
    if (pre != file.metadata.end()) {
      Preprocessors loaded = *preprocessors_;
      loaded.load_state_json(pre->second, path);
      *preprocessors_ = std::move(loaded);
      check_vocabulary_fits();
    }
    restore_checkpoint(file, state, path);
  } catch (const Json::exception& e) {
    throw not_a_checkpoint(path, fmt::format("its training state is not readable ({})", e.what()));
  }
}

void TrainingSession::check_checkpoint_fits(const SafetensorsContents& file, const Json& state,
                                            const std::string& path) const {
  const std::string optimizer = state.at("optimizer").get<std::string>();
  if (optimizer != config_.optimizer.name)
    throw Error(fmt::format("the checkpoint was trained with optimizer '{}', the graph's training "
                            "section says '{}'",
                            optimizer, config_.optimizer.name))
        .in_file(path)
        .hint("resume with the optimizer the checkpoint was trained with");
  for (const StoredParameter& p : params_->entries()) {
    auto w = file.tensors.find(p.key);
    if (w == file.tensors.end())
      throw Error(fmt::format("the checkpoint has no weight '{}' that the graph needs", p.key))
          .in_file(path)
          .hint("resume with the graph the checkpoint was trained from");
    if (w->second.shape() != p.value.shape())
      throw Error(fmt::format("weight '{}' has shape {} in the checkpoint, the graph needs {}",
                              p.key, format_shape(w->second.shape()),
                              format_shape(p.value.shape())))
          .in_file(path)
          .hint("resume with the graph the checkpoint was trained from");
    auto c = file.tensors.find(kPrefix + std::string("current.") + p.key);
    if (c != file.tensors.end() && c->second.shape() != p.value.shape())
      throw Error(fmt::format("the checkpoint's last-epoch weight '{}' has shape {}, the graph "
                              "needs {}",
                              p.key, format_shape(c->second.shape()),
                              format_shape(p.value.shape())))
          .in_file(path);
  }
  if (!state.at("optimizer_built").get<bool>()) return;
  Optimizer probe(config_.optimizer);
  probe.build(const_cast<ParameterStore&>(*params_).trainable_parameters());
  for (const OptimizerSlot& s : probe.slots()) {
    const std::string key = kPrefix + s.slot + "." + s.parameter;
    auto t = file.tensors.find(key);
    if (t == file.tensors.end() || t->second.size() != s.size)
      throw Error(fmt::format("the checkpoint's optimizer state '{}' is missing or has another "
                              "size than weight '{}'",
                              key, s.parameter))
          .in_file(path)
          .hint("resume with the graph and training section the checkpoint was trained with");
  }
}

void TrainingSession::restore_checkpoint(const SafetensorsContents& file, const Json& state,
                                         const std::string& path) {
  const int64_t iterations = state.at("iterations").get<int64_t>();
  const int64_t epochs_done = state.at("epochs_done").get<int64_t>();
  const std::optional<double> learning_rate = number_or_none(state.at("learning_rate"));
  std::vector<EpochResult> history = history_from(state.at("history"));
  WeightStore weights;
  weights.set_source(path);
  const std::string current = std::string(kPrefix) + "current.";
  for (const StoredParameter& p : params_->entries()) {
    auto c = file.tensors.find(current + p.key);  // the last epoch's, when the best were restored
    weights.set(p.key, c != file.tensors.end() ? c->second : file.tensors.at(p.key));
  }
  params_->assign(weights);
  resume_weights_.reset();
  if (state.at("optimizer_built").get<bool>()) {
    optimizer_->build(params_->trainable_parameters());
    for (const OptimizerSlot& s : optimizer_->slots())
      std::memcpy(s.data, file.tensors.at(kPrefix + s.slot + "." + s.parameter).data<float>(),
                  s.size * sizeof(float));
  }
  optimizer_->set_iterations(iterations);
  progress_.epochs_done = epochs_done;
  progress_.learning_rate = learning_rate;
  if (learning_rate) optimizer_->schedule().set_constant(*learning_rate);
  progress_.history = std::move(history);
  if (early_stopping_ && state.contains("early_stopping")) {
    const Json& e = state.at("early_stopping");
    early_stopping_->restore({e.at("wait").get<int64_t>(), e.at("stopped_epoch").get<int64_t>(),
                              e.at("best_epoch").get<int64_t>(), number_or_none(e.at("best")),
                              e.at("has_best_weights").get<bool>()});
  }
  if (reduce_on_plateau_ && state.contains("reduce_on_plateau")) {
    const Json& r = state.at("reduce_on_plateau");
    reduce_on_plateau_->restore({r.at("wait").get<int64_t>(),
                                 r.at("cooldown_counter").get<int64_t>(),
                                 number_or_none(r.at("best"))});
  }
  WeightStore best;
  const std::string best_prefix = std::string(kPrefix) + "best.";
  for (const auto& [k, t] : file.tensors)
    if (k.rfind(best_prefix, 0) == 0) best.set(k.substr(best_prefix.size()), t);
  if (!best.tensors().empty()) best_weights_ = best;
}

}  // namespace fg
