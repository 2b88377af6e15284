// prelu (Keras PReLU) against a naive loop reference: per-element and shared alpha (shared_axes
// as a list and as an int) on odd and round shapes; the gradient for x and alpha against finite
// differences of that reference; weights, defaults and errors.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "framework/compiler.hpp"
#include "framework/op.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string prelu_yaml(const std::string& per_sample, const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: p, op: prelu, input: x{}}}\n"
      "outputs: [p]\n",
      per_sample, attrs.empty() ? "" : ", " + attrs);
}

// The naive PReLU: for each element, its multi-index; alpha's index drops the batch and takes 0
// on the axes where alpha has size 1.
std::vector<double> naive_prelu(const Dims& shape, const std::vector<double>& x,
                                const Dims& alpha_shape, const std::vector<double>& alpha) {
  std::vector<double> y(x.size());
  for (size_t n = 0; n < x.size(); ++n) {
    Dims index(shape.size());
    int64_t rest = static_cast<int64_t>(n);
    for (size_t k = shape.size(); k-- > 0;) {
      index[k] = rest % shape[k];
      rest /= shape[k];
    }
    int64_t a = 0;
    for (size_t k = 1; k < shape.size(); ++k)
      a = a * alpha_shape[k - 1] + (alpha_shape[k - 1] == 1 ? 0 : index[k]);
    y[n] = x[n] >= 0 ? x[n] : alpha[static_cast<size_t>(a)] * x[n];
  }
  return y;
}

struct PreluCase {
  Dims shape;         // full, batch first
  std::string attrs;  // shared_axes
  Dims alpha_shape;   // what Keras makes of it
};

std::string per_sample_of(const Dims& shape) {
  return fmt::format("[{}]", fmt::join(shape.begin() + 1, shape.end(), ", "));
}

const std::vector<PreluCase>& cases() {
  static const std::vector<PreluCase> all = {
      {{7, 13}, "", {13}},
      {{3, 127}, "", {127}},
      {{4, 8, 16}, "", {8, 16}},
      {{2, 7, 13}, "shared_axes: [1]", {1, 13}},
      {{2, 7, 13}, "shared_axes: 2", {7, 1}},
      {{3, 5, 7, 4}, "shared_axes: [1, 2]", {1, 1, 4}},  // channels-last image: per channel
      {{2, 4, 6, 8}, "shared_axes: [1, 3]", {1, 6, 1}},
      {{2, 13, 3}, "shared_axes: [1, 2]", {1, 1}},  // one alpha
  };
  return all;
}

}  // namespace

TEST_CASE("prelu: a hand-computed example") {
  // alpha [0.25, 0.5, 0.75, 1]: -2 * 0.25, -1 * 0.5, 0 stays 0, 3 stays 3
  auto out = run_yaml(prelu_yaml("[4]", ""), {{"x", make_tensor({1, 4}, {-2, -1, 0, 3})}},
                      {{"p.alpha", make_tensor({4}, {0.25f, 0.5f, 0.75f, 1})}});
  check_close(out.at("p"), {-0.5, -0.5, 0, 3}, 0, 0);
}

TEST_CASE("prelu: forward against the naive reference, shared axes as list and int") {
  for (const PreluCase& c : cases()) {
    CAPTURE(format_shape(c.shape));
    CAPTURE(c.attrs);
    const Tensor x = random_tensor(c.shape, 41, -2.f, 2.f);
    const Tensor alpha = random_tensor(c.alpha_shape, 42, -0.5f, 1.5f);
    auto out =
        run_yaml(prelu_yaml(per_sample_of(c.shape), c.attrs), {{"x", x}}, {{"p.alpha", alpha}});
    check_shape(out.at("p"), c.shape);
    check_close(out.at("p"), naive_prelu(c.shape, to_doubles(x), c.alpha_shape, to_doubles(alpha)),
                1e-6, 1e-6);
  }
}

TEST_CASE("prelu gradient: d x and d alpha (summed over the batch and shared axes)") {
  for (const PreluCase& c : cases()) {
    CAPTURE(format_shape(c.shape));
    CAPTURE(c.attrs);
    TrainingNodeCase tc;
    tc.yaml = prelu_yaml(per_sample_of(c.shape), c.attrs);
    tc.inputs = {random_tensor(c.shape, 51, -2.f, 2.f)};
    tc.weights["alpha"] = random_tensor(c.alpha_shape, 52, -0.5f, 1.5f);
    check_gradients(tc, [&](const auto& xs, const auto& ws) {
      return std::vector<std::vector<double>>{naive_prelu(c.shape, xs[0], c.alpha_shape, ws[0])};
    });
  }
}

TEST_CASE("prelu gradient: hand-computed, zero at x = 0, frozen writes no d alpha") {
  TrainingNodeCase tc;
  tc.yaml = prelu_yaml("[3]", "shared_axes: [1]");
  tc.inputs = {make_tensor({2, 3}, {-1, 0, 2, -3, 4, -0.5f})};
  tc.weights["alpha"] = make_tensor({1}, {0.5f});
  const Tensor dy = make_tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  auto r = run_training_node(tc, {dy});
  check_close(r.outputs[0], {-0.5, 0, 2, -1.5, 4, -0.25}, 0, 0);
  check_close(r.diff_inputs[0], {0.5, 0, 3, 2, 5, 3}, 0, 0);
  // x * dy where x < 0: -1 * 1 + -3 * 4 + -0.5 * 6
  check_close(r.diff_weights[0], {-16}, 0, 0);
  tc.frozen = true;
  auto f = run_training_node(tc, {dy});
  check_close(f.diff_weights[0], {0}, 0, 0);
  check_close(f.diff_inputs[0], {0.5, 0, 3, 2, 5, 3}, 0, 0);
}

TEST_CASE("prelu: the alpha weight is Keras's param_shape, initialized with zeros") {
  auto g = compile_graph(load_graph_string(prelu_yaml("[null, 6, 4]", "shared_axes: [1, 2]")),
                         builtin_ops());
  auto all = g.all_weights();
  REQUIRE(all.size() == 1);
  CHECK(all[0].first == "p.alpha");
  CHECK(all[0].second.shape == Dims{1, 1, 4});
  CHECK(all[0].second.init == Init::zeros);
  auto g2 = compile_graph(load_graph_string(prelu_yaml("[5, 3]", "")), builtin_ops());
  CHECK(g2.all_weights().at(0).second.shape == Dims{5, 3});
}

TEST_CASE("prelu: bad shared_axes, unknown dims and wrong alpha shapes are clear errors") {
  std::string e = compile_error(prelu_yaml("[4, 5]", "shared_axes: [0]"));
  CHECK(e.find("after the batch") != std::string::npos);
  e = compile_error(prelu_yaml("[4, 5]", "shared_axes: [3]"));
  CHECK(e.find("shared axis 3 is out of range") != std::string::npos);
  e = compile_error(prelu_yaml("[4, 5]", "shared_axes: relu"));
  CHECK(e.find("an integer or a list of integers") != std::string::npos);
  e = compile_error(prelu_yaml("[null, 5]", ""));
  CHECK(e.find("prelu needs axis 1") != std::string::npos);
  CHECK(compile_error(prelu_yaml("[null, 5]", "shared_axes: 1")) == "");
  e = error_of([] {
    run_yaml(prelu_yaml("[4, 5]", "shared_axes: 1"), {{"x", random_tensor({2, 4, 5}, 1)}},
             {{"p.alpha", random_tensor({4, 5}, 2)}});
  });
  CHECK(e.find("alpha") != std::string::npos);
  CHECK(e.find("(1, 5)") != std::string::npos);
}
