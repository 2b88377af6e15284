// weighted_average against the naive reference: fixed and learned weights, normalize none and
// softmax, 2 to 4 inputs, odd and round shapes, batch 1 and > 1, masks and error messages.
#include <fmt/format.h>

#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/layers/run_node_directly.hpp"
#include "tests/reference/elementwise_fusion.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string dims_list(const Dims& shape) {
  std::string out = "[";
  for (size_t i = 1; i < shape.size(); ++i) out += (i > 1 ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string wa_yaml(size_t n, const Dims& shape, const std::string& attrs) {
  std::string inputs, names;
  for (size_t i = 0; i < n; ++i) {
    inputs += fmt::format("  in{}: {{shape: {}}}\n", i, dims_list(shape));
    names += fmt::format("{}in{}", i ? ", " : "", i);
  }
  return fmt::format(
      "name: t\ninputs:\n{}nodes:\n  - {{name: w, op: weighted_average, inputs: [{}]{}}}\n"
      "outputs: [w]\n",
      inputs, names, attrs);
}

std::string list(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", v[i]);
  return out + "]";
}

// learned: weights come from the weight file; else from the attribute.
void check(size_t n, const Dims& shape, const std::vector<double>& w, bool learned, bool softmax,
           uint64_t seed) {
  CAPTURE(format_shape(shape));
  CAPTURE(n);
  CAPTURE(learned);
  CAPTURE(softmax);
  std::string attrs = softmax ? ", normalize: softmax" : "";
  if (!learned) attrs += ", weights: " + list(w);
  std::map<std::string, Tensor> feeds, weights;
  std::vector<std::vector<double>> xs;
  for (size_t i = 0; i < n; ++i) {
    Tensor t = random_tensor(shape, seed + i, -2.f, 2.f);
    feeds[fmt::format("in{}", i)] = t;
    xs.push_back(to_doubles(t));
  }
  std::vector<double> wd = w;
  if (learned) {
    Tensor wt(DType::f32, {static_cast<Dim>(n)});
    for (size_t i = 0; i < n; ++i) wt.mutable_data<float>()[i] = static_cast<float>(w[i]);
    weights["w.weights"] = wt;
    wd = to_doubles(wt);
  }
  if (softmax) wd = ref::softmax_vec(wd);
  auto out = run_yaml(wa_yaml(n, shape, attrs), feeds, weights);
  check_shape(out.at("w"), shape);
  check_close(out.at("w"), ref::weighted_average(xs, wd), 1e-5, 1e-6);
}

}  // namespace

TEST_CASE("weighted_average with fixed weights matches the reference") {
  uint64_t seed = 10;
  for (Dims shape :
       {Dims{1, 7}, Dims{5, 13}, Dims{3, 127}, Dims{2, 13, 7}, Dims{1, 4, 6, 64}, Dims{4, 32}}) {
    check(2, shape, {0.25, 0.75}, false, false, seed++);
    check(3, shape, {-1.5, 0.5, 2.0}, false, false, seed++);
    check(3, shape, {1.0, 2.0, 3.0}, false, true, seed++);
    check(4, shape, {1.0, 1.0, 1.0, 1.0}, false, false, seed++);
  }
}

TEST_CASE("weighted_average with learned weights matches the reference") {
  uint64_t seed = 100;
  for (Dims shape : {Dims{1, 7}, Dims{5, 13}, Dims{2, 127}, Dims{3, 5, 7}, Dims{2, 8, 8, 16}}) {
    check(2, shape, {0.3, -0.8}, true, false, seed++);
    check(3, shape, {0.3, -0.8, 1.7}, true, true, seed++);
    check(4, shape, {0.0, 0.0, 0.0, 0.0}, true, true, seed++);  // uniform 1/4
  }
}

TEST_CASE("weighted_average declares a [M] weight initialised to ones only when learned") {
  auto g = compile_graph(load_graph_string(wa_yaml(3, {1, 5}, ", normalize: softmax"), "t.yaml"),
                         builtin_ops());
  auto w = g.all_weights();
  REQUIRE(w.size() == 1);
  CHECK(w[0].first == "w.weights");
  CHECK(w[0].second.shape == Dims{3});
  CHECK(w[0].second.init == Init::ones);
  auto g2 = compile_graph(load_graph_string(wa_yaml(2, {1, 5}, ", weights: [1, 2]"), "t.yaml"),
                          builtin_ops());
  CHECK(g2.all_weights().empty());
}

TEST_CASE("weighted_average mask is the AND of the input masks") {
  const std::string yaml = wa_yaml(2, {2, 3, 2}, ", weights: [0.5, 2]");
  Tensor a = random_tensor({2, 3, 2}, 1), b = random_tensor({2, 3, 2}, 2);
  std::vector<uint8_t> ma{1, 1, 0, 1, 0, 1}, mb{1, 0, 1, 1, 1, 1};
  auto r = run_direct(yaml, {a, b}, {ma, mb});
  REQUIRE(r.type.masked);
  CHECK(r.mask == std::vector<uint8_t>{1, 0, 0, 1, 0, 1});
  check_close(r.out, ref::weighted_average({to_doubles(a), to_doubles(b)}, {0.5, 2.0}), 1e-6, 1e-6);
  r = run_direct(yaml, {a, b}, {{}, mb});
  CHECK(r.mask == mb);
  r = run_direct(yaml, {a, b}, {{}, {}});
  CHECK_FALSE(r.type.masked);
}

TEST_CASE("weighted_average errors") {
  // unequal shapes: every shape is listed
  std::string e = compile_error(
      "name: t\ninputs:\n  a: {shape: [5]}\n  b: {shape: [7]}\n  c: {shape: [5]}\nnodes:\n"
      "  - {name: w, op: weighted_average, inputs: [a, b, c]}\noutputs: [w]\n");
  CAPTURE(e);
  CHECK(e.find("same shape") != std::string::npos);
  CHECK(e.find("\n  a: (None, 5)\n  b: (None, 7)\n  c: (None, 5)") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [5]}\n  b: {shape: [5, 1]}\nnodes:\n"
      "  - {name: w, op: weighted_average, inputs: [a, b]}\noutputs: [w]\n");
  CHECK(e.find("same shape") != std::string::npos);
  // weights count
  e = compile_error(wa_yaml(3, {1, 5}, ", weights: [1, 2]"));
  CHECK(e.find("weights has 2 values but the node has 3 inputs") != std::string::npos);
  e = compile_error(wa_yaml(2, {1, 5}, ", weights: [1]"));
  CHECK(e.find("one number per input") != std::string::npos);
  e = compile_error(wa_yaml(2, {1, 5}, ", weights: 1"));
  CHECK(e.find("list") != std::string::npos);
  e = compile_error(wa_yaml(2, {1, 5}, ", normalize: softmx"));
  CHECK(e.find("softmax") != std::string::npos);
  e = compile_error(wa_yaml(1, {1, 5}, ""));
  CHECK(e.find("at least 2 inputs") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [3], dtype: int32}\n  b: {shape: [3], dtype: int32}\n"
      "nodes:\n  - {name: w, op: weighted_average, inputs: [a, b]}\noutputs: [w]\n");
  CHECK(e.find("float32") != std::string::npos);
  e = compile_error(wa_yaml(2, {1, 5}, ", wieghts: [1, 2]"));
  CHECK(e.find("unknown attribute 'wieghts'") != std::string::npos);
  // a dynamic dim matches a known one
  CHECK(compile_error("name: t\ninputs:\n  a: {shape: [null, 3]}\n  b: {shape: [4, 3]}\nnodes:\n"
                      "  - {name: w, op: weighted_average, inputs: [a, b]}\noutputs: [w]\n") == "");
}

// ---- gradients (Op::compile_training) ----

namespace {

// learned: the weight `weights` (random, so the softmax is not uniform); else the attribute.
TrainingNodeResult check_wa_gradient(size_t n, const Dims& shape, bool learned, bool softmax,
                                     uint64_t seed, bool frozen = false) {
  CAPTURE(format_shape(shape));
  CAPTURE(n);
  CAPTURE(learned);
  CAPTURE(softmax);
  const std::vector<double> fixed{0.25, -1.5, 2.0, 0.5};
  std::vector<double> w(fixed.begin(), fixed.begin() + static_cast<long>(n));
  std::string attrs = softmax ? ", normalize: softmax" : "";
  if (!learned) attrs += ", weights: " + list(w);
  TrainingNodeCase c;
  c.yaml = wa_yaml(n, shape, attrs);
  for (size_t i = 0; i < n; ++i) c.inputs.push_back(random_tensor(shape, seed + i, -2.f, 2.f));
  if (learned) c.weights["weights"] = random_tensor({static_cast<Dim>(n)}, seed + 9, -1.f, 1.f);
  c.frozen = frozen;
  return check_gradients(c, [&](const auto& x, const auto& ws) {
    const std::vector<double> raw = learned ? ws[0] : w;
    return std::vector<std::vector<double>>{
        ref::weighted_average(x, softmax ? ref::softmax_vec(raw) : raw)};
  });
}

}  // namespace

TEST_CASE("weighted_average gradient: fixed and learned weights, with and without softmax") {
  uint64_t seed = 200;
  for (const Dims& shape : {Dims{7, 13}, Dims{4, 127}, Dims{2, 3, 5}, Dims{1, 32}})
    for (size_t n : {2, 3})
      for (bool learned : {false, true})
        for (bool softmax : {false, true}) check_wa_gradient(n, shape, learned, softmax, seed++);
}

TEST_CASE("weighted_average gradient: frozen learned weights get none, masks pass") {
  auto r = check_wa_gradient(3, {5, 13}, true, true, 300, /*frozen=*/true);
  for (size_t i = 0; i < r.diff_weights[0].size(); ++i)
    REQUIRE(r.diff_weights[0].data<float>()[i] == 0.0f);
  TrainingNodeCase c;
  c.yaml = wa_yaml(2, {3, 7, 5}, ", weights: [0.5, 2]");
  c.inputs = {random_tensor({3, 7, 5}, 1), random_tensor({3, 7, 5}, 2)};
  std::vector<uint8_t> m(21, 1);
  m[6] = 0;
  c.masks = {m, {}};
  r = check_gradients(c, [&](const auto& x, const auto&) {
    return std::vector<std::vector<double>>{ref::weighted_average(x, {0.5, 2})};
  });
  REQUIRE(r.output_masks[0].size() == 21);
  CHECK(r.output_masks[0][6] == 0);
  CHECK(r.output_masks[0][5] == 1);
}
