// global_{average,max}_pooling{1,2}d against the naive reference, keepdims shapes, errors.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "framework/compiler.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/layers/run_node_directly.hpp"
#include "tests/reference/conv_pool.hpp"
#include "tests/reference/window_gradients.hpp"
#include "tests/test_util.hpp"

namespace {

using fg::Dims;
using fg::Tensor;

fg::ref::Array to_array(const Tensor& t) {
  return {t.shape(), fg::test::to_doubles(t)};
}

std::string gp_yaml(const std::string& op, const std::string& in_shape, const std::string& attrs,
                    const std::string& dtype = "") {
  return fmt::format(R"(name: t
inputs:
  x: {{shape: {}{}}}
nodes:
  - {{name: p, op: {}, input: x{}}}
outputs: [p]
)",
                     in_shape, dtype.empty() ? "" : ", dtype: " + dtype, op,
                     attrs.empty() ? "" : ", " + attrs);
}

Dims output_shape(const std::string& yaml) {
  auto graph = fg::compile_graph(fg::load_graph_string(yaml, "t.yaml"), fg::builtin_ops());
  return graph.tensors().at(graph.find_tensor("p")).type.shape;
}

}  // namespace

TEST_CASE("global pooling 1d matches the reference") {
  uint64_t seed = 3000;
  for (Dims shape :
       {Dims{1, 7, 3}, Dims{3, 13, 5}, Dims{3, 127, 13}, Dims{2, 64, 32}, Dims{1, 1, 7}})
    for (bool max : {true, false})
      for (bool keepdims : {false, true}) {
        CAPTURE(shape[1]);
        CAPTURE(shape[2]);
        CAPTURE(max);
        CAPTURE(keepdims);
        const std::string yaml =
            gp_yaml(max ? "global_max_pooling1d" : "global_average_pooling1d",
                    fmt::format("[{}, {}]", shape[1], shape[2]), keepdims ? "keepdims: true" : "");
        Tensor x = fg::test::random_tensor(shape, seed += 3);
        auto out = fg::test::run_yaml(yaml, {{"x", x}}, {});
        auto want = fg::ref::global_pool(to_array(x), max);
        fg::test::check_shape(out.at("p"),
                              keepdims ? Dims{shape[0], 1, shape[2]} : Dims{shape[0], shape[2]});
        fg::test::check_close(out.at("p"), want.data);
      }
}

TEST_CASE("global pooling 2d matches the reference") {
  uint64_t seed = 4000;
  for (Dims shape : {Dims{1, 7, 13, 3}, Dims{3, 13, 7, 5}, Dims{3, 11, 9, 13}, Dims{2, 16, 16, 32}})
    for (bool max : {true, false})
      for (bool keepdims : {false, true}) {
        CAPTURE(shape[1]);
        CAPTURE(shape[2]);
        CAPTURE(max);
        CAPTURE(keepdims);
        const std::string yaml = gp_yaml(max ? "global_max_pooling2d" : "global_average_pooling2d",
                                         fmt::format("[{}, {}, {}]", shape[1], shape[2], shape[3]),
                                         keepdims ? "keepdims: true" : "");
        Tensor x = fg::test::random_tensor(shape, seed += 3);
        auto out = fg::test::run_yaml(yaml, {{"x", x}}, {});
        auto want = fg::ref::global_pool(to_array(x), max);
        fg::test::check_shape(out.at("p"),
                              keepdims ? Dims{shape[0], 1, 1, shape[3]} : Dims{shape[0], shape[3]});
        fg::test::check_close(out.at("p"), want.data);
      }
}

TEST_CASE("global pooling shapes with null lengths and keepdims") {
  CHECK(output_shape(gp_yaml("global_average_pooling1d", "[null, 6]", "")) ==
        Dims{fg::kDynamic, 6});
  CHECK(output_shape(gp_yaml("global_max_pooling2d", "[null, null, 6]", "keepdims: true")) ==
        Dims{fg::kDynamic, 1, 1, 6});
  // One graph, two lengths.
  const std::string yaml = gp_yaml("global_average_pooling1d", "[null, 5]", "");
  for (int64_t len : {3, 13}) {
    Tensor x = fg::test::random_tensor({2, len, 5}, 50 + len);
    auto out = fg::test::run_yaml(yaml, {{"x", x}}, {});
    fg::test::check_close(out.at("p"), fg::ref::global_pool(to_array(x), false).data);
  }
}

TEST_CASE("global pooling errors are clear") {
  using fg::test::compile_error;
  auto has = [](const std::string& msg, const std::string& part) {
    INFO(msg);
    CHECK(msg.find(part) != std::string::npos);
  };
  std::string e = compile_error(gp_yaml("global_average_pooling1d", "[7, 7, 3]", ""));
  has(e, "rank-3");
  has(e, "(None, 7, 7, 3)");
  has(e, "global_average_pooling2d");
  e = compile_error(gp_yaml("global_max_pooling2d", "[7, 3]", ""));
  has(e, "rank-4");
  has(e, "global_max_pooling1d");
  e = compile_error(gp_yaml("global_max_pooling1d", "[7, 3]", "", "int32"));
  has(e, "float32");
  has(e, "embedding");
  has(compile_error(gp_yaml("global_max_pooling1d", "[7, 3]", "keepdim: true")), "keepdims");
  has(compile_error(gp_yaml("global_max_pooling1d", "[7, 3]", "keepdims: maybe")), "keepdims");
  CHECK(compile_error(gp_yaml("global_max_pooling1d", "[7, 3]", "keepdims: false")) == "");
}

namespace {

// Runs global_average_pooling1d's kernel directly with a mask, as the executor does for a
// masked input (the embedding op that produces masks in a graph lives on another branch).
Tensor run_masked_gap(const Tensor& x, const std::vector<uint8_t>& mask) {
  const std::string yaml = fmt::format(R"(
name: t
inputs:
  x: {{shape: [{}, {}]}}
nodes:
  - {{name: p, op: global_average_pooling1d, inputs: [x]}}
outputs: [p]
)",
                                       x.shape()[1], x.shape()[2]);
  fg::test::DirectResult r = fg::test::run_direct(yaml, {x}, {mask});
  CHECK_FALSE(r.type.masked);  // the mask is consumed
  return r.out;
}

}  // namespace

TEST_CASE("masked global_average_pooling1d averages the unmasked steps only") {
  for (Dims shape : {Dims{1, 7, 3}, Dims{3, 13, 5}, Dims{3, 127, 13}}) {
    CAPTURE(shape[1]);
    Tensor x = fg::test::random_tensor(shape, 77 + shape[1]);
    // Row b keeps a different prefix (as mask_zero gives for padded ids) plus a hole.
    std::vector<uint8_t> mask(static_cast<size_t>(shape[0] * shape[1]), 0);
    for (int64_t b = 0; b < shape[0]; ++b)
      for (int64_t t = 0; t < shape[1]; ++t)
        mask[b * shape[1] + t] = (t < shape[1] - 2 * b && t != 1) ? 1 : 0;
    Tensor out = run_masked_gap(x, mask);
    auto want = fg::ref::global_pool(to_array(x), false, &mask);
    fg::test::check_close(out, want.data);
    // The mask matters: the unmasked mean differs.
    auto plain = fg::ref::global_pool(to_array(x), false);
    CHECK(std::abs(plain.data[0] - want.data[0]) > 1e-6);
  }
  // Every step masked: 0 (documented; Keras would give NaN).
  Tensor x = fg::test::random_tensor({2, 4, 3}, 5);
  std::vector<uint8_t> mask{1, 1, 0, 0, 0, 0, 0, 0};
  Tensor out = run_masked_gap(x, mask);
  auto want = fg::ref::global_pool(to_array(x), false, &mask);
  fg::test::check_close(out, want.data);
  CHECK(want.data[3] == 0.0);
}

TEST_CASE("only global_average_pooling1d accepts masks among the pooling ops") {
  const auto registry = fg::builtin_ops();
  for (std::string name :
       {"global_max_pooling1d", "global_average_pooling2d", "global_max_pooling2d", "max_pooling1d",
        "average_pooling1d", "max_pooling2d", "average_pooling2d", "conv1d", "conv2d"}) {
    CAPTURE(name);
    CHECK_FALSE(registry.find(name)->create()->supports_masking());
  }
  CHECK(registry.find("global_average_pooling1d")->create()->supports_masking());
}

// TODO(masking): the end-to-end graph `embedding(mask_zero) -> global_average_pooling1d` (and
// the compiler's rejection of a mask into the other pooling ops) needs the embedding op, which
// is not on main yet.

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

fg::test::TrainingNodeCase global_pool_case(const Dims& shape, bool max, bool keepdims,
                                            const Tensor& x) {
  const bool two_d = shape.size() == 4;
  const std::string op =
      fmt::format("global_{}_pooling{}d", max ? "max" : "average", two_d ? 2 : 1);
  fg::test::TrainingNodeCase c;
  c.yaml = gp_yaml(op, fmt::format("[{}]", fmt::join(shape.begin() + 1, shape.end(), ", ")),
                   keepdims ? "keepdims: true" : "");
  c.inputs = {x};
  return c;
}

}  // namespace

TEST_CASE("global pooling gradient: average and max, 1d and 2d, keepdims, odd and round sizes") {
  uint64_t seed = 300;
  for (const Dims& shape : {Dims{1, 7, 3}, Dims{3, 13, 5}, Dims{2, 16, 8}, Dims{1, 7, 5, 3},
                            Dims{2, 13, 4, 6}, Dims{4, 8, 8, 16}})
    for (bool max : {true, false})
      for (bool keepdims : {false, true}) {
        CAPTURE(fmt::format("{}", fmt::join(shape, "x")));
        CAPTURE(max);
        CAPTURE(keepdims);
        fg::test::GradientTolerance tol;
        tol.max_checked = 150;
        fg::test::check_gradients(
            global_pool_case(shape, max, keepdims, fg::test::random_tensor(shape, ++seed)),
            [&](const auto& x, const auto&) {
              return std::vector<std::vector<double>>{
                  fg::ref::global_pool({shape, x[0]}, max).data};
            },
            tol);
      }
}

TEST_CASE("masked global_average_pooling1d gradient: none to masked steps, 0 for empty rows") {
  for (const Dims& shape : {Dims{3, 13, 5}, Dims{4, 8, 16}, Dims{1, 7, 1}}) {
    CAPTURE(fmt::format("{}", fmt::join(shape, "x")));
    std::vector<uint8_t> mask(static_cast<size_t>(shape[0] * shape[1]), 0);
    for (int64_t b = 0; b < shape[0]; ++b)
      for (int64_t t = 0; t < shape[1]; ++t)
        mask[b * shape[1] + t] = (t < shape[1] - 2 * b && t != 1) ? 1 : 0;
    if (shape[0] == 4)  // one row with every step masked: output 0, gradient 0
      std::fill_n(mask.begin() + 3 * shape[1], shape[1], uint8_t{0});
    fg::test::TrainingNodeCase c =
        global_pool_case(shape, false, false, fg::test::random_tensor(shape, 310));
    c.masks = {mask};
    auto r = fg::test::check_gradients(c, [&](const auto& x, const auto&) {
      return std::vector<std::vector<double>>{
          fg::ref::global_pool({shape, x[0]}, false, &mask).data};
    });
    const int64_t C = shape[2];
    for (int64_t i = 0; i < shape[0] * shape[1]; ++i)
      if (!mask[i])
        for (int64_t ch = 0; ch < C; ++ch) REQUIRE(r.diff_inputs[0].data<float>()[i * C + ch] == 0);
  }
}

TEST_CASE("global max pooling gradient with ties is split evenly, as TensorFlow's reduce_max") {
  for (const Dims& shape : {Dims{2, 7, 3}, Dims{3, 5, 4, 8}}) {
    CAPTURE(fmt::format("{}", fmt::join(shape, "x")));
    Tensor x = fg::test::random_tensor(shape, 320);
    float* v = x.mutable_data<float>();
    for (size_t i = 0; i < x.size(); ++i) v[i] = std::max(0.0f, v[i]);  // ties at 0
    const int64_t C = shape.back();
    std::fill_n(v, C * 3, 0.0f);         // the first rows of sample 0: some channels all zero
    v[4 * C + 1] = v[5 * C + 1] = 2.0f;  // sample 0, channel 1: two steps tie at the maximum
    const fg::ref::Array xa = to_array(x);
    const Tensor dy = fg::test::random_tensor({shape[0], C}, 321);
    auto r = fg::test::run_training_node(global_pool_case(shape, true, false, x), {dy});
    fg::test::check_close(r.outputs[0], fg::ref::global_pool(xa, true).data);
    fg::test::check_close(r.diff_inputs[0],
                          fg::ref::global_max_backward(xa, fg::test::to_doubles(dy)));
  }
}
