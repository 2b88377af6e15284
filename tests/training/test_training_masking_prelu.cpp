// One training step of masking -> lstm -> repeat_vector -> prelu -> flatten -> dense(softmax)
// through the training plan, on inputs with padded steps (a hole, right padding, a row padded
// wholly): every parameter's gradient against central differences of a naive double-precision
// loss (the naive masking, repeat and prelu loops here, the masked LSTM of
// tests/reference/recurrent.hpp, dense of tests/reference/dense_act.hpp). Checks that the mask
// masking makes reaches the lstm in training as in inference.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "engine/training/losses.hpp"
#include "engine/training/parameter_store.hpp"
#include "engine/training/training_plan.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

using Doubles = std::vector<double>;
constexpr int64_t kBatch = 3, kSteps = 7, kFeatures = 3, kUnits = 4, kRepeat = 2, kClasses = 3;

const char* kYaml =
    "name: t\ninputs:\n  x: {shape: [7, 3]}\nnodes:\n"
    "  - {name: m, op: masking, input: x, mask_value: 0.5}\n"
    "  - {name: r, op: lstm, input: m, units: 4}\n"
    "  - {name: rep, op: repeat_vector, input: r, n: 2}\n"
    "  - {name: p, op: prelu, input: rep, shared_axes: [1]}\n"
    "  - {name: f, op: flatten, input: p}\n"
    "  - {name: out, op: dense, input: f, units: 3, activation: softmax}\noutputs: [out]\n";

double naive_loss(std::map<std::string, Doubles> w, const Doubles& x, const Doubles& y) {
  // masking (mask_value 0.5)
  Doubles m(x.size());
  std::vector<uint8_t> mask;
  for (int64_t s = 0; s < kBatch * kSteps; ++s) {
    bool keep = false;
    for (int64_t f = 0; f < kFeatures; ++f)
      keep = keep || static_cast<float>(x[s * kFeatures + f]) != 0.5f;
    mask.push_back(keep);
    for (int64_t f = 0; f < kFeatures; ++f) m[s * kFeatures + f] = keep ? x[s * kFeatures + f] : 0;
  }
  ref::RnnArgsT<double> a;
  a.batch = kBatch, a.steps = kSteps, a.features = kFeatures, a.units = kUnits;
  a.x = m.data(), a.kernel = w["r.kernel"].data(), a.recurrent = w["r.recurrent_kernel"].data();
  a.bias = w["r.bias"].data(), a.mask = mask.data();
  const Doubles h = ref::rnn(a);
  // repeat_vector, prelu with alpha [1, units]
  Doubles p;
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t t = 0; t < kRepeat; ++t)
      for (int64_t u = 0; u < kUnits; ++u) {
        const double v = h[b * kUnits + u];
        p.push_back(v >= 0 ? v : w["p.alpha"][u] * v);
      }
  const Doubles logits =
      ref::dense(p, {kBatch, kRepeat * kUnits}, w["out.kernel"], w["out.bias"], kClasses, "linear");
  double loss = 0;
  for (int64_t b = 0; b < kBatch; ++b) {
    double mx = -1e300, sum = 0;
    for (int64_t c = 0; c < kClasses; ++c) mx = std::max(mx, logits[b * kClasses + c]);
    for (int64_t c = 0; c < kClasses; ++c) sum += std::exp(logits[b * kClasses + c] - mx);
    for (int64_t c = 0; c < kClasses; ++c)
      loss -= y[b * kClasses + c] * (logits[b * kClasses + c] - mx - std::log(sum));
  }
  return loss / kBatch;
}

}  // namespace

TEST_CASE("training plan: masking -> lstm -> repeat_vector -> prelu, gradients of every weight") {
  auto graph = compile_yaml(kYaml);
  WeightStore init = WeightStore::initialize(*graph, 7);
  ParameterStore params(*graph, init);
  // a non-zero alpha (Keras starts from zeros), some of each sign
  for (auto& e : params.entries())
    if (e.key == "p.alpha")
      for (size_t i = 0; i < e.value.size(); ++i)
        e.value.mutable_data<float>()[i] = 0.3f * static_cast<float>(i) - 0.4f;
  std::vector<LossTap> taps{{graph->find_tensor("out"), true}};
  TrainingPlanOptions options;
  options.fill_arena_with_nan = true;
  TrainingPlan plan(*graph, {{kBatch, kSteps, kFeatures}}, taps, params, options);
  CHECK(plan.arena_problem() == "");

  Tensor x = random_tensor({kBatch, kSteps, kFeatures}, 21, -2.f, 2.f);
  float* xp = x.mutable_data<float>();
  auto pad = [&](int64_t b, int64_t t) { std::fill_n(xp + (b * kSteps + t) * kFeatures, 3, 0.5f); };
  pad(0, 5), pad(0, 6), pad(1, 1), pad(1, 4);
  for (int64_t t = 0; t < kSteps; ++t) pad(2, t);
  Tensor y(DType::f32, {kBatch, kClasses});
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t c = 0; c < kClasses; ++c)
      y.mutable_data<float>()[b * kClasses + c] = (b % kClasses == c) ? 1.f : 0.f;
  std::memcpy(plan.input(0), x.data<float>(), x.bytes());
  plan.forward(0);
  softmax_crossentropy_from_logits(plan.prediction(0), y.data<float>(), kBatch, kClasses, 0.0,
                                   plan.prediction_gradient(0));
  plan.backward(0);

  std::map<std::string, Doubles> w;
  for (const auto& e : params.entries()) w[e.key] = to_doubles(e.value);
  const Doubles xd = to_doubles(x), yd = to_doubles(y);
  for (const auto& e : params.entries()) {
    CAPTURE(e.key);
    REQUIRE(e.trainable);
    auto g = numeric_gradient(
        [&](const Doubles& v) {
          auto ww = w;
          ww[e.key] = v;
          return naive_loss(ww, xd, yd);
        },
        w[e.key], {});
    double largest = 0;
    for (double v : g) largest = std::max(largest, std::abs(v));
    CHECK(largest > 1e-4);  // every weight gets a gradient (alpha too)
    for (size_t i = 0; i < g.size(); ++i)
      CHECK(e.gradient.data<float>()[i] == doctest::Approx(g[i]).epsilon(1e-3).scale(1e-2));
  }
}
