// Keras activations that are not a oneDNN post-op (softmax and log_softmax over the last axis,
// softsign), applied in place to an op's output by primitive calls appended to its kernel.
// Every other activation fuses into the producing primitive (onednn::append_activation).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "kernels/kernel.hpp"

namespace fg::layers {

// True when append_activation() can fuse it (or it is linear).
bool activation_fuses(const std::string& activation);
// True when an op with an `activation` attribute can apply it: fused, or unfused below.
bool activation_supported(const std::string& activation);

// Appends to `calls` the primitive calls that apply `activation` to `src` into `dst` (the same
// buffer, or two of desc `desc`); returns their implementation names ("" when there is nothing to
// append: linear, or an activation that fuses). softmax / log_softmax run over the last *logical*
// dim of `desc`: pass a desc in Keras dims order (e.g. build.dst_descs[i]), never a
// channels_first_view() ({N, C, spatial}), whose last logical dim is a spatial one. softsign
// x / (1 + |x|) takes three calls and a temporary of `desc` (asked for in `build`). Registers
// the primitives' scratchpads with `build`.
std::string append_unfused_activation(const std::string& activation, const CallArg& src,
                                      const CallArg& dst, const dnnl::memory::desc& desc,
                                      PrimitiveSequence& calls, KernelBuild& build);

}  // namespace fg::layers
