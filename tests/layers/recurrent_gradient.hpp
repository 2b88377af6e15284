// Shared by the gradient tests of test_lstm.cpp and test_gru.cpp: one lstm / gru node through
// its training kernels (tests/layers/gradient_check.hpp), against finite differences of the
// naive double forward ref::rnn (tests/reference/recurrent.hpp).
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "tests/layers/gradient_check.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

namespace fg::test {

struct RnnGradientCase {
  bool lstm = true;
  bool simple_rnn = false;  // then lstm and reset_after are ignored
  bool zero_output_for_mask = false;
  int64_t batch = 1, steps = 5, features = 3, units = 7;
  bool return_sequences = false;
  bool reset_after = true;
  std::string activation = "tanh", recurrent_activation = "sigmoid";
  bool use_bias = true;
  bool frozen = false;
  bool needs_input_gradient = true;
  // [batch * steps] of 0/1, empty = no mask.
  std::vector<uint8_t> mask;
  uint64_t seed = 1;
};

inline std::string describe(const RnnGradientCase& c) {
  std::string m;
  for (uint8_t v : c.mask) m += v ? '1' : '0';
  return fmt::format(
      "{} B={} T={} F={} units={} return_sequences={} reset_after={} {}/{} bias={} frozen={} "
      "mask={} zero_output_for_mask={}",
      c.simple_rnn ? "simple_rnn"
      : c.lstm     ? "lstm"
                   : "gru",
      c.batch, c.steps, c.features, c.units, c.return_sequences, c.reset_after, c.activation,
      c.recurrent_activation, c.use_bias, c.frozen, m.empty() ? "none" : m, c.zero_output_for_mask);
}

// Mask patterns over [batch, steps] rows, written as strings of 0/1 per row.
inline std::vector<uint8_t> mask_rows(const std::vector<std::string>& rows) {
  std::vector<uint8_t> m;
  for (const auto& r : rows)
    for (char ch : r) m.push_back(ch == '1' ? 1 : 0);
  return m;
}

inline TrainingNodeResult check_rnn_gradient(const RnnGradientCase& c,
                                             const GradientTolerance& tol = {}) {
  INFO(describe(c));
  const int64_t GU = (c.simple_rnn ? 1 : c.lstm ? 4 : 3) * c.units;
  std::string attrs = fmt::format("units: {}", c.units);
  if (c.return_sequences) attrs += ", return_sequences: true";
  if (!c.simple_rnn && !c.lstm && !c.reset_after) attrs += ", reset_after: false";
  if (c.zero_output_for_mask) attrs += ", zero_output_for_mask: true";
  if (c.activation != "tanh") attrs += ", activation: " + c.activation;
  if (c.recurrent_activation != "sigmoid")
    attrs += ", recurrent_activation: " + c.recurrent_activation;
  if (!c.use_bias) attrs += ", use_bias: false";
  TrainingNodeCase t;
  t.yaml = fmt::format(
      "name: t\ninputs:\n  x: {{shape: [{}, {}]}}\nnodes:\n  - {{name: r, op: {}, input: x, {}}}\n"
      "outputs: [r]\n",
      c.steps, c.features,
      c.simple_rnn ? "simple_rnn"
      : c.lstm     ? "lstm"
                   : "gru",
      attrs);
  t.inputs = {random_tensor({c.batch, c.steps, c.features}, c.seed)};
  t.weights["kernel"] = random_tensor({c.features, GU}, c.seed + 1, -0.6f, 0.6f);
  t.weights["recurrent_kernel"] = random_tensor({c.units, GU}, c.seed + 2, -0.6f, 0.6f);
  const bool two_rows = !c.simple_rnn && !c.lstm && c.reset_after;
  if (c.use_bias)
    t.weights["bias"] = random_tensor(two_rows ? Dims{2, GU} : Dims{GU}, c.seed + 3, -0.5f, 0.5f);
  if (!c.mask.empty()) t.masks = {c.mask};
  t.frozen = c.frozen;
  t.needs_input_gradient = {c.needs_input_gradient};
  return check_gradients(
      t,
      [&](const auto& x, const auto& w) {
        ref::RnnArgsT<double> a;
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
        a.x = x[0].data();
        a.kernel = w[0].data();
        a.recurrent = w[1].data();
        a.bias = c.use_bias ? w[2].data() : nullptr;
        a.mask = c.mask.empty() ? nullptr : c.mask.data();
        return std::vector<std::vector<double>>{ref::rnn(a)};
      },
      tol);
}

// The mask cases every cell is checked with: right-padded (the oneDNN path: a full row, a fully
// masked row, a half row) and with holes (the C++ path: leading and trailing masked steps, a
// fully masked row). For batch 1 only the first row of each.
inline std::vector<std::vector<uint8_t>> gradient_masks(int64_t batch, int64_t steps) {
  if (steps == 1) return {batch == 1 ? mask_rows({"0"}) : mask_rows({"1", "0", "1"})};
  if (steps != 5) throw std::runtime_error("gradient_masks: 1 or 5 steps");
  if (batch == 1) return {mask_rows({"11100"}), mask_rows({"00110"})};
  return {mask_rows({"11111", "00000", "11000"}), mask_rows({"01101", "00000", "10011"})};
}

}  // namespace fg::test
