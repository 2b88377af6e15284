// Shared by test_lstm.cpp and test_gru.cpp: builds a one-layer graph (optionally behind an
// embedding with mask_zero, which is how a mask reaches the layer), runs it, and compares to the
// naive reference in tests/reference/recurrent.hpp.
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <random>
#include <string>

#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

namespace fg::test {

struct RnnCase {
  bool lstm = true;
  bool simple_rnn = false;  // then lstm and reset_after are ignored
  bool zero_output_for_mask = false;
  int64_t batch = 1, steps = 7, features = 3, units = 7;
  bool return_sequences = false;
  bool reset_after = true;
  std::string activation = "tanh", recurrent_activation = "sigmoid";
  bool use_bias = true;
  int mask = 0;             // 0 none, 1 right-padded (row 1 all masked), 2 holes (row 1 all masked)
  float input_range = 1.f;  // inputs (or embedding rows) uniform in [-input_range, input_range)
  uint64_t seed = 1;
};

inline std::string describe(const RnnCase& c) {
  return fmt::format(
      "{} B={} T={} F={} units={} return_sequences={} reset_after={} {}/{} bias={} mask={} "
      "zero_output_for_mask={} input_range={}",
      c.simple_rnn ? "simple_rnn"
      : c.lstm     ? "lstm"
                   : "gru",
      c.batch, c.steps, c.features, c.units, c.return_sequences, c.reset_after, c.activation,
      c.recurrent_activation, c.use_bias, c.mask, c.zero_output_for_mask, c.input_range);
}

// The [B, T] validity pattern of a case.
inline std::vector<uint8_t> case_mask(const RnnCase& c) {
  const int64_t B = c.batch, T = c.steps;
  std::vector<uint8_t> m(static_cast<size_t>(B * T), 1);
  if (c.mask == 1) {
    for (int64_t b = 0; b < B; ++b) {
      int64_t len = B == 1 ? T - T / 3 : b == 0 ? T : b == 1 ? 0 : (T + 1) / 2;
      for (int64_t t = len; t < T; ++t) m[b * T + t] = 0;
    }
  } else if (c.mask == 2) {
    std::mt19937_64 g(c.seed + 99);
    for (auto& v : m) v = (g() % 3) != 0;
    if (T > 1) {  // row 0 surely has a hole: masked first step, valid last step
      m[0] = 0;
      m[T - 1] = 1;
    }
    if (B > 1)
      for (int64_t t = 0; t < T; ++t) m[T + t] = 0;
  }
  return m;
}

inline void check_rnn(const RnnCase& c) {
  INFO(describe(c));
  const int64_t G = c.simple_rnn ? 1 : c.lstm ? 4 : 3, GU = G * c.units;
  const char* op = c.simple_rnn ? "simple_rnn" : c.lstm ? "lstm" : "gru";
  std::string attrs = fmt::format("units: {}", c.units);
  if (c.return_sequences) attrs += ", return_sequences: true";
  if (!c.simple_rnn && !c.lstm && !c.reset_after) attrs += ", reset_after: false";
  if (c.zero_output_for_mask) attrs += ", zero_output_for_mask: true";
  if (c.activation != "tanh") attrs += ", activation: " + c.activation;
  if (c.recurrent_activation != "sigmoid")
    attrs += ", recurrent_activation: " + c.recurrent_activation;
  if (!c.use_bias) attrs += ", use_bias: false";

  std::map<std::string, Tensor> weights, inputs;
  Tensor kernel = random_tensor({c.features, GU}, c.seed + 1, -0.5f, 0.5f);
  Tensor recurrent = random_tensor({c.units, GU}, c.seed + 2, -0.5f, 0.5f);
  const bool two_rows = !c.simple_rnn && !c.lstm && c.reset_after;
  Tensor bias = random_tensor(two_rows ? Dims{2, GU} : Dims{GU}, c.seed + 3, -0.5f, 0.5f);
  weights["r.kernel"] = kernel;
  weights["r.recurrent_kernel"] = recurrent;
  if (c.use_bias) weights["r.bias"] = bias;

  std::string yaml;
  Tensor x;  // what the recurrent layer sees
  std::vector<uint8_t> mask;
  if (c.mask == 0) {
    yaml = fmt::format(
        "name: t\ninputs:\n  x: {{shape: [{}, {}]}}\nnodes:\n  - {{name: r, op: {}, input: x, "
        "{}}}\n"
        "outputs: [r]\n",
        c.steps, c.features, op, attrs);
    x = random_tensor({c.batch, c.steps, c.features}, c.seed + 4, -c.input_range, c.input_range);
    inputs["x"] = x;
  } else {
    // ids -> embedding(mask_zero) -> rnn; masked steps carry id 0.
    const int vocab = 50;
    mask = case_mask(c);
    Tensor ids = random_ints({c.batch, c.steps}, c.seed + 5, 1, vocab - 1);
    for (size_t i = 0; i < mask.size(); ++i)
      if (!mask[i]) ids.mutable_data<int32_t>()[i] = 0;
    Tensor table = random_tensor({vocab, c.features}, c.seed + 6, -c.input_range, c.input_range);
    weights["e.embeddings"] = table;
    inputs["ids"] = ids;
    yaml = fmt::format(
        "name: t\ninputs:\n  ids: {{shape: [{}], dtype: int32}}\nnodes:\n"
        "  - {{name: e, op: embedding, input: ids, input_dim: {}, output_dim: {}, mask_zero: "
        "true}}\n"
        "  - {{name: r, op: {}, input: e, {}}}\noutputs: [r]\n",
        c.steps, vocab, c.features, op, attrs);
    x = Tensor(DType::f32, {c.batch, c.steps, c.features});
    for (int64_t n = 0; n < c.batch * c.steps; ++n)
      for (int64_t f = 0; f < c.features; ++f)
        x.mutable_data<float>()[n * c.features + f] =
            table.data<float>()[ids.data<int32_t>()[n] * c.features + f];
  }

  ref::RnnArgs a;
  a.lstm = c.lstm;
  a.simple_rnn = c.simple_rnn;
  a.zero_output_for_mask = c.zero_output_for_mask;
  a.batch = c.batch;
  a.steps = c.steps;
  a.features = c.features;
  a.units = c.units;
  a.return_sequences = c.return_sequences;
  a.reset_after = c.reset_after;
  a.activation = c.activation;
  a.recurrent_activation = c.recurrent_activation;
  a.x = x.data<float>();
  a.kernel = kernel.data<float>();
  a.recurrent = recurrent.data<float>();
  a.bias = c.use_bias ? bias.data<float>() : nullptr;
  a.mask = mask.empty() ? nullptr : mask.data();
  const std::vector<double> want = ref::rnn(a);

  auto out = run_yaml(yaml, inputs, weights);
  const Tensor& got = out.at("r");
  check_shape(got, c.return_sequences ? Dims{c.batch, c.steps, c.units} : Dims{c.batch, c.units});
  check_close(got, want, 1e-5, 1e-5);
}

}  // namespace fg::test
