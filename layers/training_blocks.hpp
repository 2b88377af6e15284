// Building blocks that several ops' training kernels share, as primitive calls appended to their
// forward / backward sequences.
//
// Keras activations: the forward z -> y (training mode) and the backward (dy, z, y) -> dz. Ops
// with an `activation` attribute (dense, convolutions, activation) keep the pre-activation z as
// a saved tensor and call these. Linear appends nothing (y and z are then the same bytes: pass
// the same CallArg). softmax / log_softmax run over the last logical dim of `desc` (Keras order).
#pragma once

#include <string>

#include "kernels/kernel.hpp"

namespace fg::layers {

// True when both functions below handle `activation` (every Keras activation FusionGraph runs
// except softsign).
bool activation_has_gradient(const std::string& activation);

// True when the backward needs only the activation's output y (relu, sigmoid, tanh: oneDNN's
// *_use_dst_for_bwd algorithms; softmax, log_softmax), so the op need not keep the pre-activation
// z: it can apply the activation in place and pass y for z to append_activation_backward.
bool activation_backward_from_dst(const std::string& activation);

void append_activation_forward(const std::string& activation, const CallArg& z, const CallArg& y,
                               const dnnl::memory::desc& desc, PrimitiveSequence& calls,
                               KernelBuild& build);

// dz may be the same buffer as dy (in place).
void append_activation_backward(const std::string& activation, const CallArg& z, const CallArg& y,
                                const CallArg& dy, const CallArg& dz,
                                const dnnl::memory::desc& desc, PrimitiveSequence& calls,
                                KernelBuild& build);

// dst = the sums over rows of a plain {rows, cols} src (bias gradients); dst holds cols floats.
void append_sum_rows(const CallArg& src, const CallArg& dst, const dnnl::memory::desc& src_desc,
                     PrimitiveSequence& calls, KernelBuild& build);

}  // namespace fg::layers
