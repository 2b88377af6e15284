// softmax layer: last, first-feature and middle axes on ranks 2-4, batch 1 and 4; errors.
#include <fmt/format.h>

#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {
std::string softmax_yaml(const std::string& shape, const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: s, op: softmax, input: x{}}}\n"
      "outputs: [s]\n",
      shape, attrs.empty() ? "" : ", " + attrs);
}
}  // namespace

TEST_CASE("softmax over every axis against the reference") {
  struct Case {
    std::string list;
    Dims per;
  };
  for (const Case& c : {Case{"[13]", {13}}, Case{"[127]", {127}}, Case{"[7, 13]", {7, 13}},
                        Case{"[5, 7, 3]", {5, 7, 3}}, Case{"[4, 16, 8]", {4, 16, 8}}})
    for (int64_t batch : {1, 4}) {
      Dims shape{batch};
      shape.insert(shape.end(), c.per.begin(), c.per.end());
      const int rank = static_cast<int>(shape.size());
      Tensor x = random_tensor(shape, 3 + batch, -5.f, 5.f);
      for (int axis = -rank; axis < rank; ++axis) {
        CAPTURE(c.list);
        CAPTURE(batch);
        CAPTURE(axis);
        auto out = run_yaml(softmax_yaml(c.list, fmt::format("axis: {}", axis)), {{"x", x}}, {});
        check_shape(out.at("s"), shape);
        check_close(out.at("s"), ref::softmax(to_doubles(x), shape, axis < 0 ? axis + rank : axis),
                    1e-5, 1e-6);
      }
    }
}

TEST_CASE("softmax default axis is the last") {
  Tensor x = random_tensor({4, 7, 13}, 8, -3.f, 3.f);
  auto out = run_yaml(softmax_yaml("[7, 13]", ""), {{"x", x}}, {});
  check_close(out.at("s"), ref::softmax(to_doubles(x), {4, 7, 13}, 2), 1e-5, 1e-6);
}

TEST_CASE("softmax errors") {
  std::string e = compile_error(softmax_yaml("[7, 13]", "axis: 3"));
  CHECK(e.find("axis 3 is out of range for the rank-3 input") != std::string::npos);
  CHECK(e.find("-3..2") != std::string::npos);
  CHECK(e.find("test.yaml:5:") != std::string::npos);
  e = compile_error(softmax_yaml("[7, 13]", "axis: -4"));
  CHECK(e.find("out of range") != std::string::npos);
  e = compile_error(softmax_yaml("[7]", "axis: last"));
  CHECK(e.find("'axis' must be an integer") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  x: {shape: [7], dtype: int32}\nnodes:\n"
      "  - {name: s, op: softmax, input: x}\noutputs: [s]\n");
  CHECK(e.find("float32") != std::string::npos);
  CHECK(builtin_ops().find("softmax")->create()->supports_masking());
}

// ---- gradients (Op::compile_training) ----

namespace {

std::string per_sample(const Dims& shape) {
  std::string s = "[";
  for (size_t i = 1; i < shape.size(); ++i) s += (i > 1 ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void check_softmax_gradient(const Dims& shape, int axis, bool logits = false) {
  CAPTURE(format_shape(shape));
  CAPTURE(axis);
  TrainingNodeCase c;
  c.yaml = softmax_yaml(per_sample(shape), fmt::format("axis: {}", axis));
  c.inputs = {random_tensor(shape, 5, -3.f, 3.f)};
  c.output_logits = logits;
  const int rank = static_cast<int>(shape.size());
  const bool takes_logits = logits && axis == -1;
  check_gradients(c, [&](const auto& x, const auto&) {
    if (takes_logits) return std::vector<std::vector<double>>{x[0]};
    return std::vector<std::vector<double>>{
        ref::softmax(x[0], shape, axis < 0 ? axis + rank : axis)};
  });
}

}  // namespace

TEST_CASE("softmax gradient over every axis, odd and round shapes") {
  for (const Dims& shape : {Dims{7, 13}, Dims{4, 127}, Dims{1, 16}})
    for (int axis : {-1, 1}) check_softmax_gradient(shape, axis);
  for (int axis : {-1, 1, 2, -2}) check_softmax_gradient({3, 7, 5}, axis);
  for (int axis : {1, 2, 3}) check_softmax_gradient({2, 3, 4, 5}, axis);
}

TEST_CASE("softmax gradient: the loss takes the softmax only on the last axis") {
  auto op = builtin_ops().find("softmax")->create();
  CHECK(op->has_gradient());
  check_softmax_gradient({7, 13}, -1, /*logits=*/true);   // a copy: output = logits
  check_softmax_gradient({3, 7, 5}, 1, /*logits=*/true);  // not the final activation: softmax
}
