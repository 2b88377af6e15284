// Shared by the spatial ops (conv1d/2d, pooling1d/2d, global pooling, upsampling2d): the
// channels-last attribute and input checks, Keras output lengths and TF-style padding. Pure (no
// oneDNN): used by parse, infer and compile.
#pragma once

#include <fmt/format.h>

#include <string>
#include <vector>

#include "framework/op.hpp"
#include "framework/shape.hpp"

namespace fg::layers {

// Keras data_format: only channels_last (the default) is supported.
inline void parse_channels_last(AttrReader& attrs) {
  if (attrs.get_choice("data_format", {"channels_last", "channels_first"}, "channels_last") !=
      "channels_last")
    throw attrs.error("data_format", "only data_format: channels_last is supported")
        .hint(
            "FusionGraph tensors are channels-last like Keras's default; transpose the data "
            "instead");
}

// Input 0 must be float32; `kind` ("convolution", "pooling") names the op in the hint.
inline void expect_float_input(const InferContext& ctx, const std::string& op,
                               const std::string& kind) {
  const TensorType& in = ctx.input(0);
  if (in.dtype != DType::f32)
    throw ctx
        .input_error(0, fmt::format("{} needs a float32 input, got {} of shape {}", op,
                                    dtype_name(in.dtype), format_shape(in.shape)))
        .hint("int32 tensors are token ids: put an embedding node before the " + kind);
}

// One spatial axis of a window op: input length, window (kernel/pool) size, stride, dilation.
struct WindowAxis {
  Dim in = kDynamic;
  int64_t k = 1, s = 1, d = 1;
  int64_t effective() const { return (k - 1) * d + 1; }  // dilated window
};

// Keras conv_output_length: valid -> floor((in - eff) / s) + 1 (0 or less if the window does
// not fit); same / causal -> ceil(in / s). kDynamic stays kDynamic.
inline Dim window_output_length(const WindowAxis& a, const std::string& padding) {
  if (a.in == kDynamic) return kDynamic;
  if (padding == "valid") {
    if (a.in < a.effective()) return 0;
    return (a.in - a.effective()) / a.s + 1;
  }
  return (a.in + a.s - 1) / a.s;
}

struct WindowPad {
  int64_t left = 0, right = 0;
};

// TF padding for a concrete axis: same puts the extra pad at the end, causal pads d*(k-1) on
// the left only, valid pads nothing.
inline WindowPad window_padding(const WindowAxis& a, const std::string& padding) {
  if (padding == "causal") return {a.d * (a.k - 1), 0};
  if (padding != "same") return {0, 0};
  const int64_t out = (a.in + a.s - 1) / a.s;
  int64_t total = (out - 1) * a.s + a.effective() - a.in;
  if (total < 0) total = 0;
  return {total / 2, total - total / 2};
}

// Output spatial dims for spatial input dims, or an fg::Error naming the axis (a window larger
// than a fixed input, or an output length of 0).
inline Dims window_output_dims(const InferContext& ctx, const std::vector<WindowAxis>& axes,
                               const std::string& padding, const char* window_name) {
  Dims out;
  const std::string shape = format_shape(ctx.input(0).shape);
  for (size_t i = 0; i < axes.size(); ++i) {
    const Dim len = window_output_length(axes[i], padding);
    if (len != kDynamic && len < 1) {
      const std::string axis = axes.size() == 1 ? "steps" : (i == 0 ? "height" : "width");
      const std::string eff = axes[i].d > 1 ? fmt::format(" (dilated to {} by dilation_rate {})",
                                                          axes[i].effective(), axes[i].d)
                                            : "";
      throw ctx
          .input_error(0,
                       fmt::format("{} {}{} is larger than the input {} {} of input shape {} with "
                                   "padding '{}': it gives an output length of 0",
                                   window_name, axes[i].k, eff, axis, axes[i].in, shape, padding))
          .hint(fmt::format("use padding: same, a smaller {}, or a longer input", window_name));
    }
    out.push_back(len);
  }
  return out;
}

}  // namespace fg::layers
