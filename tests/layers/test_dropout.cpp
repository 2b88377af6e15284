// dropout: identity at inference, rate validation, Keras's training-only keys accepted.
#include <fmt/format.h>

#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {
std::string dropout_yaml(const std::string& shape, const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: d, op: dropout, input: x, {}}}\n"
      "outputs: [d]\n",
      shape, attrs);
}
}  // namespace

TEST_CASE("dropout is the identity at inference") {
  for (int64_t batch : {1, 4}) {
    Tensor x = random_tensor({batch, 7, 13}, 9);
    auto out = run_yaml(dropout_yaml("[7, 13]", "rate: 0.5"), {{"x", x}}, {});
    check_shape(out.at("d"), {batch, 7, 13});
    check_close(out.at("d"), to_doubles(x), 0, 0);
    Tensor y = random_tensor({batch, 127}, 10);
    out = run_yaml(dropout_yaml("[127]", "rate: 0, noise_shape: [null, 1], seed: 42"), {{"x", y}},
                   {});
    check_close(out.at("d"), to_doubles(y), 0, 0);
  }
}

TEST_CASE("dropout attributes") {
  CHECK(compile_error(dropout_yaml("[7]", "rate: 0.2, noise_shape: null")) == "");
  std::string e = compile_error(dropout_yaml("[7]", "rate: 1.5"));
  CHECK(e.find("dropout rate must be in [0, 1), got 1.5") != std::string::npos);
  CHECK(e.find("test.yaml:5:") != std::string::npos);
  e = compile_error(dropout_yaml("[7]", "rate: 1"));
  CHECK(e.find("must be in [0, 1)") != std::string::npos);
  e = compile_error(dropout_yaml("[7]", "rate: -0.1"));
  CHECK(e.find("must be in [0, 1)") != std::string::npos);
  e = compile_error(dropout_yaml("[7]", "seed: 1"));
  CHECK(e.find("missing required attribute 'rate'") != std::string::npos);
  e = compile_error(dropout_yaml("[7]", "rate: 0.1, noise_shape: x"));
  CHECK(e.find("noise_shape") != std::string::npos);
  CHECK(builtin_ops().find("dropout")->create()->supports_masking());
}

// ---- training mode and gradients (Op::compile_training) ----

namespace {

TrainingNodeCase dropout_case(const Dims& shape, const std::string& attrs, uint64_t seed,
                              int64_t step) {
  std::string per_sample = "[";
  for (size_t i = 1; i < shape.size(); ++i)
    per_sample += (i > 1 ? ", " : "") + std::to_string(shape[i]);
  TrainingNodeCase c;
  c.yaml = dropout_yaml(per_sample + "]", attrs);
  c.inputs = {random_tensor(shape, 11, 0.5f, 2.f)};  // never 0: a dropped entry shows as 0
  c.seed = seed;
  c.step = step;
  return c;
}

// The keep mask as the output shows it (every input entry is non-zero).
std::vector<uint8_t> kept(const TrainingNodeResult& r) {
  std::vector<uint8_t> k(r.outputs[0].size());
  for (size_t i = 0; i < k.size(); ++i) k[i] = r.outputs[0].data<float>()[i] != 0.0f;
  return k;
}

}  // namespace

TEST_CASE("dropout training: inverted scaling and the fraction kept") {
  for (double rate : {0.1, 0.5, 0.8}) {
    CAPTURE(rate);
    TrainingNodeCase c = dropout_case({64, 1000}, fmt::format("rate: {}", rate), 7, 3);
    auto r = run_training_node(c, {});
    const float* x = c.inputs[0].data<float>();
    const float* y = r.outputs[0].data<float>();
    size_t n_kept = 0, bad = 0;
    for (size_t i = 0; i < r.outputs[0].size(); ++i) {
      if (y[i] == 0.0f) continue;
      ++n_kept;
      if (std::abs(y[i] - x[i] / (1 - rate)) > 1e-6 * std::abs(y[i])) ++bad;
    }
    CHECK(bad == 0);
    // 64000 draws: the standard deviation of the fraction is at most 0.002.
    CHECK(std::abs(static_cast<double>(n_kept) / 64000.0 - (1 - rate)) < 0.012);
  }
}

TEST_CASE("dropout training: the backward applies the forward's mask") {
  for (const Dims& shape : {Dims{7, 13}, Dims{4, 127}, Dims{2, 3, 16}}) {
    CAPTURE(format_shape(shape));
    TrainingNodeCase c = dropout_case(shape, "rate: 0.4", 5, 12);
    const std::vector<uint8_t> mask = kept(run_training_node(c, {}));
    size_t dropped = std::count(mask.begin(), mask.end(), uint8_t{0});
    CHECK(dropped > 0);
    CHECK(dropped < mask.size());
    // Given the mask, dropout is the linear map x -> x * keep / 0.6.
    check_gradients(c, [&](const auto& x, const auto&) {
      std::vector<double> y(x[0].size());
      for (size_t i = 0; i < y.size(); ++i) y[i] = mask[i] ? x[0][i] / 0.6 : 0.0;
      return std::vector<std::vector<double>>{y};
    });
  }
}

TEST_CASE("dropout training: masks are a function of seed and step") {
  const Dims shape{8, 127};
  auto mask = [&](uint64_t seed, int64_t step) {
    return kept(run_training_node(dropout_case(shape, "rate: 0.5", seed, step), {}));
  };
  const auto first = mask(1, 0);
  CHECK(mask(1, 0) == first);  // same seed and step: the same draw (a resumed run)
  CHECK(mask(1, 1) != first);  // next step: another draw
  CHECK(mask(2, 0) != first);  // another node seed
  // The saved mask is the one applied.
  auto r = run_training_node(dropout_case(shape, "rate: 0.5", 1, 0), {});
  const auto* saved = reinterpret_cast<const uint8_t*>(r.saved.at(0).data<float>());
  CHECK(std::vector<uint8_t>(saved, saved + first.size()) == first);
}

TEST_CASE("dropout training: noise_shape shares a draw along its 1 axes") {
  const Dims shape{4, 7, 13};
  TrainingNodeCase c = dropout_case(shape, "rate: 0.5, noise_shape: [null, 1, 13]", 3, 2);
  const auto k = kept(run_training_node(c, {}));
  size_t differ = 0;
  for (int64_t b = 0; b < 4; ++b)
    for (int64_t t = 1; t < 7; ++t)
      for (int64_t f = 0; f < 13; ++f) differ += k[(b * 7 + t) * 13 + f] != k[b * 7 * 13 + f];
  CHECK(differ == 0);
  const size_t n_kept = std::count(k.begin(), k.end(), uint8_t{1});
  CHECK(n_kept > 0);
  CHECK(n_kept < k.size());
  const std::vector<uint8_t> mask = k;
  check_gradients(c, [&](const auto& x, const auto&) {
    std::vector<double> y(x[0].size());
    for (size_t i = 0; i < y.size(); ++i) y[i] = mask[i] ? x[0][i] * 2 : 0.0;
    return std::vector<std::vector<double>>{y};
  });
  std::string e = compile_error(dropout_yaml("[7, 13]", "rate: 0.5, noise_shape: [null, 3, 13]"));
  CHECK(e.find("does not broadcast") != std::string::npos);
  e = compile_error(dropout_yaml("[7, 13]", "rate: 0.5, noise_shape: [null, 13]"));
  CHECK(e.find("noise_shape has 2 entries for the rank-3 input") != std::string::npos);
}

TEST_CASE("dropout training: rate 0 is the identity, a masked input passes its mask") {
  TrainingNodeCase c = dropout_case({3, 7, 5}, "rate: 0", 1, 0);
  std::vector<uint8_t> m(21, 1);
  m[4] = 0;
  c.masks = {m};
  auto r = check_gradients(
      c, [&](const auto& x, const auto&) { return std::vector<std::vector<double>>{x[0]}; });
  CHECK(r.saved.empty());
  c = dropout_case({3, 7, 5}, "rate: 0.3", 1, 0);
  c.masks = {m};
  CHECK(run_training_node(c, {}).outputs.size() == 1);
}

namespace {

// The training forward's output at a given thread count (run_training_node runs one thread).
std::vector<float> dropout_forward_at(const TrainingNodeCase& c, int threads) {
  auto def = load_graph_string(c.yaml, "t.yaml");
  auto graph = compile_graph(def, builtin_ops());
  const CompiledNode& node = graph.nodes().at(0);
  const dnnl::engine& eng = onednn::cpu_engine();
  const TensorType type{c.inputs[0].shape(), DType::f32, false};
  TrainingKernelContext kctx{{eng, *node.def}};
  kctx.inputs = {type};
  kctx.outputs = {type};
  kctx.input_descs = {onednn::plain_desc(type)};
  kctx.needs_input_gradient = {true};
  kctx.seed = c.seed;
  kctx.threads = threads;
  TrainingBuild build;
  node.op->compile_training(kctx, build);
  std::vector<float> y(c.inputs[0].size());
  std::vector<uint8_t> mask(build.saved_descs.at(0).get_size());
  std::vector<dnnl::memory> srcs{
      dnnl::memory(build.forward.src_descs[0], eng, const_cast<void*>(c.inputs[0].raw()))};
  std::vector<dnnl::memory> dsts{dnnl::memory(build.forward.dst_descs[0], eng, y.data()),
                                 dnnl::memory(build.forward.dst_descs[1], eng, mask.data())};
  std::vector<dnnl::memory> temps;
  dnnl::memory scratch = detail::scratch_memory(1, eng);
  dnnl::stream stream(eng);
  std::vector<const uint8_t*> src_masks{nullptr};
  std::vector<uint8_t*> dst_masks{nullptr};
  auto binding = build.forward.kernel->bind(StepBuffers{srcs, dsts, temps, scratch});
  ExecContext ctx{stream, srcs, dsts, temps, src_masks, dst_masks, scratch, threads, binding.get()};
  ctx.step = c.step;
  build.forward.kernel->execute(ctx);
  stream.wait();
  return y;
}

}  // namespace

TEST_CASE("dropout training: the same masks at 1 and 2 threads") {
  const TrainingNodeCase c = dropout_case({16, 1001}, "rate: 0.5", 9, 4);
  const std::vector<float> one = dropout_forward_at(c, 1);
  CHECK(dropout_forward_at(c, 2) == one);
  const auto r = run_training_node(c, {});
  CHECK(std::vector<float>(r.outputs[0].data<float>(), r.outputs[0].data<float>() + one.size()) ==
        one);
}
