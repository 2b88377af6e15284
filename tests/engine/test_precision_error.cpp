// The accuracy cost of reduced precision, measured: the relative error and top-1 agreement
// helpers (engine/output_difference.hpp) against values worked out by hand; the Trainer's
// evaluate against a second precision; and the reference graph in bf16 against f32 node by node
// (every node's output through RunOptions::intermediates), printed as a table and checked under
// the bounds of docs/performance.md ("Accuracy of reduced precision"). Every check accepts both
// outcomes the CPU allows: bf16 where oneDNN has native bf16, exactly f32 under
// ONEDNN_MAX_CPU_ISA=AVX2.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fusiongraph/fusiongraph.hpp>
#include <fusiongraph/training.hpp>
#include <limits>
#include <set>

#include "engine/model.hpp"
#include "engine/output_difference.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/onednn/onednn.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

// Per-node figures of one tensor computed in bf16 (`got`) against f32 (`want`).
struct NodeError {
  double max_relative = 0;   // max |a - b| / max(|b|, 1e-3), the CLI's definition
  double mean_relative = 0;  // its mean
  double rms_relative = 0;   // ||a - b||_2 / ||b||_2
  double max_scaled = 0;     // max |a - b| / max |b|
};

// Written from the definitions in plain loops (RelativeError is the code under test for the
// first two and is compared against this).
NodeError node_error(const Tensor& got, const Tensor& want) {
  REQUIRE(got.size() == want.size());
  const float* a = got.data<float>();
  const float* b = want.data<float>();
  NodeError e;
  double diff2 = 0, ref2 = 0, top = 0, max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i]));
    const double rel = d / std::max(std::abs(double(b[i])), 1e-3);
    e.max_relative = std::max(e.max_relative, rel);
    e.mean_relative += rel;
    diff2 += d * d;
    ref2 += double(b[i]) * b[i];
    top = std::max(top, std::abs(double(b[i])));
    max_diff = std::max(max_diff, d);
  }
  e.mean_relative /= static_cast<double>(std::max<size_t>(want.size(), 1));
  e.rms_relative = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  e.max_scaled = top > 0 ? max_diff / top : max_diff;
  return e;
}

}  // namespace

TEST_CASE("relative error and top-1 agreement on values worked out by hand") {
  // |got - ref| / max(|ref|, 1e-3): 0.1/2 = 0.05; 0.01/max(0, 1e-3) = 10; 0.5/1 = 0.5; 0.
  const float ref[] = {2.f, 0.f, -1.f, 3.f};
  const float got[] = {2.1f, 0.01f, -0.5f, 3.f};
  RelativeError e;
  e.add(got, ref, 4);
  CHECK(e.values() == 4);
  CHECK(e.max() == doctest::Approx(10.0).epsilon(1e-6));
  CHECK(e.mean() == doctest::Approx((0.05 + 10 + 0.5 + 0) / 4).epsilon(1e-6));
  RelativeError floored;  // a larger floor: 0.01 / 0.1 = 0.1 at the zero
  floored.add(got, ref, 4, 0.1);
  CHECK(floored.max() == doctest::Approx(0.5).epsilon(1e-6));
  RelativeError with_nan;
  const float nan_got[] = {std::numeric_limits<float>::quiet_NaN()};
  with_nan.add(nan_got, ref, 1);
  CHECK(std::isinf(with_nan.max()));

  // Three rows of three classes: argmax 0/0 agree, 2/1 differ, 1/1 agree (the first of equal
  // maxima: row 3 of `a` is {0.2, 0.4, 0.4} -> 1).
  const float a[] = {0.7f, 0.2f, 0.1f, 0.1f, 0.3f, 0.6f, 0.2f, 0.4f, 0.4f};
  const float b[] = {0.6f, 0.3f, 0.1f, 0.1f, 0.5f, 0.4f, 0.1f, 0.8f, 0.1f};
  Top1Agreement t;
  t.add(a, b, 3, 3);
  CHECK(t.rows() == 3);
  CHECK(t.fraction() == doctest::Approx(2.0 / 3));
  // Binary outputs: the side of the threshold (0.5 for probabilities, 0 for logits).
  const float p[] = {0.4f, 0.6f, 0.9f, 0.1f};
  const float q[] = {0.6f, 0.7f, 0.8f, 0.2f};
  Top1Agreement binary;
  binary.add(p, q, 4, 1);
  CHECK(binary.fraction() == doctest::Approx(0.75));
  Top1Agreement logits;
  logits.add(p, q, 4, 1, 0.0);  // every value above 0: all agree
  CHECK(logits.fraction() == 1.0);
  CHECK(Top1Agreement().fraction() == 1.0);  // nothing compared
}

TEST_CASE("Trainer::evaluate against another precision: both logs and each output compared") {
  const char* yaml =
      "name: mlp\ninputs: {x: {shape: [13]}}\nnodes:\n"
      "  - {name: h, op: dense, input: x, units: 127, activation: relu}\n"
      "  - {name: out, op: dense, input: h, units: 7, activation: softmax}\n"
      "  - {name: score, op: dense, input: h, units: 1}\n"
      "outputs: [out, score]\n"
      "training: {loss: {out: sparse_categorical_crossentropy, score: mse}, optimizer: adam, "
      "metrics: {out: [accuracy]}, batch_size: 16}\n";
  const int64_t n = 50;
  const Tensor x = random_tensor({n, 13}, 3, -2.f, 2.f);
  Tensor ids(DType::i32, {n});
  for (int64_t i = 0; i < n; ++i) ids.mutable_data<int32_t>()[i] = static_cast<int32_t>(i % 7);
  const Tensor score = random_tensor({n, 1}, 4);
  const auto host = [](const Tensor& t, const char* descr) {
    return HostArray{descr, t.shape(), t.data<void>(), nullptr};
  };
  ArrayData data;
  data.inputs["x"] = host(x, "<f4");
  data.targets["out"] = host(ids, "<i4");
  data.targets["score"] = host(score, "<f4");

  TrainerOptions f32_options;
  f32_options.init_seed = 7;
  f32_options.threads = 2;
  TrainerOptions compared_options = f32_options;
  compared_options.evaluate_precision = Precision::bf16;
  compared_options.evaluate_against = Precision::f32;
  const auto def = load_graph_string(yaml, "mlp.yaml");
  const EvaluateResult f32 = Trainer(def, f32_options).evaluate(data);
  const EvaluateResult r = Trainer(def, compared_options).evaluate(data);
  CHECK_FALSE(f32.against.has_value());
  REQUIRE(r.against.has_value());
  CHECK(r.samples == n);
  CHECK(r.against->precision == Precision::f32);
  CHECK(r.against->relative_error_floor == kRelativeErrorFloor);
  // The f32 side is the plain f32 evaluation, bit for bit, under the same names.
  REQUIRE(r.against->logs.size() == f32.logs.size());
  for (size_t i = 0; i < f32.logs.size(); ++i) {
    CHECK(r.against->logs[i].first == f32.logs[i].first);
    CHECK(r.against->logs[i].second == f32.logs[i].second);
  }
  REQUIRE(r.against->outputs.size() == 2);
  const OutputAgreement& out = r.against->outputs[0];
  const OutputAgreement& reg = r.against->outputs[1];
  CHECK(out.output == "out");
  CHECK(reg.output == "score");
  REQUIRE(out.top1_agreement.has_value());      // a crossentropy output
  CHECK_FALSE(reg.top1_agreement.has_value());  // mse: no classes
  CHECK(out.mean_relative_error <= out.max_relative_error);
  if (onednn::native_bf16_isa()) {
    // Two bf16 layers of width 13 and 127: a few 1e-3 per probability (docs/performance.md).
    CHECK(out.max_relative_error > 0);
    CHECK(out.max_relative_error <= 0.05);
    CHECK(*out.top1_agreement >= 0.9);
  } else {
    CHECK(out.max_relative_error == 0);
    CHECK(reg.max_relative_error == 0);
    CHECK(*out.top1_agreement == 1.0);
    CHECK(r.logs == f32.logs);
  }
  MESSAGE(
      fmt::format("mlp bf16 against f32: out max {:.3e} mean {:.3e} top-1 {:.3f}; score max "
                  "{:.3e}",
                  out.max_relative_error, out.mean_relative_error, *out.top1_agreement,
                  reg.max_relative_error));

  TrainerOptions same = f32_options;
  same.evaluate_against = Precision::f32;
  const std::string error = error_of([&] { Trainer(def, same).evaluate(data); });
  CHECK(error.find("(evaluate_against, --against) is f32, the precision evaluated") !=
        std::string::npos);
  CHECK(error.find("choices: f32, bf16") != std::string::npos);
}

// Bounds (docs/performance.md, "Accuracy of reduced precision"): bf16 keeps 8 significant bits,
// so each rounding has a relative error of at most u = 2^-9 (about 0.2 %), 0.11 % rms for
// uniformly spread roundings. A dense or convolution output rounds its input and its weights:
// sqrt(2) * 0.11 % = 0.16 % rms relative to a sum of random-sign terms of Keras's initial
// weights, f32 accumulation adding nothing visible. Errors of the layers before add up (in
// quadrature, since the roundings are independent): the image branch has four bf16 layers,
// about 0.32 % rms at image_dense, the classifier sees one more. Bounds with a factor 3 of room:
// rms error 1 % of the tensor's norm at every node; the largest single difference 3 % of the
// tensor's largest magnitude (a sum can cancel, which the rms hides); probabilities of the
// classifier within 2 % relative each (floor 1e-3); nodes that descend from no bf16 op (the text
// branch: embedding, lstm) exactly equal.
TEST_CASE("the reference graph in bf16 against f32: every node's relative error, bounded") {
  CompileOptions f32_options;
  f32_options.init_seed = 1;  // Keras-style initial weights of seed 1
  f32_options.threads = 2;
  CompileOptions bf16_options = f32_options;
  bf16_options.precision = Precision::bf16;
  const std::string path = source_path("graphs/multimodal_fusion.yaml");
  const Session f32 = load(path, f32_options);
  const Session bf16 = load(path, bf16_options);
  const auto inputs = f32.synthetic_inputs(f32.input_shapes(2), 5);  // random inputs, seed 5
  std::map<std::string, Tensor> want, got;
  RunOptions f32_run, bf16_run;
  f32_run.intermediates = &want;
  bf16_run.intermediates = &got;
  std::vector<StepTiming> profile;
  bf16_run.profile = &profile;
  f32.run(inputs, f32_run);
  bf16.run(inputs, bf16_run);
  std::set<std::string> bf16_nodes;
  for (const StepTiming& s : profile)
    if (s.precision == "bf16") bf16_nodes.insert(s.name);
  const bool native = onednn::native_bf16_isa();
  CHECK(bf16_nodes.empty() != native);

  // Every node of the graph has its output in both runs.
  const auto& nodes = f32.graph().def().nodes;
  REQUIRE(!nodes.empty());
  std::string table = fmt::format("{:<16} {:>10} {:>10} {:>10} {:>10}  {}\n", "node", "max rel",
                                  "mean rel", "rms rel", "max/|max|", "bf16 kernel");
  for (const NodeDef& node : nodes) {
    CAPTURE(node.name);
    REQUIRE(want.count(node.name) == 1);
    REQUIRE(got.count(node.name) == 1);
    const Tensor& a = got.at(node.name);
    const Tensor& b = want.at(node.name);
    const NodeError e = node_error(a, b);
    RelativeError measured;  // the helper under test gives the same max and mean
    measured.add(a.data<float>(), b.data<float>(), b.size());
    CHECK(measured.max() == doctest::Approx(e.max_relative).epsilon(1e-9));
    CHECK(measured.mean() == doctest::Approx(e.mean_relative).epsilon(1e-6));
    table += fmt::format("{:<16} {:>10.2e} {:>10.2e} {:>10.2e} {:>10.2e}  {}\n", node.name,
                         e.max_relative, e.mean_relative, e.rms_relative, e.max_scaled,
                         bf16_nodes.count(node.name) ? "yes" : "");
    if (!native) {
      CHECK(e.max_relative == 0);  // the bf16 plan runs f32: the same kernels, the same values
      continue;
    }
    CHECK(e.rms_relative <= 0.01);
    CHECK(e.max_scaled <= 0.03);
    if (node.name.rfind("text_", 0) == 0) CHECK(e.max_relative == 0);
  }
  MESSAGE("reference graph, bf16 against f32 (" << onednn::cpu_isa_name() << "), batch 2:\n"
                                                << table);
  if (native) {
    CHECK(node_error(got.at("classifier"), want.at("classifier")).max_relative <= 0.02);
    // The check can fail: some node does differ (bf16 really ran).
    CHECK(node_error(got.at("image_dense"), want.at("image_dense")).rms_relative > 0);
  }
}
