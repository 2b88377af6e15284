// oneDNN 2.6 descriptors for training the recurrent layers (layers/recurrent.cpp: lstm, gru):
// the forward with prop_kind::forward_training (it fills a workspace) and the backward with
// prop_kind::backward (forward_training is accepted there and fails: oneDNN#4306), the
// forward pd as the mandatory hint. Left to right, one layer, zero initial state, no dst_iter
// (the caller reads the last state from dst_layer).
//
// Traps the caller handles: diff weights and diff bias ACCUMULATE in 2.6 (zero all
// get_size() bytes of them before each backward: `any` may pad their strides); the backward's
// weights layouts (typically ldgoi) differ from the forward's and the Keras ldigo: reorder.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

struct RnnTrainingPrimitives {
  dnnl::primitive_desc_base forward, backward;       // with make_attr() (user scratchpad)
  memory::desc src_layer;                            // {T, N, F} ntc: the Keras [N, T, F] bytes
  memory::desc dst_layer;                            // {T, N, U} ntc
  memory::desc bias;                                 // {1, 1, bias_gates, U} ldgo (also diff_bias)
  memory::desc weights_layer, weights_iter;          // the forward's layouts
  memory::desc bwd_weights_layer, bwd_weights_iter;  // the backward's
  memory::desc diff_weights_layer, diff_weights_iter;  // the backward's (maybe padded)
  memory::desc workspace;
};

RnnTrainingPrimitives make_rnn_training(RnnKind kind, int64_t steps, int64_t batch,
                                        int64_t features, int64_t units);

}  // namespace fg::onednn
