// The int8 form of one node's weights, as `graph-runner quantize` stores it (docs/quantization.md)
// and the int8 kernels of dense, conv1d and conv2d consume it (KernelContext::int8).
//
// Weights: per-output-channel symmetric s8. The kernel keeps its Keras shape with the output
// channel as its last axis; kernel[..., c] ~= q[..., c] * kernel_scales[c], q in [-127, 127].
// Input: static (a scale from calibration: x ~= q * input_scale, u8 for inputs that calibration
// never saw negative, else s8, zero point 0) or dynamic (the scale is max |x| of each run's
// batch / 127 or / 255, computed when the node runs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/tensor.hpp"

namespace fg {

struct Int8Node {
  enum class Input { dynamic, u8, s8 };

  Tensor kernel;                     // DType::i8, the Keras kernel shape
  std::vector<float> kernel_scales;  // one per output channel (the kernel's last axis), > 0
  Input input = Input::dynamic;
  float input_scale = 0;  // static inputs: > 0

  // The f32 kernel the int8 one stands for (q * scale), for plans that run the node in float.
  Tensor dequantized_kernel() const;
};

// Per-output-channel symmetric quantization of an f32 kernel (output channel last), by
// quantization::weight_scales and quantization::quantize_weights below; input dynamic. Throws
// fg::Error for non-finite weights.
Int8Node quantize_kernel(const Tensor& kernel);

namespace quantization {

// Per-output-channel symmetric s8 weights. The kernel is f32 row-major with the output channel
// as its LAST axis (Keras layout: dense [in, units], conv2d [kh, kw, in, out], conv1d
// [k, in, out]); `channels` = size of that last axis, `count` = all values of the kernel.
// scale[c] = max_i |w[i, c]| / 127 (all-zero channel: scale 1; at least FLT_MIN, so a channel of
// denormal weights cannot give a scale of 0).
// Throws fg::Error when count is not a positive multiple of channels or a weight is not finite.
std::vector<float> weight_scales(const float* kernel, size_t count, size_t channels);
// q = clamp(round_half_to_even(w / scale[c]), -127, 127). Throws fg::Error when the sizes do not
// match (as weight_scales) or a scale is not finite and > 0.
std::vector<int8_t> quantize_weights(const float* kernel, size_t count, size_t channels,
                                     const std::vector<float>& scales);

// Rounds to the nearest integer, ties to the even one (2.5 -> 2, -2.5 -> -2, 3.5 -> 4), whatever
// the floating-point rounding mode.
float round_half_to_even(float v);
}  // namespace quantization

// "dynamic", "u8", "s8".
const char* int8_input_name(Int8Node::Input input);

}  // namespace fg
