// Shared code of the recurrent layers (layers/lstm.cpp, layers/gru.cpp): attributes, shape rule,
// weights, FLOPs and the kernel. The kernel has two paths:
//   oneDNN   lstm_forward / gru_forward / lbr_gru_forward, one call for the whole batch, used
//            when activation is tanh and recurrent_activation is sigmoid and the mask (if any)
//            is right-padded (every row 1...1 0...0);
//   plain    an exact C++ loop (OpenMP over rows) for any other activation pair and for masks
//            with holes (masked steps keep the state, as Keras does).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/op.hpp"
#include "kernels/kernel.hpp"

namespace fg::layers {

enum class RnnCell { lstm, gru };

struct RnnConfig {
  RnnCell cell = RnnCell::lstm;
  int64_t units = 0;
  bool return_sequences = false;
  std::string activation = "tanh";
  std::string recurrent_activation = "sigmoid";
  bool use_bias = true;
  bool reset_after = true;       // gru only
  bool unit_forget_bias = true;  // lstm only; affects the initialiser only
  int gates() const { return cell == RnnCell::lstm ? 4 : 3; }
};

// units, return_sequences, activation, recurrent_activation, use_bias, dropout,
// recurrent_dropout (accepted, ignored at inference).
void parse_rnn_common(AttrReader& attrs, RnnConfig& config);
std::vector<TensorType> infer_rnn(const InferContext& ctx, const RnnConfig& config);
std::vector<WeightSpec> rnn_weights(const InferContext& ctx, const RnnConfig& config);
double rnn_flops(const InferContext& ctx, const RnnConfig& config);
KernelBuild compile_rnn(const KernelContext& ctx, const RnnConfig& config);

// True when every row of the [batch, steps] mask is 1...1 0...0 (then the oneDNN path runs and
// `lengths` holds each row's valid length); false when some row has a hole.
bool right_padded_lengths(const uint8_t* mask, int64_t batch, int64_t steps,
                          std::vector<int64_t>& lengths);

// The activations the plain path evaluates (Keras formulas); others are rejected at the attribute.
bool rnn_activation_known(const std::string& name);
float rnn_activation(const std::string& name, float x);  // for tests and docs; slow (by name)

}  // namespace fg::layers
