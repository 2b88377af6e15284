// The recurrent op family, lstm and gru (layers/recurrent.cpp): Keras LSTM / GRU, one layer, left
// to right, zero initial state; their attributes, shape rule, weights, FLOPs and one kernel with
// two paths:
//   oneDNN   lstm_forward / gru_forward / lbr_gru_forward, one call for the whole batch, used
//            when activation is tanh and recurrent_activation is sigmoid and the mask (if any)
//            is right-padded (every row 1...1 0...0);
//   plain    an exact C++ loop (OpenMP over rows) for any other activation pair and for masks
//            with holes (masked steps keep the state, as Keras does).
// The ops are registered as lstm_op() / gru_op() (layers/registry.cpp).
#pragma once

#include <cstdint>
#include <vector>

namespace fg::layers {

// True when every row of the [batch, steps] mask is 1...1 0...0 (then the oneDNN path runs and
// `lengths` holds each row's valid length); false when some row has a hole.
bool right_padded_lengths(const uint8_t* mask, int64_t batch, int64_t steps,
                          std::vector<int64_t>& lengths);

}  // namespace fg::layers
