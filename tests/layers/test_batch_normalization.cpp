// batch_normalization against the naive reference (tests/reference/norm_merge.hpp).
#include <fmt/format.h>

#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/norm_merge.hpp"
#include "tests/reference/norm_training.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string dims_list(const Dims& shape) {  // per-sample dims as a YAML list
  std::string out = "[";
  for (size_t i = 1; i < shape.size(); ++i) out += (i > 1 ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

struct BnCase {
  Dims shape;  // batch included
  int axis = -1;
  double epsilon = 0.001;
  bool center = true, scale = true;
};

void check_bn(const BnCase& c, uint64_t seed) {
  CAPTURE(format_shape(c.shape));
  CAPTURE(c.axis);
  const int rank = static_cast<int>(c.shape.size());
  const int axis = c.axis < 0 ? c.axis + rank : c.axis;
  const Dim ch = c.shape[axis];
  const std::string yaml = fmt::format(R"(
name: t
inputs:
  x: {{shape: {}}}
nodes:
  - {{name: bn, op: batch_normalization, input: x, axis: {}, epsilon: {}, center: {}, scale: {}, momentum: 0.9}}
outputs: [bn]
)",
                                       dims_list(c.shape), c.axis, c.epsilon, c.center, c.scale);
  Tensor x = random_tensor(c.shape, seed, -2.f, 2.f);
  Tensor gamma = random_tensor({ch}, seed + 1, 0.5f, 1.5f);
  Tensor beta = random_tensor({ch}, seed + 2, -1.f, 1.f);
  Tensor mean = random_tensor({ch}, seed + 3, -0.5f, 0.5f);
  Tensor var = random_tensor({ch}, seed + 4, 0.05f, 2.f);
  std::map<std::string, Tensor> w{{"bn.moving_mean", mean}, {"bn.moving_variance", var}};
  if (c.scale) w["bn.gamma"] = gamma;
  if (c.center) w["bn.beta"] = beta;
  auto out = run_yaml(yaml, {{"x", x}}, w);
  auto want = ref::batch_norm(to_doubles(x), c.shape, axis,
                              c.scale ? to_doubles(gamma) : std::vector<double>{},
                              c.center ? to_doubles(beta) : std::vector<double>{}, to_doubles(mean),
                              to_doubles(var), c.epsilon);
  check_shape(out.at("bn"), c.shape);
  check_close(out.at("bn"), want, 1e-5, 1e-5);
}

}  // namespace

TEST_CASE("batch_normalization last axis, odd and round channels, rank 2 to 4") {
  uint64_t seed = 100;
  for (Dims shape : {Dims{1, 3}, Dims{5, 7}, Dims{5, 11, 13}, Dims{1, 9, 127}, Dims{5, 4, 6, 64},
                     Dims{1, 3, 5, 7}, Dims{5, 2, 3, 13}})
    check_bn({shape}, seed++);
}

TEST_CASE("batch_normalization on a non-last axis") {
  check_bn({{2, 5, 3, 7}, 1}, 1);
  check_bn({{5, 13, 7}, -2}, 2);
  check_bn({{3, 7, 5, 3}, 2}, 3);
  check_bn({{1, 127, 4}, 1}, 4);
  check_bn({{5, 64, 9}, 1}, 5);
}

TEST_CASE("batch_normalization epsilon, center and scale options") {
  check_bn({{5, 7}, -1, 1e-5}, 11);
  check_bn({{5, 6, 13}, -1, 0.5}, 12);
  check_bn({{5, 6, 13}, -1, 0.001, false, true}, 13);
  check_bn({{5, 6, 13}, -1, 0.001, true, false}, 14);
  check_bn({{1, 4, 127}, -1, 0.001, false, false}, 15);
  check_bn({{5, 7, 3}, 1, 0.01, false, true}, 16);
}

TEST_CASE("batch_normalization weights follow Keras names and shapes") {
  auto weights_of = [](const std::string& extra) {
    auto def = load_graph_string(fmt::format(R"(
name: t
inputs:
  x: {{shape: [4, 13]}}
nodes:
  - {{name: bn, op: batch_normalization, input: x{}}}
outputs: [bn]
)",
                                             extra));
    return compile_graph(def, builtin_ops()).all_weights();
  };
  auto w = weights_of("");
  REQUIRE(w.size() == 4);
  CHECK(w[0].first == "bn.gamma");
  CHECK(w[0].second.shape == Dims{13});
  CHECK(w[0].second.init == Init::ones);
  CHECK(w[1].first == "bn.beta");
  CHECK(w[1].second.init == Init::zeros);
  CHECK(w[2].first == "bn.moving_mean");
  CHECK_FALSE(w[2].second.trainable);
  CHECK(w[3].first == "bn.moving_variance");
  CHECK(w[3].second.init == Init::ones);
  CHECK_FALSE(w[3].second.trainable);
  auto w2 = weights_of(", axis: 1, center: false");
  REQUIRE(w2.size() == 3);
  CHECK(w2[0].first == "bn.gamma");
  CHECK(w2[0].second.shape == Dims{4});
  CHECK(w2[1].first == "bn.moving_mean");
  CHECK(weights_of(", scale: false, center: false").size() == 2);
}

TEST_CASE("batch_normalization errors") {
  auto yaml = [](const std::string& attrs, const std::string& input = "{shape: [4, 13]}") {
    return fmt::format(
        "name: t\ninputs:\n  x: {}\nnodes:\n  - {{name: bn, op: batch_normalization, "
        "input: x{}}}\noutputs: [bn]\n",
        input, attrs);
  };
  std::string e = compile_error(yaml(", axis: 3"));
  CHECK(e.find("axis 3 is out of range") != std::string::npos);
  CHECK(e.find("(None, 4, 13)") != std::string::npos);
  CHECK(compile_error(yaml(", axis: -4")).find("out of range") != std::string::npos);
  CHECK(compile_error(yaml(", axis: 0")).find("batch axis") != std::string::npos);
  CHECK(compile_error(yaml(", epsilon: 0")).find("epsilon must be > 0") != std::string::npos);
  CHECK(compile_error(yaml(", epsilon: -1")).find("epsilon must be > 0") != std::string::npos);
  CHECK(compile_error(yaml(", momentum: 1.5")).find("momentum must be in [0, 1], got 1.5") !=
        std::string::npos);
  CHECK(compile_error(yaml(", momentum: 0")) == "");
  CHECK(compile_error(yaml(", axes: 1")).find("axes") != std::string::npos);
  CHECK(compile_error(yaml("", "{shape: [13], dtype: int32}")).find("float32") !=
        std::string::npos);
  CHECK(compile_error(yaml("")) == "");
}

TEST_CASE("batch_normalization runs with a dynamic steps dim bound at run time") {
  const std::string yaml =
      "name: t\ninputs:\n  x: {shape: [null, 13]}\nnodes:\n  - {name: bn, op: batch_normalization, "
      "input: x}\n"
      "outputs: [bn]\n";
  std::map<std::string, Tensor> w{{"bn.gamma", random_tensor({13}, 1, 0.5f, 1.5f)},
                                  {"bn.beta", random_tensor({13}, 2)},
                                  {"bn.moving_mean", random_tensor({13}, 3)},
                                  {"bn.moving_variance", random_tensor({13}, 4, 0.1f, 2.f)}};
  for (Dim steps : {Dim{3}, Dim{9}}) {
    Tensor x = random_tensor({2, steps, 13}, 5);
    auto out = run_yaml(yaml, {{"x", x}}, w);
    check_close(out.at("bn"),
                ref::batch_norm(to_doubles(x), {2, steps, 13}, 2, to_doubles(w["bn.gamma"]),
                                to_doubles(w["bn.beta"]), to_doubles(w["bn.moving_mean"]),
                                to_doubles(w["bn.moving_variance"]), 0.001));
  }
}

// ---- training mode and gradients (Op::compile_training) ----

namespace {

TrainingNodeCase bn_training_case(const BnCase& b, uint64_t seed) {
  const int rank = static_cast<int>(b.shape.size());
  const Dim ch = b.shape[b.axis < 0 ? b.axis + rank : b.axis];
  TrainingNodeCase c;
  c.yaml = fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: bn, op: batch_normalization, "
      "input: x, axis: {}, epsilon: {}, center: {}, scale: {}, momentum: 0.9}}\noutputs: [bn]\n",
      dims_list(b.shape), b.axis, b.epsilon, b.center, b.scale);
  c.inputs = {random_tensor(b.shape, seed, -2.f, 2.f)};
  if (b.scale) c.weights["gamma"] = random_tensor({ch}, seed + 1, 0.5f, 1.5f);
  if (b.center) c.weights["beta"] = random_tensor({ch}, seed + 2, -1.f, 1.f);
  c.weights["moving_mean"] = random_tensor({ch}, seed + 3, -0.5f, 0.5f);
  c.weights["moving_variance"] = random_tensor({ch}, seed + 4, 0.05f, 2.f);
  return c;
}

// gamma / beta of a naive forward's weights (weights() order: gamma, beta, moving_mean,
// moving_variance, the absent ones left out).
struct BnNaiveWeights {
  std::vector<double> gamma, beta, mean, variance;
};
BnNaiveWeights split(const BnCase& b, const std::vector<std::vector<double>>& w) {
  BnNaiveWeights out;
  size_t i = 0;
  if (b.scale) out.gamma = w[i++];
  if (b.center) out.beta = w[i++];
  out.mean = w[i++];
  out.variance = w[i];
  return out;
}

void check_bn_training(const BnCase& b, uint64_t seed) {
  CAPTURE(format_shape(b.shape));
  CAPTURE(b.axis);
  CAPTURE(b.center);
  CAPTURE(b.scale);
  const int rank = static_cast<int>(b.shape.size());
  const int axis = b.axis < 0 ? b.axis + rank : b.axis;
  TrainingNodeCase c = bn_training_case(b, seed);
  auto r = check_gradients(c, [&](const auto& x, const auto& w) {
    const BnNaiveWeights nw = split(b, w);
    return std::vector<std::vector<double>>{
        ref::batch_norm_training(x[0], b.shape, axis, nw.gamma, nw.beta, b.epsilon)};
  });
  // The moving statistics, updated in place, against the naive update with momentum 0.9.
  const ref::BatchMoments m = ref::batch_moments(to_doubles(c.inputs[0]), b.shape, axis);
  check_close(r.weights_after.at("moving_mean"),
              ref::moving_update(to_doubles(c.weights.at("moving_mean")), m.mean, 0.9), 1e-5, 1e-6);
  check_close(r.weights_after.at("moving_variance"),
              ref::moving_update(to_doubles(c.weights.at("moving_variance")), m.variance, 0.9),
              1e-5, 1e-6);
}

}  // namespace

TEST_CASE("batch_normalization training: batch statistics, moving update, gradients") {
  check_bn_training({{7, 13}}, 1);
  check_bn_training({{4, 127}}, 2);
  check_bn_training({{32, 16}}, 3);
  check_bn_training({{2, 5, 7, 3}}, 4);     // channels last (NHWC)
  check_bn_training({{3, 4, 5}, 1}, 5);     // a middle axis
  check_bn_training({{2, 3, 4, 5}, 1}, 6);  // channels first
  check_bn_training({{1, 7, 13}, 2}, 7);    // batch 1: the statistics come from the steps
  check_bn_training({{5, 13}, -1, 0.01, false, true}, 8);
  check_bn_training({{5, 13}, -1, 0.001, true, false}, 9);
  check_bn_training({{5, 6, 7}, 1, 0.001, false, false}, 10);
}

TEST_CASE("batch_normalization training: frozen runs in inference mode and passes d x only") {
  for (const BnCase& b :
       {BnCase{{7, 13}}, BnCase{{2, 3, 4, 5}, 1}, BnCase{{3, 5, 7}, -1, 0.001, false}}) {
    CAPTURE(format_shape(b.shape));
    const int rank = static_cast<int>(b.shape.size());
    const int axis = b.axis < 0 ? b.axis + rank : b.axis;
    TrainingNodeCase c = bn_training_case(b, 20);
    c.frozen = true;
    auto r = check_gradients(c, [&](const auto& x, const auto& w) {
      const BnNaiveWeights nw = split(b, w);
      return std::vector<std::vector<double>>{
          ref::batch_norm(x[0], b.shape, axis, nw.gamma, nw.beta, nw.mean, nw.variance, b.epsilon)};
    });
    for (const char* name : {"moving_mean", "moving_variance"})
      check_close(r.weights_after.at(name), to_doubles(c.weights.at(name)), 0, 0);
    for (const Tensor& g : r.diff_weights)
      for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
  }
}

TEST_CASE("batch_normalization training: weight gradients without an input gradient") {
  TrainingNodeCase c = bn_training_case({{6, 13}}, 30);
  c.needs_input_gradient = {false};
  auto r = check_gradients(c, [&](const auto& x, const auto& w) {
    return std::vector<std::vector<double>>{
        ref::batch_norm_training(x[0], {6, 13}, 1, w[0], w[1], 0.001)};
  });
  for (size_t i = 0; i < r.diff_inputs[0].size(); ++i)
    REQUIRE(r.diff_inputs[0].data<float>()[i] == 0.0f);  // left untouched
}
