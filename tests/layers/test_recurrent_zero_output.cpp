// zero_output_for_mask of lstm, gru and simple_rnn (Keras's backend rnn flag, which
// Bidirectional sets with return_sequences): masked steps output zeros while the state still
// carries over them; without return_sequences the output is zeros when the last step is masked.
// Against the naive reference (tests/reference/recurrent.hpp) with that flag: inference on the
// oneDNN path (right-padded masks) and the C++ path (holes, other activations), and the training
// kernels against finite differences of the same naive forward.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/layers/recurrent_gradient.hpp"
#include "tests/layers/recurrent_test_graph.hpp"

using fg::test::RnnCase;
using fg::test::RnnGradientCase;

namespace {

enum class Cell { lstm, gru, gru_reset_before, simple_rnn };

template <typename Case>
void set_cell(Case& c, Cell cell) {
  c.lstm = cell == Cell::lstm;
  c.simple_rnn = cell == Cell::simple_rnn;
  c.reset_after = cell != Cell::gru_reset_before;
}

RnnCase zero_case(Cell cell, int64_t batch, int64_t steps, int64_t features, int64_t units,
                  bool seq, int mask) {
  RnnCase c;
  set_cell(c, cell);
  c.batch = batch, c.steps = steps, c.features = features, c.units = units;
  c.return_sequences = seq;
  c.mask = mask;
  c.zero_output_for_mask = true;
  c.seed = static_cast<uint64_t>(batch * 1000 + steps * 100 + features * 10 + units);
  return c;
}

RnnGradientCase zero_gradient_case(Cell cell, int64_t batch, int64_t steps, int64_t features,
                                   int64_t units, bool seq, const std::vector<uint8_t>& mask) {
  RnnGradientCase c;
  set_cell(c, cell);
  c.batch = batch, c.steps = steps, c.features = features, c.units = units;
  c.return_sequences = seq;
  c.mask = mask;
  c.zero_output_for_mask = true;
  c.seed = static_cast<uint64_t>(batch * 1000 + steps * 100 + features * 10 + units + 7);
  return c;
}

const Cell kCells[] = {Cell::lstm, Cell::gru, Cell::gru_reset_before, Cell::simple_rnn};

}  // namespace

TEST_CASE("zero_output_for_mask: right-padded masks (oneDNN path), odd and round shapes") {
  for (Cell cell : kCells)
    for (bool seq : {true, false}) {
      fg::test::check_rnn(zero_case(cell, 3, 7, 3, 7, seq, 1));  // rows: full, all masked, half
      fg::test::check_rnn(zero_case(cell, 1, 13, 5, 13, seq, 1));
      fg::test::check_rnn(zero_case(cell, 3, 100, 127, 32, seq, 1));
      fg::test::check_rnn(zero_case(cell, 3, 1, 3, 1, seq, 1));
    }
}

TEST_CASE("zero_output_for_mask: masks with holes (C++ path), odd and round shapes") {
  for (Cell cell : kCells)
    for (bool seq : {true, false}) {
      fg::test::check_rnn(zero_case(cell, 3, 7, 3, 7, seq, 2));
      fg::test::check_rnn(zero_case(cell, 1, 13, 5, 13, seq, 2));
      fg::test::check_rnn(zero_case(cell, 3, 100, 127, 32, seq, 2));
      fg::test::check_rnn(zero_case(cell, 3, 1, 3, 1, seq, 2));
    }
}

TEST_CASE("zero_output_for_mask with activations oneDNN lacks, and without a mask") {
  for (bool seq : {true, false})
    for (int mask : {0, 1, 2}) {
      RnnCase c = zero_case(Cell::lstm, 3, 7, 13, 7, seq, mask);
      c.activation = "relu";
      c.recurrent_activation = "hard_sigmoid";
      fg::test::check_rnn(c);
      c = zero_case(Cell::simple_rnn, 3, 7, 13, 7, seq, mask);
      c.activation = "linear";
      fg::test::check_rnn(c);
      c = zero_case(Cell::gru, 3, 7, 13, 7, seq, mask);
      c.use_bias = false;
      fg::test::check_rnn(c);
    }
}

TEST_CASE("zero_output_for_mask: masked steps are exactly zero, valid steps differ from zero") {
  // ids -> embedding(mask_zero) -> lstm; row 0 right-padded (oneDNN), row 1 with a hole would
  // send the batch to C++, so the two are run separately.
  for (const std::vector<int>& ids : {std::vector<int>{3, 4, 5, 0, 0, 6, 7, 1, 2, 0},
                                      std::vector<int>{3, 0, 5, 0, 2, 6, 7, 1, 2, 0}}) {
    CAPTURE(ids[1]);
    const std::string yaml =
        "name: t\ninputs:\n  ids: {shape: [5], dtype: int32}\nnodes:\n"
        "  - {name: e, op: embedding, input: ids, input_dim: 9, output_dim: 3, mask_zero: true}\n"
        "  - {name: r, op: lstm, input: e, units: 4, return_sequences: true, "
        "zero_output_for_mask: true}\noutputs: [r]\n";
    fg::Tensor id_tensor(fg::DType::i32, {2, 5});
    for (size_t i = 0; i < ids.size(); ++i) id_tensor.mutable_data<int32_t>()[i] = ids[i];
    auto out = fg::test::run_yaml(yaml, {{"ids", id_tensor}},
                                  {{"e.embeddings", fg::test::random_tensor({9, 3}, 1)},
                                   {"r.kernel", fg::test::random_tensor({3, 16}, 2)},
                                   {"r.recurrent_kernel", fg::test::random_tensor({4, 16}, 3)},
                                   {"r.bias", fg::test::random_tensor({16}, 4)}});
    const float* y = out.at("r").data<float>();
    for (size_t n = 0; n < ids.size(); ++n) {
      CAPTURE(n);
      float largest = 0.f;
      for (int j = 0; j < 4; ++j) largest = std::max(largest, std::fabs(y[n * 4 + j]));
      if (ids[n] == 0)
        CHECK(largest == 0.0f);
      else
        CHECK(largest > 1e-3f);
    }
  }
}

TEST_CASE("zero_output_for_mask is a boolean attribute") {
  const std::string msg = fg::test::compile_error(
      "name: t\ninputs:\n  x: {shape: [7, 3]}\nnodes:\n"
      "  - {name: r, op: gru, input: x, units: 4, zero_output_for_mask: sometimes}\n"
      "outputs: [r]\n");
  CAPTURE(msg);
  CHECK(msg.find("zero_output_for_mask") != std::string::npos);
}

TEST_CASE("zero_output_for_mask gradient: right-padded (oneDNN) and holes (C++), every cell") {
  for (Cell cell : kCells)
    for (bool seq : {true, false})
      for (int64_t batch : {1, 3})
        for (int64_t steps : {1, 5})
          for (const auto& mask : fg::test::gradient_masks(batch, steps)) {
            fg::test::check_rnn_gradient(zero_gradient_case(cell, batch, steps, 3, 7, seq, mask));
            fg::test::check_rnn_gradient(zero_gradient_case(cell, batch, steps, 13, 13, seq, mask));
          }
}

TEST_CASE("zero_output_for_mask gradient with other activations (C++ backward)") {
  for (bool seq : {true, false})
    for (const auto& mask : fg::test::gradient_masks(3, 5)) {
      RnnGradientCase c = zero_gradient_case(Cell::lstm, 3, 5, 7, 13, seq, mask);
      c.activation = "softsign";
      c.recurrent_activation = "hard_sigmoid";
      fg::test::check_rnn_gradient(c);
      c = zero_gradient_case(Cell::gru_reset_before, 3, 5, 7, 13, seq, mask);
      c.activation = "relu";
      fg::test::check_rnn_gradient(c);
    }
}

TEST_CASE("zero_output_for_mask gradient: the zeroed outputs' d outputs are dropped") {
  // Row "11100" with return_sequences: the two flags see the same d outputs (the random loss
  // weights depend on the output shape only); with the flag those of steps 3, 4 reach nothing,
  // without it they flow into step 2's state, so the valid steps' input gradients differ.
  for (Cell cell : {Cell::lstm, Cell::simple_rnn}) {
    RnnGradientCase c = zero_gradient_case(cell, 1, 5, 3, 7, true, fg::test::mask_rows({"11100"}));
    const auto zeroed = fg::test::check_rnn_gradient(c);
    c.zero_output_for_mask = false;
    const auto repeated = fg::test::check_rnn_gradient(c);
    const float* a = zeroed.diff_inputs[0].data<float>();
    const float* b = repeated.diff_inputs[0].data<float>();
    float largest = 0.f;
    for (int64_t i = 0; i < 3 * c.features; ++i)
      largest = std::max(largest, std::fabs(a[i] - b[i]));
    CHECK(largest > 1e-3f);
    for (int64_t i = 3 * c.features; i < 5 * c.features; ++i) CHECK(a[i] == 0.0f);
  }
}
