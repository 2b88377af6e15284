#include "kernels/int8_weights.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/error.hpp"

namespace fg {

Tensor Int8Node::dequantized_kernel() const {
  const size_t channels = kernel_scales.size();
  if (kernel.dtype() != DType::i8 || channels == 0 || kernel.shape().empty() ||
      kernel.shape().back() != static_cast<Dim>(channels))
    throw Error(fmt::format("internal: an int8 kernel {} of {} with {} scales",
                            format_shape(kernel.shape()), dtype_name(kernel.dtype()), channels));
  Tensor out(DType::f32, kernel.shape());
  const int8_t* q = kernel.data<int8_t>();
  float* w = out.mutable_data<float>();
  for (size_t i = 0; i < kernel.size(); ++i)
    w[i] = static_cast<float>(q[i]) * kernel_scales[i % channels];
  return out;
}

Int8Node quantize_kernel(const Tensor& kernel) {
  if (kernel.dtype() != DType::f32 || kernel.shape().empty() || kernel.size() == 0)
    throw Error(fmt::format("internal: cannot quantize a {} kernel {}", dtype_name(kernel.dtype()),
                            format_shape(kernel.shape())));
  const auto channels = static_cast<size_t>(kernel.shape().back());
  Int8Node out;
  out.kernel_scales = quantization::weight_scales(kernel.data<float>(), kernel.size(), channels);
  const std::vector<int8_t> q = quantization::quantize_weights(kernel.data<float>(), kernel.size(),
                                                               channels, out.kernel_scales);
  out.kernel = Tensor(DType::i8, kernel.shape());
  std::copy(q.begin(), q.end(), out.kernel.mutable_data<int8_t>());
  return out;
}

const char* int8_input_name(Int8Node::Input input) {
  switch (input) {
    case Int8Node::Input::dynamic:
      return "dynamic";
    case Int8Node::Input::u8:
      return "u8";
    case Int8Node::Input::s8:
      return "s8";
  }
  return "dynamic";
}

namespace quantization {
namespace {

constexpr float kSmallestScale = std::numeric_limits<float>::min();

// Checks the kernel / channel sizes shared by weight_scales and quantize_weights.
void check_kernel_shape(const float* kernel, size_t count, size_t channels) {
  if (channels == 0 || count == 0 || count % channels != 0)
    throw fg::Error(
        fmt::format("weight quantization: a kernel of {} values is not a whole number of "
                    "rows of {} output channels",
                    count, channels))
        .hint("pass the size of the kernel's last axis (Keras layout: the output channels)");
  if (kernel == nullptr) throw fg::Error("weight quantization: the kernel pointer is null");
}

}  // namespace

std::vector<float> weight_scales(const float* kernel, size_t count, size_t channels) {
  check_kernel_shape(kernel, count, channels);
  std::vector<float> max_abs(channels, 0.0f);
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(kernel[i]))
      throw fg::Error(
          fmt::format("weight quantization: the kernel has a non-finite value ({} at "
                      "index {})",
                      kernel[i], i));
    const size_t c = i % channels;
    max_abs[c] = std::max(max_abs[c], std::fabs(kernel[i]));
  }
  std::vector<float> scales(channels);
  for (size_t c = 0; c < channels; ++c)
    scales[c] = max_abs[c] > 0 ? std::max(max_abs[c] / 127.0f, kSmallestScale) : 1.0f;
  return scales;
}

std::vector<int8_t> quantize_weights(const float* kernel, size_t count, size_t channels,
                                     const std::vector<float>& scales) {
  check_kernel_shape(kernel, count, channels);
  if (scales.size() != channels)
    throw fg::Error(fmt::format("weight quantization: {} scales for {} output channels",
                                scales.size(), channels));
  for (size_t c = 0; c < channels; ++c)
    if (!(std::isfinite(scales[c]) && scales[c] > 0))
      throw fg::Error(fmt::format(
          "weight quantization: the scale of output channel {} is {}, expected finite and > 0", c,
          scales[c]));
  std::vector<int8_t> q(count);
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(kernel[i]))
      throw fg::Error(
          fmt::format("weight quantization: the kernel has a non-finite value ({} at "
                      "index {})",
                      kernel[i], i));
    const float r = round_half_to_even(kernel[i] / scales[i % channels]);
    q[i] = static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f));
  }
  return q;
}

float round_half_to_even(float v) {
  if (!std::isfinite(v)) return v;
  const float down = std::floor(v);
  const float fraction = v - down;  // exact for floats
  if (fraction > 0.5f) return down + 1;
  if (fraction < 0.5f) return down;
  return std::fmod(down, 2.0f) == 0 ? down : down + 1;
}

}  // namespace quantization

}  // namespace fg
