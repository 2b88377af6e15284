// Shared checks of the Keras activation-layer ops (relu, leaky_relu, elu, thresholded_relu:
// layers/pointwise_activation.hpp): the inference output against a naive formula written in
// the test, and the training gradient against finite differences of that formula.
#pragma once

#include <fmt/format.h>

#include <functional>

#include "tests/layers/gradient_check.hpp"
#include "tests/test_util.hpp"

namespace fg::test {

inline std::string pointwise_yaml(const std::string& op, const std::string& per_sample,
                                  const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: a, op: {}, input: x{}}}\n"
      "outputs: [a]\n",
      per_sample, op, attrs.empty() ? "" : ", " + attrs);
}

// Values of a 1-D input (batch 1) through the op.
inline std::vector<float> pointwise_values(const std::string& op, const std::string& attrs,
                                           const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  auto out = run_yaml(pointwise_yaml(op, fmt::format("[{}]", n), attrs),
                      {{"x", make_tensor({1, n}, x)}}, {});
  const Tensor& y = out.at("a");
  return std::vector<float>(y.data<float>(), y.data<float>() + y.size());
}

// Forward on odd and round shapes, and the gradient, against `f` (double).
inline void check_pointwise_op(const std::string& op, const std::string& attrs,
                               const std::function<double(double)>& f) {
  struct Case {
    Dims shape;
    std::string per_sample;
  };
  for (const Case& c :
       {Case{{7, 13}, "[13]"}, Case{{3, 127}, "[127]"}, Case{{2, 4, 16}, "[4, 16]"}}) {
    CAPTURE(format_shape(c.shape));
    const Tensor x = random_tensor(c.shape, 31, -2.f, 2.f);
    auto out = run_yaml(pointwise_yaml(op, c.per_sample, attrs), {{"x", x}}, {});
    std::vector<double> want = to_doubles(x);
    for (double& v : want) v = f(v);
    check_close(out.at("a"), want, 1e-6, 1e-6);
    TrainingNodeCase tc;
    tc.yaml = pointwise_yaml(op, c.per_sample, attrs);
    tc.inputs = {x};
    check_gradients(tc, [&](const auto& xs, const auto&) {
      std::vector<double> y(xs[0].size());
      for (size_t i = 0; i < y.size(); ++i) y[i] = f(xs[0][i]);
      return std::vector<std::vector<double>>{y};
    });
  }
}

}  // namespace fg::test
