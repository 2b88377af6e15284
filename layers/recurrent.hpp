// The recurrent op family, lstm, gru and simple_rnn (layers/recurrent.cpp): Keras LSTM / GRU /
// SimpleRNN, one layer, left to right, zero initial state; their attributes, shape rule, weights,
// FLOPs and one kernel with these paths:
//   oneDNN     lstm_forward / gru_forward / lbr_gru_forward / vanilla_rnn_forward, one call for
//              the whole batch, used when the activations are oneDNN's (lstm, gru: activation
//              tanh and recurrent_activation sigmoid; simple_rnn: activation tanh, relu or
//              sigmoid) and the mask (if any) is right-padded (every row 1...1 0...0); for lstm
//              only when the batch x units is too large for the projected path;
//   projected  lstm only: one matmul for the input projections of all steps, then a tight C++
//              recurrence per row (OpenMP over rows), see LstmLoop below; small batch x units,
//              any activation pair, any mask;
//   plain      gru and simple_rnn: an exact C++ loop (OpenMP over rows) for any other activation
//              and for masks with holes (masked steps keep the state, as Keras does).
// Masked steps output the previous output (Keras's default), or zeros with zero_output_for_mask
// (what Keras's Bidirectional sets on its layers with return_sequences).
// The ops are registered as lstm_op() / gru_op() / simple_rnn_op() (layers/registry.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fg {
struct TrainingKernelContext;
struct TrainingBuild;
}  // namespace fg

namespace fg::layers {

// simple_rnn: h_t = activation(x_t W + h_{t-1} U + b), one "gate".
enum class RecurrentCell { lstm, gru, simple_rnn };

struct RecurrentConfig {
  RecurrentCell cell = RecurrentCell::lstm;
  int64_t units = 0;
  bool return_sequences = false;
  std::string activation = "tanh";
  std::string recurrent_activation = "sigmoid";  // lstm and gru only
  bool use_bias = true;
  bool reset_after = true;                        // gru only
  bool unit_forget_bias = true;                   // lstm only; affects the initialiser only
  double dropout = 0.0, recurrent_dropout = 0.0;  // inference ignores them; training rejects > 0
  // Keras's zero_output_for_mask: a masked step outputs zeros (the state still carries over);
  // without return_sequences the output is zeros when the last step is masked.
  bool zero_output_for_mask = false;
  int gates() const {
    return cell == RecurrentCell::lstm ? 4 : cell == RecurrentCell::simple_rnn ? 1 : 3;
  }
};

using ActFn = float (*)(float);

// The elementwise activation `name` (Keras formulas; the names parse_recurrent accepts).
ActFn activation_fn(const std::string& name);

// The op name of `cell`: "lstm", "gru" or "simple_rnn".
const char* cell_name(RecurrentCell cell);

// Training (layers/recurrent_training.cpp): the forward and backward kernels of the
// training convention (kernels/training_kernel.hpp), on the same two paths as inference:
//   oneDNN   lstm / gru / lbr_gru forward_training + backward (activation tanh,
//            recurrent_activation sigmoid, no mask or a right-padded one);
//   plain    exact C++ backpropagation through time for any activation pair and any mask
//            (simple_rnn always trains on this path).
void compile_recurrent_training(const TrainingKernelContext& ctx, const RecurrentConfig& config,
                                TrainingBuild& build);

// The lstm op's projected inference path (layers/recurrent.cpp, layers/recurrent_lstm_loop.cpp):
// one oneDNN matmul computes x_t W + b for every row and step, then each batch row runs its
// recurrence in one tight loop (AVX2 + FMA where the CPU has them). It handles every activation
// pair and every mask. It runs when lstm_uses_projected_path(batch, units), or when oneDNN's
// lstm_forward cannot (other activations, a mask with holes).
struct LstmLoop {
  int64_t steps = 0, units = 0;
  const float* recurrent = nullptr;  // the Keras recurrent kernel [units, 4 units], row major
  ActFn act = nullptr, rec_act = nullptr;
  bool tanh_sigmoid = false;  // act is tanh and rec_act sigmoid (the vectorised cell)
  bool return_sequences = false, zero_output_for_mask = false;
};

// Floats of scratch run_lstm_row needs: h, c and the 4 units gates.
inline int64_t lstm_row_scratch(int64_t units) {
  return 6 * units;
}

// One batch row: `projection` [steps, 4 units] (x_t W + b), `mask` [steps] or nullptr, `dst`
// [steps, units] with return_sequences else [units]. Keras semantics as the plain path.
void run_lstm_row(const LstmLoop& loop, const float* projection, const uint8_t* mask, float* dst,
                  float* scratch);

// The size rule: true when the projected path beats oneDNN's lstm_forward (measured on AVX-512 /
// AVX2 CPUs, docs/ops/recurrent_embedding.md): small batches, where lstm_forward's per-step
// overhead dominates.
bool lstm_uses_projected_path(int64_t batch, int64_t units);

// True when every row of the [batch, steps] mask is 1...1 0...0 (then the oneDNN path runs and
// `lengths` holds each row's valid length); false when some row has a hole.
bool right_padded_lengths(const uint8_t* mask, int64_t batch, int64_t steps,
                          std::vector<int64_t>& lengths);

}  // namespace fg::layers
