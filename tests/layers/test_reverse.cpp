// reverse: one per-sample axis in reverse order; checked against an index computation in the
// test on odd and round shapes, every axis spelling, the [batch, steps] mask (reversed with the
// steps, passed on for other axes) and the gradient by finite differences.
#include <fmt/format.h>

#include "tests/layers/gradient_check.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string reverse_yaml(const std::string& per_sample, const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: r, op: reverse, input: x{}}}\n"
      "outputs: [r]\n",
      per_sample, attrs.empty() ? "" : ", " + attrs);
}

// y[i_0, ..., i_axis, ...] = x[i_0, ..., n - 1 - i_axis, ...], by multi-indices.
std::vector<double> naive_reverse(const std::vector<double>& x, const Dims& shape, size_t axis) {
  std::vector<double> y(x.size());
  for (size_t flat = 0; flat < x.size(); ++flat) {
    std::vector<int64_t> index(shape.size());
    int64_t rest = static_cast<int64_t>(flat);
    for (size_t k = shape.size(); k-- > 0;) {
      index[k] = rest % shape[k];
      rest /= shape[k];
    }
    index[axis] = shape[axis] - 1 - index[axis];
    int64_t src = 0;
    for (size_t k = 0; k < shape.size(); ++k) src = src * shape[k] + index[k];
    y[flat] = x[static_cast<size_t>(src)];
  }
  return y;
}

// The YAML shape of a sample: "[7, 13]" for (B, 7, 13).
std::string per_sample_of(const Dims& shape) {
  std::string s;
  for (size_t i = 1; i < shape.size(); ++i) s += (s.empty() ? "" : ", ") + std::to_string(shape[i]);
  return "[" + s + "]";
}

}  // namespace

TEST_CASE("reverse: every axis of odd and round shapes, forward and gradient") {
  struct Case {
    Dims shape;
    std::string attrs;
    size_t axis;  // full index, batch 0
  };
  for (const Case& c :
       {Case{{2, 7, 13}, "", 1}, Case{{3, 13, 7}, "axis: 1", 1}, Case{{2, 7, 13}, "axis: 2", 2},
        Case{{2, 7, 13}, "axis: -1", 2}, Case{{1, 127, 3}, "axis: -2", 1}, Case{{4, 16}, "", 1},
        Case{{2, 3, 5, 7}, "axis: 2", 2}, Case{{2, 3, 5, 7}, "axis: -3", 1}, Case{{2, 1, 4}, "", 1},
        Case{{3, 128}, "axis: -1", 1}}) {
    CAPTURE(c.attrs);
    CAPTURE(format_shape(c.shape));
    const Tensor x = random_tensor(c.shape, 11);
    const std::string yaml = reverse_yaml(per_sample_of(c.shape), c.attrs);
    auto out = run_yaml(yaml, {{"x", x}}, {});
    check_shape(out.at("r"), c.shape);
    check_close(out.at("r"), naive_reverse(to_doubles(x), c.shape, c.axis), 0, 0);
    TrainingNodeCase tc;
    tc.yaml = yaml;
    tc.inputs = {x};
    check_gradients(tc, [&](const auto& xs, const auto&) {
      return std::vector<std::vector<double>>{naive_reverse(xs[0], c.shape, c.axis)};
    });
  }
}

TEST_CASE("reverse: the mask is reversed with the steps and passed on along other axes") {
  // rows: right-padded, a hole, all masked; 7 steps
  const std::vector<uint8_t> mask = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  for (const char* attrs : {"", "axis: -2", "axis: 2"}) {
    CAPTURE(attrs);
    const bool steps = std::string(attrs) != "axis: 2";
    std::vector<uint8_t> want(mask.size());
    for (int b = 0; b < 3; ++b)
      for (int t = 0; t < 7; ++t) want[b * 7 + t] = mask[b * 7 + (steps ? 6 - t : t)];
    TrainingNodeCase tc;
    tc.yaml = reverse_yaml("[7, 5]", attrs);
    tc.inputs = {random_tensor({3, 7, 5}, 3)};
    tc.masks = {mask};
    const TrainingNodeResult r = run_training_node(tc, {});
    REQUIRE(r.output_types[0].masked);
    CHECK(r.output_masks[0] == want);
    check_close(r.outputs[0], naive_reverse(to_doubles(tc.inputs[0]), {3, 7, 5}, steps ? 1 : 2), 0,
                0);
  }
}

TEST_CASE("reverse: an lstm after it sees the reversed steps and the reversed mask") {
  // Embedding(mask_zero) -> reverse -> lstm, against the naive LSTM run on the reversed
  // embeddings with the reversed mask (what Keras's go_backwards computes).
  const int batch = 3, steps = 7, dim = 4, units = 5;
  const std::vector<int> ids = {3, 8, 1, 2, 0, 0, 0, 5, 0, 2, 2, 0, 7, 1, 0, 0, 0, 0, 0, 0, 0};
  const Tensor table = random_tensor({9, dim}, 21), kernel = random_tensor({dim, 4 * units}, 22),
               recurrent = random_tensor({units, 4 * units}, 23),
               bias = random_tensor({4 * units}, 24);
  const std::string yaml = fmt::format(
      "name: t\ninputs:\n  ids: {{shape: [{}], dtype: int32}}\nnodes:\n"
      "  - {{name: emb, op: embedding, input: ids, input_dim: 9, output_dim: {}, mask_zero: "
      "true}}\n"
      "  - {{name: rev, op: reverse, input: emb}}\n"
      "  - {{name: lstm, op: lstm, input: rev, units: {}, return_sequences: true}}\n"
      "outputs: [lstm]\n",
      steps, dim, units);
  auto out = run_yaml(yaml, {{"ids", make_int_tensor({batch, steps}, ids)}},
                      {{"emb.embeddings", table},
                       {"lstm.kernel", kernel},
                       {"lstm.recurrent_kernel", recurrent},
                       {"lstm.bias", bias}});
  std::vector<int> reversed_ids;
  for (int b = 0; b < batch; ++b)
    for (int t = 0; t < steps; ++t) reversed_ids.push_back(ids[b * steps + steps - 1 - t]);
  std::vector<uint8_t> reversed_mask;
  for (int id : reversed_ids) reversed_mask.push_back(id != 0);
  const std::vector<double> e = ref::embedding(reversed_ids, table.data<float>(), dim);
  const std::vector<float> ef(e.begin(), e.end());
  ref::RnnArgs a;
  a.batch = batch, a.steps = steps, a.features = dim, a.units = units;
  a.return_sequences = true;
  a.x = ef.data(), a.kernel = kernel.data<float>(), a.recurrent = recurrent.data<float>();
  a.bias = bias.data<float>(), a.mask = reversed_mask.data();
  check_close(out.at("lstm"), ref::rnn(a), 1e-5, 1e-5);
}

TEST_CASE("reverse: axis errors name the axis and the valid range") {
  const std::string batch = compile_error(reverse_yaml("[7, 13]", "axis: 0"));
  CHECK(batch.find("axis 0 is the batch axis") != std::string::npos);
  CHECK(batch.find("valid axes are 1 to 2") != std::string::npos);
  CHECK(compile_error(reverse_yaml("[7, 13]", "axis: 3")).find("axis 3 is out of range") !=
        std::string::npos);
  CHECK(compile_error(reverse_yaml("[7, 13]", "axis: -3")).find("the batch axis") !=
        std::string::npos);
  CHECK(compile_error(reverse_yaml("[7, 13]", "axis: -4")).find("out of range") !=
        std::string::npos);
  CHECK(compile_error(reverse_yaml("[7]", "axs: 1")).find("axs") != std::string::npos);
}
