// The training plan (engine/training/training_plan.hpp) on small graphs of dense nodes: one
// forward + backward against finite differences of a naive double-precision network loss,
// fan-out sums, frozen nodes, and the arena check.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "engine/training/losses.hpp"
#include "engine/training/parameter_store.hpp"
#include "engine/training/training_plan.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

// x [B, 5] -> h = dense(7, relu) -> out = dense(3, softmax); and a skip: out2 = dense(3) of
// [h + dense(7) of x] when `fan_out` (h feeds two nodes).
std::string mlp_yaml(bool fan_out, bool freeze_first) {
  std::string s =
      "name: t\ninputs:\n  x: {shape: [5]}\nnodes:\n"
      "  - {name: h, op: dense, input: x, units: 7, activation: relu" +
      std::string(freeze_first ? ", trainable: false}" : "}") + "\n";
  if (fan_out)
    s += "  - {name: g, op: dense, input: h, units: 7, activation: tanh}\n"
         "  - {name: out, op: dense, input: h, units: 3, activation: softmax}\n"
         "  - {name: out2, op: dense, input: g, units: 3, activation: softmax}\n"
         "outputs: [out, out2]\n";
  else
    s += "  - {name: out, op: dense, input: h, units: 3, activation: softmax}\noutputs: [out]\n";
  return s;
}

using Doubles = std::vector<double>;
using WeightMap = std::map<std::string, Doubles>;

double softmax_ce(const Doubles& logits, const Doubles& y, int64_t batch, int64_t classes) {
  double total = 0;
  for (int64_t b = 0; b < batch; ++b) {
    double m = -1e300, s = 0;
    for (int64_t c = 0; c < classes; ++c) m = std::max(m, logits[b * classes + c]);
    for (int64_t c = 0; c < classes; ++c) s += std::exp(logits[b * classes + c] - m);
    for (int64_t c = 0; c < classes; ++c)
      total -= y[b * classes + c] * (logits[b * classes + c] - m - std::log(s));
  }
  return total / static_cast<double>(batch);
}

// The naive loss of the whole network (the sum of each output's mean crossentropy).
double naive_loss(const WeightMap& w, const Doubles& x, const Doubles& y, int64_t batch,
                  bool fan_out) {
  Doubles h = ref::dense(x, {batch, 5}, w.at("h.kernel"), w.at("h.bias"), 7, "relu");
  Doubles out = ref::dense(h, {batch, 7}, w.at("out.kernel"), w.at("out.bias"), 3, "linear");
  double loss = softmax_ce(out, y, batch, 3);
  if (fan_out) {
    Doubles g = ref::dense(h, {batch, 7}, w.at("g.kernel"), w.at("g.bias"), 7, "tanh");
    Doubles o2 = ref::dense(g, {batch, 7}, w.at("out2.kernel"), w.at("out2.bias"), 3, "linear");
    loss += softmax_ce(o2, y, batch, 3);
  }
  return loss;
}

void check_one_step(bool fan_out, bool freeze_first, int64_t batch) {
  auto graph = compile_yaml(mlp_yaml(fan_out, freeze_first));
  WeightStore init = WeightStore::initialize(*graph, 5);
  ParameterStore params(*graph, init);
  std::vector<LossTap> taps{{graph->find_tensor("out"), true}};
  if (fan_out) taps.push_back({graph->find_tensor("out2"), true});
  TrainingPlanOptions options;
  options.fill_arena_with_nan = true;
  TrainingPlan plan(*graph, {{batch, 5}}, taps, params, options);
  CHECK(plan.arena_problem() == "");

  Tensor x = random_tensor({batch, 5}, 11);
  Tensor y(DType::f32, {batch, 3});
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < 3; ++c) y.mutable_data<float>()[b * 3 + c] = (b % 3 == c) ? 1.f : 0.f;
  std::memcpy(plan.input(0), x.data<float>(), x.bytes());
  plan.forward(0);
  for (size_t k = 0; k < taps.size(); ++k)
    softmax_crossentropy_from_logits(plan.prediction(k), y.data<float>(), batch, 3, 0.0,
                                     plan.prediction_gradient(k));
  plan.backward(0);

  WeightMap w;
  for (const auto& e : params.entries()) w[e.key] = to_doubles(e.value);
  const Doubles xd = to_doubles(x), yd = to_doubles(y);
  for (const auto& e : params.entries()) {
    CAPTURE(e.key);
    if (!e.trainable) {
      CHECK(e.gradient.empty());
      continue;
    }
    auto g = numeric_gradient(
        [&](const Doubles& v) {
          WeightMap ww = w;
          ww[e.key] = v;
          return naive_loss(ww, xd, yd, batch, fan_out);
        },
        w[e.key], {});
    for (size_t i = 0; i < g.size(); ++i)
      CHECK(e.gradient.data<float>()[i] == doctest::Approx(g[i]).epsilon(1e-3).scale(1e-2));
  }
}

}  // namespace

TEST_CASE(
    "training plan: one step of a dense network matches finite differences of the naive loss") {
  for (int64_t batch : {1, 7, 32}) {
    CAPTURE(batch);
    check_one_step(false, false, batch);
  }
}

TEST_CASE("training plan: a tensor feeding two nodes sums their gradients") {
  check_one_step(true, false, 13);
}

TEST_CASE("training plan: a frozen first layer gets no gradient, the rest still trains") {
  check_one_step(true, true, 7);
  auto graph = compile_yaml(mlp_yaml(false, true));
  ParameterStore params(*graph, WeightStore::initialize(*graph, 1));
  TrainingPlan plan(*graph, {{4, 5}}, {{graph->find_tensor("out"), true}}, params, {});
  size_t backward_steps = 0;
  for (const auto& s : plan.steps())
    if (s.kind == TrainingPlan::StepKind::backward) ++backward_steps;
  CHECK(backward_steps == 1);  // only `out`: nothing trainable lies before h
}

TEST_CASE(
    "training plan: an arena beyond physical memory is refused before anything is allocated") {
  auto graph = compile_yaml(mlp_yaml(false, false));
  ParameterStore params(*graph, WeightStore::initialize(*graph, 1));
  const int64_t batch = int64_t(1) << 32;  // ~100 GB of activations
  try {
    TrainingPlan plan(*graph, {{batch, 5}}, {{graph->find_tensor("out"), true}}, params, {});
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("more than") != std::string::npos);
    CHECK(what.find("--batch-size") != std::string::npos);
  }
  // An input of 2^29 x 5 floats (10.7 GB, less than this machine's memory) has more elements
  // than oneDNN's kernels take: an error, not the SIGFPE oneDNN 2.6 raises.
  try {
    TrainingPlan plan(*graph, {{int64_t(1) << 29, 5}}, {{graph->find_tensor("out"), true}}, params,
                      {});
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("tensor 'x'") != std::string::npos);
    CHECK(what.find("oneDNN") != std::string::npos);
  }
}
