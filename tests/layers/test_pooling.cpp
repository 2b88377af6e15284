// max/average pooling 1D and 2D against the naive reference, output shapes against the Keras
// formula (pooling uses conv_output_length with dilation 1), and errors.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "framework/compiler.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/conv_pool.hpp"
#include "tests/reference/window_gradients.hpp"
#include "tests/test_util.hpp"

namespace {

using fg::Dims;
using fg::Tensor;

fg::ref::Array to_array(const Tensor& t) {
  return {t.shape(), fg::test::to_doubles(t)};
}

std::string pool_yaml(const std::string& op, const std::string& in_shape, const std::string& attrs,
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

// Keras pooling output length: conv_output_length(in, pool, padding, stride).
int64_t keras_pool_length(int64_t in, int64_t pool, const std::string& padding, int64_t stride) {
  int64_t len = padding == "same" ? in : in - pool + 1;
  if (len <= 0) return 0;
  return (len + stride - 1) / stride;
}

}  // namespace

TEST_CASE("pooling2d matches the reference, max and average, valid and same") {
  struct Case {
    int64_t batch, h, w, c, ph, pw;
    int64_t sh, sw;  // 0 = Keras default (pool size)
    std::string padding;
  };
  const std::vector<Case> cases{
      {1, 7, 13, 3, 2, 2, 0, 0, "valid"},  {3, 7, 13, 3, 2, 2, 0, 0, "same"},
      {3, 13, 7, 5, 3, 3, 2, 2, "same"},   {1, 13, 7, 5, 3, 2, 1, 3, "valid"},
      {3, 13, 13, 13, 3, 3, 3, 3, "same"}, {1, 16, 16, 8, 2, 2, 0, 0, "valid"},
      {3, 32, 32, 16, 3, 3, 1, 1, "same"}, {1, 9, 11, 5, 4, 5, 3, 2, "same"},
      {3, 7, 7, 1, 7, 7, 1, 1, "valid"},
  };
  uint64_t seed = 1000;
  for (const auto& k : cases)
    for (bool max : {true, false}) {
      CAPTURE(k.h);
      CAPTURE(k.w);
      CAPTURE(k.c);
      CAPTURE(k.padding);
      CAPTURE(max);
      std::string attrs = fmt::format("pool_size: [{}, {}], padding: {}", k.ph, k.pw, k.padding);
      if (k.sh > 0) attrs += fmt::format(", strides: [{}, {}]", k.sh, k.sw);
      const std::string yaml = pool_yaml(max ? "max_pooling2d" : "average_pooling2d",
                                         fmt::format("[{}, {}, {}]", k.h, k.w, k.c), attrs);
      Tensor x = fg::test::random_tensor({k.batch, k.h, k.w, k.c}, seed += 3);
      auto out = fg::test::run_yaml(yaml, {{"x", x}}, {});
      auto want = fg::ref::pool2d(to_array(x), max, k.ph, k.pw, k.sh > 0 ? k.sh : k.ph,
                                  k.sw > 0 ? k.sw : k.pw, k.padding);
      fg::test::check_shape(out.at("p"), want.shape);
      fg::test::check_close(out.at("p"), want.data);
    }
}

TEST_CASE("pooling1d matches the reference, max and average, valid and same") {
  struct Case {
    int64_t batch, steps, c, pool, stride;  // stride 0 = Keras default
    std::string padding;
  };
  const std::vector<Case> cases{
      {1, 7, 3, 2, 0, "valid"},    {3, 7, 3, 2, 0, "same"},    {3, 13, 5, 3, 2, "same"},
      {1, 13, 5, 3, 1, "valid"},   {3, 127, 13, 4, 3, "same"}, {1, 127, 13, 5, 2, "valid"},
      {2, 128, 16, 2, 0, "valid"}, {3, 64, 32, 3, 3, "same"},  {1, 5, 1, 5, 1, "valid"},
  };
  uint64_t seed = 2000;
  for (const auto& k : cases)
    for (bool max : {true, false}) {
      CAPTURE(k.steps);
      CAPTURE(k.c);
      CAPTURE(k.pool);
      CAPTURE(k.stride);
      CAPTURE(k.padding);
      CAPTURE(max);
      std::string attrs = fmt::format("pool_size: {}, padding: {}", k.pool, k.padding);
      if (k.stride > 0) attrs += fmt::format(", strides: {}", k.stride);
      const std::string yaml = pool_yaml(max ? "max_pooling1d" : "average_pooling1d",
                                         fmt::format("[{}, {}]", k.steps, k.c), attrs);
      Tensor x = fg::test::random_tensor({k.batch, k.steps, k.c}, seed += 3);
      auto out = fg::test::run_yaml(yaml, {{"x", x}}, {});
      auto want =
          fg::ref::pool1d(to_array(x), max, k.pool, k.stride > 0 ? k.stride : k.pool, k.padding);
      fg::test::check_shape(out.at("p"), want.shape);
      fg::test::check_close(out.at("p"), want.data);
    }
}

TEST_CASE("average pooling with same padding excludes the padding") {
  // [1, 3, 1] = 1, 2, 3 with pool 2 stride 2 same: windows {1, 2} and {3, pad} -> 1.5 and 3
  // (not 1.5).
  Tensor x = fg::test::make_tensor({1, 3, 1}, {1.f, 2.f, 3.f});
  auto out =
      fg::test::run_yaml(pool_yaml("average_pooling1d", "[3, 1]", "padding: same"), {{"x", x}}, {});
  fg::test::check_close(out.at("p"), {1.5, 3.0});
  // Defaults: pool 2, strides = pool, valid.
  auto out2 = fg::test::run_yaml(pool_yaml("max_pooling1d", "[3, 1]", ""), {{"x", x}}, {});
  fg::test::check_close(out2.at("p"), {2.0});
  auto out3 =
      fg::test::run_yaml(pool_yaml("max_pooling1d", "[3, 1]", "strides: null"), {{"x", x}}, {});
  fg::test::check_close(out3.at("p"), {2.0});
}

TEST_CASE("pooling output shapes follow the Keras formula") {
  for (int64_t in : {1, 2, 3, 5, 7, 8, 13, 127})
    for (int64_t pool : {1, 2, 3, 4})
      for (int64_t s : {0, 1, 2, 3})
        for (std::string padding : {"valid", "same"}) {
          const int64_t stride = s == 0 ? pool : s;
          CAPTURE(in);
          CAPTURE(pool);
          CAPTURE(s);
          CAPTURE(padding);
          std::string attrs = fmt::format("pool_size: {}, padding: {}", pool, padding);
          if (s > 0) attrs += fmt::format(", strides: {}", s);
          const int64_t want = keras_pool_length(in, pool, padding, stride);
          const std::string y1 = pool_yaml("max_pooling1d", fmt::format("[{}, 5]", in), attrs);
          const std::string y2 =
              pool_yaml("average_pooling2d", fmt::format("[{}, 4, 3]", in),
                        fmt::format("pool_size: [{}, 1], padding: {}", pool, padding) +
                            (s > 0 ? fmt::format(", strides: [{}, 1]", s) : ""));
          if (want < 1) {
            CHECK(fg::test::compile_error(y1).find("larger than") != std::string::npos);
            CHECK(fg::test::compile_error(y2).find("larger than") != std::string::npos);
          } else {
            CHECK(output_shape(y1) == Dims{fg::kDynamic, want, 5});
            CHECK(output_shape(y2) == Dims{fg::kDynamic, want, 4, 3});
          }
        }
}

TEST_CASE("pooling errors are clear") {
  using fg::test::compile_error;
  auto has = [](const std::string& msg, const std::string& part) {
    INFO(msg);
    CHECK(msg.find(part) != std::string::npos);
  };
  std::string e = compile_error(pool_yaml("max_pooling2d", "[5, 7, 3]", "pool_size: [6, 2]"));
  has(e, "pool_size 6");
  has(e, "height 5");
  has(e, "(None, 5, 7, 3)");
  has(compile_error(pool_yaml("max_pooling1d", "[7, 3]", "pool_size: 0")), "positive");
  has(compile_error(pool_yaml("average_pooling1d", "[7, 3]", "strides: -1")), "positive");
  e = compile_error(pool_yaml("average_pooling2d", "[7, 3]", ""));
  has(e, "rank-4");
  has(e, "(None, 7, 3)");
  has(e, "reshape");
  e = compile_error(pool_yaml("max_pooling1d", "[7, 3]", "", "int32"));
  has(e, "float32");
  has(e, "embedding");
  e = compile_error(pool_yaml("max_pooling1d", "[7, 3]", "padding: vaid"));
  has(e, "did you mean 'valid'");
  has(compile_error(pool_yaml("max_pooling1d", "[7, 3]", "padding: causal")), "'valid', 'same'");
  has(compile_error(pool_yaml("max_pooling1d", "[7, 3]", "pool_sise: 3")), "pool_size");
  CHECK(compile_error(pool_yaml("max_pooling1d", "[7, 3]", "pool_size: 3, strides: 1")) == "");
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

// A pooling case: shape [B, T, C] (1d) or [B, H, W, C] (2d), pool and strides per axis.
struct PoolGradCase {
  Dims shape;
  bool max;
  std::vector<int64_t> pool, strides;
  std::string padding;
};

std::string list(const std::vector<int64_t>& v) {
  return fmt::format("[{}]", fmt::join(v, ", "));
}

fg::test::TrainingNodeCase pool_training_case(const PoolGradCase& k, const Tensor& x) {
  const bool two_d = k.shape.size() == 4;
  const std::string op = fmt::format("{}_pooling{}d", k.max ? "max" : "average", two_d ? 2 : 1);
  fg::test::TrainingNodeCase c;
  c.yaml = pool_yaml(op, list(Dims(k.shape.begin() + 1, k.shape.end())),
                     fmt::format("pool_size: {}, strides: {}, padding: {}", list(k.pool),
                                 list(k.strides), k.padding));
  c.inputs = {x};
  return c;
}

fg::ref::Array naive_pool(const PoolGradCase& k, const fg::ref::Array& x) {
  return k.shape.size() == 4 ? fg::ref::pool2d(x, k.max, k.pool[0], k.pool[1], k.strides[0],
                                               k.strides[1], k.padding)
                             : fg::ref::pool1d(x, k.max, k.pool[0], k.strides[0], k.padding);
}

void check_pool_gradient(const PoolGradCase& k, uint64_t seed) {
  CAPTURE(fmt::format("{}", fmt::join(k.shape, "x")));
  CAPTURE(k.max);
  CAPTURE(list(k.pool));
  CAPTURE(list(k.strides));
  CAPTURE(k.padding);
  fg::test::GradientTolerance tol;
  tol.max_checked = 150;
  fg::test::check_gradients(
      pool_training_case(k, fg::test::random_tensor(k.shape, seed)),
      [&](const auto& x, const auto&) {
        return std::vector<std::vector<double>>{naive_pool(k, {k.shape, x[0]}).data};
      },
      tol);
}

// Max pooling on an input with tied maxima: the kernel's d input against TensorFlow's rule
// (each window's gradient to its first maximum, tests/reference/window_gradients.hpp).
void check_max_pool_ties(const PoolGradCase& k, const Tensor& x) {
  CAPTURE(fmt::format("{}", fmt::join(k.shape, "x")));
  CAPTURE(list(k.pool));
  CAPTURE(list(k.strides));
  CAPTURE(k.padding);
  const fg::ref::Array xa = to_array(x);
  const fg::ref::Array y = naive_pool(k, xa);
  const Tensor dy = fg::test::random_tensor(y.shape, 77);
  auto r = fg::test::run_training_node(pool_training_case(k, x), {dy});
  fg::test::check_close(r.outputs[0], y.data);
  const std::vector<double> dys = fg::test::to_doubles(dy);
  fg::test::check_close(
      r.diff_inputs[0],
      k.shape.size() == 4
          ? fg::ref::max_pool2d_backward(xa, dys, k.pool[0], k.pool[1], k.strides[0], k.strides[1],
                                         k.padding)
          : fg::ref::max_pool1d_backward(xa, dys, k.pool[0], k.strides[0], k.padding));
}

}  // namespace

TEST_CASE("pooling2d gradient: max and average, valid and same, strides, odd and round sizes") {
  struct Window {
    std::vector<int64_t> pool, strides;
  };
  uint64_t seed = 100;
  for (const Dims& shape : {Dims{1, 7, 7, 3}, Dims{2, 13, 8, 4}, Dims{3, 8, 8, 16}})
    for (bool max : {true, false})
      for (const std::string padding : {"valid", "same"})
        for (const Window& w : {Window{{2, 2}, {2, 2}}, Window{{3, 3}, {2, 2}},
                                Window{{3, 2}, {1, 1}}, Window{{2, 3}, {3, 2}}})
          check_pool_gradient({shape, max, w.pool, w.strides, padding}, ++seed);
}

TEST_CASE("pooling1d gradient: max and average, valid and same, strides") {
  uint64_t seed = 200;
  for (const Dims& shape : {Dims{1, 13, 3}, Dims{4, 16, 5}, Dims{2, 7, 1}})
    for (bool max : {true, false})
      for (const std::string padding : {"valid", "same"})
        for (auto [pool, stride] :
             {std::pair{2, 2}, std::pair{3, 1}, std::pair{3, 2}, std::pair{4, 3}, std::pair{1, 1}})
          check_pool_gradient({shape, max, {pool}, {stride}, padding}, ++seed);
}

TEST_CASE("max pooling gradient with ties goes to the first maximum of each window") {
  // All zero (a relu's output on a dead region), and a relu of random values (ties in some
  // windows only), with overlapping and disjoint windows, valid and same padding.
  auto relu = [](Tensor t) {
    for (size_t i = 0; i < t.size(); ++i)
      t.mutable_data<float>()[i] = std::max(0.0f, t.data<float>()[i]);
    return t;
  };
  for (const std::string padding : {"valid", "same"}) {
    for (const PoolGradCase& k : {PoolGradCase{{2, 7, 7, 3}, true, {2, 2}, {2, 2}, padding},
                                  PoolGradCase{{1, 13, 8, 4}, true, {3, 3}, {1, 1}, padding},
                                  PoolGradCase{{2, 8, 8, 16}, true, {3, 2}, {2, 1}, padding},
                                  PoolGradCase{{3, 13, 5}, true, {3}, {2}, padding},
                                  PoolGradCase{{2, 16, 8}, true, {2}, {1}, padding}}) {
      Tensor zeros = fg::test::random_tensor(k.shape, 1);
      std::fill_n(zeros.mutable_data<float>(), zeros.size(), 0.0f);
      check_max_pool_ties(k, zeros);
      check_max_pool_ties(k, relu(fg::test::random_tensor(k.shape, 2)));
    }
  }
}
