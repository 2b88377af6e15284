// fg::Trainer from the outside (include/fusiongraph/training.hpp), on small dense / conv graphs
// and data folders written in a temporary directory: one fit against a naive double-precision
// reference (finite-difference gradients of a naive forward + loss, Keras's Adam), a learnable
// task, resume equality, threads, concurrent trainers, evaluate against a hand computation,
// sparse targets, multi-output logs and early stopping. Expected values never come from the
// trainer: they are either naive references or a second, independent run of the same API.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <fusiongraph/training.hpp>
#include <thread>

#include "engine/npy.hpp"
#include "engine/scoped_flush_denormals.hpp"
#include "framework/yaml_loader.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/reference/conv_pool.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/reference/keras_training.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

using Doubles = std::vector<double>;

std::string write_graph(const std::string& dir, const std::string& yaml) {
  return write_text(dir + "/graph.yaml", yaml);
}

// A folder with one .npy per name.
std::string write_data(const std::string& dir, const std::map<std::string, Tensor>& files) {
  std::filesystem::create_directories(dir);
  for (const auto& [name, t] : files) write_npy(dir + "/" + name + ".npy", t);
  return dir;
}

Doubles doubles_of(const WeightStore& w, const std::string& key) {
  const Tensor* t = w.find(key);
  REQUIRE_MESSAGE(t != nullptr, key);
  return to_doubles(*t);
}

double log_of(const TrainingLogs& logs, const std::string& name) {
  for (const auto& [k, v] : logs)
    if (k == name) return v;
  FAIL("no log named " << name);
  return 0;
}

std::vector<std::string> names_of(const TrainingLogs& logs) {
  std::vector<std::string> out;
  for (const auto& kv : logs) out.push_back(kv.first);
  return out;
}

// Every weight of `a` bitwise equal in `b` (which holds nothing else unless `b_may_hold_more`).
void check_same_weights(const WeightStore& a, const WeightStore& b, bool b_may_hold_more = false) {
  if (!b_may_hold_more) REQUIRE(a.tensors().size() == b.tensors().size());
  for (const auto& [k, t] : a.tensors()) {
    const Tensor* u = b.find(k);
    REQUIRE_MESSAGE(u != nullptr, k);
    REQUIRE(u->bytes() == t.bytes());
    CHECK_MESSAGE(std::memcmp(u->raw(), t.raw(), t.bytes()) == 0, "weight " << k << " differs");
  }
}

void check_close_weights(const WeightStore& a, const WeightStore& b, double tol) {
  for (const auto& [k, t] : a.tensors()) {
    const Doubles x = to_doubles(t), y = doubles_of(b, k);
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
    CHECK_MESSAGE(worst <= tol, k << ": max difference " << worst);
  }
}

// Rows of a linearly separable 3-class problem in 4 features: the class is the argmax of a
// fixed linear map of x, one-hot targets (or ids).
void separable_problem(int64_t n, uint64_t seed, Tensor& x, Tensor& onehot, Tensor* ids) {
  x = random_tensor({n, 4}, seed);
  onehot = Tensor(DType::f32, {n, 3});
  if (ids) *ids = Tensor(DType::i32, {n});
  const double w[3][4] = {{1, -1, 0.5, 0}, {-1, 0.5, 1, 0.5}, {0.2, 0.6, -1.2, -0.6}};
  for (int64_t r = 0; r < n; ++r) {
    int best = 0;
    double score[3];
    for (int c = 0; c < 3; ++c) {
      score[c] = 0;
      for (int i = 0; i < 4; ++i) score[c] += w[c][i] * x.data<float>()[r * 4 + i];
      if (score[c] > score[best]) best = c;
    }
    for (int c = 0; c < 3; ++c) onehot.mutable_data<float>()[r * 3 + c] = c == best ? 1.f : 0.f;
    if (ids) ids->mutable_data<int32_t>()[r] = best;
  }
}

const char* kMlp =
    "name: mlp\ninputs: {x: {shape: [4]}}\nnodes:\n"
    "  - {name: h, op: dense, input: x, units: 16, activation: relu}\n"
    "  - {name: out, op: dense, input: h, units: 3, activation: softmax}\noutputs: [out]\n";

std::string mlp_with(const std::string& training) {
  return std::string(kMlp) + "training: " + training + "\n";
}

// One-hot targets [n, 3] of class r % 3.
Tensor reference_one_hot(int64_t n) {
  Tensor y(DType::f32, {n, 3});
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < 3; ++c) y.mutable_data<float>()[r * 3 + c] = (r % 3 == c) ? 1.f : 0.f;
  return y;
}

// ---- the naive reference step ------------------------------------------------------------

// x [B, 7, 2] -> c = conv1d(3 filters, kernel 3, valid, tanh) -> flatten -> out = dense(3,
// softmax); categorical crossentropy, mean over the batch.
const char* kConvGraph =
    "name: conv_ref\ninputs: {x: {shape: [7, 2]}}\nnodes:\n"
    "  - {name: c, op: conv1d, input: x, filters: 3, kernel_size: 3, activation: tanh}\n"
    "  - {name: f, op: flatten, input: c}\n"
    "  - {name: out, op: dense, input: f, units: 3, activation: softmax}\noutputs: [out]\n"
    "training: {loss: categorical_crossentropy, optimizer: {name: adam, learning_rate: 0.05}, "
    "metrics: [accuracy], batch_size: 3, epochs: 1, shuffle: false}\n";

using NaiveWeights = std::map<std::string, Doubles>;

Doubles naive_conv_graph_forward(const NaiveWeights& w, const Doubles& x, int64_t batch) {
  ref::Array in{{batch, 7, 2}, x};
  ref::Array kernel{{3, 2, 3}, w.at("c.kernel")};
  ref::Array c = ref::conv1d(in, kernel, w.at("c.bias"), 1, 1, "valid", "tanh");
  return ref::dense(c.data, {batch, 15}, w.at("out.kernel"), w.at("out.bias"), 3, "softmax");
}

double naive_conv_graph_loss(const NaiveWeights& w, const Doubles& x, const Doubles& y,
                             int64_t batch) {
  const Doubles out = naive_conv_graph_forward(w, x, batch);
  double total = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t k = 0; k < 3; ++k) total -= y[b * 3 + k] * std::log(out[b * 3 + k]);
  return total / static_cast<double>(batch);
}

Doubles rows_of(const Tensor& t, int64_t first, int64_t count) {
  const int64_t width = static_cast<int64_t>(t.size()) / t.shape()[0];
  const Doubles all = to_doubles(t);
  return Doubles(all.begin() + first * width, all.begin() + (first + count) * width);
}

TEST_CASE(
    "trainer: fit over 7 samples in batches of 3 (3, 3, then 1) equals a naive Adam "
    "reference step by step (conv1d + flatten + dense, finite-difference gradients)") {
  NamedTempDir dir("fg_trainer", "reference_step");
  const std::string graph = write_graph(dir.path, kConvGraph);
  Tensor x = random_tensor({7, 7, 2}, 11);
  Tensor y = reference_one_hot(7);
  const std::string data = write_data(dir.path + "/data", {{"x", x}, {"out", y}});

  TrainerOptions options;
  options.init_seed = 5;
  options.threads = 1;
  Trainer trainer(graph, options);
  const WeightStore initial = trainer.weights();
  NaiveWeights w;
  std::map<std::string, reference::NaiveState> adam;
  for (const auto& [k, t] : initial.tensors()) {
    w[k] = to_doubles(t);
    adam[k].w = w[k];
  }
  const FitResult fit = trainer.fit(data);
  REQUIRE(fit.history.size() == 1);

  const int64_t firsts[3] = {0, 3, 6}, counts[3] = {3, 3, 1};
  double loss_sum = 0, correct = 0;
  for (int s = 0; s < 3; ++s) {
    const Doubles xb = rows_of(x, firsts[s], counts[s]), yb = rows_of(y, firsts[s], counts[s]);
    loss_sum += naive_conv_graph_loss(w, xb, yb, counts[s]) * counts[s];
    const Doubles p = naive_conv_graph_forward(w, xb, counts[s]);
    for (int64_t r = 0; r < counts[s]; ++r) {
      const auto top = std::max_element(p.begin() + r * 3, p.begin() + r * 3 + 3) - p.begin();
      correct += yb[top] == 1.0;
    }
    std::map<std::string, Doubles> grads;
    for (auto& [key, state] : adam) {
      Doubles g(w[key].size());
      for (size_t i = 0; i < g.size(); ++i) {
        const double keep = w[key][i], h = 1e-6;
        w[key][i] = keep + h;
        const double up = naive_conv_graph_loss(w, xb, yb, counts[s]);
        w[key][i] = keep - h;
        const double down = naive_conv_graph_loss(w, xb, yb, counts[s]);
        w[key][i] = keep;
        g[i] = (up - down) / (2 * h);
      }
      grads[key] = g;
    }
    for (auto& [key, state] : adam) {
      reference::naive_adam(state, grads[key], 0.05, 0.9, 0.999, 1e-7, false);
      w[key] = state.w;
    }
  }
  const WeightStore trained = trainer.weights();
  for (const auto& [key, want] : w) {
    const Doubles got = doubles_of(trained, key);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i)
      CHECK_MESSAGE(std::abs(got[i] - want[i]) <= 2e-5 + 1e-4 * std::abs(want[i]),
                    key << "[" << i << "] = " << got[i] << ", want " << want[i]);
  }
  // The epoch's loss: the sample-weighted mean of the three batches' losses.
  CHECK(log_of(fit.history[0].logs, "loss") == doctest::Approx(loss_sum / 7).epsilon(1e-4));
  CHECK(log_of(fit.history[0].logs, "accuracy") == doctest::Approx(correct / 7));
  CHECK(fit.history[0].samples == 7);
}

// ---- fit on a learnable task, resume, threads, concurrency ----------------------------------

struct SeparableData {
  NamedTempDir dir;
  std::string graph, data;
  Tensor x, y;
  SeparableData(const std::string& name, const std::string& training, int64_t n = 240)
      : dir("fg_trainer", name) {
    graph = write_graph(dir.path, mlp_with(training));
    separable_problem(n, 3, x, y, nullptr);
    data = write_data(dir.path + "/data", {{"x", x}, {"out", y}});
  }
};

TEST_CASE("trainer: the loss falls and accuracy passes 0.9 on a linearly separable 3-class task") {
  SeparableData d("learnable",
                  "{loss: categorical_crossentropy, optimizer: {name: adam, learning_rate: 0.02}, "
                  "metrics: [accuracy], batch_size: 16, epochs: 12, validation_split: 0.2, "
                  "seed: 1}");
  TrainerOptions options;
  options.threads = 1;
  Trainer trainer(d.graph, options);
  const FitResult fit = trainer.fit(d.data);
  REQUIRE(fit.history.size() == 12);
  CHECK(names_of(fit.history[0].logs) ==
        std::vector<std::string>{"loss", "accuracy", "val_loss", "val_accuracy"});
  const double first = log_of(fit.history.front().logs, "loss");
  const double last = log_of(fit.history.back().logs, "loss");
  CHECK(last < 0.5 * first);
  CHECK(log_of(fit.history.back().logs, "accuracy") > 0.9);
  CHECK(log_of(fit.history.back().logs, "val_accuracy") > 0.9);
  CHECK(fit.history.back().samples == 192);  // validation_split 0.2 of 240 takes the last 48
  const EvaluateResult eval = trainer.evaluate(d.data);
  CHECK(eval.samples == 240);
  CHECK(log_of(eval.logs, "accuracy") > 0.9);
  // The validation set is the last 48 samples (Keras: taken before shuffling).
  Tensor last_x(DType::f32, {48, 4}), last_y(DType::f32, {48, 3});
  std::memcpy(last_x.mutable_data<float>(), d.x.data<float>() + 192 * 4, last_x.bytes());
  std::memcpy(last_y.mutable_data<float>(), d.y.data<float>() + 192 * 3, last_y.bytes());
  const EvaluateResult tail =
      trainer.evaluate(write_data(d.dir.path + "/tail", {{"x", last_x}, {"out", last_y}}));
  CHECK(log_of(tail.logs, "loss") ==
        doctest::Approx(log_of(fit.history.back().logs, "val_loss")).epsilon(1e-6));
  CHECK(log_of(tail.logs, "accuracy") == log_of(fit.history.back().logs, "val_accuracy"));
}

const char* kResumeTraining =
    "{loss: categorical_crossentropy, optimizer: {name: adam, learning_rate: 0.01}, metrics: "
    "[accuracy], batch_size: 13, epochs: 2, validation_split: 0.2, shuffle: true, seed: 7}";

TEST_CASE(
    "trainer: 2 epochs equal 1 epoch then resume to 2, bitwise (validation_split, "
    "shuffle, partial batches)") {
  SeparableData d("resume", kResumeTraining, 127);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    TrainerOptions options;
    options.threads = threads;
    Trainer straight(d.graph, options);
    const FitResult full = straight.fit(d.data);
    REQUIRE(full.history.size() == 2);

    TrainerOptions one = options;
    one.overrides.epochs = 1;
    Trainer first(d.graph, one);
    FitOptions save;
    save.save_path = d.dir.path + "/epoch1.safetensors";
    first.fit(d.data, save);
    CHECK(first.initial_epoch() == 1);

    Trainer resumed(d.graph, options);
    resumed.resume(save.save_path);
    CHECK(resumed.initial_epoch() == 1);
    const FitResult rest = resumed.fit(d.data);
    REQUIRE(rest.history.size() == 1);
    CHECK(rest.history[0].epoch == 1);
    check_same_weights(straight.weights(), resumed.weights());
    for (const auto& [k, v] : full.history[1].logs)
      CHECK_MESSAGE(log_of(rest.history[0].logs, k) == v, k);
    CHECK(resumed.history().size() == 2);  // the checkpoint's epoch, then this one
  }
}

TEST_CASE(
    "trainer: set_fit_overrides lets a second fit continue as one longer fit (Keras's fit "
    "called twice), bitwise") {
  SeparableData d("refit", kResumeTraining, 61);
  TrainerOptions options;
  options.threads = 1;
  options.overrides.epochs = 3;
  Trainer straight(d.graph, options);
  const FitResult full = straight.fit(d.data);
  REQUIRE(full.history.size() == 3);

  options.overrides.epochs.reset();
  Trainer twice(d.graph, options);
  TrainingOverrides first;
  first.epochs = 1;
  twice.set_fit_overrides(first);
  CHECK(twice.fit(d.data).history.size() == 1);
  TrainingOverrides rest;
  rest.epochs = 3;
  twice.set_fit_overrides(rest);
  const FitResult second = twice.fit(d.data);
  REQUIRE(second.history.size() == 2);
  CHECK(second.history[0].epoch == 1);
  check_same_weights(straight.weights(), twice.weights());
  CHECK(twice.config().batch_size == 13);  // not given: the graph's

  TrainingOverrides bad;
  bad.batch_size = 0;
  CHECK(error_of([&] { twice.set_fit_overrides(bad); }).find("batch size must be 1 or more") !=
        std::string::npos);
  bad = {};
  bad.learning_rate = 0.1;
  CHECK(error_of([&] { twice.set_fit_overrides(bad); }).find("learning rate and the seed") !=
        std::string::npos);
  CHECK(twice.config().batch_size == 13);  // a refused override changes nothing
  CHECK(error_of([&] { twice.set_data_options(-1, "", false); }).find("workers must be") !=
        std::string::npos);
  twice.set_data_options(3, "", false);  // another pipeline: the epochs done stay
  CHECK(twice.initial_epoch() == 3);
}

// Reads MXCSR on the training thread at every batch.
class MxcsrProbe : public TrainingCallback {
 public:
  void on_batch_end(const BatchProgress&) override { seen.push_back(_mm_getcsr()); }
  std::vector<unsigned> seen;
};

TEST_CASE("trainer: denormals are flushed to zero while fit runs, and the state is restored") {
  SeparableData d("ftz", kResumeTraining, 30);
  TrainerOptions options;
  options.threads = 2;
  Trainer trainer(d.graph, options);
  const unsigned before = _mm_getcsr();
  CHECK((before & ScopedFlushDenormals::kFlushBits) == 0);  // the process default
  MxcsrProbe probe;
  FitOptions fit;
  fit.callbacks.push_back(&probe);
  trainer.fit(d.data, fit);
  REQUIRE(!probe.seen.empty());
  for (unsigned csr : probe.seen)
    CHECK((csr & ScopedFlushDenormals::kFlushBits) == ScopedFlushDenormals::kFlushBits);
  CHECK(_mm_getcsr() == before);
  // a denormal input is zero under the flag, and not without it
  volatile float tiny = 1e-40f;
  {
    const ScopedFlushDenormals flush(1);
    CHECK(tiny * 1.0f == 0.0f);
  }
  CHECK(tiny * 1.0f != 0.0f);
}

TEST_CASE("trainer: 1 and 2 threads train to the same weights within float tolerance") {
  SeparableData d("threads", kResumeTraining, 127);
  TrainerOptions one, two;
  one.threads = 1;
  two.threads = 2;
  Trainer a(d.graph, one), b(d.graph, two);
  const FitResult fa = a.fit(d.data), fb = b.fit(d.data);
  check_close_weights(a.weights(), b.weights(), 1e-4);
  for (const auto& [k, v] : fa.history.back().logs)
    CHECK(log_of(fb.history.back().logs, k) == doctest::Approx(v).epsilon(1e-4));
}

TEST_CASE("trainer: two trainers fit concurrently in two threads as they do one after the other") {
  SeparableData d("concurrent", kResumeTraining, 127);
  const std::string conv_dir = d.dir.path + "/conv";
  std::filesystem::create_directories(conv_dir);
  const std::string conv_graph = write_graph(conv_dir, kConvGraph);
  const std::string conv_data = write_data(
      conv_dir + "/data", {{"x", random_tensor({20, 7, 2}, 4)}, {"out", reference_one_hot(20)}});
  TrainerOptions options;
  options.threads = 1;
  Trainer a1(d.graph, options), b1(conv_graph, options);
  a1.fit(d.data);
  b1.fit(conv_data);
  Trainer a2(d.graph, options), b2(conv_graph, options);
  std::string error_a, error_b;
  std::thread ta([&] {
    try {
      a2.fit(d.data);
    } catch (const std::exception& e) {
      error_a = e.what();
    }
  });
  std::thread tb([&] {
    try {
      b2.fit(conv_data);
    } catch (const std::exception& e) {
      error_b = e.what();
    }
  });
  ta.join();
  tb.join();
  REQUIRE(error_a == "");
  REQUIRE(error_b == "");
  check_same_weights(a1.weights(), a2.weights());
  check_same_weights(b1.weights(), b2.weights());
}

// ---- evaluate, sparse targets, several outputs, early stopping ------------------------------

TEST_CASE(
    "trainer: evaluate equals a hand computation; the partial last batch counts by its own "
    "size") {
  NamedTempDir dir("fg_trainer", "evaluate");
  const std::string graph = write_graph(
      dir.path,
      "name: lin\ninputs: {x: {shape: [2]}}\nnodes:\n"
      "  - {name: out, op: dense, input: x, units: 3, activation: softmax}\noutputs: [out]\n"
      "training: {loss: categorical_crossentropy, optimizer: adam, metrics: [accuracy], "
      "batch_size: 2}\n");
  const Doubles kernel = {1.0, -0.5, 0.25, -1.5, 2.0, 0.5}, bias = {0.1, -0.2, 0.3};
  WeightStore w;
  w.set("out.kernel", make_tensor({2, 3}, {1.0f, -0.5f, 0.25f, -1.5f, 2.0f, 0.5f}));
  w.set("out.bias", make_tensor({3}, {0.1f, -0.2f, 0.3f}));
  const std::string weights = dir.path + "/w.safetensors";
  w.save_safetensors(weights);
  const std::vector<float> xs = {1, 0, 0, 1, 0.5f, 0.5f, -1, 2, 3, -2};
  const std::vector<int32_t> ids = {0, 1, 2, 0, 0};  // 5 samples: batches of 2, 2, then 1
  const std::string data = write_data(
      dir.path + "/data",
      {{"x", make_tensor({5, 2}, xs)}, {"out", make_tensor({5, 3}, reference::one_hot(ids, 3))}});
  // By hand: p = softmax(x K + b), loss = -log p[id] (clipped as Keras), argmax vs id.
  const Doubles p = ref::dense(Doubles(xs.begin(), xs.end()), {5, 2}, kernel, bias, 3, "softmax");
  double loss = 0, correct = 0;
  for (int r = 0; r < 5; ++r) {
    loss -= std::log(reference::clip_probability(p[r * 3 + ids[r]]));
    int best = 0;
    for (int c = 1; c < 3; ++c)
      if (p[r * 3 + c] > p[r * 3 + best]) best = c;
    correct += best == ids[r];
  }
  TrainerOptions options;
  options.weights_file = weights;
  Trainer trainer(graph, options);
  const EvaluateResult r = trainer.evaluate(data);
  CHECK(r.samples == 5);
  CHECK(names_of(r.logs) == std::vector<std::string>{"loss", "accuracy"});
  CHECK(log_of(r.logs, "loss") == doctest::Approx(loss / 5).epsilon(1e-5));
  CHECK(log_of(r.logs, "accuracy") == doctest::Approx(correct / 5));
  CHECK(correct > 0);
  CHECK(correct < 5);
}

TEST_CASE(
    "trainer: sparse_categorical_crossentropy on int32 ids [N] and [N, 1] trains as "
    "categorical crossentropy on the one-hot targets") {
  NamedTempDir dir("fg_trainer", "sparse");
  Tensor x, onehot, ids;
  separable_problem(50, 9, x, onehot, &ids);
  const std::string fit_keys =
      "optimizer: {name: adam, learning_rate: 0.01}, metrics: [accuracy], batch_size: 8, "
      "epochs: 2, seed: 3}";
  std::filesystem::create_directories(dir.path + "/dense");
  const std::string dense_graph =
      write_graph(dir.path + "/dense", mlp_with("{loss: categorical_crossentropy, " + fit_keys));
  const std::string sparse_graph =
      write_graph(dir.path, mlp_with("{loss: sparse_categorical_crossentropy, " + fit_keys));
  TrainerOptions options;
  options.threads = 1;
  Trainer dense(dense_graph, options);
  const FitResult want = dense.fit(write_data(dir.path + "/onehot", {{"x", x}, {"out", onehot}}));
  Tensor column(DType::i32, {50, 1});
  std::memcpy(column.mutable_data<int32_t>(), ids.data<int32_t>(), 50 * sizeof(int32_t));
  for (const Tensor& targets : {ids, column}) {
    CAPTURE(targets.shape().size());
    const std::string data = write_data(dir.path + "/ids" + std::to_string(targets.shape().size()),
                                        {{"x", x}, {"out", targets}});
    Trainer sparse(sparse_graph, options);
    const FitResult got = sparse.fit(data);
    check_close_weights(dense.weights(), sparse.weights(), 1e-5);
    for (const auto& [k, v] : want.history.back().logs)
      CHECK(log_of(got.history.back().logs, k) == doctest::Approx(v).epsilon(1e-5));
    const EvaluateResult e = sparse.evaluate(data);
    CHECK(log_of(e.logs, "accuracy") ==
          doctest::Approx(log_of(dense.evaluate(dir.path + "/onehot").logs, "accuracy")));
  }
}

TEST_CASE(
    "trainer: two outputs with a loss dict and loss_weights log loss, <out>_loss and "
    "<out>_<metric>, and loss is the weighted sum") {
  NamedTempDir dir("fg_trainer", "multi_output");
  const std::string graph = write_graph(
      dir.path,
      "name: two\ninputs: {x: {shape: [4]}}\nnodes:\n"
      "  - {name: h, op: dense, input: x, units: 8, activation: tanh}\n"
      "  - {name: a, op: dense, input: h, units: 3, activation: softmax}\n"
      "  - {name: b, op: dense, input: h, units: 1}\noutputs: [a, b]\n"
      "training: {loss: {a: categorical_crossentropy, b: mse}, loss_weights: {a: 1.0, b: 0.5}, "
      "metrics: {a: [accuracy], b: [mae]}, optimizer: adam, batch_size: 10, epochs: 2, "
      "validation_split: 0.25}\n");
  Tensor x, onehot;
  separable_problem(40, 2, x, onehot, nullptr);
  Tensor target = random_tensor({40, 1}, 8);
  const std::string data = write_data(dir.path + "/data", {{"x", x}, {"a", onehot}, {"b", target}});
  TrainerOptions options;
  options.threads = 1;
  Trainer trainer(graph, options);
  const FitResult fit = trainer.fit(data);
  std::vector<std::string> names = names_of(fit.history.back().logs);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a_accuracy", "a_loss", "b_loss", "b_mae", "loss",
                                          "val_a_accuracy", "val_a_loss", "val_b_loss", "val_b_mae",
                                          "val_loss"});
  for (const std::string prefix : {"", "val_"}) {
    const TrainingLogs& logs = fit.history.back().logs;
    CHECK(log_of(logs, prefix + "loss") ==
          doctest::Approx(log_of(logs, prefix + "a_loss") + 0.5 * log_of(logs, prefix + "b_loss"))
              .epsilon(1e-5));
  }
  const EvaluateResult e = trainer.evaluate(data);
  CHECK(log_of(e.logs, "loss") ==
        doctest::Approx(log_of(e.logs, "a_loss") + 0.5 * log_of(e.logs, "b_loss")).epsilon(1e-5));
}

TEST_CASE(
    "trainer: early stopping stops after `patience` epochs without improvement and "
    "restores the best epoch's weights") {
  NamedTempDir dir("fg_trainer", "early_stopping");
  // min_delta 100: only the first epoch improves (Keras: improvement when loss + 100 < best).
  const std::string base =
      "loss: categorical_crossentropy, optimizer: {name: adam, learning_rate: 0.01}, "
      "batch_size: 16, seed: 2, ";
  const std::string graph = write_graph(
      dir.path, mlp_with("{" + base +
                         "epochs: 6, early_stopping: {monitor: loss, patience: 1, min_delta: "
                         "100, restore_best_weights: true}}"));
  std::filesystem::create_directories(dir.path + "/one");
  const std::string one_epoch = write_graph(dir.path + "/one", mlp_with("{" + base + "epochs: 1}"));
  Tensor x, y;
  separable_problem(64, 4, x, y, nullptr);
  const std::string data = write_data(dir.path + "/data", {{"x", x}, {"out", y}});
  TrainerOptions options;
  options.threads = 1;
  Trainer trainer(graph, options);
  FitOptions fo;
  fo.save_path = dir.path + "/best.safetensors";
  const FitResult fit = trainer.fit(data, fo);
  CHECK(fit.stopped_early);
  CHECK(fit.history.size() == 2);
  REQUIRE(fit.best_epoch.has_value());
  CHECK(*fit.best_epoch == 0);
  Trainer reference(one_epoch, options);
  reference.fit(data);
  check_same_weights(reference.weights(), trainer.weights());
  // The saved file holds the restored weights too.
  check_same_weights(reference.weights(), WeightStore::load_safetensors(fo.save_path), true);
}

}  // namespace

namespace {

TEST_CASE(
    "trainer: a frozen node keeps its weights (saved too) while gradients flow through it "
    "to the trainable node before it") {
  NamedTempDir dir("fg_trainer", "frozen");
  const std::string graph = write_graph(
      dir.path,
      "name: frozen\ninputs: {x: {shape: [4]}}\nnodes:\n"
      "  - {name: a, op: dense, input: x, units: 6, activation: tanh}\n"
      "  - {name: h, op: dense, input: a, units: 5, activation: tanh, trainable: false}\n"
      "  - {name: out, op: dense, input: h, units: 3, activation: softmax}\noutputs: [out]\n"
      "training: {loss: categorical_crossentropy, optimizer: adam, batch_size: 8, epochs: 1}\n");
  Tensor x, y;
  separable_problem(24, 6, x, y, nullptr);
  const std::string data = write_data(dir.path + "/data", {{"x", x}, {"out", y}});
  TrainerOptions options;
  options.threads = 1;
  Trainer trainer(graph, options);
  const WeightStore before = trainer.weights();
  FitOptions fo;
  fo.save_path = dir.path + "/frozen.safetensors";
  trainer.fit(data, fo);
  const WeightStore after = trainer.weights();
  const WeightStore saved = WeightStore::load_safetensors(fo.save_path);
  for (const std::string key : {"a.kernel", "h.kernel", "h.bias", "out.kernel"}) {
    CAPTURE(key);
    const Tensor* b = before.find(key);
    const Tensor* a = after.find(key);
    REQUIRE(b != nullptr);
    REQUIRE(a != nullptr);
    const bool same = std::memcmp(a->raw(), b->raw(), a->bytes()) == 0;
    CHECK(same == (key[0] == 'h'));
    REQUIRE(saved.find(key) != nullptr);
    CHECK(std::memcmp(saved.find(key)->raw(), a->raw(), a->bytes()) == 0);
  }
}

}  // namespace

namespace {

TEST_CASE(
    "trainer: resume equality holds with early stopping's restore_best_weights (the "
    "checkpoint continues from the last epoch's weights, not the restored best ones)") {
  // min_delta 100: only epoch 0 improves, patience 10 never stops; the end restores epoch 0.
  SeparableData d("resume_best",
                  "{loss: categorical_crossentropy, optimizer: {name: adam, learning_rate: "
                  "0.02}, batch_size: 16, epochs: 3, seed: 4, early_stopping: {monitor: loss, "
                  "patience: 10, min_delta: 100, restore_best_weights: true}}",
                  64);
  TrainerOptions options;
  options.threads = 1;
  Trainer straight(d.graph, options);
  const FitResult full = straight.fit(d.data);
  REQUIRE(full.history.size() == 3);
  TrainerOptions two = options;
  two.overrides.epochs = 2;
  Trainer first(d.graph, two);
  FitOptions save;
  save.save_path = d.dir.path + "/epoch2.safetensors";
  first.fit(d.data, save);
  Trainer resumed(d.graph, options);
  resumed.resume(save.save_path);
  const FitResult rest = resumed.fit(d.data);
  REQUIRE(rest.history.size() == 1);
  for (const auto& [k, v] : full.history[2].logs)
    CHECK_MESSAGE(log_of(rest.history[0].logs, k) == v, k);
  check_same_weights(straight.weights(), resumed.weights());
  // The file is still the best model: its weights are epoch 0's, as the trainer's are.
  check_same_weights(first.weights(), WeightStore::load_safetensors(save.save_path), true);
}

}  // namespace

namespace {

// Straight `epochs` epochs against `first` epochs then a resume to `epochs`: same logs and
// weights, bitwise (one thread).
FitResult check_resume_equality(const std::string& name, const std::string& training,
                                int64_t epochs, int64_t first) {
  SeparableData d(name, training, 61);
  TrainerOptions options;
  options.threads = 1;
  Trainer straight(d.graph, options);
  const FitResult full = straight.fit(d.data);
  REQUIRE(full.history.size() == static_cast<size_t>(epochs));
  TrainerOptions part = options;
  part.overrides.epochs = first;
  Trainer head(d.graph, part);
  FitOptions save;
  save.save_path = d.dir.path + "/head.safetensors";
  head.fit(d.data, save);
  Trainer resumed(d.graph, options);
  resumed.resume(save.save_path);
  const FitResult rest = resumed.fit(d.data);
  REQUIRE(rest.history.size() == static_cast<size_t>(epochs - first));
  for (size_t e = 0; e < rest.history.size(); ++e) {
    CHECK(rest.history[e].learning_rate == full.history[first + e].learning_rate);
    for (const auto& [k, v] : full.history[first + e].logs)
      CHECK_MESSAGE(log_of(rest.history[e].logs, k) == v, "epoch " << first + e << " " << k);
  }
  check_same_weights(straight.weights(), resumed.weights());
  return full;
}

TEST_CASE(
    "trainer: resume equality with reduce_on_plateau, a learning-rate schedule, sgd with "
    "momentum and rmsprop") {
  const std::string base =
      "{loss: categorical_crossentropy, metrics: [accuracy], batch_size: 8, epochs: 4, seed: 5, "
      "validation_split: 0.2, ";
  SUBCASE("reduce_on_plateau") {
    const FitResult full = check_resume_equality(
        "plateau",
        base +
            "optimizer: {name: adam, learning_rate: 0.01}, reduce_on_plateau: "
            "{monitor: loss, factor: 0.5, patience: 0, min_delta: 100}}",
        4, 2);
    CHECK(full.history.back().learning_rate == doctest::Approx(0.01 / 8));  // halved 3 times
  }
  SUBCASE("exponential_decay") {
    const FitResult full = check_resume_equality(
        "decay",
        base +
            "optimizer: {name: adam, learning_rate: {exponential_decay: "
            "{initial_learning_rate: 0.02, decay_steps: 3, decay_rate: 0.5}}}}",
        4, 1);
    // 48 training samples in batches of 8: 6 steps an epoch, 24 in all.
    CHECK(full.history.back().learning_rate == doctest::Approx(0.02 * std::pow(0.5, 24.0 / 3)));
  }
  SUBCASE("sgd with nesterov momentum") {
    check_resume_equality(
        "sgd", base + "optimizer: {name: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: true}}",
        4, 3);
  }
  SUBCASE("centered rmsprop with momentum") {
    check_resume_equality(
        "rmsprop",
        base + "optimizer: {name: rmsprop, centered: true, momentum: 0.5, clipnorm: 1.0}}", 4, 2);
  }
}

}  // namespace

namespace {

TEST_CASE(
    "trainer: sigmoid + binary_crossentropy learns a separable binary task; an output "
    "without a loss needs no targets") {
  NamedTempDir dir("fg_trainer", "binary");
  const std::string graph_text =
      "name: bin\ninputs: {x: {shape: [4]}}\nnodes:\n"
      "  - {name: h, op: dense, input: x, units: 8, activation: tanh}\n"
      "  - {name: p, op: dense, input: h, units: 1, activation: sigmoid}\n"
      "  - {name: side, op: dense, input: h, units: 2}\noutputs: [p, side]\n"
      "training: {loss: {p: binary_crossentropy}, metrics: {p: [accuracy]}, optimizer: {name: "
      "adam, learning_rate: 0.03}, batch_size: 16, epochs: 15, seed: 2}\n";
  const std::string graph = write_graph(dir.path, graph_text);
  Tensor x = random_tensor({160, 4}, 12), y(DType::f32, {160, 1});
  for (int64_t r = 0; r < 160; ++r) {
    const float* v = x.data<float>() + r * 4;
    y.mutable_data<float>()[r] = (v[0] - 0.5f * v[1] + v[3] > 0.1f) ? 1.f : 0.f;
  }
  const std::string data = write_data(dir.path + "/data", {{"x", x}, {"p", y}});
  TrainerOptions options;
  options.threads = 1;
  Trainer trainer(graph, options);
  const FitResult fit = trainer.fit(data);
  std::vector<std::string> names = names_of(fit.history.back().logs);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"loss", "p_accuracy", "p_loss"});
  // The names monitors are checked against (framework's logged_names) are the logs' names.
  CHECK(trainer.log_names(false) == names_of(fit.history.back().logs));
  CHECK(trainer.log_names(false) ==
        logged_names(resolve_training_outputs(trainer.config(), *compile_yaml(graph_text))));
  CHECK(log_of(fit.history.back().logs, "loss") < 0.5 * log_of(fit.history[0].logs, "loss"));
  CHECK(log_of(fit.history.back().logs, "p_accuracy") > 0.9);
  const EvaluateResult e = trainer.evaluate(data);
  CHECK(log_of(e.logs, "p_accuracy") > 0.9);
}

}  // namespace

TEST_CASE(
    "trainer: train_on_batch refuses targets of the wrong shape or dtype before reading them") {
  SeparableData d("on_batch", "{loss: categorical_crossentropy, optimizer: adam}", 8);
  TrainerOptions options;
  options.threads = 1;
  Trainer trainer(d.graph, options);
  const std::map<std::string, Tensor> inputs{{"x", d.x}};
  auto message = [&](const Tensor& target) {
    try {
      trainer.train_on_batch(inputs, {{"out", target}});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const Dims good = d.y.shape();
  Dims wide = good;
  wide.back() += 1;
  CHECK(message(Tensor(DType::f32, wide)).find("the targets of 'out' are float32") !=
        std::string::npos);
  CHECK(message(Tensor(DType::i32, good)).find("the output needs float32") != std::string::npos);
  CHECK(message(Tensor(DType::f32, {good[0]})).find("the targets of 'out'") != std::string::npos);
  const TrainingLogs logs = trainer.train_on_batch(inputs, {{"out", d.y}});
  CHECK(std::isfinite(logs.front().second));
}

TEST_CASE("trainer: a callback monitoring a validation value without validation data is an error") {
  SeparableData d("monitor",
                  "{loss: categorical_crossentropy, optimizer: adam, epochs: 2,\n"
                  "   early_stopping: {monitor: val_loss, patience: 1}}",
                  16);
  Trainer trainer(d.graph, {});
  try {
    trainer.fit(d.data);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("early_stopping monitors 'val_loss'") != std::string::npos);
    CHECK(what.find("validation_split") != std::string::npos);
    CHECK(e.loc().line > 0);
  }
  FitOptions with_validation;
  with_validation.validation_data = d.data;
  CHECK(trainer.fit(d.data, with_validation).history.size() == 2);
}

TEST_CASE("trainer: built from a graph read from a string, as from its file") {
  SeparableData d("from_string", "{loss: categorical_crossentropy, optimizer: adam, seed: 2}", 16);
  TrainerOptions options;
  options.threads = 1;
  Trainer from_file(d.graph, options);
  Trainer from_string(load_graph_string(mlp_with("{loss: categorical_crossentropy, optimizer: "
                                                 "adam, seed: 2}"),
                                        "inline.yaml"),
                      options);
  from_file.fit(d.data);
  from_string.fit(d.data);
  check_same_weights(from_file.weights(), from_string.weights());
}
