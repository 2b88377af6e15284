// Parsing and validation of the `training:` section. Every default below is Keras 3's; the file
// each comes from is named beside it (github.com/keras-team/keras, keras/src/...).
#include "framework/training_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <regex>
#include <set>

#include "framework/compiler.hpp"
#include "framework/config_value.hpp"

namespace fg {

namespace {

// One of `choices`, with a did-you-mean.
std::string to_choice(const Value& v, const std::string& what,
                      const std::vector<std::string>& choices) {
  std::string s = to_name(v, what);
  if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
  throw error_at(v, fmt::format("unknown {} '{}'", what, s)).hint(did_you_mean(s, choices));
}

// A mapping whose keys must come from `known` (did-you-mean otherwise) and appear once. Typed
// getters read optional values (absent or null: the fallback) and check ranges at the value.
class MapReader {
 public:
  MapReader(const Value& map, std::string where, const std::vector<std::string>& known,
            const std::string& misplaced_hint = "")
      : map_(map), where_(std::move(where)) {
    if (map.kind != Value::Kind::map)
      throw error_at(map, fmt::format("{} must be a mapping, got {}", where_, map.describe()));
    std::set<std::string> seen;
    for (const auto& [key, value] : map.entries) {
      const Value& at = value.loc.known() ? value : map;  // `key:` with no value has no mark
      if (!seen.insert(key).second)
        throw error_at(at, fmt::format("duplicate key '{}' in {}", key, where_));
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      Error e = error_at(at, fmt::format("unknown key '{}' in {}", key, where_));
      std::string best = closest_match(key, known);
      e.hint(!misplaced_hint.empty() && key == "exclude_from_weight_decay" ? misplaced_hint
             : best.empty() ? "known keys: " + quoted_list(known)
                            : fmt::format("did you mean '{}'?", best));
      throw e;
    }
  }

  const Value* find(const std::string& key) const {
    for (const auto& [k, v] : map_.entries)
      if (k == key) return v.kind == Value::Kind::null ? nullptr : &v;
    return nullptr;
  }
  const Value& require(const std::string& key) const {
    if (const Value* v = find(key)) return *v;
    throw error_at(map_, fmt::format("{} needs '{}'", where_, key))
        .hint(fmt::format("add `{}: <value>`", key));
  }
  std::string what(const std::string& key) const { return fmt::format("'{}' in {}", key, where_); }

  // A number in [lo, hi] (open ends when the flags say so).
  double number(const std::string& key, double fallback, double lo, double hi, bool lo_open = false,
                bool hi_open = false) const {
    const Value* v = find(key);
    return v ? checked(*v, to_number(*v, what(key)), key, lo, hi, lo_open, hi_open) : fallback;
  }
  double required_number(const std::string& key, double lo, double hi, bool lo_open = false,
                         bool hi_open = false) const {
    const Value& v = require(key);
    return checked(v, to_number(v, what(key)), key, lo, hi, lo_open, hi_open);
  }
  std::optional<double> optional_number(const std::string& key, double lo, double hi,
                                        bool lo_open = false) const {
    if (!find(key)) return std::nullopt;
    return number(key, 0.0, lo, hi, lo_open);
  }
  int64_t integer(const std::string& key, int64_t fallback, int64_t lo) const {
    const Value* v = find(key);
    return v ? checked_integer(*v, key, lo) : fallback;
  }
  int64_t required_integer(const std::string& key, int64_t lo) const {
    return checked_integer(require(key), key, lo);
  }
  bool flag(const std::string& key, bool fallback) const {
    const Value* v = find(key);
    return v ? to_bool(*v, what(key)) : fallback;
  }
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& choices) const {
    const Value* v = find(key);
    if (!v) return fallback;
    std::string s = to_name(*v, what(key));
    if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
    throw error_at(
        *v, fmt::format("{} must be one of {}, got '{}'", what(key), quoted_list(choices), s))
        .hint(did_you_mean(s, choices));
  }
  const Value& value() const { return map_; }

 private:
  double checked(const Value& v, double x, const std::string& key, double lo, double hi,
                 bool lo_open, bool hi_open) const {
    const bool low_ok = lo_open ? x > lo : x >= lo;
    const bool high_ok = hi_open ? x < hi : x <= hi;
    if (low_ok && high_ok) return x;
    std::string range = std::isinf(hi) ? fmt::format("{} {}", lo_open ? ">" : ">=", lo)
                                       : fmt::format("in {}{}, {}{}", lo_open ? "(" : "[", lo, hi,
                                                     hi_open ? ")" : "]");
    throw error_at(v, fmt::format("{} must be {}, got {}", what(key), range, v.scalar));
  }
  int64_t checked_integer(const Value& v, const std::string& key, int64_t lo) const {
    const int64_t x = to_integer(v, what(key));
    if (x < lo) throw error_at(v, fmt::format("{} must be >= {}, got {}", what(key), lo, x));
    return x;
  }

  const Value& map_;
  std::string where_;
};

constexpr double kInf = HUGE_VAL;

struct LossName {
  const char* name;
  LossKind kind;
};
constexpr LossName kLossNames[] = {
    {"categorical_crossentropy", LossKind::categorical_crossentropy},
    {"sparse_categorical_crossentropy", LossKind::sparse_categorical_crossentropy},
    {"binary_crossentropy", LossKind::binary_crossentropy},
    {"mean_squared_error", LossKind::mean_squared_error},
    {"mse", LossKind::mean_squared_error},
    {"mean_absolute_error", LossKind::mean_absolute_error},
    {"mae", LossKind::mean_absolute_error},
    {"huber", LossKind::huber},
};

std::vector<std::string> loss_names() {
  std::vector<std::string> out;
  for (const auto& l : kLossNames) out.push_back(l.name);
  return out;
}

// A loss: a name or {name, from_logits, label_smoothing, delta}. Defaults from
// keras/src/losses/losses.py (label_smoothing 0.0, from_logits False, Huber delta 1.0).
LossSpec parse_loss(const Value& v, const std::string& where) {
  LossSpec loss;
  loss.loc = v.loc;
  const Value* name = &v;
  std::optional<MapReader> options;
  if (v.kind == Value::Kind::map) {
    options.emplace(v, where,
                    std::vector<std::string>{"name", "from_logits", "label_smoothing", "delta"});
    name = &options->require("name");
  }
  loss.name = to_choice(*name, "loss", loss_names());
  for (const auto& l : kLossNames)
    if (loss.name == l.name) loss.kind = l.kind;
  if (!options) return loss;
  const bool crossentropy = loss.kind == LossKind::categorical_crossentropy ||
                            loss.kind == LossKind::sparse_categorical_crossentropy ||
                            loss.kind == LossKind::binary_crossentropy;
  const bool smoothing =
      loss.kind == LossKind::categorical_crossentropy || loss.kind == LossKind::binary_crossentropy;
  for (const auto& [key, value] : v.entries) {
    const bool fits = key == "name" || (key == "from_logits" && crossentropy) ||
                      (key == "label_smoothing" && smoothing) ||
                      (key == "delta" && loss.kind == LossKind::huber);
    if (!fits)
      throw error_at(value, fmt::format("loss '{}' takes no '{}'", loss.name, key))
          .hint(key == "label_smoothing"
                    ? "label smoothing exists for categorical_crossentropy and "
                      "binary_crossentropy (Keras has none for the sparse one)"
                    : "from_logits belongs to the crossentropies, delta to huber");
  }
  loss.from_logits = options->flag("from_logits", false);
  loss.label_smoothing = options->number("label_smoothing", 0.0, 0.0, 1.0);
  loss.delta = options->number("delta", 1.0, 0.0, kInf, true);
  return loss;
}

// `loss:` a loss for every output, or a mapping output -> loss. A mapping with a `name` key is
// one loss with options.
void parse_losses(const Value& v, TrainingConfig& config) {
  const bool per_output =
      v.kind == Value::Kind::map && std::none_of(v.entries.begin(), v.entries.end(),
                                                 [](const auto& e) { return e.first == "name"; });
  if (!per_output) {
    config.loss = parse_loss(v, "the loss");
    return;
  }
  if (v.entries.empty()) throw error_at(v, "`loss` is an empty mapping");
  std::set<std::string> seen;
  for (const auto& [output, loss] : v.entries) {
    if (!seen.insert(output).second)
      throw error_at(loss, fmt::format("output '{}' has two losses", output));
    config.output_losses.emplace_back(output,
                                      parse_loss(loss, fmt::format("the loss of '{}'", output)));
    config.output_loss_locs.push_back(loss.loc);
  }
}

void parse_loss_weights(const Value& v, TrainingConfig& config) {
  config.loss_weights_loc = v.loc;
  if (v.kind == Value::Kind::list) {
    for (const auto& item : v.items) {
      const double w = to_number(item, "a loss weight");
      if (w < 0) throw error_at(item, fmt::format("a loss weight must be >= 0, got {}", w));
      config.loss_weight_list.push_back(w);
    }
    return;
  }
  if (v.kind != Value::Kind::map)
    throw type_error(v, "`loss_weights`", "a mapping output -> weight or a list");
  for (const auto& [output, weight] : v.entries) {
    const double w = to_number(weight, fmt::format("the loss weight of '{}'", output));
    if (w < 0) throw error_at(weight, fmt::format("a loss weight must be >= 0, got {}", w));
    config.loss_weights.emplace_back(output, w);
  }
}

// Metric names from keras/src/metrics/__init__.py (aliases "acc", "mse", "mae", the long forms).
MetricSpec parse_metric(const Value& v) {
  static const std::vector<std::string> names = {"accuracy",
                                                 "acc",
                                                 "categorical_accuracy",
                                                 "sparse_categorical_accuracy",
                                                 "binary_accuracy",
                                                 "top_k_categorical_accuracy",
                                                 "mse",
                                                 "mean_squared_error",
                                                 "mae",
                                                 "mean_absolute_error"};
  MetricSpec m;
  m.loc = v.loc;
  const Value* name = &v;
  std::optional<MapReader> options;
  if (v.kind == Value::Kind::map) {
    options.emplace(v, "a metric", std::vector<std::string>{"name", "k", "threshold"});
    name = &options->require("name");
  }
  m.written = to_choice(*name, "metric", names);
  m.name = m.written == "acc"                   ? "accuracy"
           : m.written == "mean_squared_error"  ? "mse"
           : m.written == "mean_absolute_error" ? "mae"
                                                : m.written;
  if (!options) return m;
  if (options->find("k") && m.name != "top_k_categorical_accuracy")
    throw error_at(*options->find("k"), fmt::format("metric '{}' takes no 'k'", m.written));
  if (options->find("threshold") && m.name != "binary_accuracy" && m.name != "accuracy")
    throw error_at(*options->find("threshold"),
                   fmt::format("metric '{}' takes no 'threshold'", m.written));
  m.k = options->integer("k", 5, 1);  // keras/src/metrics/accuracy_metrics.py: k=5
  m.threshold = options->number("threshold", 0.5, 0.0, 1.0);
  return m;
}

std::vector<MetricSpec> parse_metric_list(const Value& v) {
  std::vector<MetricSpec> out;
  if (v.kind == Value::Kind::list) {
    for (const auto& item : v.items) out.push_back(parse_metric(item));
  } else {
    out.push_back(parse_metric(v));
  }
  std::set<std::string> seen;
  for (const auto& m : out)
    if (!seen.insert(m.written).second)
      throw Error(fmt::format("metric '{}' is listed twice", m.written)).at(m.loc);
  return out;
}

void parse_metrics(const Value& v, TrainingConfig& config) {
  if (v.kind != Value::Kind::map ||
      v.entries.end() != std::find_if(v.entries.begin(), v.entries.end(),
                                      [](auto& e) { return e.first == "name"; })) {
    config.metrics = parse_metric_list(v);
    return;
  }
  for (const auto& [output, list] : v.entries) {
    config.output_metrics.emplace_back(output, parse_metric_list(list));
    config.output_metric_locs.push_back(list.loc);
  }
}

MonitorMode parse_mode(const MapReader& r) {
  const std::string mode = r.choice("mode", "auto", {"auto", "min", "max"});
  return mode == "min"   ? MonitorMode::min
         : mode == "max" ? MonitorMode::max
                         : MonitorMode::auto_mode;
}

// keras/src/callbacks/reduce_lr_on_plateau.py: monitor="val_loss", factor=0.1, patience=10,
// mode="auto", min_delta=1e-4, cooldown=0, min_lr=0.0; a factor >= 1.0 is refused.
ReduceOnPlateauSpec parse_reduce_on_plateau(const Value& v) {
  MapReader r(v, "reduce_on_plateau",
              {"monitor", "factor", "patience", "mode", "min_delta", "cooldown", "min_lr"});
  ReduceOnPlateauSpec s;
  s.loc = v.loc;
  if (const Value* m = r.find("monitor")) {
    s.monitor = to_name(*m, r.what("monitor"));
    s.monitor_loc = m->loc;
  }
  s.factor = r.number("factor", 0.1, 0.0, 1.0, true, true);
  s.patience = r.integer("patience", 10, 0);
  s.mode = parse_mode(r);
  s.min_delta = r.number("min_delta", 1e-4, 0.0, kInf);
  s.cooldown = r.integer("cooldown", 0, 0);
  s.min_lr = r.number("min_lr", 0.0, 0.0, kInf);
  return s;
}

// keras/src/callbacks/early_stopping.py: monitor="val_loss", min_delta=0, patience=0,
// mode="auto", baseline=None, restore_best_weights=False, start_from_epoch=0.
EarlyStoppingSpec parse_early_stopping(const Value& v) {
  MapReader r(v, "early_stopping",
              {"monitor", "min_delta", "patience", "mode", "baseline", "restore_best_weights",
               "start_from_epoch"});
  EarlyStoppingSpec s;
  s.loc = v.loc;
  if (const Value* m = r.find("monitor")) {
    s.monitor = to_name(*m, r.what("monitor"));
    s.monitor_loc = m->loc;
  }
  s.min_delta = r.number("min_delta", 0.0, 0.0, kInf);
  s.patience = r.integer("patience", 0, 0);
  s.mode = parse_mode(r);
  s.baseline = r.optional_number("baseline", -kInf, kInf);
  s.restore_best_weights = r.flag("restore_best_weights", false);
  s.start_from_epoch = r.integer("start_from_epoch", 0, 0);
  return s;
}

}  // namespace

namespace {

// learning_rate: a number or a one-key mapping naming the schedule. Arguments and checks from
// keras/src/optimizers/schedules/learning_rate_schedule.py (decay_steps must be > 0; the
// piecewise boundaries strictly increasing, one value more than boundaries).
LearningRateSpec parse_learning_rate(const Value& v) {
  LearningRateSpec lr;
  lr.loc = v.loc;
  if (v.kind != Value::Kind::map) {
    lr.value = to_number(v, "learning_rate");
    if (lr.value <= 0)
      throw error_at(v, fmt::format("learning_rate must be > 0, got {}", lr.value));
    return lr;
  }
  const std::vector<std::string> kinds = {"exponential_decay", "cosine_decay",
                                          "piecewise_constant"};
  if (v.entries.size() != 1)
    throw error_at(v, "learning_rate must be a number or a mapping with one schedule")
        .hint(
            "e.g. learning_rate: {exponential_decay: {initial_learning_rate: 0.01, "
            "decay_steps: 1000, decay_rate: 0.9}}");
  const auto& [kind, args] = v.entries.front();
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
    throw error_at(args, fmt::format("unknown learning-rate schedule '{}'", kind))
        .hint(did_you_mean(kind, kinds));
  if (kind == "exponential_decay") {
    MapReader r(args, "exponential_decay",
                {"initial_learning_rate", "decay_steps", "decay_rate", "staircase"});
    lr.kind = ScheduleKind::exponential_decay;
    lr.initial_learning_rate = r.required_number("initial_learning_rate", 0.0, kInf, true);
    lr.decay_steps = r.required_integer("decay_steps", 1);
    lr.decay_rate = r.required_number("decay_rate", 0.0, kInf, true);
    lr.staircase = r.flag("staircase", false);
  } else if (kind == "cosine_decay") {
    MapReader r(args, "cosine_decay",
                {"initial_learning_rate", "decay_steps", "alpha", "warmup_target", "warmup_steps"});
    lr.kind = ScheduleKind::cosine_decay;
    lr.initial_learning_rate = r.required_number("initial_learning_rate", 0.0, kInf);
    lr.decay_steps = r.required_integer("decay_steps", 1);
    lr.alpha = r.number("alpha", 0.0, 0.0, 1.0);
    lr.warmup_target = r.optional_number("warmup_target", 0.0, kInf, true);
    lr.warmup_steps = r.integer("warmup_steps", 0, 0);
    if (lr.warmup_steps > 0 && !lr.warmup_target)
      throw error_at(*r.find("warmup_steps"), "warmup_steps without warmup_target")
          .hint(
              "Keras ignores the warmup unless warmup_target (the rate reached after "
              "warming up) is set");
  } else {
    MapReader r(args, "piecewise_constant", {"boundaries", "values"});
    lr.kind = ScheduleKind::piecewise_constant;
    const Value& b = r.require("boundaries");
    const Value& vals = r.require("values");
    if (b.kind != Value::Kind::list || b.items.empty())
      throw type_error(b, "'boundaries'", "a non-empty list of steps");
    if (vals.kind != Value::Kind::list) throw type_error(vals, "'values'", "a list of rates");
    for (const auto& item : b.items) {
      lr.boundaries.push_back(to_integer(item, "a boundary"));
      if (lr.boundaries.size() > 1 &&
          lr.boundaries.back() <= lr.boundaries[lr.boundaries.size() - 2])
        throw error_at(item, "the boundaries must be strictly increasing");
    }
    for (const auto& item : vals.items) {
      lr.values.push_back(to_number(item, "a learning rate"));
      if (lr.values.back() <= 0) throw error_at(item, "a learning rate must be > 0");
    }
    if (lr.values.size() != lr.boundaries.size() + 1)
      throw error_at(vals, fmt::format("piecewise_constant needs one value more than "
                                       "boundaries: {} boundaries, {} values",
                                       lr.boundaries.size(), lr.values.size()));
  }
  return lr;
}

struct OptimizerName {
  const char* name;
  OptimizerKind kind;
  double learning_rate;
};
// keras/src/optimizers/{adam,adamw,sgd,rmsprop,adagrad}.py: learning_rate defaults.
constexpr OptimizerName kOptimizers[] = {
    {"adam", OptimizerKind::adam, 0.001},       {"adamw", OptimizerKind::adamw, 0.001},
    {"sgd", OptimizerKind::sgd, 0.01},          {"rmsprop", OptimizerKind::rmsprop, 0.001},
    {"adagrad", OptimizerKind::adagrad, 0.001},
};

std::vector<std::string> optimizer_keys(OptimizerKind kind) {
  // keras/src/optimizers/base_optimizer.py: weight_decay, clipnorm, clipvalue, global_clipnorm
  std::vector<std::string> keys = {"name",
                                   "learning_rate",
                                   "weight_decay",
                                   "clipnorm",
                                   "clipvalue",
                                   "global_clipnorm",
                                   "exclude_from_weight_decay"};
  auto add = [&](std::initializer_list<const char*> more) {
    keys.insert(keys.end(), more.begin(), more.end());
  };
  switch (kind) {
    case OptimizerKind::adam:
    case OptimizerKind::adamw:
      add({"beta_1", "beta_2", "epsilon", "amsgrad"});
      break;
    case OptimizerKind::sgd:
      add({"momentum", "nesterov"});
      break;
    case OptimizerKind::rmsprop:
      add({"rho", "momentum", "epsilon", "centered"});
      break;
    case OptimizerKind::adagrad:
      add({"initial_accumulator_value", "epsilon"});
      break;
  }
  return keys;
}

void parse_exclusions(const MapReader& r, OptimizerSpec& opt) {
  const Value* v = r.find("exclude_from_weight_decay");
  if (!v) return;
  std::vector<const Value*> items;
  if (v->kind == Value::Kind::list) {
    for (const auto& item : v->items) items.push_back(&item);
  } else {
    items.push_back(v);
  }
  for (const Value* item : items) {
    std::string pattern = to_name(*item, "an entry of exclude_from_weight_decay");
    try {
      std::regex check(pattern);
    } catch (const std::regex_error&) {
      throw error_at(*item, fmt::format("'{}' is not a valid regular expression", pattern))
          .hint("Keras searches each entry as a regular expression in the weight's name");
    }
    opt.exclude_from_weight_decay.push_back(pattern);
    opt.exclude_locs.push_back(item->loc);
  }
}

OptimizerSpec parse_optimizer(const Value& v) {
  OptimizerSpec opt;
  opt.loc = v.loc;
  std::vector<std::string> names;
  for (const auto& o : kOptimizers) names.push_back(o.name);
  const Value* name = &v;
  if (v.kind == Value::Kind::map) {
    name = nullptr;
    for (const auto& [k, value] : v.entries)
      if (k == "name") name = &value;
    if (!name) throw error_at(v, "the optimizer needs a 'name'").hint("e.g. {name: adam}");
  }
  opt.name = to_choice(*name, "optimizer", names);
  for (const auto& o : kOptimizers)
    if (opt.name == o.name) {
      opt.kind = o.kind;
      opt.learning_rate.value = o.learning_rate;
    }
  opt.learning_rate.loc = v.loc;
  if (opt.kind == OptimizerKind::adamw) opt.weight_decay = 0.004;  // keras/src/optimizers/adamw.py
  if (v.kind != Value::Kind::map) return opt;
  MapReader r(v, fmt::format("optimizer '{}'", opt.name), optimizer_keys(opt.kind));
  if (const Value* lr = r.find("learning_rate")) opt.learning_rate = parse_learning_rate(*lr);
  opt.beta_1 = r.number("beta_1", 0.9, 0.0, 1.0, false, true);
  opt.beta_2 = r.number("beta_2", 0.999, 0.0, 1.0, false, true);
  opt.epsilon = r.number("epsilon", 1e-7, 0.0, kInf);
  opt.amsgrad = r.flag("amsgrad", false);
  // sgd.py: "`momentum` must be a float between [0, 1]"
  opt.momentum = r.number("momentum", 0.0, 0.0, 1.0);
  opt.nesterov = r.flag("nesterov", false);
  opt.rho = r.number("rho", 0.9, 0.0, 1.0, false, true);
  opt.centered = r.flag("centered", false);
  opt.initial_accumulator_value = r.number("initial_accumulator_value", 0.1, 0.0, kInf);
  if (r.find("weight_decay")) opt.weight_decay = r.number("weight_decay", 0.0, 0.0, kInf);
  opt.clipnorm = r.optional_number("clipnorm", 0.0, kInf, true);
  opt.clipvalue = r.optional_number("clipvalue", 0.0, kInf, true);
  opt.global_clipnorm = r.optional_number("global_clipnorm", 0.0, kInf, true);
  const int clips =
      (opt.clipnorm ? 1 : 0) + (opt.clipvalue ? 1 : 0) + (opt.global_clipnorm ? 1 : 0);
  if (clips > 1) {
    const Value* second = opt.global_clipnorm ? r.find("global_clipnorm") : r.find("clipvalue");
    throw error_at(*second, "only one of clipnorm, clipvalue and global_clipnorm can be set")
        .hint(
            "clipnorm clips each gradient's norm, global_clipnorm the norm of all of them, "
            "clipvalue each element");
  }
  parse_exclusions(r, opt);
  if (!opt.exclude_from_weight_decay.empty() && !opt.weight_decay)
    throw error_at(*r.find("exclude_from_weight_decay"),
                   "exclude_from_weight_decay without weight_decay")
        .hint(fmt::format("optimizer '{}' decays no weight unless weight_decay is set", opt.name));
  return opt;
}

}  // namespace

TrainingConfig parse_training_config(const Value& section) {
  MapReader r(section, "the training section",
              {"loss", "loss_weights", "optimizer", "metrics", "batch_size", "epochs", "shuffle",
               "seed", "validation_split", "reduce_on_plateau", "early_stopping"},
              "exclude_from_weight_decay belongs to the optimizer: "
              "`optimizer: {name: adamw, exclude_from_weight_decay: [bias]}`");
  TrainingConfig config;
  config.loc = section.loc;
  parse_losses(r.require("loss"), config);
  if (const Value* w = r.find("loss_weights")) parse_loss_weights(*w, config);
  if (const Value* o = r.find("optimizer")) {
    config.optimizer = parse_optimizer(*o);
  } else {
    config.optimizer.loc = section.loc;  // Keras compile's default: "rmsprop"
    config.optimizer.kind = OptimizerKind::rmsprop;
    config.optimizer.name = "rmsprop";
  }
  if (const Value* m = r.find("metrics")) parse_metrics(*m, config);
  config.batch_size = r.integer("batch_size", 32, 1);  // Keras fit: batch_size=None -> 32
  config.epochs = r.integer("epochs", 1, 1);           // Keras fit: epochs=1
  config.shuffle = r.flag("shuffle", true);
  if (r.find("seed")) config.seed = r.integer("seed", 0, 0);
  config.validation_split = r.number("validation_split", 0.0, 0.0, 1.0, false, true);
  if (const Value* p = r.find("reduce_on_plateau")) {
    config.reduce_on_plateau = parse_reduce_on_plateau(*p);
    if (config.optimizer.learning_rate.kind != ScheduleKind::constant)
      throw error_at(*p, "reduce_on_plateau cannot change a learning-rate schedule")
          .hint(
              "Keras refuses to set the learning rate of an optimizer built with a schedule: use "
              "a constant learning_rate, or no reduce_on_plateau");
  }
  if (const Value* e = r.find("early_stopping")) config.early_stopping = parse_early_stopping(*e);
  return config;
}

std::string loss_kind_name(LossKind kind) {
  switch (kind) {
    case LossKind::categorical_crossentropy:
      return "categorical_crossentropy";
    case LossKind::sparse_categorical_crossentropy:
      return "sparse_categorical_crossentropy";
    case LossKind::binary_crossentropy:
      return "binary_crossentropy";
    case LossKind::mean_squared_error:
      return "mean_squared_error";
    case LossKind::mean_absolute_error:
      return "mean_absolute_error";
    case LossKind::huber:
      return "huber";
  }
  return "?";
}

std::string optimizer_kind_name(OptimizerKind kind) {
  for (const auto& o : kOptimizers)
    if (o.kind == kind) return o.name;
  return "?";
}

}  // namespace fg

namespace fg {

namespace {

size_t output_index(const CompiledGraph& graph, const std::string& name, const SourceLoc& loc,
                    const char* what) {
  const auto& outputs = graph.def().outputs;
  auto it = std::find(outputs.begin(), outputs.end(), name);
  if (it != outputs.end()) return static_cast<size_t>(it - outputs.begin());
  throw Error(fmt::format("{} names output '{}', which the graph does not have", what, name))
      .at(loc)
      .hint(did_you_mean(name, outputs));
}

bool needs_class_axis(LossKind kind) {
  return kind == LossKind::categorical_crossentropy ||
         kind == LossKind::sparse_categorical_crossentropy;
}

// A loss fits a float output; a categorical one also needs a class axis of 2 or more.
void check_loss_fits(const LossSpec& loss, const std::string& output, const TensorType& type) {
  if (type.dtype != DType::f32)
    throw Error(fmt::format("loss '{}' cannot train output '{}': it is {}, not float32", loss.name,
                            output, format_type(type)))
        .at(loss.loc);
  if (!needs_class_axis(loss.kind)) return;
  const Dim classes = type.rank() >= 2 ? type.shape.back() : 1;
  if (classes >= 2) return;
  Error e(
      fmt::format("loss '{}' does not fit output '{}' of shape {}: it needs a class axis "
                  "(the last dimension, 2 classes or more)",
                  loss.name, output, format_shape(type.shape)));
  e.at(loss.loc);
  if (classes == kDynamic)
    e.hint("the number of classes must be fixed in the graph");
  else
    e.hint("for one probability per sample use binary_crossentropy");
  throw e;
}

void check_metric_fits(const MetricSpec& m, const std::string& output, const TensorType& type) {
  const bool categorical = m.name == "categorical_accuracy" ||
                           m.name == "sparse_categorical_accuracy" ||
                           m.name == "top_k_categorical_accuracy";
  const Dim classes = type.rank() >= 2 ? type.shape.back() : 1;
  if (categorical && classes < 2)
    throw Error(fmt::format("metric '{}' does not fit output '{}' of shape {}: it needs a class "
                            "axis (the last dimension, 2 classes or more)",
                            m.written, output, format_shape(type.shape)))
        .at(m.loc)
        .hint("for one probability per sample use binary_accuracy");
}

void assign_losses(const TrainingConfig& config, const CompiledGraph& graph,
                   std::vector<OutputTraining>& out) {
  if (config.loss) {
    for (auto& o : out) o.loss = *config.loss;
  } else {
    for (size_t i = 0; i < config.output_losses.size(); ++i) {
      const auto& [name, loss] = config.output_losses[i];
      out[output_index(graph, name, config.output_loss_locs[i], "the loss")].loss = loss;
    }
  }
  if (!config.loss_weight_list.empty()) {
    if (config.loss_weight_list.size() != out.size())
      throw Error(fmt::format("loss_weights lists {} weight(s) for {} output(s)",
                              config.loss_weight_list.size(), out.size()))
          .at(config.loss_weights_loc)
          .hint(fmt::format("the outputs, in order: {}", quoted_list(graph.def().outputs)));
    for (size_t i = 0; i < out.size(); ++i) out[i].loss_weight = config.loss_weight_list[i];
  }
  for (const auto& [name, weight] : config.loss_weights) {
    OutputTraining& o = out[output_index(graph, name, config.loss_weights_loc, "loss_weights")];
    if (!o.loss)
      throw Error(fmt::format("loss_weights gives output '{}' a weight, but it has no loss", name))
          .at(config.loss_weights_loc);
    o.loss_weight = weight;
  }
}

void assign_metrics(const TrainingConfig& config, const CompiledGraph& graph,
                    std::vector<OutputTraining>& out) {
  for (auto& o : out) o.metrics = config.metrics;
  for (size_t i = 0; i < config.output_metrics.size(); ++i) {
    const auto& [name, list] = config.output_metrics[i];
    out[output_index(graph, name, config.output_metric_locs[i], "metrics")].metrics = list;
  }
  for (const auto& o : out) {
    const TensorType& type = graph.tensors()[o.tensor].type;
    for (const auto& m : o.metrics) check_metric_fits(m, o.output, type);
  }
}

void check_exclusions(const OptimizerSpec& opt, const CompiledGraph& graph) {
  const auto weights = graph.all_weights();
  std::vector<std::string> params;
  for (const auto& [key, spec] : weights) params.push_back(key.substr(key.find('.') + 1));
  for (size_t i = 0; i < opt.exclude_from_weight_decay.size(); ++i) {
    const std::regex pattern(opt.exclude_from_weight_decay[i]);
    bool matched = false;
    for (size_t w = 0; w < weights.size() && !matched; ++w)
      matched =
          std::regex_search(params[w], pattern) || std::regex_search(weights[w].first, pattern);
    if (!matched)
      throw Error(fmt::format("exclude_from_weight_decay: '{}' matches no weight of the graph",
                              opt.exclude_from_weight_decay[i]))
          .at(opt.exclude_locs[i])
          .hint(did_you_mean(opt.exclude_from_weight_decay[i], params));
  }
}

void check_monitor(const std::string& monitor, const SourceLoc& loc, const SourceLoc& fallback,
                   const std::vector<std::string>& logged, const char* what) {
  std::vector<std::string> names = logged;
  for (const auto& n : logged) names.push_back("val_" + n);
  if (std::find(names.begin(), names.end(), monitor) != names.end()) return;
  throw Error(fmt::format("{} monitors '{}', which training does not log", what, monitor))
      .at(loc.known() ? loc : fallback)
      .hint(did_you_mean(monitor, names));
}

}  // namespace

std::vector<OutputTraining> resolve_training_outputs(const TrainingConfig& config,
                                                     const CompiledGraph& graph) {
  std::vector<OutputTraining> out;
  for (size_t i = 0; i < graph.def().outputs.size(); ++i) {
    OutputTraining o;
    o.output = graph.def().outputs[i];
    o.tensor = graph.output_tensors()[i];
    out.push_back(std::move(o));
  }
  assign_losses(config, graph, out);
  for (const auto& o : out)
    if (o.loss) check_loss_fits(*o.loss, o.output, graph.tensors()[o.tensor].type);
  assign_metrics(config, graph, out);
  check_exclusions(config.optimizer, graph);
  const auto logged = logged_names(out);
  if (config.early_stopping)
    check_monitor(config.early_stopping->monitor, config.early_stopping->monitor_loc,
                  config.early_stopping->loc, logged, "early_stopping");
  if (config.reduce_on_plateau)
    check_monitor(config.reduce_on_plateau->monitor, config.reduce_on_plateau->monitor_loc,
                  config.reduce_on_plateau->loc, logged, "reduce_on_plateau");
  return out;
}

std::vector<std::string> logged_names(const std::vector<OutputTraining>& outputs) {
  std::vector<std::string> names = {"loss"};
  const bool several = outputs.size() > 1;
  for (const auto& o : outputs) {
    if (several && o.loss) names.push_back(o.output + "_loss");
    for (const auto& m : o.metrics)
      names.push_back(several ? o.output + "_" + m.written : m.written);
  }
  return names;
}

}  // namespace fg
