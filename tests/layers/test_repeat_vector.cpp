// repeat_vector (Keras RepeatVector) against a naive loop reference on odd and round sizes, its
// gradient (the sum over the repeated axis) against finite differences, and its errors.
#include <fmt/format.h>

#include "tests/layers/gradient_check.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string repeat_yaml(const std::string& per_sample, const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: r, op: repeat_vector, input: "
      "x{}}}\noutputs: [r]\n",
      per_sample, attrs.empty() ? "" : ", " + attrs);
}

std::vector<double> naive_repeat(const std::vector<double>& x, int64_t batch, int64_t n,
                                 int64_t features) {
  std::vector<double> y;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t f = 0; f < features; ++f) y.push_back(x[static_cast<size_t>(b * features + f)]);
  return y;
}

}  // namespace

TEST_CASE("repeat_vector: [batch, features] -> [batch, n, features], odd and round sizes") {
  for (int64_t batch : {1, 3})
    for (int64_t n : {1, 7, 16})
      for (int64_t features : {13, 127, 32}) {
        CAPTURE(batch);
        CAPTURE(n);
        CAPTURE(features);
        const Tensor x = random_tensor({batch, features}, 61 + n);
        auto out = run_yaml(repeat_yaml(fmt::format("[{}]", features), fmt::format("n: {}", n)),
                            {{"x", x}}, {});
        check_shape(out.at("r"), {batch, n, features});
        check_close(out.at("r"), naive_repeat(to_doubles(x), batch, n, features), 0, 0);
      }
}

TEST_CASE("repeat_vector gradient: the sum of d y over the repeated axis") {
  for (int64_t batch : {1, 4})
    for (int64_t n : {7, 8})
      for (int64_t features : {13, 16}) {
        CAPTURE(batch);
        CAPTURE(n);
        CAPTURE(features);
        TrainingNodeCase c;
        c.yaml = repeat_yaml(fmt::format("[{}]", features), fmt::format("n: {}", n));
        c.inputs = {random_tensor({batch, features}, 71)};
        check_gradients(c, [&](const auto& xs, const auto&) {
          return std::vector<std::vector<double>>{naive_repeat(xs[0], batch, n, features)};
        });
      }
  // by hand: n 3, one feature: d x = 1 + 2 + 3
  TrainingNodeCase c;
  c.yaml = repeat_yaml("[1]", "n: 3");
  c.inputs = {make_tensor({1, 1}, {0.5f})};
  auto r = run_training_node(c, {make_tensor({1, 3, 1}, {1, 2, 3})});
  check_close(r.outputs[0], {0.5, 0.5, 0.5}, 0, 0);
  check_close(r.diff_inputs[0], {6}, 0, 0);
}

TEST_CASE("repeat_vector: n is required and positive, the input rank 2") {
  CHECK(compile_error(repeat_yaml("[5]", "")).find("n") != std::string::npos);
  CHECK(compile_error(repeat_yaml("[5]", "n: 0")) != "");
  const std::string e = compile_error(repeat_yaml("[4, 5]", "n: 2"));
  CHECK(e.find("repeat_vector takes [batch, features]") != std::string::npos);
  CHECK(e.find("rank 3") != std::string::npos);
}
