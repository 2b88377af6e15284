// precision: int8 (ModelOptions::precision). dense (inner product and matmul), conv1d and conv2d
// against naive references that quantize exactly as the kernels must: the input by its scale
// (q = saturate(round_half_even(x * (1 / scale))), u8 or s8), the kernel per output channel
// (quantize_kernel, itself checked against plain loops), integer accumulation, then
// scale_x * scale_w[c] * acc + bias and the activation; dynamic dense with the scale of each
// batch; the quantized weights file (round trip and malformed files); calibration end to end.
// Every check accepts either outcome the CPU allows (int8 on a VNNI ISA, f32 with the reason
// under ONEDNN_MAX_CPU_ISA=AVX2, where the node must equal the float plan with the dequantized
// kernel) and checks the arithmetic of the one it got.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <fusiongraph/fusiongraph.hpp>
#include <fusiongraph/training.hpp>

#include "engine/model.hpp"
#include "engine/quantization/quantizer.hpp"
#include "engine/safetensors.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/int8_weights.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/registry.hpp"
#include "tests/io/io_test_util.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

struct Int8Run {
  Tensor out;
  std::string precision;  // of node "n": "int8, u8 input", or "f32: <why>"
};

std::shared_ptr<const CompiledGraph> graph_of(const std::string& yaml) {
  return std::make_shared<CompiledGraph>(
      compile_graph(load_graph_string(yaml, "int8.yaml"), builtin_ops()));
}

Int8Run run_node(const std::string& yaml, const Tensor& x, const WeightStore& store,
                 Precision precision = Precision::int8, bool optimize = true) {
  ModelOptions options;
  options.threads = 2;
  options.optimize = optimize;
  options.precision = precision;
  Model model(graph_of(yaml), store, options);
  std::vector<StepTiming> profile;
  RunOptions run;
  run.profile = &profile;
  run.fill_arena_with_nan = true;
  Int8Run r{model.run({{"x", x}}, run).at("n"), ""};
  for (const StepTiming& s : profile)
    if (s.name == "n") r.precision = s.precision;
  CHECK(model.plan_for({x.shape()})->arena_problem() == "");
  CHECK((model.precision_warning().empty() == onednn::native_int8_isa()));
  return r;
}

// int8 on a VNNI ISA (with `detail`, e.g. "u8 input"), else f32 naming the ISA.
bool check_precision_decision(const std::string& got, const std::string& detail) {
  if (onednn::native_int8_isa()) {
    CHECK(got == "int8, " + detail);
  } else {
    CHECK(got.rfind("f32: no VNNI on " + onednn::cpu_isa_name(), 0) == 0);
  }
  return got.rfind("int8", 0) == 0;
}

// The reference's quantization of one value.
int32_t quantize_reference(float x, float scale, bool is_unsigned) {
  const float v = std::nearbyint(x * (1.f / scale));
  const float lo = is_unsigned ? 0.f : -128.f, hi = is_unsigned ? 255.f : 127.f;
  return static_cast<int32_t>(std::min(hi, std::max(lo, v)));
}

// Naive per-channel quantization (last axis), as docs/quantization.md states it.
void kernel_reference(const Tensor& k, std::vector<int32_t>& q, std::vector<double>& scale) {
  const auto channels = static_cast<size_t>(k.shape().back());
  std::vector<float> max_abs(channels, 0.f);
  for (size_t i = 0; i < k.size(); ++i)
    max_abs[i % channels] = std::max(max_abs[i % channels], std::fabs(k.data<float>()[i]));
  scale.assign(channels, 0);
  std::vector<float> fscale(channels);
  for (size_t c = 0; c < channels; ++c) {
    fscale[c] = max_abs[c] > 0 ? max_abs[c] / 127.f : 1.f;
    scale[c] = fscale[c];
  }
  q.assign(k.size(), 0);
  for (size_t i = 0; i < k.size(); ++i) {
    const float v = std::nearbyint(k.data<float>()[i] / fscale[i % channels]);
    q[i] = static_cast<int32_t>(std::min(127.f, std::max(-127.f, v)));
  }
}

// Each value within `tol` of the reference, relative to the largest reference magnitude.
void check_close_to(const Tensor& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  double top = 1e-30;
  for (double w : want) top = std::max(top, std::abs(w));
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::abs(static_cast<double>(got.data<float>()[i]) - want[i]) / top;
    if (err > tol && bad++ < 3)
      FAIL_CHECK(fmt::format("value {}: got {}, want {} (largest {})", i, got.data<float>()[i],
                             want[i], top));
  }
}

// The f32 result of the same node, with the dequantized kernel of `q` when given (what the
// fallback must give).
std::vector<double> float_result(const std::string& yaml, const Tensor& x, const Int8Node* q,
                                 const std::string& node, WeightStore store) {
  if (q != nullptr) store.set(node + ".kernel", q->dequantized_kernel());
  ModelOptions options;
  options.threads = 2;
  Model model(graph_of(yaml), store, options);
  return to_doubles(model.run({{"x", x}}).at("n"));
}

std::string dense_yaml(const Dims& x_shape, int64_t units, const std::string& activation) {
  std::string shape;
  for (size_t i = 1; i < x_shape.size(); ++i)
    shape += (i > 1 ? ", " : "") + std::to_string(x_shape[i]);
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: [{}]}}\nnodes:\n  - {{name: n, op: dense, input: x, "
      "units: {}, activation: {}}}\noutputs: [n]\n",
      shape, units, activation);
}

// Dense on x [rows..., in] with kernel [in, units]: the integer reference of int8 inputs `qx`
// at `sx` (per-batch or calibrated), and the weights' q and scales.
std::vector<double> dense_int8_reference(const std::vector<int32_t>& qx, double sx,
                                         const std::vector<int32_t>& qw,
                                         const std::vector<double>& sw, const Tensor& b, int64_t in,
                                         int64_t units, bool relu) {
  const auto rows = static_cast<int64_t>(qx.size()) / in;
  std::vector<double> want(static_cast<size_t>(rows * units));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t u = 0; u < units; ++u) {
      int64_t acc = 0;
      for (int64_t i = 0; i < in; ++i) acc += int64_t{qx[r * in + i]} * qw[i * units + u];
      const double y = sx * sw[u] * static_cast<double>(acc) + b.data<float>()[u];
      want[r * units + u] = relu ? std::max(0.0, y) : y;
    }
  return want;
}

void check_dense_static(const Dims& x_shape, int64_t units, bool relu, bool signed_input,
                        uint64_t seed) {
  CAPTURE(format_shape(x_shape));
  CAPTURE(units);
  CAPTURE(signed_input);
  const int64_t in = x_shape.back();
  const Tensor x = random_tensor(x_shape, seed, signed_input ? -2.f : 0.f, 2.f);
  const Tensor k = random_tensor({in, units}, seed + 1, -0.5f, 0.5f);
  const Tensor b = random_tensor({units}, seed + 2);
  Int8Node q = quantize_kernel(k);
  q.input = signed_input ? Int8Node::Input::s8 : Int8Node::Input::u8;
  q.input_scale = signed_input ? 1.9f / 127 : 1.9f / 255;  // clips the values above 1.9
  WeightStore store;
  store.set("n.bias", b);
  store.set_int8_node("n", q);
  const std::string yaml = dense_yaml(x_shape, units, relu ? "relu" : "linear");
  const Int8Run r = run_node(yaml, x, store);
  if (!check_precision_decision(r.precision, signed_input ? "s8 input" : "u8 input")) {
    check_close_to(r.out, float_result(yaml, x, &q, "n", store), 1e-5);
    return;
  }
  std::vector<int32_t> qx(x.size()), qw;
  std::vector<double> sw;
  for (size_t i = 0; i < x.size(); ++i)
    qx[i] = quantize_reference(x.data<float>()[i], q.input_scale, !signed_input);
  kernel_reference(k, qw, sw);
  check_close_to(r.out, dense_int8_reference(qx, q.input_scale, qw, sw, b, in, units, relu), 2e-6);
}

}  // namespace

TEST_CASE("quantize_kernel: per-output-channel symmetric s8 as plain loops compute it") {
  for (const Dims& shape : {Dims{13, 7}, Dims{3, 3, 5, 13}, Dims{3, 13, 127}, Dims{64, 32}}) {
    CAPTURE(format_shape(shape));
    Tensor k = random_tensor(shape, 11, -3.f, 3.f);
    const auto channels = static_cast<size_t>(shape.back());
    for (size_t i = 0; i < k.size(); i += channels) k.mutable_data<float>()[i] = 0;  // channel 0
    const Int8Node q = quantize_kernel(k);
    std::vector<int32_t> want_q;
    std::vector<double> want_scale;
    kernel_reference(k, want_q, want_scale);
    REQUIRE(q.kernel.dtype() == DType::i8);
    CHECK(q.kernel.shape() == shape);
    for (size_t c = 0; c < channels; ++c)
      CHECK(q.kernel_scales[c] == static_cast<float>(want_scale[c]));
    CHECK(q.kernel_scales[0] == 1.f);  // the all-zero channel
    for (size_t i = 0; i < k.size(); ++i) REQUIRE(q.kernel.data<int8_t>()[i] == want_q[i]);
    const Tensor back = q.dequantized_kernel();
    for (size_t i = 0; i < k.size(); ++i)
      CHECK(std::abs(back.data<float>()[i] - k.data<float>()[i]) <=
            0.5f * q.kernel_scales[i % channels] * 1.0001f);
  }
  Tensor bad = random_tensor({3, 2}, 1);
  bad.mutable_data<float>()[4] = NAN;
  check_error([&] { quantize_kernel(bad); }, {"non-finite value", "index 4"});
}

TEST_CASE("int8 dense (inner product and matmul) against the integer reference") {
  check_dense_static({3, 13}, 7, false, true, 1);
  check_dense_static({1, 127}, 13, true, false, 2);
  check_dense_static({7, 64}, 32, true, true, 3);
  check_dense_static({2, 5, 13}, 7, false, false, 4);  // rank 3: matmul
  check_dense_static({1, 173}, 127, false, false, 5);
}

TEST_CASE("dynamic int8 dense: each batch quantized by its own max |x|") {
  for (const auto& [shape, units] :
       std::vector<std::pair<Dims, int64_t>>{{{3, 13}, 7}, {{1, 127}, 13}, {{32, 64}, 32}}) {
    CAPTURE(format_shape(shape));
    const int64_t in = shape.back();
    const Tensor x = random_tensor(shape, 21, -4.f, 3.f);
    const Tensor k = random_tensor({in, units}, 22, -0.5f, 0.5f);
    const Tensor b = random_tensor({units}, 23);
    WeightStore store;
    store.set("n.kernel", k);
    store.set("n.bias", b);
    const std::string yaml = dense_yaml(shape, units, "relu");
    const Int8Run r = run_node(yaml, x, store);
    if (!check_precision_decision(r.precision, "dynamic s8 input")) {
      check_close_to(r.out, float_result(yaml, x, nullptr, "n", store), 1e-5);
      continue;
    }
    float max_abs = 0;
    for (size_t i = 0; i < x.size(); ++i)
      max_abs = std::max(max_abs, std::fabs(x.data<float>()[i]));
    const float sx = max_abs / 127.f;
    std::vector<int32_t> qx(x.size()), qw;
    std::vector<double> sw;
    for (size_t i = 0; i < x.size(); ++i) {
      const float v = std::nearbyint(x.data<float>()[i] / sx);
      qx[i] = static_cast<int32_t>(std::min(127.f, std::max(-127.f, v)));
    }
    kernel_reference(k, qw, sw);
    check_close_to(r.out, dense_int8_reference(qx, sx, qw, sw, b, in, units, true), 2e-6);
  }
}

namespace {

// Keras Conv1D / Conv2D (channels last, stride s, padding valid or same) on int8 inputs: spatial
// dims `in_dims`, kernel dims `k_dims`; returns the output and its spatial dims.
std::vector<double> conv_int8_reference(const std::vector<int32_t>& qx, double sx,
                                        const std::vector<int32_t>& qw,
                                        const std::vector<double>& sw, const Tensor& b,
                                        int64_t batch, const Dims& in_dims, int64_t cin,
                                        const Dims& k_dims, int64_t cout, int64_t stride, bool same,
                                        bool relu, Dims& out_dims) {
  const size_t rank = in_dims.size();
  out_dims.clear();
  std::vector<int64_t> pad(rank, 0);
  for (size_t a = 0; a < rank; ++a) {
    const int64_t o =
        same ? (in_dims[a] + stride - 1) / stride : (in_dims[a] - k_dims[a]) / stride + 1;
    out_dims.push_back(o);
    if (same) pad[a] = std::max<int64_t>(0, (o - 1) * stride + k_dims[a] - in_dims[a]) / 2;
  }
  const int64_t oh = out_dims[0], ow = rank == 2 ? out_dims[1] : 1;
  const int64_t ih = in_dims[0], iw = rank == 2 ? in_dims[1] : 1;
  const int64_t kh = k_dims[0], kw = rank == 2 ? k_dims[1] : 1;
  const int64_t ph = pad[0], pw = rank == 2 ? pad[1] : 0;
  std::vector<double> out(static_cast<size_t>(batch * oh * ow * cout));
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x)
        for (int64_t c = 0; c < cout; ++c) {
          int64_t acc = 0;
          for (int64_t dy = 0; dy < kh; ++dy)
            for (int64_t dx = 0; dx < kw; ++dx) {
              const int64_t sy = y * stride + dy - ph, sxp = x * (rank == 2 ? stride : 1) + dx - pw;
              if (sy < 0 || sy >= ih || sxp < 0 || sxp >= iw) continue;
              for (int64_t i = 0; i < cin; ++i)
                acc += int64_t{qx[((n * ih + sy) * iw + sxp) * cin + i]} *
                       qw[((dy * kw + dx) * cin + i) * cout + c];
            }
          const double v = sx * sw[c] * static_cast<double>(acc) + b.data<float>()[c];
          out[((n * oh + y) * ow + x) * cout + c] = relu ? std::max(0.0, v) : v;
        }
  return out;
}

void check_conv_static(const Dims& spatial, int64_t cin, const Dims& k_dims, int64_t cout,
                       int64_t stride, bool same, bool relu, bool signed_input, uint64_t seed) {
  CAPTURE(format_shape(spatial));
  CAPTURE(cin);
  CAPTURE(cout);
  CAPTURE(stride);
  CAPTURE(same);
  CAPTURE(signed_input);
  const int64_t batch = 2;
  Dims x_shape{batch};
  x_shape.insert(x_shape.end(), spatial.begin(), spatial.end());
  x_shape.push_back(cin);
  Dims k_shape = k_dims;
  k_shape.push_back(cin);
  k_shape.push_back(cout);
  const Tensor x = random_tensor(x_shape, seed, signed_input ? -1.f : 0.f, 1.f);
  const Tensor k = random_tensor(k_shape, seed + 1, -0.3f, 0.3f);
  const Tensor b = random_tensor({cout}, seed + 2);
  Int8Node q = quantize_kernel(k);
  q.input = signed_input ? Int8Node::Input::s8 : Int8Node::Input::u8;
  q.input_scale = signed_input ? 0.9f / 127 : 0.9f / 255;
  WeightStore store;
  store.set("n.bias", b);
  store.set_int8_node("n", q);
  const bool two_d = spatial.size() == 2;
  std::string shape, ks;
  for (size_t i = 0; i < spatial.size(); ++i) shape += std::to_string(spatial[i]) + ", ";
  for (size_t i = 0; i < k_dims.size(); ++i) ks += (i ? ", " : "") + std::to_string(k_dims[i]);
  const std::string yaml = fmt::format(
      "name: t\ninputs:\n  x: {{shape: [{}{}]}}\nnodes:\n  - {{name: n, op: {}, input: x, "
      "filters: {}, kernel_size: [{}], strides: {}, padding: {}, activation: {}}}\noutputs: [n]\n",
      shape, cin, two_d ? "conv2d" : "conv1d", cout, ks, stride, same ? "same" : "valid",
      relu ? "relu" : "linear");
  for (bool optimize : {true, false}) {
    CAPTURE(optimize);
    const Int8Run r = run_node(yaml, x, store, Precision::int8, optimize);
    if (!check_precision_decision(r.precision, signed_input ? "s8 input" : "u8 input")) {
      check_close_to(r.out, float_result(yaml, x, &q, "n", store), 1e-5);
      continue;
    }
    std::vector<int32_t> qx(x.size()), qw;
    std::vector<double> sw;
    for (size_t i = 0; i < x.size(); ++i)
      qx[i] = quantize_reference(x.data<float>()[i], q.input_scale, !signed_input);
    kernel_reference(k, qw, sw);
    Dims out_dims;
    const std::vector<double> want =
        conv_int8_reference(qx, q.input_scale, qw, sw, b, batch, spatial, cin, k_dims, cout, stride,
                            same, relu, out_dims);
    check_close_to(r.out, want, 2e-6);
  }
}

}  // namespace

TEST_CASE("int8 conv2d against the integer reference") {
  check_conv_static({7, 9}, 5, {3, 3}, 13, 1, false, true, false, 31);
  check_conv_static({13, 13}, 16, {3, 3}, 32, 1, true, false, true, 32);
  check_conv_static({11, 7}, 3, {3, 3}, 64, 2, true, true, false, 33);
  check_conv_static({8, 8}, 64, {1, 1}, 7, 1, false, false, true, 34);
}

TEST_CASE("int8 conv1d against the integer reference") {
  check_conv_static({13}, 1, {3}, 7, 1, false, true, true, 41);
  check_conv_static({127}, 7, {5}, 13, 1, true, false, false, 42);
  check_conv_static({64}, 32, {3}, 64, 2, false, true, true, 43);
}

namespace {

const char* kTwoDense =
    "name: two\ninputs:\n  x: {shape: [13]}\nnodes:\n"
    "  - {name: d1, op: dense, input: x, units: 7, activation: relu}\n"
    "  - {name: n, op: dense, input: d1, units: 5}\noutputs: [n]\n";

WeightStore two_dense_weights() {
  WeightStore w;
  w.set("d1.kernel", random_tensor({13, 7}, 51, -0.5f, 0.5f));
  w.set("d1.bias", random_tensor({7}, 52));
  w.set("n.kernel", random_tensor({7, 5}, 53, -0.5f, 0.5f));
  w.set("n.bias", random_tensor({5}, 54));
  return w;
}

// Calibration batches: `count` batches of 4 samples in [-1, 2).
quantization::InputBatches batches_of(int count) {
  return [count](const auto& visit) {
    for (int i = 0; i < count; ++i) visit({{"x", random_tensor({4, 13}, 60 + i, -1.f, 2.f)}});
  };
}

}  // namespace

TEST_CASE("quantized weights file: round trip, validation, auto int8") {
  TempDir dir;
  auto def = load_graph_string(kTwoDense, "two.yaml");
  const WeightStore f32 = two_dense_weights();
  quantization::QuantizeOptions options;
  options.method = quantization::CalibrationMethod::minmax;
  quantization::QuantizeResult r = quantization::quantize(def, f32, batches_of(3), options);
  CHECK(r.samples == 12);
  REQUIRE(r.nodes.size() == 2);
  // minmax: d1 sees x (negative values: s8, max |x| / 127); n sees relu output (u8, max / 255).
  float max_x = 0;
  batches_of(3)([&](const std::map<std::string, Tensor>& b) {
    const Tensor& x = b.at("x");
    for (size_t i = 0; i < x.size(); ++i) max_x = std::max(max_x, std::fabs(x.data<float>()[i]));
  });
  CHECK(r.nodes[0].node == "d1");
  CHECK(r.nodes[0].input == Int8Node::Input::s8);
  CHECK(r.nodes[0].input_scale == doctest::Approx(max_x / 127).epsilon(1e-6));
  CHECK(r.nodes[1].input == Int8Node::Input::u8);
  const std::string path = dir.file("q.safetensors");
  r.weights.save_safetensors(path);

  const WeightStore back = WeightStore::load_safetensors(path);
  REQUIRE(back.int8_nodes().size() == 2);
  CHECK(back.find("d1.kernel") == nullptr);
  const Int8Node& d1 = *back.int8_node("d1");
  CHECK(d1.input == Int8Node::Input::s8);
  CHECK(d1.input_scale == r.nodes[0].input_scale);
  CHECK(d1.kernel_scales == r.weights.int8_node("d1")->kernel_scales);
  CHECK(std::memcmp(d1.kernel.raw(), r.weights.int8_node("d1")->kernel.raw(), 13 * 7) == 0);
  CHECK(back.metadata().at("fusiongraph.quantization").find("\"minmax\"") != std::string::npos);
  back.validate(compile_graph(def, builtin_ops()));

  // A session on the quantized file runs int8 without being asked (where the CPU allows).
  CompileOptions co;
  co.weights_file = path;
  co.threads = 2;
  const Session session(def, co);
  CHECK(session.precision() == Precision::int8);
  const Tensor x = random_tensor({4, 13}, 99, -1.f, 2.f);
  const Tensor y = session.run({{"x", x}}).at("n");
  // Within a few int8 steps of the float result.
  ModelOptions mo;
  Model reference(std::make_shared<CompiledGraph>(compile_graph(def, builtin_ops())), f32, mo);
  const Tensor want = reference.run({{"x", x}}).at("n");
  for (size_t i = 0; i < y.size(); ++i)
    CHECK(std::abs(y.data<float>()[i] - want.data<float>()[i]) < 0.05);

  // The same file under f32 runs the dequantized kernels.
  co.precision = Precision::f32;
  CHECK(Session(def, co).precision() == Precision::f32);

  // A trainer evaluates it but does not train it.
  TrainerOptions to;
  to.weights_file = path;
  auto trainable = load_graph_string(
      std::string(kTwoDense) + "training: {loss: mse, optimizer: sgd, batch_size: 4}\n",
      "two.yaml");
  Trainer trainer(trainable, to);
  check_error(
      [&] {
        trainer.train_on_batch({{"x", x}}, {{"n", random_tensor({4, 5}, 1)}});
      },
      {"int8-quantized", "evaluated but not trained", "graph-runner quantize"});
}

TEST_CASE("quantized weights file: malformed files are clear errors") {
  TempDir dir;
  auto def = load_graph_string(kTwoDense, "two.yaml");
  const quantization::QuantizeResult r =
      quantization::quantize(def, two_dense_weights(), batches_of(1), {});
  std::map<std::string, Tensor> tensors = r.weights.tensors();
  for (const auto& [node, q] : r.weights.int8_nodes()) {
    tensors[node + ".kernel"] = q.kernel;
    Tensor s(DType::f32, {static_cast<Dim>(q.kernel_scales.size())});
    std::copy(q.kernel_scales.begin(), q.kernel_scales.end(), s.mutable_data<float>());
    tensors[node + ".kernel_scale"] = s;
    Tensor is(DType::f32, {1});
    is.mutable_data<float>()[0] = q.input_scale;
    tensors[node + ".input_scale"] = is;
    tensors[node + ".input_zero_point"] = Tensor(DType::i32, {1});
  }
  const std::string meta = R"({"format": "fusiongraph-int8-1", "nodes": {"d1": "s8", "n": "u8"}})";
  const auto write = [&](std::map<std::string, Tensor> t, const std::string& m) {
    const std::string path = dir.file("bad.safetensors");
    write_safetensors(path, t, {{"fusiongraph.quantization", m}});
    return path;
  };
  // The well-formed version loads.
  CHECK(WeightStore::load_safetensors(write(tensors, meta)).int8_nodes().size() == 2);
  {
    auto t = tensors;
    t.erase("n.kernel_scale");
    check_error([&] { WeightStore::load_safetensors(write(t, meta)); },
                {"bad.safetensors", "int8 node 'n' has no tensor 'n.kernel_scale'",
                 "graph-runner quantize"});
  }
  {
    auto t = tensors;
    t["d1.kernel_scale"] = Tensor(DType::f32, {7});  // zeros
    check_error([&] { WeightStore::load_safetensors(write(t, meta)); },
                {"d1.kernel_scale", "not a positive finite number"});
  }
  {
    auto t = tensors;
    t["d1.kernel_scale"] = Tensor(DType::f32, {6});
    check_error([&] { WeightStore::load_safetensors(write(t, meta)); },
                {"d1.kernel_scale", "expected 7 values, found 6"});
  }
  {
    auto t = tensors;
    Tensor k(DType::i8, {13, 7});
    k.mutable_data<int8_t>()[5] = -128;
    t["d1.kernel"] = k;
    check_error([&] { WeightStore::load_safetensors(write(t, meta)); },
                {"d1.kernel", "-128", "flat index 5"});
  }
  {
    auto t = tensors;
    t["d1.kernel"] = random_tensor({13, 7}, 1);  // f32 where int8 is expected
    check_error([&] { WeightStore::load_safetensors(write(t, meta)); },
                {"d1.kernel", "expected int8, found float32"});
  }
  {
    auto t = tensors;
    Tensor z(DType::i32, {1});
    z.mutable_data<int32_t>()[0] = 3;
    t["n.input_zero_point"] = z;
    check_error([&] { WeightStore::load_safetensors(write(t, meta)); },
                {"n.input_zero_point", "is 3", "zero point 0"});
  }
  {
    auto t = tensors;
    t["d1.kernel"] = Tensor(DType::i8, {13, 0});
    check_error([&] { WeightStore::load_safetensors(write(t, meta)); },
                {"d1.kernel", "has shape (13, 0)", "no empty axis"});
  }
  check_error([&] { WeightStore::load_safetensors(write(tensors, "{not json")); },
              {"quantization metadata is not JSON"});
  check_error(
      [&] {
        WeightStore::load_safetensors(write(
            tensors, R"({"format": "fusiongraph-int8-1", "nodes": {"d1": "u4", "n": "u8"}})"));
      },
      {"node 'd1'", "'u4'", "\"u8\", \"s8\" or \"dynamic\""});
  check_error([&] { WeightStore::load_safetensors(write(tensors, R"({"nodes": {}})")); },
              {"no \"format\""});
  {
    // An int8 kernel of the wrong shape for the graph, and an int8 tensor outside the metadata.
    auto t = tensors;
    const WeightStore loaded = WeightStore::load_safetensors(
        write(t, R"({"format": "fusiongraph-int8-1", "nodes": {"n": "u8"}})"));
    check_error([&] { loaded.validate(compile_graph(def, builtin_ops())); },
                {"d1.kernel", "expected float32, found int8"});
  }
  {
    auto t = tensors;
    t["d1.kernel"] = Tensor(DType::i8, {7, 13});  // its scales no longer fit its last axis
    check_error([&] { WeightStore::load_safetensors(write(t, meta)); },
                {"d1.kernel_scale", "expected 13 values, found 7"});
    t["d1.kernel"] = Tensor(DType::i8, {3, 7});  // fits its scales, not the graph
    const WeightStore loaded = WeightStore::load_safetensors(write(t, meta));
    check_error([&] { loaded.validate(compile_graph(def, builtin_ops())); },
                {"int8 kernel of node 'd1'", "expected shape (13, 7), found (3, 7)"});
  }
}

TEST_CASE("quantize: --keep-float, dynamic, and what it refuses") {
  auto def = load_graph_string(kTwoDense, "two.yaml");
  quantization::QuantizeOptions keep;
  keep.keep_float = {"n"};
  const auto r = quantization::quantize(def, two_dense_weights(), batches_of(1), keep);
  REQUIRE(r.nodes.size() == 1);
  CHECK(r.nodes[0].node == "d1");
  CHECK(r.weights.find("n.kernel") != nullptr);
  CHECK(r.weights.int8_node("n") == nullptr);

  quantization::QuantizeOptions dynamic;
  dynamic.dynamic = true;
  const auto d = quantization::quantize(def, two_dense_weights(), nullptr, dynamic);
  REQUIRE(d.nodes.size() == 2);
  CHECK(d.weights.int8_node("d1")->input == Int8Node::Input::dynamic);

  quantization::QuantizeOptions typo;
  typo.keep_float = {"d2"};
  check_error([&] { quantization::quantize(def, two_dense_weights(), batches_of(1), typo); },
              {"--keep-float", "no node 'd2'", "d1"});
  check_error([&] { quantization::quantize(def, r.weights, batches_of(1), {}); },
              {"int8-quantized already"});
  const quantization::InputBatches none = [](const auto&) {};
  check_error([&] { quantization::quantize(def, two_dense_weights(), none, {}); }, {"no samples"});
}
