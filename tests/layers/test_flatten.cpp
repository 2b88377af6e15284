// flatten: C order (H, W, C for NHWC), batch 1 and 4, shape rules and mask rejection.
#include <fmt/format.h>

#include "framework/compiler.hpp"
#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

TEST_CASE("flatten keeps C order for NHWC inputs") {
  for (int64_t batch : {1, 4})
    for (Dims per : {Dims{7, 13, 3}, Dims{4, 4, 8}, Dims{127}, Dims{5, 7}, Dims{2, 3, 5, 7}}) {
      CAPTURE(batch);
      std::string list;
      for (size_t i = 0; i < per.size(); ++i) list += (i ? ", " : "") + std::to_string(per[i]);
      const std::string yaml = fmt::format(
          "name: t\ninputs:\n  x: {{shape: [{}]}}\nnodes:\n  - {{name: f, op: flatten, input: x}}\n"
          "outputs: [f]\n",
          list);
      Dims shape{batch};
      shape.insert(shape.end(), per.begin(), per.end());
      Tensor x = random_tensor(shape, 5 + batch);
      auto out = run_yaml(yaml, {{"x", x}}, {});
      int64_t prod = 1;
      for (auto d : per) prod *= d;
      check_shape(out.at("f"), {batch, prod});
      // Reference: element (b, i, j, k) of the input lands at b*prod + (i*W + j)*C + k.
      std::vector<double> want(x.size());
      const float* p = x.data<float>();
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t i = 0; i < prod; ++i) want[b * prod + i] = p[b * prod + i];
      check_close(out.at("f"), want, 0, 0);
    }
}

TEST_CASE("flatten on an NHWC tensor orders H then W then C") {
  // A hand-built [1, 2, 2, 2] tensor with value 100h + 10w + c.
  Tensor x(DType::f32, {1, 2, 2, 2});
  float* p = x.mutable_data<float>();
  for (int h = 0; h < 2; ++h)
    for (int w = 0; w < 2; ++w)
      for (int c = 0; c < 2; ++c) p[(h * 2 + w) * 2 + c] = 100.f * h + 10.f * w + c;
  auto out = run_yaml(
      "name: t\ninputs:\n  x: {shape: [2, 2, 2]}\nnodes:\n  - {name: f, op: flatten, input: x}\n"
      "outputs: [f]\n",
      {{"x", x}}, {});
  check_close(out.at("f"), {0, 1, 10, 11, 100, 101, 110, 111}, 0, 0);
}

TEST_CASE("flatten shape rules") {
  auto def = load_graph_string(
      "name: t\ninputs:\n  x: {shape: [7, null, 3]}\n  y: {shape: [4, 5], dtype: int32}\nnodes:\n"
      "  - {name: f, op: flatten, input: x}\n  - {name: g, op: flatten, input: y}\n"
      "outputs: [f, g]\n");
  auto g = compile_graph(def, builtin_ops());
  CHECK(format_shape(g.tensors()[g.find_tensor("f")].type.shape) == "(None, None)");
  CHECK(format_shape(g.tensors()[g.find_tensor("g")].type.shape) == "(None, 20)");
  CHECK(g.tensors()[g.find_tensor("g")].type.dtype == DType::i32);
  auto bound = g.bind({{2, 7, 11, 3}, {2, 4, 5}});
  CHECK(bound[g.find_tensor("f")].shape == Dims{2, 7 * 11 * 3});
}

TEST_CASE("flatten rejects masks") {
  auto op = builtin_ops().find("flatten")->create();
  CHECK_FALSE(op->supports_masking());
}

TEST_CASE("flatten copies int32 tensors too") {
  Tensor x = random_ints({4, 3, 5}, 2, -1000, 1000);
  auto out = run_yaml(
      "name: t\ninputs:\n  x: {shape: [3, 5], dtype: int32}\nnodes:\n"
      "  - {name: f, op: flatten, input: x}\n  - {name: d, op: dropout, input: f, rate: 0.1}\n"
      "outputs: [d]\n",
      {{"x", x}}, {});
  check_shape(out.at("d"), {4, 15});
  CHECK(out.at("d").dtype() == DType::i32);
  check_close(out.at("d"), to_doubles(x), 0, 0);
}

// ---- training: the gradient against finite differences of the naive reference ----

TEST_CASE("flatten gradient: the forward copies, the backward copies d output back") {
  for (int64_t batch : {1, 3})
    for (Dims per : {Dims{7, 13, 3}, Dims{4, 4, 8}, Dims{127}, Dims{2, 3, 5, 7}}) {
      CAPTURE(batch);
      CAPTURE(format_shape(per));
      TrainingNodeCase c;
      c.yaml = fmt::format(
          "name: t\ninputs:\n  x: {{shape: [{}]}}\nnodes:\n  - {{name: f, op: flatten, input: "
          "x}}\noutputs: [f]\n",
          fmt::join(per, ", "));
      Dims shape{batch};
      shape.insert(shape.end(), per.begin(), per.end());
      c.inputs = {random_tensor(shape, 40 + batch)};
      GradientTolerance tol;
      tol.max_checked = 100;
      // Keras Flatten of a C-order tensor: the same values in the same order.
      auto r = check_gradients(
          c, [](const auto& x, const auto&) { return std::vector<std::vector<double>>{x[0]}; },
          tol);
      check_shape(r.outputs[0], {batch, sample_elements(shape)});
    }
}
