// precision: bf16 (ModelOptions::precision). dense, conv1d and conv2d against naive references
// that round the input and the weights to bf16 exactly as oneDNN does (round to nearest even of
// the f32 bit pattern) and accumulate in double, on odd and round shapes; the reference graph in
// bf16 against f32; and the fallback to f32 when the CPU has no native bf16. Every check accepts
// either outcome the CPU allows (bf16 on avx512_core_bf16, f32 with the reason under
// ONEDNN_MAX_CPU_ISA=AVX2) and checks the arithmetic of the one it got.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <fusiongraph/fusiongraph.hpp>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/registry.hpp"
#include "tests/reference/conv_pool.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

// bf16(x) as a float: the upper 16 bits of x's f32 pattern after rounding to nearest, ties to
// even (no NaN in these tests).
float round_to_bf16(float x) {
  uint32_t bits = 0;
  std::memcpy(&bits, &x, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  bits &= 0xFFFF0000u;
  float out = 0;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

std::vector<double> doubles_in(const Tensor& t, bool bf16) {
  std::vector<double> out(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    const float v = t.data<float>()[i];
    out[i] = bf16 ? round_to_bf16(v) : v;
  }
  return out;
}

struct Bf16Run {
  Tensor out;
  std::string precision;  // of node "n": "bf16", or "f32: <why>"
};

// Runs the one-node graph `yaml` (node "n", output "n") with `precision`, in the optimized or
// the unfused plan.
Bf16Run run_node(const std::string& yaml, const Tensor& x, const std::map<std::string, Tensor>& w,
                 bool optimize = true) {
  auto def = load_graph_string(yaml, "bf16.yaml");
  auto graph = std::make_shared<CompiledGraph>(compile_graph(def, builtin_ops()));
  WeightStore store;
  for (const auto& [key, t] : w) store.set(key, t);
  ModelOptions options;
  options.threads = 2;
  options.optimize = optimize;
  options.precision = Precision::bf16;
  Model model(graph, store, options);
  std::vector<StepTiming> profile;
  RunOptions run;
  run.profile = &profile;
  run.fill_arena_with_nan = true;
  Bf16Run r{model.run({{"x", x}}, run).at("n"), ""};
  for (const StepTiming& s : profile)
    if (s.name == "n") r.precision = s.precision;
  CHECK(model.plan_for({x.shape()})->arena_problem() == "");
  CHECK((model.precision_warning().empty() == onednn::native_bf16_isa()));
  return r;
}

// What the node got must be what the CPU allows: bf16 on a native bf16 ISA, else f32 naming the
// ISA. Returns true for bf16.
bool check_precision_decision(const std::string& got) {
  if (onednn::native_bf16_isa()) {
    CHECK(got == "bf16");
  } else {
    CHECK(got.rfind("f32: no native bf16 on " + onednn::cpu_isa_name(), 0) == 0);
  }
  return got == "bf16";
}

// Each value within `tol` times the sum of the magnitudes of its terms (the f32 accumulation's
// error bound, with room), given by `scale`. Returns the largest error relative to its scale.
double check_within(const Tensor& got, const std::vector<double>& want,
                    const std::vector<double>& scale, double tol) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::abs(static_cast<double>(got.data<float>()[i]) - want[i]);
    const double rel = err / (scale[i] + 1e-30);
    worst = std::max(worst, rel);
    if (rel > tol && bad++ < 3)
      FAIL_CHECK(fmt::format("value {}: got {}, want {} (scale {})", i, got.data<float>()[i],
                             want[i], scale[i]));
  }
  return worst;
}

// Dense [B, in] -> [B, units]: the reference's value and the sum of |x_i w_ij| + |b_j| per output.
void dense_reference(const std::vector<double>& x, const std::vector<double>& k,
                     const std::vector<double>& b, int64_t batch, int64_t in, int64_t units,
                     bool relu, std::vector<double>& want, std::vector<double>& scale) {
  want.assign(static_cast<size_t>(batch * units), 0);
  scale.assign(want.size(), 0);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t u = 0; u < units; ++u) {
      double acc = b[u], mag = std::abs(b[u]);
      for (int64_t i = 0; i < in; ++i) {
        acc += x[n * in + i] * k[i * units + u];
        mag += std::abs(x[n * in + i] * k[i * units + u]);
      }
      want[n * units + u] = relu ? std::max(0.0, acc) : acc;
      scale[n * units + u] = mag;
    }
}

void check_dense_bf16(int64_t batch, int64_t in, int64_t units, bool relu, uint64_t seed) {
  CAPTURE(batch);
  CAPTURE(in);
  CAPTURE(units);
  const Tensor x = random_tensor({batch, in}, seed, -2.f, 2.f);
  const Tensor k = random_tensor({in, units}, seed + 1, -0.5f, 0.5f);
  const Tensor b = random_tensor({units}, seed + 2);
  const std::string yaml = fmt::format(
      "name: t\ninputs:\n  x: {{shape: [{}]}}\nnodes:\n  - {{name: n, op: dense, input: x, "
      "units: {}, activation: {}}}\noutputs: [n]\n",
      in, units, relu ? "relu" : "linear");
  const Bf16Run r = run_node(yaml, x, {{"n.kernel", k}, {"n.bias", b}});
  const bool bf16 = check_precision_decision(r.precision);
  std::vector<double> want, scale;
  // The bias stays f32: only the input and the kernel are rounded.
  dense_reference(doubles_in(x, bf16), doubles_in(k, bf16), to_doubles(b), batch, in, units, relu,
                  want, scale);
  check_within(r.out, want, scale, 1e-5);
  if (!bf16) return;
  // The check can fail: the unrounded reference is off by more than twice the tolerance.
  std::vector<double> unrounded, unused;
  dense_reference(to_doubles(x), to_doubles(k), to_doubles(b), batch, in, units, false, unrounded,
                  unused);
  if (!relu && in >= 13) {
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i)
      worst = std::max(worst, std::abs(unrounded[i] - want[i]) / scale[i]);
    CHECK(worst > 2e-5);
  }
}

// conv2d over x [B, H, W, C] with a [kh, kw, C, F] kernel; the reference's scale is computed
// with the absolute values of the (rounded) input and kernel.
void check_conv2d_bf16(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t filters, int64_t k,
                       int64_t stride, const std::string& padding, const std::string& act,
                       bool optimize, uint64_t seed) {
  CAPTURE(batch);
  CAPTURE(h);
  CAPTURE(w);
  CAPTURE(c);
  CAPTURE(filters);
  CAPTURE(stride);
  CAPTURE(padding);
  CAPTURE(optimize);
  const Tensor x = random_tensor({batch, h, w, c}, seed, -2.f, 2.f);
  const Tensor kernel = random_tensor({k, k, c, filters}, seed + 1, -0.5f, 0.5f);
  const Tensor b = random_tensor({filters}, seed + 2);
  const std::string yaml = fmt::format(
      "name: t\ninputs:\n  x: {{shape: [{}, {}, {}]}}\nnodes:\n  - {{name: n, op: conv2d, input: "
      "x, filters: {}, kernel_size: [{}, {}], strides: [{}, {}], padding: {}, activation: "
      "{}}}\noutputs: [n]\n",
      h, w, c, filters, k, k, stride, stride, padding, act);
  const Bf16Run r = run_node(yaml, x, {{"n.kernel", kernel}, {"n.bias", b}}, optimize);
  const bool bf16 = check_precision_decision(r.precision);
  const ref::Array xr{{batch, h, w, c}, doubles_in(x, bf16)};
  const ref::Array kr{{k, k, c, filters}, doubles_in(kernel, bf16)};
  const ref::Array want = ref::conv2d(xr, kr, to_doubles(b), stride, stride, 1, 1, padding, act);
  ref::Array xa = xr, ka = kr;
  for (double& v : xa.data) v = std::abs(v);
  for (double& v : ka.data) v = std::abs(v);
  std::vector<double> bias_abs = to_doubles(b);
  for (double& v : bias_abs) v = std::abs(v);
  const ref::Array scale = ref::conv2d(xa, ka, bias_abs, stride, stride, 1, 1, padding, "linear");
  check_shape(r.out, Dims(want.shape.begin(), want.shape.end()));
  check_within(r.out, want.data, scale.data, 1e-5);
}

void check_conv1d_bf16(int64_t batch, int64_t steps, int64_t c, int64_t filters, int64_t k,
                       uint64_t seed) {
  CAPTURE(batch);
  CAPTURE(steps);
  CAPTURE(c);
  CAPTURE(filters);
  const Tensor x = random_tensor({batch, steps, c}, seed, -2.f, 2.f);
  const Tensor kernel = random_tensor({k, c, filters}, seed + 1, -0.5f, 0.5f);
  const Tensor b = random_tensor({filters}, seed + 2);
  const std::string yaml = fmt::format(
      "name: t\ninputs:\n  x: {{shape: [{}, {}]}}\nnodes:\n  - {{name: n, op: conv1d, input: x, "
      "filters: {}, kernel_size: {}, padding: same, activation: relu}}\noutputs: [n]\n",
      steps, c, filters, k);
  const Bf16Run r = run_node(yaml, x, {{"n.kernel", kernel}, {"n.bias", b}});
  const bool bf16 = check_precision_decision(r.precision);
  const ref::Array xr{{batch, steps, c}, doubles_in(x, bf16)};
  const ref::Array kr{{k, c, filters}, doubles_in(kernel, bf16)};
  const ref::Array want = ref::conv1d(xr, kr, to_doubles(b), 1, 1, "same", "relu");
  ref::Array xa = xr, ka = kr;
  for (double& v : xa.data) v = std::abs(v);
  for (double& v : ka.data) v = std::abs(v);
  std::vector<double> bias_abs = to_doubles(b);
  for (double& v : bias_abs) v = std::abs(v);
  const ref::Array scale = ref::conv1d(xa, ka, bias_abs, 1, 1, "same", "linear");
  check_within(r.out, want.data, scale.data, 1e-5);
}

}  // namespace

TEST_CASE("bf16 rounding of the reference is round to nearest even") {
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
  CHECK(round_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to the even one (1 + 2^-6).
  CHECK(round_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 1.0f + std::ldexp(1.0f, -6));
  CHECK(round_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) ==
        1.0f + std::ldexp(1.0f, -7));
  CHECK(round_to_bf16(-3.0f) == -3.0f);
}

TEST_CASE("precision names parse and an unknown one lists the choices") {
  CHECK(parse_precision("f32") == Precision::f32);
  CHECK(parse_precision("bf16") == Precision::bf16);
  CHECK(std::string(precision_name(Precision::bf16)) == "bf16");
  try {
    parse_precision("fp16");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("'fp16'") != std::string::npos);
    CHECK(std::string(e.what()).find("f32, bf16") != std::string::npos);
  }
}

TEST_CASE("bf16 dense against a reference rounding input and kernel to bf16") {
  for (int64_t batch : {1, 4})
    for (int64_t in : {7, 13, 127, 256})
      for (int64_t units : {5, 33, 128})
        check_dense_bf16(batch, in, units, false, 300 + 7 * in + units + batch);
  check_dense_bf16(1, 127, 13, true, 91);
  check_dense_bf16(4, 64, 16, true, 92);
}

TEST_CASE("bf16 dense over rank 3 (matmul) against the rounding reference") {
  const int64_t batch = 2, steps = 7, in = 13, units = 33;
  const Tensor x = random_tensor({batch, steps, in}, 41, -2.f, 2.f);
  const Tensor k = random_tensor({in, units}, 42, -0.5f, 0.5f);
  const Tensor b = random_tensor({units}, 43);
  const std::string yaml =
      "name: t\ninputs:\n  x: {shape: [7, 13]}\nnodes:\n  - {name: n, op: dense, input: x, "
      "units: 33}\noutputs: [n]\n";
  const Bf16Run r = run_node(yaml, x, {{"n.kernel", k}, {"n.bias", b}});
  const bool bf16 = check_precision_decision(r.precision);
  std::vector<double> want, scale;
  dense_reference(doubles_in(x, bf16), doubles_in(k, bf16), to_doubles(b), batch * steps, in, units,
                  false, want, scale);
  check_within(r.out, want, scale, 1e-5);
}

TEST_CASE("bf16 conv2d against a reference rounding input and kernel to bf16") {
  check_conv2d_bf16(1, 13, 13, 3, 7, 3, 1, "valid", "relu", true, 501);
  check_conv2d_bf16(2, 7, 13, 13, 16, 3, 1, "same", "linear", true, 502);
  check_conv2d_bf16(1, 16, 16, 16, 32, 3, 1, "same", "relu", true, 503);
  check_conv2d_bf16(1, 16, 16, 16, 32, 3, 1, "same", "relu", false, 504);
  check_conv2d_bf16(2, 13, 7, 32, 64, 3, 2, "valid", "relu", true, 505);
  check_conv2d_bf16(1, 9, 9, 8, 13, 1, 1, "valid", "tanh", true, 506);
}

TEST_CASE("bf16 conv1d against a reference rounding input and kernel to bf16") {
  check_conv1d_bf16(1, 127, 13, 7, 5, 601);
  check_conv1d_bf16(2, 64, 16, 32, 3, 602);
  check_conv1d_bf16(1, 100, 1, 16, 9, 603);
}

TEST_CASE("bf16 plan: convolutions in a chain with pooling keep their layouts correct") {
  // conv -> pool -> conv, the middle tensor blocked in f32 between them: each bf16 conv reorders
  // its f32 input to bf16 itself. Checked against the unfused f32 plan within bf16's error.
  const std::string yaml =
      "name: t\ninputs:\n  x: {shape: [16, 16, 3]}\nnodes:\n"
      "  - {name: c1, op: conv2d, input: x, filters: 16, kernel_size: 3, activation: relu}\n"
      "  - {name: p, op: max_pooling2d, input: c1, pool_size: 2}\n"
      "  - {name: n, op: conv2d, input: p, filters: 32, kernel_size: 3, activation: relu}\n"
      "outputs: [n]\n";
  const Tensor x = random_tensor({2, 16, 16, 3}, 71);
  std::map<std::string, Tensor> w{{"c1.kernel", random_tensor({3, 3, 3, 16}, 72, -0.5f, 0.5f)},
                                  {"c1.bias", random_tensor({16}, 73)},
                                  {"n.kernel", random_tensor({3, 3, 16, 32}, 74, -0.2f, 0.2f)},
                                  {"n.bias", random_tensor({32}, 75)}};
  const Bf16Run r = run_node(yaml, x, w);
  check_precision_decision(r.precision);
  const auto f32 = run_yaml(yaml, {{"x", x}}, w).at("n");
  double worst = 0, top = 0;
  for (size_t i = 0; i < f32.size(); ++i) {
    worst = std::max(worst, std::abs(double(r.out.data<float>()[i]) - f32.data<float>()[i]));
    top = std::max(top, std::abs(double(f32.data<float>()[i])));
  }
  CHECK(worst <= 0.02 * top);
}

TEST_CASE("the reference graph in bf16 against f32, per output") {
  CompileOptions f32_options;
  f32_options.init_seed = 1;
  f32_options.threads = 2;
  CompileOptions bf16_options = f32_options;
  bf16_options.precision = Precision::bf16;
  const std::string path = source_path("graphs/multimodal_fusion.yaml");
  const Session f32 = load(path, f32_options);
  const Session bf16 = load(path, bf16_options);
  CHECK(bf16.precision() == Precision::bf16);
  CHECK((bf16.precision_warning().empty() == onednn::native_bf16_isa()));
  CHECK(f32.precision_warning().empty());
  const auto inputs = f32.synthetic_inputs(f32.input_shapes(2), 5);
  std::vector<StepTiming> profile;
  RunOptions run;
  run.profile = &profile;
  const auto want = f32.run(inputs);
  const auto got = bf16.run(inputs, run);
  size_t bf16_steps = 0;
  for (const StepTiming& s : profile) {
    if (s.precision == "bf16") ++bf16_steps;
    // Only dense and convolutions decide a precision; everything else stays f32.
    if (!s.precision.empty()) CHECK((s.op == "dense" || s.op == "conv1d" || s.op == "conv2d"));
  }
  CHECK((bf16_steps > 0) == onednn::native_bf16_isa());
  // Bound: the largest difference of an output, relative to that output's largest magnitude
  // (probabilities: absolute), is at most 3% (bf16 keeps 8 significant bits: 0.4% per rounding).
  for (const auto& [name, tensor] : want) {
    CAPTURE(name);
    const Tensor& g = got.at(name);
    REQUIRE(g.size() == tensor.size());
    double worst = 0, top = 0;
    for (size_t i = 0; i < tensor.size(); ++i) {
      worst = std::max(worst, std::abs(double(g.data<float>()[i]) - tensor.data<float>()[i]));
      top = std::max(top, std::abs(double(tensor.data<float>()[i])));
    }
    MESSAGE(
        fmt::format("output {}: max |bf16 - f32| = {:.3g}, max |f32| = {:.3g}", name, worst, top));
    CHECK(worst <= 0.03 * std::max(top, 1e-6));
    if (!onednn::native_bf16_isa()) CHECK(worst == 0);
  }
}
