// gated (gated multimodal unit) against the naive reference: sigmoid gate with 2 inputs,
// softmax gate with 2 to 4 inputs, with and without biases, odd and round sizes, batch 1 and > 1;
// weight shapes and attribute / shape errors.
#include <fmt/format.h>

#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/elementwise_fusion.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string gated_yaml(const std::vector<Dim>& d, int64_t units, const std::string& attrs) {
  std::string inputs, names;
  for (size_t i = 0; i < d.size(); ++i) {
    inputs += fmt::format("  in{}: {{shape: [{}]}}\n", i, d[i]);
    names += fmt::format("{}in{}", i ? ", " : "", i);
  }
  return fmt::format(
      "name: t\ninputs:\n{}nodes:\n  - {{name: g, op: gated, inputs: [{}], units: {}{}}}\n"
      "outputs: [g]\n",
      inputs, names, units, attrs);
}

void check(const std::vector<Dim>& d, int64_t B, int64_t U, const std::string& gate, bool bias,
           uint64_t seed) {
  CAPTURE(d.size());
  CAPTURE(B);
  CAPTURE(U);
  CAPTURE(gate);
  CAPTURE(bias);
  const size_t M = d.size();
  const bool sigmoid = gate == "sigmoid" || (gate.empty() && M == 2);
  std::string attrs = gate.empty() ? "" : ", gate: " + gate;
  if (!bias) attrs += ", use_bias: false";
  std::map<std::string, Tensor> feeds, weights;
  std::vector<std::vector<double>> xs, kernels, biases;
  int64_t total = 0;
  for (size_t m = 0; m < M; ++m) {
    Tensor x = random_tensor({B, d[m]}, seed + m, -1.f, 1.f);
    feeds[fmt::format("in{}", m)] = x;
    xs.push_back(to_doubles(x));
    Tensor k = random_tensor({d[m], U}, seed + 10 + m, -0.5f, 0.5f);
    weights[fmt::format("g.kernel_{}", m)] = k;
    kernels.push_back(to_doubles(k));
    if (bias) {
      Tensor b = random_tensor({U}, seed + 20 + m, -0.5f, 0.5f);
      weights[fmt::format("g.bias_{}", m)] = b;
      biases.push_back(to_doubles(b));
    } else {
      biases.emplace_back();
    }
    total += d[m];
  }
  const int64_t G = sigmoid ? U : static_cast<int64_t>(M) * U;
  Tensor gk = random_tensor({total, G}, seed + 30, -0.5f, 0.5f);
  weights["g.gate_kernel"] = gk;
  std::vector<double> gb;
  if (bias) {
    Tensor t = random_tensor({G}, seed + 31, -1.f, 1.f);
    weights["g.gate_bias"] = t;
    gb = to_doubles(t);
  }
  auto out = run_yaml(gated_yaml(d, U, attrs), feeds, weights);
  check_shape(out.at("g"), {B, U});
  check_close(out.at("g"), ref::gated(xs, d, B, U, kernels, biases, to_doubles(gk), gb, sigmoid),
              1e-5, 1e-5);
}

}  // namespace

TEST_CASE("gated with a sigmoid gate matches the reference") {
  uint64_t seed = 1000;
  for (int64_t B : {1, 5}) {
    check({7, 13}, B, 5, "", true, seed += 50);
    check({13, 127}, B, 16, "sigmoid", true, seed += 50);
    check({32, 64}, B, 32, "", false, seed += 50);
    check({1, 3}, B, 1, "", true, seed += 50);
  }
}

TEST_CASE("gated with a softmax gate matches the reference") {
  uint64_t seed = 2000;
  for (int64_t B : {1, 4}) {
    check({7, 13, 5}, B, 7, "", true, seed += 50);
    check({7, 13}, B, 13, "softmax", true, seed += 50);
    check({32, 64, 16, 8}, B, 32, "", true, seed += 50);
    check({127, 3, 9}, B, 11, "softmax", false, seed += 50);
  }
}

TEST_CASE("gated weights have the documented names and Keras shapes") {
  auto weights_of = [](const std::string& yaml) {
    auto g = compile_graph(load_graph_string(yaml, "t.yaml"), builtin_ops());
    std::map<std::string, Dims> out;
    for (const auto& [key, spec] : g.all_weights()) out[key] = spec.shape;
    return out;
  };
  auto w = weights_of(gated_yaml({7, 13}, 5, ""));
  CHECK(w == std::map<std::string, Dims>{{"g.kernel_0", {7, 5}},
                                         {"g.bias_0", {5}},
                                         {"g.kernel_1", {13, 5}},
                                         {"g.bias_1", {5}},
                                         {"g.gate_kernel", {20, 5}},
                                         {"g.gate_bias", {5}}});
  w = weights_of(gated_yaml({7, 13, 4}, 5, ", use_bias: false"));
  CHECK(w == std::map<std::string, Dims>{{"g.kernel_0", {7, 5}},
                                         {"g.kernel_1", {13, 5}},
                                         {"g.kernel_2", {4, 5}},
                                         {"g.gate_kernel", {24, 15}}});
  w = weights_of(gated_yaml({7, 13}, 5, ", gate: softmax"));
  CHECK(w.at("g.gate_kernel") == Dims{20, 10});
  CHECK(w.at("g.gate_bias") == Dims{10});
}

TEST_CASE("gated errors") {
  std::string e = compile_error(gated_yaml({7, 13, 5}, 4, ", gate: sigmoid"));
  CHECK(e.find("gate: sigmoid needs exactly 2 inputs, got 3") != std::string::npos);
  CHECK(compile_error(gated_yaml({7}, 4, "")).find("at least 2 inputs") != std::string::npos);
  e = compile_error(gated_yaml({7, 13}, 4, ", gate: tanh"));
  CHECK(e.find("sigmoid") != std::string::npos);
  e = compile_error(gated_yaml({7, 13}, 0, ""));
  CHECK(e.find("positive") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [7]}\n  b: {shape: [7]}\nnodes:\n"
      "  - {name: g, op: gated, inputs: [a, b]}\noutputs: [g]\n");
  CHECK(e.find("units") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [3, 7]}\n  b: {shape: [7]}\nnodes:\n"
      "  - {name: g, op: gated, inputs: [a, b], units: 4}\noutputs: [g]\n");
  CHECK(e.find("rank-2 inputs") != std::string::npos);
  CHECK(e.find("(None, 3, 7)") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [null]}\n  b: {shape: [7]}\nnodes:\n"
      "  - {name: g, op: gated, inputs: [a, b], units: 4}\noutputs: [g]\n");
  CHECK(e.find("feature size") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [7], dtype: int32}\n  b: {shape: [7]}\nnodes:\n"
      "  - {name: g, op: gated, inputs: [a, b], units: 4}\noutputs: [g]\n");
  CHECK(e.find("float32") != std::string::npos);
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

// Weights in weights() order: kernel_m (, bias_m) per modality, gate_kernel (, gate_bias).
TrainingNodeResult check_gated_gradient(const std::vector<Dim>& d, int64_t B, int64_t U,
                                        const std::string& gate, bool bias, uint64_t seed,
                                        bool frozen = false) {
  CAPTURE(d.size());
  CAPTURE(B);
  CAPTURE(U);
  CAPTURE(gate);
  CAPTURE(bias);
  const size_t M = d.size();
  const bool sigmoid = gate == "sigmoid" || (gate.empty() && M == 2);
  std::string attrs = gate.empty() ? "" : ", gate: " + gate;
  if (!bias) attrs += ", use_bias: false";
  TrainingNodeCase c;
  c.yaml = gated_yaml(d, U, attrs);
  c.frozen = frozen;
  int64_t total = 0;
  for (size_t m = 0; m < M; ++m) {
    c.inputs.push_back(random_tensor({B, d[m]}, seed + m));
    c.weights[fmt::format("kernel_{}", m)] = random_tensor({d[m], U}, seed + 10 + m, -0.5f, 0.5f);
    if (bias) c.weights[fmt::format("bias_{}", m)] = random_tensor({U}, seed + 20 + m, -0.5f, 0.5f);
    total += d[m];
  }
  const int64_t G = sigmoid ? U : static_cast<int64_t>(M) * U;
  c.weights["gate_kernel"] = random_tensor({total, G}, seed + 30, -0.5f, 0.5f);
  if (bias) c.weights["gate_bias"] = random_tensor({G}, seed + 31);
  return check_gradients(c, [&](const auto& x, const auto& w) {
    std::vector<std::vector<double>> kernels, biases;
    size_t at = 0;
    for (size_t m = 0; m < M; ++m) {
      kernels.push_back(w[at++]);
      biases.push_back(bias ? w[at++] : std::vector<double>{});
    }
    const std::vector<double>& gk = w[at++];
    const std::vector<double> gb = bias ? w[at] : std::vector<double>{};
    return std::vector<std::vector<double>>{
        ref::gated(x, d, B, U, kernels, biases, gk, gb, sigmoid)};
  });
}

}  // namespace

TEST_CASE("gated gradient with a sigmoid gate, odd and round sizes, with and without biases") {
  uint64_t seed = 7000;
  for (int64_t B : {1, 7}) {
    check_gated_gradient({7, 13}, B, 5, "", true, seed += 50);
    check_gated_gradient({13, 3}, B, 16, "sigmoid", false, seed += 50);
    check_gated_gradient({16, 32}, B, 8, "", true, seed += 50);
    check_gated_gradient({1, 3}, B, 1, "", true, seed += 50);
  }
}

TEST_CASE("gated gradient with a softmax gate, 2 to 4 inputs") {
  uint64_t seed = 8000;
  for (int64_t B : {1, 4}) {
    check_gated_gradient({7, 13, 5}, B, 7, "", true, seed += 50);
    check_gated_gradient({7, 13}, B, 13, "softmax", true, seed += 50);
    check_gated_gradient({16, 8, 4, 3}, B, 8, "", false, seed += 50);
  }
}

TEST_CASE("gated gradient: a frozen gated unit writes no weight gradient") {
  auto r = check_gated_gradient({7, 13, 5}, 3, 4, "", true, 9000, /*frozen=*/true);
  for (const Tensor& g : r.diff_weights)
    for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
}
