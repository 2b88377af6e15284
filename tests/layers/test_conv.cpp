// conv1d / conv2d against the naive reference (tests/reference/conv_pool.hpp), shape rules
// against the Keras formula written out here, weights, FLOPs and errors.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "engine/model.hpp"
#include "engine/plan.hpp"
#include "framework/compiler.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/conv_pool.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/test_util.hpp"

namespace {

using fg::Dims;
using fg::Tensor;

fg::ref::Array to_array(const Tensor& t) {
  return {t.shape(), fg::test::to_doubles(t)};
}

std::string ints(const std::vector<int64_t>& v) {
  if (v.size() == 1) return std::to_string(v[0]);
  return fmt::format("[{}]", fmt::join(v, ", "));
}

struct Conv2dCase {
  int64_t batch, h, w, c, filters, kh, kw, sh, sw, dh, dw;
  std::string padding, activation;
  bool use_bias;
};

void run_conv2d(const Conv2dCase& k, uint64_t seed, double tolerance = 1e-5) {
  CAPTURE(k.batch);
  CAPTURE(k.h);
  CAPTURE(k.w);
  CAPTURE(k.c);
  CAPTURE(k.filters);
  CAPTURE(k.padding);
  CAPTURE(k.activation);
  const std::string yaml = fmt::format(R"(name: t
inputs:
  x: {{shape: [{}, {}, {}]}}
nodes:
  - {{name: c, op: conv2d, input: x, filters: {}, kernel_size: [{}, {}], strides: [{}, {}], dilation_rate: [{}, {}], padding: {}, activation: {}, use_bias: {}}}
outputs: [c]
)",
                                       k.h, k.w, k.c, k.filters, k.kh, k.kw, k.sh, k.sw, k.dh, k.dw,
                                       k.padding, k.activation, k.use_bias ? "true" : "false");
  Tensor x = fg::test::random_tensor({k.batch, k.h, k.w, k.c}, seed);
  Tensor kernel = fg::test::random_tensor({k.kh, k.kw, k.c, k.filters}, seed + 1, -0.5f, 0.5f);
  Tensor bias = fg::test::random_tensor({k.filters}, seed + 2);
  std::map<std::string, Tensor> weights{{"c.kernel", kernel}};
  if (k.use_bias) weights["c.bias"] = bias;
  auto out = fg::test::run_yaml(yaml, {{"x", x}}, weights);
  std::vector<double> b = k.use_bias ? fg::test::to_doubles(bias) : std::vector<double>{};
  auto want = fg::ref::conv2d(to_array(x), to_array(kernel), b, k.sh, k.sw, k.dh, k.dw, k.padding,
                              k.activation);
  fg::test::check_shape(out.at("c"), want.shape);
  fg::test::check_close(out.at("c"), want.data, tolerance, tolerance);
}

struct Conv1dCase {
  int64_t batch, steps, c, filters, k, s, d;
  std::string padding, activation;
  bool use_bias;
};

void run_conv1d(const Conv1dCase& k, uint64_t seed) {
  CAPTURE(k.batch);
  CAPTURE(k.steps);
  CAPTURE(k.c);
  CAPTURE(k.filters);
  CAPTURE(k.k);
  CAPTURE(k.s);
  CAPTURE(k.d);
  CAPTURE(k.padding);
  CAPTURE(k.activation);
  const std::string yaml = fmt::format(R"(name: t
inputs:
  x: {{shape: [{}, {}]}}
nodes:
  - {{name: c, op: conv1d, input: x, filters: {}, kernel_size: {}, strides: {}, dilation_rate: {}, padding: {}, activation: {}, use_bias: {}}}
outputs: [c]
)",
                                       k.steps, k.c, k.filters, k.k, k.s, k.d, k.padding,
                                       k.activation, k.use_bias ? "true" : "false");
  Tensor x = fg::test::random_tensor({k.batch, k.steps, k.c}, seed);
  Tensor kernel = fg::test::random_tensor({k.k, k.c, k.filters}, seed + 1, -0.5f, 0.5f);
  Tensor bias = fg::test::random_tensor({k.filters}, seed + 2);
  std::map<std::string, Tensor> weights{{"c.kernel", kernel}};
  if (k.use_bias) weights["c.bias"] = bias;
  auto out = fg::test::run_yaml(yaml, {{"x", x}}, weights);
  std::vector<double> b = k.use_bias ? fg::test::to_doubles(bias) : std::vector<double>{};
  auto want = fg::ref::conv1d(to_array(x), to_array(kernel), b, k.s, k.d, k.padding, k.activation);
  fg::test::check_shape(out.at("c"), want.shape);
  fg::test::check_close(out.at("c"), want.data, 1e-5, 1e-5);
}

// Keras conv_utils.conv_output_length, written as Keras writes it.
int64_t keras_output_length(int64_t input_length, int64_t filter_size, const std::string& padding,
                            int64_t stride, int64_t dilation) {
  const int64_t dilated_filter_size = filter_size + (filter_size - 1) * (dilation - 1);
  int64_t output_length = 0;
  if (padding == "same" || padding == "causal")
    output_length = input_length;
  else
    output_length = input_length - dilated_filter_size + 1;
  if (output_length <= 0) return 0;
  return (output_length + stride - 1) / stride;
}

Dims output_shape(const std::string& yaml, const std::string& tensor) {
  auto graph = fg::compile_graph(fg::load_graph_string(yaml, "t.yaml"), fg::builtin_ops());
  return graph.tensors().at(graph.find_tensor(tensor)).type.shape;
}

std::string conv1d_yaml(const std::string& in_shape, const std::string& attrs,
                        const std::string& dtype = "") {
  return fmt::format(R"(name: t
inputs:
  x: {{shape: {}{}}}
nodes:
  - {{name: c, op: conv1d, input: x, {}}}
outputs: [c]
)",
                     in_shape, dtype.empty() ? "" : ", dtype: " + dtype, attrs);
}

std::string conv2d_yaml(const std::string& in_shape, const std::string& attrs,
                        const std::string& dtype = "") {
  return fmt::format(R"(name: t
inputs:
  x: {{shape: {}{}}}
nodes:
  - {{name: c, op: conv2d, input: x, {}}}
outputs: [c]
)",
                     in_shape, dtype.empty() ? "" : ", dtype: " + dtype, attrs);
}

// The implementation(s) the plan for `shape` runs for node "c" of `yaml`.
std::string impl_of_c(const std::string& yaml, const Dims& shape, bool optimize = true) {
  auto graph = fg::test::compile_yaml(yaml);
  fg::ModelOptions options;
  options.optimize = optimize;
  fg::Model model(graph, fg::WeightStore::initialize(*graph, 1), options);
  return fg::test::step_impl(*model.plan_for({shape}), "c");
}

}  // namespace

TEST_CASE("conv2d matches the reference on odd and round shapes for every padding") {
  const std::vector<Conv2dCase> cases{
      {1, 7, 13, 3, 5, 3, 3, 1, 1, 1, 1, "valid", "linear", true},
      {3, 7, 13, 3, 5, 3, 3, 1, 1, 1, 1, "same", "linear", true},
      {3, 13, 7, 5, 13, 3, 2, 2, 2, 1, 1, "same", "relu", true},
      {1, 13, 7, 5, 13, 3, 2, 2, 3, 1, 1, "valid", "relu", true},
      {3, 13, 13, 13, 7, 3, 3, 3, 3, 1, 1, "same", "linear", false},
      {1, 13, 13, 13, 7, 3, 3, 3, 2, 1, 1, "valid", "sigmoid", true},
      {3, 13, 11, 3, 5, 3, 3, 1, 1, 2, 2, "same", "linear", true},
      {1, 13, 11, 3, 5, 3, 2, 1, 1, 2, 1, "valid", "gelu", true},
      {3, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1, "same", "relu", true},
      {2, 32, 32, 8, 16, 5, 5, 2, 2, 1, 1, "same", "linear", true},
      {1, 8, 8, 64, 64, 1, 1, 1, 1, 1, 1, "valid", "linear", true},
      {3, 9, 6, 5, 7, 4, 4, 2, 2, 1, 1, "same", "softmax", true},
      {1, 7, 7, 13, 3, 7, 7, 1, 1, 1, 1, "valid", "tanh", false},
  };
  uint64_t seed = 100;
  for (const auto& c : cases) run_conv2d(c, seed += 10);
}

TEST_CASE("3x3 stride-1 conv2d with many channels (Winograd on AVX-512) matches the reference") {
  // 3x3, stride 1, no dilation, >= 16 input channels: oneDNN's F(4x4, 3x3) Winograd kernel where
  // the CPU has it (AVX-512), else the direct one. Odd sizes leave partial 4x4 tiles.
  const std::vector<Conv2dCase> cases{
      {1, 13, 127, 16, 32, 3, 3, 1, 1, 1, 1, "valid", "relu", true},
      {2, 7, 13, 64, 48, 3, 3, 1, 1, 1, 1, "same", "linear", true},
      {1, 29, 31, 128, 256, 3, 3, 1, 1, 1, 1, "valid", "relu", false},
      {3, 16, 16, 32, 64, 3, 3, 1, 1, 1, 1, "same", "sigmoid", true},
  };
  // Winograd's transforms round more than a direct sum: measured up to 2e-5 relative with 128
  // input channels, so the tolerance is 1e-4 here (docs/ops/conv2d.md states it).
  uint64_t seed = 700;
  for (const auto& c : cases) run_conv2d(c, seed += 10, 1e-4);

  // Which kernel ran: Winograd on AVX-512 (unless FG_CONV_WINOGRAD=0), direct in an unfused plan.
  const std::string yaml = conv2d_yaml("[29, 31, 128]", "filters: 256, kernel_size: 3");
  CHECK(impl_of_c(yaml, {1, 29, 31, 128}, false).find("wino") == std::string::npos);
  const bool avx512 = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core;
  if (avx512 && fg::onednn::winograd_enabled())
    CHECK(impl_of_c(yaml, {1, 29, 31, 128}).find("wino_4x3") != std::string::npos);
}

TEST_CASE("conv1d matches the reference for valid, same and causal padding") {
  const std::vector<Conv1dCase> cases{
      {1, 7, 3, 5, 3, 1, 1, "valid", "linear", true},
      {3, 7, 3, 5, 3, 1, 1, "same", "linear", true},
      {3, 7, 3, 5, 3, 1, 1, "causal", "linear", true},
      {1, 13, 5, 13, 4, 2, 1, "same", "relu", true},
      {3, 13, 5, 13, 4, 3, 1, "valid", "relu", false},
      {3, 13, 5, 13, 4, 3, 1, "causal", "linear", true},
      {1, 127, 13, 7, 5, 1, 2, "causal", "sigmoid", true},
      {3, 127, 13, 7, 5, 1, 2, "same", "gelu", true},
      {3, 127, 1, 16, 3, 1, 2, "valid", "linear", true},
      {2, 128, 16, 32, 3, 1, 1, "same", "relu", true},
      {2, 64, 32, 64, 8, 2, 1, "valid", "linear", false},
      {3, 13, 5, 7, 3, 2, 1, "same", "softmax", true},
      {1, 5, 3, 3, 5, 1, 1, "valid", "softsign", true},
  };
  uint64_t seed = 500;
  for (const auto& c : cases) run_conv1d(c, seed += 10);
}

TEST_CASE("a 1-channel signal conv avoids brgconv and still matches the reference") {
  // brgconv builds ~9 MB of tables for a long 1-channel signal; make_conv_pd takes the next
  // non-reference kernel instead (jit:avx512_core on AVX-512).
  run_conv1d({1, 1601, 1, 64, 3, 1, 1, "valid", "relu", true}, 900);
  run_conv1d({2, 127, 1, 13, 5, 2, 1, "same", "linear", true}, 910);
  const std::string impl =
      impl_of_c(conv1d_yaml("[1601, 1]", "filters: 64, kernel_size: 3"), {1, 1601, 1});
  CHECK(impl.find("brg") == std::string::npos);
  CHECK(impl.find("ref") == std::string::npos);
}

TEST_CASE("conv1d output lengths follow the Keras formula") {
  for (int64_t in : {1, 2, 3, 4, 5, 7, 8, 13, 16, 127})
    for (int64_t k : {1, 2, 3, 5})
      for (int64_t s : {1, 2, 3})
        for (int64_t d : {1, 2})
          for (std::string padding : {"valid", "same", "causal"}) {
            if (s > 1 && d > 1) continue;
            CAPTURE(in);
            CAPTURE(k);
            CAPTURE(s);
            CAPTURE(d);
            CAPTURE(padding);
            const std::string yaml = conv1d_yaml(
                fmt::format("[{}, 3]", in),
                fmt::format(
                    "filters: 4, kernel_size: {}, strides: {}, dilation_rate: {}, padding: {}", k,
                    s, d, padding));
            const int64_t want = keras_output_length(in, k, padding, s, d);
            if (want < 1) {
              const std::string err = fg::test::compile_error(yaml);
              CHECK(err.find("larger than") != std::string::npos);
              CHECK(err.find("output length of 0") != std::string::npos);
            } else {
              CHECK(output_shape(yaml, "c") == Dims{fg::kDynamic, want, 4});
            }
          }
}

TEST_CASE("conv2d output shapes follow the Keras formula per axis") {
  for (int64_t h : {3, 7, 8})
    for (int64_t w : {5, 13, 16})
      for (std::vector<int64_t> k : {std::vector<int64_t>{1, 1}, {3, 3}, {3, 2}, {2, 5}})
        for (std::vector<int64_t> s : {std::vector<int64_t>{1, 1}, {2, 2}, {3, 1}})
          for (std::string padding : {"valid", "same"}) {
            const int64_t oh = keras_output_length(h, k[0], padding, s[0], 1);
            const int64_t ow = keras_output_length(w, k[1], padding, s[1], 1);
            if (oh < 1 || ow < 1) continue;
            CAPTURE(h);
            CAPTURE(w);
            CAPTURE(padding);
            const std::string yaml =
                conv2d_yaml(fmt::format("[{}, {}, 3]", h, w),
                            fmt::format("filters: 6, kernel_size: {}, strides: {}, padding: {}",
                                        ints(k), ints(s), padding));
            CHECK(output_shape(yaml, "c") == Dims{fg::kDynamic, oh, ow, 6});
          }
  // Dilation in 2D.
  CHECK(output_shape(
            conv2d_yaml("[13, 11, 3]", "filters: 2, kernel_size: 3, dilation_rate: [2, 3]"), "c") ==
        Dims{fg::kDynamic, 13 - 4, 11 - 6, 2});
}

TEST_CASE("conv with a null length keeps it unknown and checks it when bound") {
  const std::string yaml = conv1d_yaml("[null, 3]", "filters: 4, kernel_size: 5");
  auto graph = fg::compile_graph(fg::load_graph_string(yaml, "t.yaml"), fg::builtin_ops());
  const int c = graph.find_tensor("c");
  CHECK(graph.tensors().at(c).type.shape == Dims{fg::kDynamic, fg::kDynamic, 4});
  CHECK(graph.bind({{2, 13, 3}}).at(c).shape == Dims{2, 9, 4});
  try {
    graph.bind({{2, 4, 3}});
    FAIL("a kernel larger than the bound input must be rejected");
  } catch (const fg::Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("kernel_size 5") != std::string::npos);
    CHECK(msg.find("steps 4") != std::string::npos);
  }
  // A null length runs: the same graph on two lengths.
  Tensor kernel = fg::test::random_tensor({5, 3, 4}, 7);
  Tensor bias = fg::test::random_tensor({4}, 8);
  for (int64_t len : {9, 13}) {
    Tensor x = fg::test::random_tensor({2, len, 3}, 9 + len);
    auto out = fg::test::run_yaml(yaml, {{"x", x}}, {{"c.kernel", kernel}, {"c.bias", bias}});
    auto want = fg::ref::conv1d(to_array(x), to_array(kernel), fg::test::to_doubles(bias), 1, 1,
                                "valid", "linear");
    fg::test::check_close(out.at("c"), want.data);
  }
}

TEST_CASE("conv weights have Keras names, shapes and fans, and FLOPs count the MACs") {
  {
    auto graph = fg::compile_graph(
        fg::load_graph_string(
            conv2d_yaml("[13, 7, 3]", "filters: 5, kernel_size: [3, 2], padding: same"), "t.yaml"),
        fg::builtin_ops());
    std::vector<fg::TensorType> types;
    for (const auto& t : graph.tensors()) types.push_back(t.type);
    auto specs = graph.node_weights(0, types);
    REQUIRE(specs.size() == 2);
    CHECK(specs[0].param == "kernel");
    CHECK(specs[0].shape == Dims{3, 2, 3, 5});
    CHECK(specs[0].init == fg::Init::glorot_uniform);
    CHECK(specs[0].fan_in == 3 * 2 * 3);
    CHECK(specs[0].fan_out == 3 * 2 * 5);
    CHECK(specs[1].param == "bias");
    CHECK(specs[1].shape == Dims{5});
    CHECK(specs[1].init == fg::Init::zeros);
    auto stats = graph.node_stats(0, types);
    CHECK(stats.params == 3 * 2 * 3 * 5 + 5);
    CHECK(stats.flops == doctest::Approx(2.0 * 13 * 7 * (3 * 2) * 3 * 5));
  }
  {
    auto graph = fg::compile_graph(
        fg::load_graph_string(
            conv1d_yaml("[127, 13]", "filters: 7, kernel_size: 5, strides: 2, use_bias: false"),
            "t.yaml"),
        fg::builtin_ops());
    std::vector<fg::TensorType> types;
    for (const auto& t : graph.tensors()) types.push_back(t.type);
    auto specs = graph.node_weights(0, types);
    REQUIRE(specs.size() == 1);
    CHECK(specs[0].shape == Dims{5, 13, 7});
    CHECK(specs[0].fan_in == 5 * 13);
    CHECK(specs[0].fan_out == 5 * 7);
    CHECK(graph.node_stats(0, types).flops == doctest::Approx(2.0 * 62 * 5 * 13 * 7));
  }
}

TEST_CASE("conv errors are clear") {
  using fg::test::compile_error;
  auto has = [](const std::string& msg, const std::string& part) {
    INFO(msg);
    CHECK(msg.find(part) != std::string::npos);
  };
  // Kernel larger than a fixed input names both.
  std::string e = compile_error(conv2d_yaml("[5, 7, 3]", "filters: 2, kernel_size: [6, 3]"));
  has(e, "kernel_size 6");
  has(e, "height 5");
  e = compile_error(conv1d_yaml("[5, 3]", "filters: 2, kernel_size: 3, dilation_rate: 3"));
  has(e, "dilated to 7");
  has(e, "steps 5");
  // Zero filters, negative strides.
  has(compile_error(conv1d_yaml("[7, 3]", "filters: 0, kernel_size: 3")), "filters");
  has(compile_error(conv1d_yaml("[7, 3]", "filters: 0, kernel_size: 3")), "positive");
  has(compile_error(conv2d_yaml("[7, 7, 3]", "filters: 2, kernel_size: 3, strides: [1, -2]")),
      "strides");
  has(compile_error(conv2d_yaml("[7, 7, 3]", "filters: 2, kernel_size: 3, strides: [1, -2]")),
      "positive");
  has(compile_error(conv2d_yaml("[7, 7, 3]", "filters: 2, kernel_size: [3, 3, 3]")), "kernel_size");
  has(compile_error(conv2d_yaml("[7, 7, 3]", "kernel_size: 3")), "filters");
  // Wrong rank shows the shape and a reshape hint.
  e = compile_error(conv2d_yaml("[7, 7]", "filters: 2, kernel_size: 3"));
  has(e, "rank-4");
  has(e, "(None, 7, 7)");
  has(e, "reshape");
  e = compile_error(conv1d_yaml("[7]", "filters: 2, kernel_size: 3"));
  has(e, "rank-3");
  has(e, "(None, 7)");
  has(e, "reshape");
  // int32 input hints at an embedding.
  e = compile_error(conv1d_yaml("[7, 3]", "filters: 2, kernel_size: 3", "int32"));
  has(e, "float32");
  has(e, "embedding");
  // Dilation with strides.
  e = compile_error(
      conv1d_yaml("[13, 3]", "filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2"));
  has(e, "dilation_rate");
  has(e, "strides");
  // Unknown padding: did you mean; causal is conv1d only.
  e = compile_error(conv2d_yaml("[7, 7, 3]", "filters: 2, kernel_size: 3, padding: sme"));
  has(e, "padding");
  has(e, "did you mean 'same'");
  has(compile_error(conv2d_yaml("[7, 7, 3]", "filters: 2, kernel_size: 3, padding: causal")),
      "'valid', 'same'");
  has(compile_error(conv1d_yaml("[7, 3]", "filters: 2, kernel_size: 3, activation: rlu")),
      "did you mean 'relu'");
  has(compile_error(
          conv1d_yaml("[7, 3]", "filters: 2, kernel_size: 3, data_format: channels_first")),
      "channels_last");
  // A valid graph compiles (the checks above can fail).
  CHECK(compile_error(conv1d_yaml("[7, 3]", "filters: 2, kernel_size: 3, padding: causal")) == "");
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

// A conv1d (shape [B, T, C], 1 spatial value in kernel / strides / dilation) or conv2d.
struct ConvGradCase {
  Dims shape;
  int64_t filters;
  std::vector<int64_t> kernel, strides, dilation;
  std::string padding = "valid", activation = "linear";
  bool bias = true;
};

fg::test::TrainingNodeCase conv_training_case(const ConvGradCase& k, uint64_t seed) {
  const bool two_d = k.shape.size() == 4;
  Dims per_sample(k.shape.begin() + 1, k.shape.end());
  fg::test::TrainingNodeCase c;
  c.yaml = fmt::format(R"(name: t
inputs:
  x: {{shape: [{}]}}
nodes:
  - {{name: c, op: {}, input: x, filters: {}, kernel_size: {}, strides: {}, dilation_rate: {}, padding: {}, activation: {}, use_bias: {}}}
outputs: [c]
)",
                       fmt::join(per_sample, ", "), two_d ? "conv2d" : "conv1d", k.filters,
                       ints(k.kernel), ints(k.strides), ints(k.dilation), k.padding, k.activation,
                       k.bias ? "true" : "false");
  c.inputs = {fg::test::random_tensor(k.shape, seed)};
  Dims kshape(k.kernel.begin(), k.kernel.end());
  kshape.push_back(k.shape.back());
  kshape.push_back(k.filters);
  c.weights["kernel"] = fg::test::random_tensor(kshape, seed + 1, -0.5f, 0.5f);
  if (k.bias) c.weights["bias"] = fg::test::random_tensor({k.filters}, seed + 2);
  return c;
}

// The naive conv (tests/reference/conv_pool.hpp) then the activation (dense_act.hpp).
fg::test::NaiveForward naive_conv(const ConvGradCase& k, const std::string& activation) {
  return [k, activation](const auto& x, const auto& w) {
    Dims kshape(k.kernel.begin(), k.kernel.end());
    kshape.push_back(k.shape.back());
    kshape.push_back(k.filters);
    const fg::ref::Array xa{k.shape, x[0]}, ka{kshape, w[0]};
    const std::vector<double> bias = k.bias ? w[1] : std::vector<double>{};
    fg::ref::Array y =
        k.shape.size() == 4
            ? fg::ref::conv2d(xa, ka, bias, k.strides[0], k.strides[1], k.dilation[0],
                              k.dilation[1], k.padding, "linear")
            : fg::ref::conv1d(xa, ka, bias, k.strides[0], k.dilation[0], k.padding, "linear");
    return std::vector<std::vector<double>>{fg::ref::apply_activation(activation, y.data, y.shape)};
  };
}

void check_conv_gradient(const ConvGradCase& k, uint64_t seed = 40, size_t max_checked = 120) {
  CAPTURE(fmt::format("{}", fmt::join(k.shape, "x")));
  CAPTURE(k.filters);
  CAPTURE(ints(k.kernel));
  CAPTURE(ints(k.strides));
  CAPTURE(ints(k.dilation));
  CAPTURE(k.padding);
  CAPTURE(k.activation);
  CAPTURE(k.bias);
  fg::test::GradientTolerance tol;
  tol.max_checked = max_checked;
  fg::test::check_gradients(conv_training_case(k, seed), naive_conv(k, k.activation), tol);
}

}  // namespace

namespace {

void check_conv2d_gradients(const std::string& padding) {
  struct Geometry {
    std::vector<int64_t> kernel, strides, dilation;
  };
  const std::vector<Geometry> geometries{{{3, 3}, {1, 1}, {1, 1}}, {{3, 3}, {2, 2}, {1, 1}},
                                         {{3, 2}, {2, 3}, {1, 1}}, {{3, 3}, {1, 1}, {2, 2}},
                                         {{1, 1}, {1, 1}, {1, 1}}, {{2, 3}, {1, 1}, {1, 2}}};
  for (const Dims& shape : {Dims{1, 7, 7, 3}, Dims{2, 13, 9, 5}, Dims{2, 8, 8, 4}})
    for (const Geometry& g : geometries)
      for (bool bias : {true, false})
        check_conv_gradient({shape, shape[0] == 1 ? 4 : 7, g.kernel, g.strides, g.dilation, padding,
                             "linear", bias});
}

}  // namespace

TEST_CASE("conv2d gradient, valid padding: strides, dilation, odd and round sizes, bias or not") {
  check_conv2d_gradients("valid");
}

TEST_CASE("conv2d gradient, same padding: strides, dilation, odd and round sizes, bias or not") {
  check_conv2d_gradients("same");
}

TEST_CASE("conv1d gradient: valid, same and causal, strides and dilation, bias or not") {
  struct Geometry {
    int64_t kernel, stride, dilation;
  };
  for (const Dims& shape : {Dims{1, 13, 3}, Dims{3, 16, 4}, Dims{2, 7, 1}})
    for (const std::string padding : {"valid", "same", "causal"})
      for (const Geometry& g : {Geometry{3, 1, 1}, Geometry{3, 2, 1}, Geometry{4, 3, 1},
                                Geometry{3, 1, 2}, Geometry{1, 1, 1}, Geometry{5, 1, 1}})
        for (bool bias : {true, false})
          check_conv_gradient(
              {shape, 5, {g.kernel}, {g.stride}, {g.dilation}, padding, "linear", bias});
}

TEST_CASE("conv gradient through each fused activation") {
  for (const std::string act : {"relu", "sigmoid", "tanh", "elu", "softplus", "swish", "gelu",
                                "softmax", "log_softmax", "relu6", "mish"}) {
    check_conv_gradient({{2, 7, 6, 3}, 5, {3, 3}, {1, 1}, {1, 1}, "same", act, true});
    check_conv_gradient({{2, 13, 4}, 6, {3}, {2}, {1}, "causal", act, false});
  }
}

TEST_CASE("conv gradient with the blocked layouts oneDNN picks for many channels") {
  // 16 -> 32 channels: oneDNN runs these in blocked layouts (nChw8c / nChw16c and blocked
  // weights), so the reorders in and out of the kernel temporaries are exercised.
  check_conv_gradient({{2, 12, 12, 16}, 32, {3, 3}, {1, 1}, {1, 1}, "same", "relu", true}, 41, 60);
  check_conv_gradient({{3, 9, 11, 16}, 24, {3, 3}, {2, 2}, {1, 1}, "valid", "linear", true}, 42,
                      60);
  check_conv_gradient({{2, 31, 16}, 32, {5}, {1}, {1}, "same", "tanh", true}, 43, 60);
  // The first layer of an image branch: 3 channels in, 16 out.
  check_conv_gradient({{2, 15, 15, 3}, 16, {3, 3}, {1, 1}, {1, 1}, "same", "relu", true}, 44, 60);
}

TEST_CASE("conv with its softmax or sigmoid taken by the loss writes and differentiates logits") {
  for (const std::string act : {"softmax", "sigmoid"}) {
    const ConvGradCase k{{2, 5, 5, 3}, 4, {3, 3}, {1, 1}, {1, 1}, "same", act, true};
    fg::test::TrainingNodeCase c = conv_training_case(k, 50);
    c.output_logits = true;
    fg::test::check_gradients(c, naive_conv(k, "linear"));
    auto graph = fg::compile_graph(fg::load_graph_string(c.yaml, "t.yaml"), fg::builtin_ops());
    CHECK(graph.nodes().at(0).op->traits().final_activation == act);
  }
}

TEST_CASE("conv gradient: frozen, or no input gradient needed") {
  const ConvGradCase k{{2, 7, 7, 3}, 4, {3, 3}, {2, 2}, {1, 1}, "same", "relu", true};
  fg::test::TrainingNodeCase c = conv_training_case(k, 60);
  c.frozen = true;
  auto frozen = fg::test::check_gradients(c, naive_conv(k, "relu"));
  for (const Tensor& g : frozen.diff_weights)
    for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
  c.frozen = false;
  c.needs_input_gradient = {false};
  auto no_input = fg::test::check_gradients(c, naive_conv(k, "relu"));
  for (size_t i = 0; i < no_input.diff_inputs[0].size(); ++i)
    REQUIRE(no_input.diff_inputs[0].data<float>()[i] == 0.0f);
}
