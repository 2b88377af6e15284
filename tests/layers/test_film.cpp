// film against the naive reference: x of rank 2, 3 and 4, odd and round sizes, batch 1 and > 1;
// weights, mask pass-through and errors.
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

std::string dims_list(const Dims& shape) {
  std::string out = "[";
  for (size_t i = 1; i < shape.size(); ++i) out += (i > 1 ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string film_yaml(const Dims& x, Dim d) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\n  c: {{shape: [{}]}}\nnodes:\n"
      "  - {{name: f, op: film, inputs: [x, c]}}\noutputs: [f]\n",
      dims_list(x), d);
}

void check(const Dims& xs, Dim d, uint64_t seed) {
  CAPTURE(format_shape(xs));
  CAPTURE(d);
  const Dim B = xs[0], C = xs.back();
  Dim inner = 1;
  for (size_t i = 1; i + 1 < xs.size(); ++i) inner *= xs[i];
  Tensor x = random_tensor(xs, seed, -2.f, 2.f), c = random_tensor({B, d}, seed + 1);
  Tensor gk = random_tensor({d, C}, seed + 2, -0.5f, 0.5f), gb = random_tensor({C}, seed + 3);
  Tensor bk = random_tensor({d, C}, seed + 4, -0.5f, 0.5f), bb = random_tensor({C}, seed + 5);
  auto out = run_yaml(
      film_yaml(xs, d), {{"x", x}, {"c", c}},
      {{"f.gamma_kernel", gk}, {"f.gamma_bias", gb}, {"f.beta_kernel", bk}, {"f.beta_bias", bb}});
  check_shape(out.at("f"), xs);
  check_close(out.at("f"),
              ref::film(to_doubles(x), B, inner, C, to_doubles(c), d, to_doubles(gk),
                        to_doubles(gb), to_doubles(bk), to_doubles(bb)),
              1e-5, 1e-5);
}

}  // namespace

TEST_CASE("film matches the reference for rank 2, 3 and 4 features") {
  uint64_t seed = 3000;
  for (Dim B : {1, 3}) {
    check({B, 7}, 13, seed += 10);
    check({B, 64}, 32, seed += 10);
    check({B, 13, 7}, 5, seed += 10);
    check({B, 127, 16}, 127, seed += 10);
    check({B, 7, 13, 3}, 9, seed += 10);
    check({B, 8, 8, 32}, 64, seed += 10);
  }
}

TEST_CASE("film weights, init kinds and FLOPs") {
  auto g = compile_graph(load_graph_string(film_yaml({1, 5, 6, 8}, 3), "t.yaml"), builtin_ops());
  std::map<std::string, WeightSpec> w;
  for (const auto& [key, spec] : g.all_weights()) w[key] = spec;
  REQUIRE(w.size() == 4);
  CHECK(w.at("f.gamma_kernel").shape == Dims{3, 8});
  CHECK(w.at("f.gamma_kernel").init == Init::glorot_uniform);
  CHECK(w.at("f.gamma_bias").shape == Dims{8});
  CHECK(w.at("f.gamma_bias").init == Init::ones);
  CHECK(w.at("f.beta_kernel").shape == Dims{3, 8});
  CHECK(w.at("f.beta_bias").init == Init::zeros);
}

TEST_CASE("film errors") {
  std::string e = compile_error(
      "name: t\ninputs:\n  x: {shape: [4, 5, 6, 8]}\n  c: {shape: [3]}\nnodes:\n"
      "  - {name: f, op: film, inputs: [x, c]}\noutputs: [f]\n");
  CHECK(e.find("rank 2, 3 or 4") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  x: {shape: [5, 8]}\n  c: {shape: [4, 3]}\nnodes:\n"
      "  - {name: f, op: film, inputs: [x, c]}\noutputs: [f]\n");
  CHECK(e.find("must be rank 2") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  x: {shape: [5, 8]}\nnodes:\n"
      "  - {name: f, op: film, inputs: [x]}\noutputs: [f]\n");
  CHECK(e.find("exactly 2 inputs") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  x: {shape: [5, null]}\n  c: {shape: [3]}\nnodes:\n"
      "  - {name: f, op: film, inputs: [x, c]}\noutputs: [f]\n");
  CHECK(e.find("channel count") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  x: {shape: [5, 8]}\n  c: {shape: [3]}\nnodes:\n"
      "  - {name: f, op: film, inputs: [x, c], units: 3}\noutputs: [f]\n");
  CHECK(e != "");
  // a masked sequence passes its mask on; a dynamic length is fine
  CHECK(compile_error("name: t\ninputs:\n  t: {shape: [null], dtype: int32}\n  c: {shape: [3]}\n"
                      "nodes:\n  - {name: e, op: embedding, input: t, input_dim: 10, output_dim: "
                      "4, mask_zero: true}\n"
                      "  - {name: f, op: film, inputs: [e, c]}\noutputs: [f]\n") == "");
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

TrainingNodeCase film_case(const Dims& xs, Dim d, uint64_t seed) {
  const Dim B = xs[0], C = xs.back();
  TrainingNodeCase c;
  c.yaml = film_yaml(xs, d);
  c.inputs = {random_tensor(xs, seed, -2.f, 2.f), random_tensor({B, d}, seed + 1)};
  c.weights["gamma_kernel"] = random_tensor({d, C}, seed + 2, -0.5f, 0.5f);
  c.weights["gamma_bias"] = random_tensor({C}, seed + 3);
  c.weights["beta_kernel"] = random_tensor({d, C}, seed + 4, -0.5f, 0.5f);
  c.weights["beta_bias"] = random_tensor({C}, seed + 5);
  return c;
}

TrainingNodeResult check_film_gradient(const TrainingNodeCase& c, const Dims& xs, Dim d) {
  const Dim B = xs[0], C = xs.back();
  const Dim inner = num_elements(xs) / (B * C);
  return check_gradients(c, [&](const auto& x, const auto& w) {
    return std::vector<std::vector<double>>{
        ref::film(x[0], B, inner, C, x[1], d, w[0], w[1], w[2], w[3])};
  });
}

}  // namespace

TEST_CASE("film gradient: rank 2, 3 and 4 features, odd and round sizes") {
  uint64_t seed = 5000;
  for (const Dims& xs : {Dims{1, 7}, Dims{3, 13}, Dims{4, 32}, Dims{2, 13, 7}, Dims{3, 8, 16},
                         Dims{2, 7, 5, 3}, Dims{1, 4, 4, 8}})
    for (Dim d : {1, 7, 16}) {
      CAPTURE(format_shape(xs));
      CAPTURE(d);
      check_film_gradient(film_case(xs, d, seed += 10), xs, d);
    }
}

TEST_CASE("film gradient: a masked x, one input without a gradient, a frozen film") {
  const Dims xs{2, 5, 7};
  TrainingNodeCase masked = film_case(xs, 13, 77);
  masked.masks = {{1, 1, 0, 1, 0, 1, 1, 1, 1, 0}, {}};
  check_film_gradient(masked, xs, 13);  // the mask passes on: every step is modulated

  for (int skip : {0, 1}) {
    TrainingNodeCase c = film_case(xs, 13, 88 + skip);
    c.needs_input_gradient = {skip != 0, skip != 1};
    check_film_gradient(c, xs, 13);  // the harness checks the skipped one stays untouched
  }
  TrainingNodeCase frozen = film_case(xs, 13, 99);
  frozen.frozen = true;
  auto r = check_film_gradient(frozen, xs, 13);
  for (const Tensor& g : r.diff_weights)
    for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
}
