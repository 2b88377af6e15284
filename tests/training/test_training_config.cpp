// The `training:` section: defaults as Keras 3 documents them, every form the issue's YAML uses,
// and malformed sections as fg::Error at file:line:col of the offending value.
#include <doctest/doctest.h>

#include <string>

#include "framework/training_config.hpp"
#include "framework/yaml_loader.hpp"
#include "tests/test_util.hpp"

namespace {

// A graph with a 13-class softmax output and a one-unit sigmoid output; the training section
// starts on line 10.
const char* kGraph = R"(name: t
inputs:
  x: {shape: [7]}
nodes:
  - {name: logits, op: dense, input: x, units: 13}
  - {name: probs, op: activation, input: logits, activation: softmax}
  - {name: score, op: dense, input: x, units: 1, activation: sigmoid}
outputs: [probs, score]
training:
)";

std::string with_training(const std::string& section) {
  return std::string(kGraph) + section;
}

fg::TrainingConfig parse(const std::string& section) {
  auto def = fg::load_graph_string(with_training(section), "t.yaml");
  REQUIRE(def->training.has_value());
  return fg::parse_training_config(*def->training);
}

struct Failure {
  std::string message;
  int line = 0, column = 0;
};

// The error that loading (and, with `resolve`, checking against the compiled graph) gives.
Failure failure(const std::string& section, bool resolve = false) {
  try {
    if (resolve) {
      auto graph = fg::test::compile_yaml(with_training(section), "t.yaml");
      fg::resolve_training_outputs(fg::parse_training_config(*graph->def().training), *graph);
    } else {
      fg::load_graph_string(with_training(section), "t.yaml");
    }
  } catch (const fg::Error& e) {
    return {e.what(), e.loc().line, e.loc().column};
  }
  return {"", 0, 0};
}

#define CHECK_FAILS_AT(f, line_, column_, text)              \
  do {                                                       \
    INFO((f).message);                                       \
    CHECK((f).line == (line_));                              \
    CHECK((f).column == (column_));                          \
    CHECK((f).message.find(text) != std::string::npos);      \
    CHECK((f).message.find("t.yaml:") != std::string::npos); \
  } while (0)

}  // namespace

TEST_CASE("training config: the issue's example parses with Keras's values") {
  auto c = parse(R"(  loss: {probs: categorical_crossentropy, score: binary_crossentropy}
  loss_weights: {probs: 1.0, score: 0.5}
  optimizer: {name: adam, learning_rate: 0.001}
  metrics: [accuracy]
  batch_size: 32
  epochs: 10
  shuffle: true
  seed: 0
  validation_split: 0.1
  early_stopping: {monitor: val_loss, patience: 3, min_delta: 0, restore_best_weights: true}
)");
  REQUIRE(c.output_losses.size() == 2);
  CHECK(c.output_losses[0].first == "probs");
  CHECK(c.output_losses[0].second.kind == fg::LossKind::categorical_crossentropy);
  CHECK(c.output_losses[1].second.kind == fg::LossKind::binary_crossentropy);
  CHECK(c.loss_weights[1].second == 0.5);
  CHECK(c.optimizer.kind == fg::OptimizerKind::adam);
  CHECK(c.optimizer.learning_rate.value == 0.001);
  CHECK(c.epochs == 10);
  CHECK(c.seed == 0);
  CHECK(c.validation_split == 0.1);
  REQUIRE(c.early_stopping);
  CHECK(c.early_stopping->patience == 3);
  CHECK(c.early_stopping->restore_best_weights);
  CHECK(c.metrics.size() == 1);
}

TEST_CASE("training config: optimizer defaults are Keras 3's") {
  // keras/src/optimizers/adam.py, adamw.py, sgd.py, rmsprop.py, adagrad.py
  auto adam = parse("  loss: mse\n  optimizer: adam\n").optimizer;
  CHECK(adam.learning_rate.value == 0.001);
  CHECK(adam.beta_1 == 0.9);
  CHECK(adam.beta_2 == 0.999);
  CHECK(adam.epsilon == 1e-7);
  CHECK_FALSE(adam.amsgrad);
  CHECK_FALSE(adam.weight_decay);
  CHECK_FALSE(adam.clipnorm);
  auto adamw = parse("  loss: mse\n  optimizer: adamw\n").optimizer;
  REQUIRE(adamw.weight_decay);
  CHECK(*adamw.weight_decay == 0.004);
  auto sgd = parse("  loss: mse\n  optimizer: sgd\n").optimizer;
  CHECK(sgd.learning_rate.value == 0.01);
  CHECK(sgd.momentum == 0.0);
  CHECK_FALSE(sgd.nesterov);
  auto rms = parse("  loss: mse\n  optimizer: {name: rmsprop}\n").optimizer;
  CHECK(rms.rho == 0.9);
  CHECK(rms.momentum == 0.0);
  CHECK(rms.epsilon == 1e-7);
  CHECK_FALSE(rms.centered);
  auto ada = parse("  loss: mse\n  optimizer: adagrad\n").optimizer;
  CHECK(ada.initial_accumulator_value == 0.1);
  CHECK(ada.epsilon == 1e-7);
  // Keras compile's default optimizer is rmsprop; fit's batch_size 32 and epochs 1
  auto c = parse("  loss: mse\n");
  CHECK(c.optimizer.kind == fg::OptimizerKind::rmsprop);
  CHECK(c.batch_size == 32);
  CHECK(c.epochs == 1);
  CHECK(c.shuffle);
  CHECK_FALSE(c.seed);
}

TEST_CASE("training config: schedules, callbacks and loss options") {
  auto c =
      parse(R"(  loss: {name: categorical_crossentropy, from_logits: true, label_smoothing: 0.1}
  optimizer:
    name: sgd
    momentum: 0.9
    nesterov: true
    global_clipnorm: 1.5
    learning_rate: {cosine_decay: {initial_learning_rate: 0.1, decay_steps: 100, alpha: 0.1, warmup_target: 0.5, warmup_steps: 7}}
  metrics: [acc, {name: top_k_categorical_accuracy, k: 3}, mean_squared_error]
)");
  REQUIRE(c.loss);
  CHECK(c.loss->from_logits);
  CHECK(c.loss->label_smoothing == 0.1);
  CHECK(c.optimizer.nesterov);
  CHECK(*c.optimizer.global_clipnorm == 1.5);
  CHECK(c.optimizer.learning_rate.kind == fg::ScheduleKind::cosine_decay);
  CHECK(*c.optimizer.learning_rate.warmup_target == 0.5);
  CHECK(c.optimizer.learning_rate.warmup_steps == 7);
  REQUIRE(c.metrics.size() == 3);
  CHECK(c.metrics[0].name == "accuracy");
  CHECK(c.metrics[0].written == "acc");
  CHECK(c.metrics[1].k == 3);
  CHECK(c.metrics[2].name == "mse");
  auto p = parse(R"(  loss: huber
  optimizer: {name: adam, learning_rate: {piecewise_constant: {boundaries: [7, 13], values: [0.1, 0.01, 0.001]}}}
  early_stopping: {monitor: val_accuracy}
)");
  CHECK(p.loss->delta == 1.0);  // keras/src/losses/losses.py Huber: delta=1.0
  CHECK(p.optimizer.learning_rate.boundaries == std::vector<int64_t>{7, 13});
  CHECK(p.early_stopping->patience == 0);  // EarlyStopping defaults
  CHECK(p.early_stopping->min_delta == 0.0);
  auto r = parse("  loss: mse\n  reduce_on_plateau: {patience: 2}\n");
  REQUIRE(r.reduce_on_plateau);
  CHECK(r.reduce_on_plateau->factor == 0.1);  // ReduceLROnPlateau defaults
  CHECK(r.reduce_on_plateau->min_delta == 1e-4);
  CHECK(r.reduce_on_plateau->cooldown == 0);
  CHECK(r.reduce_on_plateau->patience == 2);
}

TEST_CASE("training config: malformed sections point at the value") {
  CHECK_FAILS_AT(failure("  loss: mse\n  optimizer: {name: adam, lerning_rate: 0.1}\n"), 11, 41,
                 "did you mean 'learning_rate'?");
  CHECK_FAILS_AT(failure("  loss: mse\n  batch_sise: 32\n"), 11, 15, "did you mean 'batch_size'?");
  CHECK_FAILS_AT(failure("  loss: categorical_crosentropy\n"), 10, 9,
                 "did you mean 'categorical_crossentropy'?");
  CHECK_FAILS_AT(failure("  loss: mse\n  optimizer: adm\n"), 11, 14, "did you mean 'adam'?");
  CHECK_FAILS_AT(failure("  loss: mse\n  batch_size: 0\n"), 11, 15, "must be >= 1");
  CHECK_FAILS_AT(failure("  loss: mse\n  batch_size: many\n"), 11, 15, "must be an integer");
  CHECK_FAILS_AT(failure("  loss: mse\n  shuffle: sometimes\n"), 11, 12, "true or false");
  CHECK_FAILS_AT(failure("  loss: mse\n  validation_split: 1.0\n"), 11, 21, "in [0, 1)");
  CHECK_FAILS_AT(failure("  loss: mse\n  optimizer: {name: sgd, momentum: 1.5}\n"), 11, 36,
                 "in [0, 1]");
  CHECK_FAILS_AT(failure("  loss: mse\n  optimizer: {name: sgd, beta_1: 0.9}\n"), 11, 34,
                 "unknown key 'beta_1'");
  CHECK_FAILS_AT(failure("  loss: mse\n  optimizer: {name: adam, clipnorm: 1, clipvalue: 2}\n"), 11,
                 51, "only one of clipnorm, clipvalue and global_clipnorm");
  CHECK_FAILS_AT(failure("  loss: {name: mse, from_logits: true}\n"), 10, 34,
                 "loss 'mse' takes no 'from_logits'");
  CHECK_FAILS_AT(failure("  loss: {name: categorical_crossentropy, label_smoothing: 1.5}\n"), 10,
                 59, "in [0, 1]");
  CHECK_FAILS_AT(failure("  loss: mse\n  optimizer: {name: adam, learning_rate: -1}\n"), 11, 42,
                 "must be > 0");
  CHECK_FAILS_AT(
      failure("  loss: mse\n  optimizer: {name: adam, learning_rate: {piecewise_constant: "
              "{boundaries: [7, 13], values: [0.1, 0.01]}}}\n"),
      11, 93, "one value more than boundaries");
  CHECK_FAILS_AT(
      failure("  loss: mse\n  optimizer: {name: adam, learning_rate: {piecewise_constant: "
              "{boundaries: [13, 7], values: [1, 2, 3]}}}\n"),
      11, 81, "strictly increasing");
  CHECK_FAILS_AT(
      failure("  loss: mse\n  optimizer: {name: adam, learning_rate: {exponential_decay: "
              "{initial_learning_rate: 0.1, decay_steps: 0, decay_rate: 0.9}}}\n"),
      11, 104, "must be >= 1");
  CHECK_FAILS_AT(failure("  loss: mse\n  optimizer: {name: adam, learning_rate: {step_decay: "
                         "{x: 1}}}\n"),
                 11, 55, "unknown learning-rate schedule 'step_decay'");
  CHECK_FAILS_AT(failure("  loss: mse\n  reduce_on_plateau: {factor: 1.0}\n"), 11, 31, "in (0, 1)");
  CHECK_FAILS_AT(failure("  loss: mse\n  early_stopping: {mode: biggest}\n"), 11, 26,
                 "must be one of 'auto', 'min', 'max', got 'biggest'");
  CHECK_FAILS_AT(failure("  loss: mse\n  metrics: [acuracy]\n"), 11, 13,
                 "did you mean 'accuracy'?");
  CHECK_FAILS_AT(failure("  loss: mse\n  exclude_from_weight_decay: [bias]\n"), 11, 30,
                 "belongs to the optimizer");
  CHECK_FAILS_AT(
      failure("  loss: mse\n  optimizer: {name: adam, exclude_from_weight_decay: [bias]}\n"), 11,
      54, "without weight_decay");
  CHECK_FAILS_AT(
      failure("  loss: mse\n  optimizer: {name: adam, learning_rate: {exponential_decay: "
              "{initial_learning_rate: 0.1, decay_steps: 7, decay_rate: 0.9}}}\n  "
              "reduce_on_plateau: {}\n"),
      12, 22, "cannot change a learning-rate schedule");
  // a key without a value still has a position (the mapping's, or its own)
  CHECK(failure("  loss: mse\n  epoks:\n").line >= 10);
  CHECK(failure("  loss: mse\n  epoks:\n").message.find("did you mean 'epochs'?") !=
        std::string::npos);
  // no loss at all: the section is pointed at
  CHECK(failure("  epochs: 3\n").message.find("needs 'loss'") != std::string::npos);
}

TEST_CASE("training config: checks against the graph's outputs") {
  // a loss for an output that does not exist
  CHECK_FAILS_AT(failure("  loss: {prob: categorical_crossentropy}\n", true), 10, 16,
                 "names output 'prob', which the graph does not have");
  // categorical_crossentropy on an output without a class axis (score is (None, 1))
  CHECK_FAILS_AT(
      failure("  loss: {probs: categorical_crossentropy, score: categorical_crossentropy}\n", true),
      10, 50, "needs a class axis");
  CHECK(failure("  loss: {probs: mse, score: sparse_categorical_crossentropy}\n", true)
            .message.find("use binary_crossentropy") != std::string::npos);
  CHECK_FAILS_AT(failure("  loss: mse\n  metrics: {score: [categorical_accuracy]}\n", true), 11, 21,
                 "needs a class axis");
  CHECK_FAILS_AT(failure("  loss: mse\n  loss_weights: [1.0]\n", true), 11, 17,
                 "lists 1 weight(s) for 2 output(s)");
  CHECK_FAILS_AT(failure("  loss: mse\n  early_stopping: {monitor: val_acuracy}\n", true), 11, 29,
                 "monitors 'val_acuracy'");
  CHECK_FAILS_AT(
      failure("  loss: mse\n  optimizer: {name: adamw, exclude_from_weight_decay: [biass]}\n",
              true),
      11, 56, "matches no weight");
  // and what resolves: one entry per output, in output order, with Keras's log names
  auto graph = fg::test::compile_yaml(
      with_training("  loss: {score: binary_crossentropy, probs: categorical_crossentropy}\n"
                    "  loss_weights: {score: 0.5}\n  metrics: [accuracy]\n"
                    "  optimizer: {name: adamw, exclude_from_weight_decay: [bias]}\n"
                    "  early_stopping: {monitor: val_probs_accuracy}\n"),
      "t.yaml");
  auto outputs =
      fg::resolve_training_outputs(fg::parse_training_config(*graph->def().training), *graph);
  REQUIRE(outputs.size() == 2);
  CHECK(outputs[0].output == "probs");
  CHECK(outputs[0].loss->kind == fg::LossKind::categorical_crossentropy);
  CHECK(outputs[0].loss_weight == 1.0);
  CHECK(outputs[1].loss_weight == 0.5);
  CHECK(fg::logged_names(outputs) == std::vector<std::string>{"loss", "probs_loss",
                                                              "probs_accuracy", "score_loss",
                                                              "score_accuracy"});
}

TEST_CASE("training config: trainable: false is read per node") {
  auto def = fg::load_graph_string(R"(name: t
inputs:
  x: {shape: [7]}
nodes:
  - {name: a, op: dense, input: x, units: 13, trainable: false}
  - {name: b, op: dense, input: a, units: 3}
outputs: [b]
)");
  CHECK_FALSE(def->nodes[0].trainable);
  CHECK(def->nodes[0].attrs.count("trainable") == 0);
  CHECK(def->nodes[1].trainable);
  CHECK_FALSE(def->training.has_value());
  try {
    fg::load_graph_string(
        "name: t\ninputs:\n  x: {shape: [7]}\nnodes:\n  - {name: a, op: dense, input: x, units: "
        "3, trainable: no}\noutputs: [a]\n",
        "t.yaml");
    FAIL("trainable: no was accepted");
  } catch (const fg::Error& e) {
    CHECK(e.loc().line == 5);
    CHECK(std::string(e.what()).find("true or false") != std::string::npos);
  }
}
