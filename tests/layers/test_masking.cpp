// masking (Keras Masking) against a naive loop reference: the output (masked steps zeroed) and
// the mask it writes, on odd and round shapes and other mask values; the mask reaching an lstm
// (masked steps keep the state); the gradient against finite differences; errors.
#include <fmt/format.h>

#include "tests/layers/gradient_check.hpp"
#include "tests/layers/run_node_directly.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string masking_yaml(const std::string& per_sample, const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: m, op: masking, input: x{}}}\n"
      "outputs: [m]\n",
      per_sample, attrs.empty() ? "" : ", " + attrs);
}

struct NaiveMasking {
  std::vector<double> y;
  std::vector<uint8_t> mask;
};

NaiveMasking naive_masking(const std::vector<double>& x, int64_t rows, int64_t features,
                           float mask_value) {
  NaiveMasking r;
  for (int64_t s = 0; s < rows; ++s) {
    bool keep = false;
    for (int64_t f = 0; f < features; ++f)
      if (static_cast<float>(x[static_cast<size_t>(s * features + f)]) != mask_value) keep = true;
    r.mask.push_back(keep ? 1 : 0);
    for (int64_t f = 0; f < features; ++f)
      r.y.push_back(keep ? x[static_cast<size_t>(s * features + f)] : 0.0);
  }
  return r;
}

// Random [batch, steps, features] with some steps set wholly to `value` (every third, and the
// last row entirely), and some steps with only one feature equal to it (kept).
Tensor padded_input(int64_t batch, int64_t steps, int64_t features, float value, uint64_t seed) {
  Tensor x = random_tensor({batch, steps, features}, seed, -2.f, 2.f);
  float* p = x.mutable_data<float>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < steps; ++t) {
      float* row = p + (b * steps + t) * features;
      if (t % 3 == 1 || (b == batch - 1 && batch > 1))
        std::fill(row, row + features, value);
      else if (t % 3 == 2)
        row[0] = value;
    }
  return x;
}

}  // namespace

TEST_CASE("masking: output and mask against the naive reference, odd and round shapes") {
  struct Case {
    int64_t batch, steps, features;
    double value;
  };
  for (const Case& c : {Case{3, 7, 13, 0.0}, Case{2, 13, 127, 0.0}, Case{4, 8, 16, -1.0},
                        Case{1, 7, 1, 0.5}, Case{2, 5, 3, 1e-3}}) {
    CAPTURE(c.batch);
    CAPTURE(c.steps);
    CAPTURE(c.features);
    CAPTURE(c.value);
    const float value = static_cast<float>(c.value);
    const Tensor x = padded_input(c.batch, c.steps, c.features, value, 81 + c.steps);
    const std::string attrs = c.value == 0.0 ? "" : fmt::format("mask_value: {}", c.value);
    const auto want = naive_masking(to_doubles(x), c.batch * c.steps, c.features, value);
    auto out =
        run_yaml(masking_yaml(fmt::format("[{}, {}]", c.steps, c.features), attrs), {{"x", x}}, {});
    check_close(out.at("m"), want.y, 0, 0);
    DirectResult d =
        run_direct(masking_yaml(fmt::format("[{}, {}]", c.steps, c.features), attrs), {x}, {{}});
    CHECK(d.type.masked);
    CHECK(d.mask == want.mask);
    check_close(d.out, want.y, 0, 0);
    // an incoming mask is replaced by the one computed here (Keras's compute_mask)
    std::vector<uint8_t> all_ones(static_cast<size_t>(c.batch * c.steps), 1);
    DirectResult d2 = run_direct(masking_yaml(fmt::format("[{}, {}]", c.steps, c.features), attrs),
                                 {x}, {all_ones});
    CHECK(d2.mask == want.mask);
  }
}

TEST_CASE("masking: an lstm after it keeps its state over the masked steps") {
  const int64_t batch = 3, steps = 7, features = 5, units = 4;
  const Tensor x = padded_input(batch, steps, features, 0.f, 91);
  const Tensor kernel = random_tensor({features, 4 * units}, 92),
               recurrent = random_tensor({units, 4 * units}, 93),
               bias = random_tensor({4 * units}, 94);
  const std::string yaml = fmt::format(
      "name: t\ninputs:\n  x: {{shape: [{}, {}]}}\nnodes:\n"
      "  - {{name: m, op: masking, input: x}}\n"
      "  - {{name: r, op: lstm, input: m, units: {}, return_sequences: true}}\noutputs: [r]\n",
      steps, features, units);
  auto out = run_yaml(yaml, {{"x", x}},
                      {{"r.kernel", kernel}, {"r.recurrent_kernel", recurrent}, {"r.bias", bias}});
  const auto masked = naive_masking(to_doubles(x), batch * steps, features, 0.f);
  const std::vector<float> xf(masked.y.begin(), masked.y.end());
  ref::RnnArgs a;
  a.batch = batch, a.steps = steps, a.features = features, a.units = units;
  a.x = xf.data(), a.kernel = kernel.data<float>(), a.recurrent = recurrent.data<float>();
  a.bias = bias.data<float>(), a.mask = masked.mask.data(), a.return_sequences = true;
  check_close(out.at("r"), ref::rnn(a), 1e-4, 1e-5);
}

TEST_CASE("masking gradient: d y on kept steps, 0 on masked ones") {
  struct Case {
    int64_t batch, steps, features;
  };
  for (const Case& c : {Case{3, 7, 13}, Case{2, 8, 16}}) {
    CAPTURE(c.steps);
    CAPTURE(c.features);
    TrainingNodeCase tc;
    tc.yaml = masking_yaml(fmt::format("[{}, {}]", c.steps, c.features), "mask_value: 0.75");
    tc.inputs = {padded_input(c.batch, c.steps, c.features, 0.75f, 101)};
    const auto want = naive_masking(to_doubles(tc.inputs[0]), c.batch * c.steps, c.features, 0.75f);
    // finite differences would move a masked step off mask_value: the gradient is checked
    // against the naive rule (d x = keep * d y) with dy = r
    const Tensor dy = random_tensor({c.batch, c.steps, c.features}, 102);
    auto r = run_training_node(tc, {dy});
    check_close(r.outputs[0], want.y, 0, 0);
    CHECK(r.output_masks[0] == want.mask);
    std::vector<double> dx = to_doubles(dy);
    for (size_t i = 0; i < dx.size(); ++i)
      if (!want.mask[i / static_cast<size_t>(c.features)]) dx[i] = 0;
    check_close(r.diff_inputs[0], dx, 0, 0);
  }
  // no step at mask_value: finite differences of the naive forward (the identity) agree
  TrainingNodeCase tc;
  tc.yaml = masking_yaml("[7, 13]", "mask_value: 5");
  tc.inputs = {random_tensor({2, 7, 13}, 103)};
  check_gradients(tc, [](const auto& xs, const auto&) {
    return std::vector<std::vector<double>>{naive_masking(xs[0], 14, 13, 5.f).y};
  });
}

TEST_CASE("masking: the input must be [batch, steps, features]") {
  std::string e = compile_error(masking_yaml("[5]", ""));
  CHECK(e.find("masking takes [batch, steps, features]") != std::string::npos);
  CHECK(e.find("rank 2") != std::string::npos);
  e = compile_error(masking_yaml("[2, 3, 4]", ""));
  CHECK(e.find("rank 4") != std::string::npos);
  CHECK(compile_error(masking_yaml("[null, 4]", "mask_value: -1")) == "");
}
