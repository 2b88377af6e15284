// conv1d and conv2d (Keras Conv1D / Conv2D, channels-last), on oneDNN convolution_forward.
// One class serves both: `spatial_` is the number of spatial axes (1 or 2).
#include <fmt/format.h>

#include <optional>

#include "framework/registry.hpp"
#include "kernels/int8_weights.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/onednn/window_training.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/training_blocks.hpp"
#include "layers/unfused_activation.hpp"
#include "layers/window_geometry.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

// One convolution primitive writing output channels [first, first + count) of the output:
// usually all of them; a large Winograd convolution at batch 1 is split in output-channel halves
// (see Conv::compile), each writing a contiguous part of the blocked output.
struct ConvPart {
  dnnl::primitive prim;
  memory weights;
  std::optional<memory> bias;
  memory::desc dst;   // this part's output
  size_t dst_offset;  // bytes from the start of the output
};

// The calls of a convolution kernel: each part on each of `samples` samples (at these byte
// strides; `src` is what each primitive reads), reading the input in the primitive's layout (the
// plan reorders a plain or differently blocked input in a step before) and writing the output in
// the primitive's layout (the plan reorders it to plain where a consumer needs that).
PrimitiveSequence conv_calls(const std::vector<ConvPart>& parts, const memory::desc& src,
                             int64_t samples = 1, size_t src_sample_bytes = 0,
                             size_t dst_sample_bytes = 0) {
  PrimitiveSequence calls;
  for (int64_t n = 0; n < samples; ++n) {
    for (const ConvPart& part : parts) {
      std::vector<std::pair<int, CallArg>> args{
          {DNNL_ARG_SRC, CallArg::src(0, src, static_cast<size_t>(n) * src_sample_bytes)},
          {DNNL_ARG_WEIGHTS, CallArg::constant(part.weights)},
          {DNNL_ARG_DST,
           CallArg::dst(0, part.dst, static_cast<size_t>(n) * dst_sample_bytes + part.dst_offset)}};
      if (part.bias) args.push_back({DNNL_ARG_BIAS, CallArg::constant(*part.bias)});
      calls.add(part.prim, std::move(args));
    }
  }
  return calls;
}

// `arg` (plain bytes seen as `plain`) in the layout `want` a training primitive reads: the same
// argument when the layouts agree, else a kernel temporary that a reorder appended to `calls`
// fills.
CallArg conv_training_layout(const CallArg& arg, const memory::desc& plain,
                             const memory::desc& want, PrimitiveSequence& calls,
                             KernelBuild& build) {
  if (want == plain) return arg;
  const CallArg temp = CallArg::temp(build.add_temp(want));
  calls.add(onednn::make_reorder_pd(plain, want), {{DNNL_ARG_FROM, arg}, {DNNL_ARG_TO, temp}},
            build);
  return temp;
}

// "jit:avx2", with " x2 output-channel parts" / " per sample" when so.
std::string conv_impl(const std::string& impl, size_t parts, int64_t samples) {
  std::string out = impl;
  if (parts > 1) out += fmt::format(" x{} output-channel parts", parts);
  if (samples > 1) out += " per sample";
  return out;
}

class Conv final : public Op {
 public:
  explicit Conv(int spatial) : spatial_(spatial) {}

  void parse(AttrReader& attrs) override {
    const size_t n = static_cast<size_t>(spatial_);
    filters_ = attrs.get_positive_int("filters");
    kernel_ = attrs.get_positive_ints("kernel_size", n);
    strides_ = attrs.get_positive_ints("strides", n, std::vector<int64_t>(n, 1));
    std::vector<std::string> paddings{"valid", "same"};
    if (spatial_ == 1) paddings.push_back("causal");
    padding_ = attrs.get_choice("padding", paddings, "valid");
    dilation_ = attrs.get_positive_ints("dilation_rate", n, std::vector<int64_t>(n, 1));
    bool strided = false, dilated = false;
    for (size_t i = 0; i < n; ++i) {
      strided = strided || strides_[i] > 1;
      dilated = dilated || dilation_[i] > 1;
    }
    if (strided && dilated)
      throw attrs
          .error("dilation_rate",
                 fmt::format("strides > 1 cannot be combined with dilation_rate > 1 (strides {}, "
                             "dilation_rate {}); Keras rejects this too",
                             fmt::join(strides_, "x"), fmt::join(dilation_, "x")))
          .hint("use strides: 1 with the dilation, or dilation_rate: 1 with the strides");
    activation_ = attrs.get_activation("activation", "linear");
    use_bias_ = attrs.get_bool("use_bias", true);
    parse_channels_last(attrs);
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const TensorType& in = ctx.input(0);
    const std::string op = op_name();
    const std::string layout =
        spatial_ == 1 ? "[batch, steps, channels]" : "[batch, height, width, channels]";
    expect_float_input(ctx, op, "convolution");
    if (in.rank() != spatial_ + 2) {
      std::string hint =
          spatial_ == 1
              ? "for a [batch, steps] signal add a channels axis: reshape with target_shape "
                "[steps, 1]"
              : "for a [batch, height, width] image add a channels axis: reshape with target_shape "
                "[height, width, 1]";
      throw ctx
          .input_error(0, fmt::format("{} needs a rank-{} input {}, got rank {} with shape {}", op,
                                      spatial_ + 2, layout, in.rank(), format_shape(in.shape)))
          .hint(hint);
    }
    if (in.shape.back() == kDynamic)
      throw ctx.input_error(
          0, fmt::format("{} needs a known channel count (last dim), got shape {}", op,
                         format_shape(in.shape)));
    Dims out{in.shape[0]};
    for (Dim d : window_output_dims(ctx, axes(in.shape), padding_, "kernel_size")) out.push_back(d);
    out.push_back(filters_);
    return {TensorType{out, DType::f32, false}};
  }

  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    const Dim cin = ctx.input(0).shape.back();
    int64_t window = 1;
    for (int64_t k : kernel_) window *= k;
    WeightSpec kernel;
    kernel.param = "kernel";
    kernel.shape = Dims(kernel_.begin(), kernel_.end());
    kernel.shape.push_back(cin);
    kernel.shape.push_back(filters_);
    kernel.init = Init::glorot_uniform;
    kernel.fan_in = dim_mul(window, cin);
    kernel.fan_out = dim_mul(window, filters_);
    std::vector<WeightSpec> specs{kernel};
    if (use_bias_) {
      WeightSpec bias;
      bias.param = "bias";
      bias.shape = {filters_};
      bias.init = Init::zeros;
      specs.push_back(bias);
    }
    return specs;
  }

  double flops_per_sample(const InferContext& ctx,
                          const std::vector<TensorType>& outputs) const override {
    const Dims& out = outputs.at(0).shape;
    double positions = 1;
    for (int i = 1; i <= spatial_; ++i) {
      if (out[i] == kDynamic) return 0;
      positions *= static_cast<double>(out[i]);
    }
    double window = 1;
    for (int64_t k : kernel_) window *= static_cast<double>(k);
    const double cin = static_cast<double>(ctx.input(0).shape.back());
    return 2.0 * positions * window * cin * static_cast<double>(filters_);
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const TensorType& in = ctx.inputs.at(0);
    const TensorType& out = ctx.outputs.at(0);
    // The input as stored: plain (seen channels-first) or a producer's blocked layout.
    const memory::desc src_given = ctx.input_descs.at(0) == onednn::plain_desc(in)
                                       ? onednn::channels_first_view(in.shape)
                                       : ctx.input_descs.at(0);
    const memory::desc dst_user = onednn::channels_first_view(out.shape);
    const Dim cin = in.shape.back();

    const onednn::WindowGeometry g = geometry(in.shape);
    memory::dims wei_dims{filters_, cin};
    wei_dims.insert(wei_dims.end(), kernel_.begin(), kernel_.end());
    const memory::desc wei_any(wei_dims, onednn::dt::f32, onednn::tag::any);
    const memory::desc bias_desc =
        biased(ctx) ? memory::desc({filters_}, onednn::dt::f32, onednn::tag::a) : memory::desc();
    // Let oneDNN pick src/dst layouts (blocked nCw8c / nChw8c on AVX2, nwc / nhwc on AVX-512):
    // forcing nwc dispatches 1D convs to a kernel about 8x slower, and forcing nhwc with few
    // channels gives the reference kernel. The kernel reorders its input when needed; a blocked
    // output is left to the plan (kept for consumers that accept it, else reordered to plain).
    // An activation that is not a post-op runs on the plain output afterwards.
    // Its own activation, or the one of a following activation node the plan fused into it.
    const std::string& activation =
        ctx.fused_activation.empty() ? activation_ : ctx.fused_activation;
    const bool plain_dst = !activation_fuses(activation);
    const memory::desc src_want(src_given.dims(), onednn::dt::f32, onednn::tag::any);
    const memory::desc dst_any =
        plain_dst ? dst_user : memory::desc(dst_user.dims(), onednn::dt::f32, onednn::tag::any);

    dnnl::post_ops ops;
    onednn::append_activation(ops, activation);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    // Winograd F(4x4, 3x3) where it pays (see make_conv_pd): 3x3, stride 1, no dilation and at
    // least kWinogradMinChannels input channels; only in optimized plans, so the unfused plan
    // (direct algorithm) checks it on whole graphs.
    constexpr Dim kWinogradMinChannels = 16;
    const bool winograd = ctx.optimize && spatial_ == 2 && kernel_ == std::vector<int64_t>{3, 3} &&
                          strides_ == std::vector<int64_t>{1, 1} &&
                          dilation_ == std::vector<int64_t>{1, 1} && cin >= kWinogradMinChannels &&
                          !plain_dst;
    if (ctx.precision == Precision::int8) {
      if (!onednn::native_int8_isa())
        build.precision_fallback = onednn::no_native_int8_reason();
      else if (ctx.int8 == nullptr || ctx.int8->input == Int8Node::Input::dynamic)
        build.precision_fallback = "no calibrated input scale (graph-runner quantize)";
      else if (compile_int8(ctx, build, src_given, dst_user, dst_any, wei_dims, g, ops, activation))
        return build;
      else
        build.precision_fallback = fmt::format(
            "no fast int8 convolution in oneDNN for this shape on {}", onednn::cpu_isa_name());
    }
    if (ctx.precision == Precision::bf16) {
      if (!onednn::native_bf16_isa())
        build.precision_fallback = onednn::no_native_bf16_reason();
      else if (compile_bf16(ctx, build, src_given, dst_user, dst_any, wei_any, bias_desc, g, attr,
                            activation))
        return build;
      else
        build.precision_fallback = fmt::format(
            "no fast bf16 convolution in oneDNN for this shape on {}", onednn::cpu_isa_name());
    }
    if (winograd) {
      if (compile_winograd(ctx, build, src_given, dst_user, wei_any, bias_desc, g, attr))
        return build;
    }
    auto pd = onednn::make_conv_pd(src_want, wei_any, bias_desc, dst_any, g, attr, ctx.engine);
    build.add_scratchpad(pd);
    // The input in the primitive's layout: the plan reorders it before this step if needed.
    if (pd.src_desc() != src_given) build.src_descs.at(0) = pd.src_desc();
    // A blocked output stays blocked for consumers that accept it (the plan decides).
    if (pd.dst_desc() != dst_user) build.dst_descs.at(0) = pd.dst_desc();
    PrimitiveSequence calls = conv_calls({whole_part(ctx, pd)}, pd.src_desc());
    std::string impl = onednn::impl_name(pd);
    const std::string unfused = append_unfused_activation(
        activation, CallArg::dst(0), CallArg::dst(0), build.dst_descs.at(0), calls, build);
    if (!unfused.empty()) impl += " + " + unfused;
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls), impl);
    return build;
  }

  // bf16 (KernelContext::precision, on a native bf16 ISA): the direct convolution with bf16 input
  // and weights (the kernel reordered to bf16 once, in the weight cache), f32 accumulation, bias
  // and output, in the layouts oneDNN picks. The input (f32, as stored) is reordered into a bf16
  // temporary by the kernel's first call. Returns false (leaving `build` as it was) when oneDNN has
  // no primitive for it or only its reference kernel.
  bool compile_bf16(const KernelContext& ctx, KernelBuild& build, const memory::desc& src_given,
                    const memory::desc& dst_user, const memory::desc& dst_any,
                    const memory::desc& wei_any, const memory::desc& bias_desc,
                    const onednn::WindowGeometry& g, const dnnl::primitive_attr& attr,
                    const std::string& activation) const {
    const memory::desc src_bf16(src_given.dims(), onednn::dt::bf16, onednn::tag::any);
    dnnl::convolution_forward::primitive_desc pd;
    try {
      pd = onednn::make_conv_pd(src_bf16, onednn::with_data_type(wei_any, onednn::dt::bf16),
                                bias_desc, dst_any, g, attr, ctx.engine);
    } catch (const dnnl::error&) {
      return false;
    }
    if (onednn::is_reference_impl(pd)) return false;
    PrimitiveSequence calls;
    const CallArg src = CallArg::temp(build.add_temp(pd.src_desc()));
    calls.add(onednn::make_reorder_pd(src_given, pd.src_desc()),
              {{DNNL_ARG_FROM, CallArg::src(0, src_given)}, {DNNL_ARG_TO, src}}, build);
    build.add_scratchpad(pd);
    const ConvPart part = whole_part(ctx, pd);
    std::vector<std::pair<int, CallArg>> args{{DNNL_ARG_SRC, src},
                                              {DNNL_ARG_WEIGHTS, CallArg::constant(part.weights)},
                                              {DNNL_ARG_DST, CallArg::dst(0)}};
    if (part.bias) args.push_back({DNNL_ARG_BIAS, CallArg::constant(*part.bias)});
    calls.add(part.prim, std::move(args));
    // A blocked output stays blocked for consumers that accept it (the plan decides).
    if (pd.dst_desc() != dst_user) build.dst_descs.at(0) = pd.dst_desc();
    std::string impl = onednn::impl_name(pd);
    const std::string unfused = append_unfused_activation(
        activation, CallArg::dst(0), CallArg::dst(0), build.dst_descs.at(0), calls, build);
    if (!unfused.empty()) impl += " + " + unfused;
    build.precision = Precision::bf16;
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls), impl);
    return true;
  }

  // int8 (KernelContext::precision, a calibrated node of a quantized weights file, on a VNNI
  // ISA): the direct convolution with the input quantized by its calibrated scale (u8 or s8,
  // reordered into a temporary by the kernel's first call), s8 weights (reordered once, in the
  // weight cache), s32 accumulation, output scales input_scale * kernel_scale[c] with the bias
  // divided by them (oneDNN 2.x adds the bias before scaling), f32 output in the layout oneDNN
  // picks. Returns false (leaving `build` as it was) when oneDNN has no primitive for it or
  // only its reference kernel.
  bool compile_int8(const KernelContext& ctx, KernelBuild& build, const memory::desc& src_given,
                    const memory::desc& dst_user, const memory::desc& dst_any,
                    const memory::dims& wei_dims, const onednn::WindowGeometry& g,
                    const dnnl::post_ops& ops, const std::string& activation) const {
    const Int8Node& q = *ctx.int8;
    Dims keras_kernel(kernel_.begin(), kernel_.end());
    keras_kernel.push_back(ctx.inputs.at(0).shape.back());
    keras_kernel.push_back(filters_);
    if (q.kernel.shape() != keras_kernel)
      throw ctx.error(fmt::format("the int8 kernel has shape {}, expected {}",
                                  format_shape(q.kernel.shape()), format_shape(keras_kernel)));
    std::vector<float> scales(static_cast<size_t>(filters_));
    for (size_t c = 0; c < scales.size(); ++c) scales[c] = q.input_scale * q.kernel_scales[c];
    const auto src_type = q.input == Int8Node::Input::u8 ? onednn::dt::u8 : onednn::dt::s8;
    const memory::desc bias_desc =
        use_bias_ ? memory::desc({filters_}, onednn::dt::f32, onednn::tag::a) : memory::desc();
    dnnl::convolution_forward::primitive_desc pd;
    try {
      pd = onednn::make_conv_pd(memory::desc(src_given.dims(), src_type, onednn::tag::any),
                                memory::desc(wei_dims, onednn::dt::s8, onednn::tag::any), bias_desc,
                                dst_any, g, onednn::int8_output_attr(ops, 1, scales), ctx.engine);
    } catch (const dnnl::error&) {
      return false;
    }
    if (onednn::is_reference_impl(pd)) return false;
    PrimitiveSequence calls;
    const CallArg src = CallArg::temp(build.add_temp(pd.src_desc()));
    calls.add(onednn::make_quantize_pd(src_given, pd.src_desc(), q.input_scale),
              {{DNNL_ARG_FROM, CallArg::src(0, src_given)}, {DNNL_ARG_TO, src}}, build);
    const memory::desc user = onednn::keras_conv_kernel_desc(keras_kernel);
    std::vector<std::pair<int, CallArg>> args{
        {DNNL_ARG_SRC, src},
        {DNNL_ARG_WEIGHTS,
         CallArg::constant(ctx.constant(
             "int8.kernel", pd.weights_desc(),
             [&] { return onednn::int8_weights(user, q.kernel.raw(), pd.weights_desc()); }))},
        {DNNL_ARG_DST, CallArg::dst(0)}};
    if (use_bias_) {
      const memory::desc b_desc = pd.bias_desc();
      args.push_back({DNNL_ARG_BIAS, CallArg::constant(ctx.constant("int8.bias", b_desc, [&] {
                        memory m(b_desc, ctx.engine);
                        const float* b = ctx.weight("bias").data<float>();
                        auto* dst = static_cast<float*>(m.get_data_handle());
                        for (size_t c = 0; c < scales.size(); ++c) dst[c] = b[c] / scales[c];
                        return m;
                      }))});
    }
    calls.add(pd, std::move(args), build);
    // A blocked output stays blocked for consumers that accept it (the plan decides).
    if (pd.dst_desc() != dst_user) build.dst_descs.at(0) = pd.dst_desc();
    std::string impl = onednn::impl_name(pd);
    const std::string unfused = append_unfused_activation(
        activation, CallArg::dst(0), CallArg::dst(0), build.dst_descs.at(0), calls, build);
    if (!unfused.empty()) impl += " + " + unfused;
    build.precision = Precision::int8;
    build.precision_detail = fmt::format("{} input", int8_input_name(q.input));
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls), impl);
    return true;
  }

  // The Winograd kernel, run one sample at a time: for some shapes oneDNN's scratchpad holds the
  // transformed input and output of every sample (the reference graph's conv3 at batch 32: 302 MB,
  // 116 ms, against 9.4 MB and 32 x 2.8-3.1 ms sample by sample; conv2 takes the same time either
  // way). Needs the nChw16c layout oneDNN picks for it (samples are then contiguous); returns
  // false (leaving `build` as it was) to fall back to the direct algorithm.
  bool compile_winograd(const KernelContext& ctx, KernelBuild& build, const memory::desc& src_given,
                        const memory::desc& dst_user, const memory::desc& wei_any,
                        const memory::desc& bias_desc, const onednn::WindowGeometry& g,
                        const dnnl::primitive_attr& attr) const {
    const auto blocked = [](memory::dims d) {
      return memory::desc(d, onednn::dt::f32, onednn::tag::aBcd16b);
    };
    const auto any = [](memory::dims d) {
      return memory::desc(d, onednn::dt::f32, onednn::tag::any);
    };
    memory::dims src1 = src_given.dims(), dst1 = dst_user.dims();
    src1[0] = dst1[0] = 1;
    auto pd =
        onednn::make_conv_pd(any(src1), wei_any, bias_desc, any(dst1), g, attr, ctx.engine, true);
    if (onednn::impl_name(pd).find("wino") == std::string::npos || pd.src_desc() != blocked(src1) ||
        pd.dst_desc() != blocked(dst1))
      return false;
    std::vector<ConvPart> parts = split_parts(ctx, build, pd, bias_desc, g, attr);
    if (parts.empty()) {
      build.add_scratchpad(pd);
      parts.push_back(whole_part(ctx, pd));
    }
    const memory::desc src = blocked(src_given.dims()), dst = blocked(dst_user.dims());
    if (src != src_given) build.src_descs.at(0) = src;
    build.dst_descs.at(0) = dst;
    const int64_t samples = src_given.dims()[0];
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(
        conv_calls(parts, blocked(src1), samples, blocked(src1).get_size(),
                   blocked(dst1).get_size()),
        conv_impl(onednn::impl_name(pd), parts.size(), samples));
    return true;
  }

  // A following batch normalization folds into the kernel and bias (the plan does it, through
  // ctx.weight()), and a following activation becomes a post-op: only without a nonlinearity of
  // its own.
  OpTraits traits() const override {
    OpTraits t;
    t.accepts_blocked_inputs = true;
    t.accepts_channel_affine = activation_ == "linear";
    t.accepts_fused_activation = activation_ == "linear";
    t.outputs_probabilities = activation_ == "softmax";
    if (activation_ == "softmax" || activation_ == "sigmoid") t.final_activation = activation_;
    return t;
  }

  bool has_gradient() const override { return activation_has_gradient(activation_); }

  // Training, over the plain NWC / NHWC activations and the Keras kernel (wio / hwio):
  //   forward   z = conv(x, W) + b (saved unless the activation is linear or taken by the
  //             loss), y = activation(z)
  //   backward  dz = activation'(dy); dx = convolution_backward_data(dz, W);
  //             dW, db = convolution_backward_weights(x, dz)
  // Each primitive is created with format_tag::any and runs in the layouts it picks (blocked
  // nCw16c / nChw16c activations and OIhw16i16o-like weights on AVX-512, 8-blocks on AVX2); the
  // plain tensors are reordered into kernel temporaries and back (see conv_training_layout).
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const std::string act = ctx.output_logits ? "linear" : activation_;
    const memory::desc z_plain = onednn::plain_desc(ctx.outputs[0]);
    build = start_training_build(ctx, saves_pre_activation(act) ? std::vector<memory::desc>{z_plain}
                                                                : std::vector<memory::desc>{});
    const ConvTrainingViews v{onednn::channels_first_view(ctx.inputs[0].shape),
                              onednn::keras_conv_kernel_desc(ctx.weight_types[0].shape),
                              onednn::channels_first_view(ctx.outputs[0].shape), z_plain};
    const onednn::ConvTrainingPds pds = onednn::make_conv_training_pds(
        v.src.dims(), v.weights.dims(), use_bias_, v.dst.dims(), geometry(ctx.inputs[0].shape));
    compile_training_forward(act, pds.forward, v, build.forward);
    compile_training_backward(ctx, act, pds, v, build);
  }

 private:
  // The pre-activation z is kept for the backward unless the activation is linear or its
  // backward reads only the output (relu, sigmoid, tanh: applied in place, no copy of z).
  static bool saves_pre_activation(const std::string& act) {
    return act != "linear" && !activation_backward_from_dst(act);
  }

  // The plain descs of a training convolution: src / weights / dst with oneDNN's dims over the
  // Keras bytes, and the output with its Keras dims (for the activation).
  struct ConvTrainingViews {
    memory::desc src, weights, dst, z_plain;
  };

  void compile_training_forward(const std::string& act,
                                const dnnl::convolution_forward::primitive_desc& pd,
                                const ConvTrainingViews& v, KernelBuild& build) const {
    const bool saves_z = saves_pre_activation(act);
    PrimitiveSequence calls;
    const CallArg z = saves_z ? CallArg::dst(1, v.dst) : CallArg::dst(0, v.dst);
    const CallArg conv_dst =
        pd.dst_desc() == v.dst ? z : CallArg::temp(build.add_temp(pd.dst_desc()));
    std::vector<std::pair<int, CallArg>> args{
        {DNNL_ARG_SRC,
         conv_training_layout(CallArg::src(0, v.src), v.src, pd.src_desc(), calls, build)},
        {DNNL_ARG_WEIGHTS, conv_training_layout(CallArg::src(1, v.weights), v.weights,
                                                pd.weights_desc(), calls, build)},
        {DNNL_ARG_DST, conv_dst}};
    if (use_bias_) args.push_back({DNNL_ARG_BIAS, CallArg::src(2)});
    calls.add(pd, std::move(args), build);
    if (pd.dst_desc() != v.dst)
      calls.add(onednn::make_reorder_pd(pd.dst_desc(), v.dst),
                {{DNNL_ARG_FROM, conv_dst}, {DNNL_ARG_TO, z}}, build);
    append_activation_forward(act, CallArg::dst(saves_z ? 1 : 0, v.z_plain),
                              CallArg::dst(0, v.z_plain), v.z_plain, calls, build);
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls));
  }

  void compile_training_backward(const TrainingKernelContext& ctx, const std::string& act,
                                 const onednn::ConvTrainingPds& pds, const ConvTrainingViews& v,
                                 TrainingBuild& tb) const {
    const BackwardArgs a = backward_args(ctx, tb.saved_descs.size());
    KernelBuild& build = tb.backward;
    PrimitiveSequence calls;
    CallArg dz = CallArg::src(a.diff_output(0), v.dst);
    if (act != "linear") {
      const int t = build.add_temp(v.z_plain);
      const CallArg z = saves_pre_activation(act) ? CallArg::src(a.saved_tensor(0), v.z_plain)
                                                  : CallArg::src(a.output(0), v.z_plain);
      append_activation_backward(act, z, CallArg::src(a.output(0), v.z_plain),
                                 CallArg::src(a.diff_output(0), v.z_plain),
                                 CallArg::temp(t, v.z_plain), v.z_plain, calls, build);
      dz = CallArg::temp(t, v.dst);
    }
    // dz in the layout each backward primitive reads it in (reordered once per layout).
    std::vector<std::pair<memory::desc, CallArg>> dz_layouts;
    const auto dz_in = [&](const memory::desc& want) {
      for (const auto& [desc, arg] : dz_layouts)
        if (desc == want) return arg;
      dz_layouts.push_back({want, conv_training_layout(dz, v.dst, want, calls, build)});
      return dz_layouts.back().second;
    };
    if (ctx.needs_input_gradient[0]) {
      const auto& pd = pds.backward_data;
      const CallArg dx = CallArg::dst(a.diff_input(0), v.src);
      const CallArg diff_src =
          pd.diff_src_desc() == v.src ? dx : CallArg::temp(build.add_temp(pd.diff_src_desc()));
      calls.add(
          pd,
          {{DNNL_ARG_DIFF_DST, dz_in(pd.diff_dst_desc())},
           {DNNL_ARG_WEIGHTS, conv_training_layout(CallArg::src(a.weight(0), v.weights), v.weights,
                                                   pd.weights_desc(), calls, build)},
           {DNNL_ARG_DIFF_SRC, diff_src}},
          build);
      if (pd.diff_src_desc() != v.src)
        calls.add(onednn::make_reorder_pd(pd.diff_src_desc(), v.src),
                  {{DNNL_ARG_FROM, diff_src}, {DNNL_ARG_TO, dx}}, build);
    }
    if (!ctx.frozen) {
      const auto& pd = pds.backward_weights;
      const CallArg dw = CallArg::dst(a.diff_weight(0), v.weights);
      const CallArg diff_weights = pd.diff_weights_desc() == v.weights
                                       ? dw
                                       : CallArg::temp(build.add_temp(pd.diff_weights_desc()));
      std::vector<std::pair<int, CallArg>> args{
          {DNNL_ARG_SRC, conv_training_layout(CallArg::src(a.input(0), v.src), v.src, pd.src_desc(),
                                              calls, build)},
          {DNNL_ARG_DIFF_DST, dz_in(pd.diff_dst_desc())},
          {DNNL_ARG_DIFF_WEIGHTS, diff_weights}};
      if (use_bias_) args.push_back({DNNL_ARG_DIFF_BIAS, CallArg::dst(a.diff_weight(1))});
      calls.add(pd, std::move(args), build);
      if (pd.diff_weights_desc() != v.weights)
        calls.add(onednn::make_reorder_pd(pd.diff_weights_desc(), v.weights),
                  {{DNNL_ARG_FROM, diff_weights}, {DNNL_ARG_TO, dw}}, build);
    }
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls));
  }

  onednn::WindowGeometry geometry(const Dims& in_shape) const {
    onednn::WindowGeometry g;
    for (const WindowAxis& a : axes(in_shape)) {
      const WindowPad pad = window_padding(a, padding_);
      g.strides.push_back(a.s);
      g.dilation.push_back(a.d - 1);  // oneDNN: 0 = no dilation
      g.pad_l.push_back(pad.left);
      g.pad_r.push_back(pad.right);
    }
    return g;
  }

  std::string op_name() const { return spatial_ == 1 ? "conv1d" : "conv2d"; }

  // The conv as one primitive writing every output channel, its weights reordered once.
  ConvPart whole_part(const KernelContext& ctx,
                      const dnnl::convolution_forward::primitive_desc& pd) const {
    memory weights = ctx.weight_memory(
        "kernel", onednn::keras_conv_kernel_desc(ctx.weight("kernel").shape()), pd.weights_desc());
    std::optional<memory> bias;
    if (biased(ctx))
      bias = ctx.weight_memory("bias", onednn::plain_desc(Dims{filters_}), pd.bias_desc());
    return {dnnl::convolution_forward(pd), weights, bias, pd.dst_desc(), 0};
  }

  // A bias of its own, or one a fused batch normalization brings (see accepts_channel_affine).
  bool biased(const KernelContext& ctx) const { return use_bias_ || ctx.channel_affine != nullptr; }

  std::vector<WindowAxis> axes(const Dims& in_shape) const {
    std::vector<WindowAxis> out;
    for (int i = 0; i < spatial_; ++i)
      out.push_back({in_shape[1 + i], kernel_[i], strides_[i], dilation_[i]});
    return out;
  }

  // oneDNN's Winograd kernel keeps the transformed input and output of the whole image in its
  // scratchpad: 20 MB for the reference graph's 128->256 conv on 54x54, 4.7x its src and dst
  // together. At batch 1 (the output's channel halves are then contiguous in nChw16c) the conv is
  // run as two output-channel halves, each its own primitive with half the scratchpad (9.4 MB),
  // at the same speed (measured 2 x 1.47 ms vs 2.76 ms), when the scratchpad is more than twice
  // src + dst and each half keeps at least 64 channels. Returns no parts when not split.
  std::vector<ConvPart> split_parts(const KernelContext& ctx, KernelBuild& build,
                                    const dnnl::convolution_forward::primitive_desc& pd,
                                    const memory::desc& bias_desc, const onednn::WindowGeometry& g,
                                    const dnnl::primitive_attr& attr) const {
    const memory::dims dst_dims = pd.dst_desc().dims();
    const auto blocked = [](const memory::dims& d) {
      return memory::desc(d, onednn::dt::f32, onednn::tag::aBcd16b);
    };
    if (dst_dims[0] != 1 || pd.dst_desc() != blocked(dst_dims)) return {};
    const size_t io_bytes = pd.src_desc().get_size() + pd.dst_desc().get_size();
    if (pd.scratchpad_desc().get_size() <= 2 * io_bytes || filters_ % 32 != 0 || filters_ / 2 < 64)
      return {};
    const int64_t count = 2;
    const Dim part_filters = filters_ / count;
    const Dims& keras_kernel = ctx.weight("kernel").shape();  // [kh, kw, cin, filters]
    const Dim cin = keras_kernel[2];
    // This part's slice of the Keras kernel: dims {O, I, H, W}, strides of the hwio layout.
    const memory::desc slice(
        {part_filters, cin, keras_kernel[0], keras_kernel[1]}, onednn::dt::f32,
        memory::dims{1, filters_, keras_kernel[1] * cin * filters_, cin * filters_});
    memory::dims part_dims = dst_dims;
    part_dims[1] = part_filters;
    const memory::desc wei_any({part_filters, cin, keras_kernel[0], keras_kernel[1]},
                               onednn::dt::f32, onednn::tag::any);
    const memory::desc part_bias =
        biased(ctx) ? memory::desc({part_filters}, onednn::dt::f32, onednn::tag::a) : bias_desc;
    std::vector<ConvPart> parts;
    for (int64_t p = 0; p < count; ++p) {
      auto part_pd = onednn::make_conv_pd(pd.src_desc(), wei_any, part_bias, blocked(part_dims), g,
                                          attr, ctx.engine, true);
      if (part_pd.src_desc() != pd.src_desc() ||
          onednn::impl_name(part_pd) != onednn::impl_name(pd))
        return {};  // the halves would not run the same kernel on the same input: keep one conv
      build.add_scratchpad(part_pd);
      const Tensor& kernel = ctx.weight("kernel");
      memory weights =
          ctx.constant(fmt::format("kernel/part{}of{}", p, count), part_pd.weights_desc(), [&]() {
            const float* first = kernel.data<float>() + p * part_filters;
            memory user(slice, ctx.engine, const_cast<float*>(first));
            // Winograd's weight reorder takes only dense sources: slice to hwio first.
            memory dense(memory::desc(slice.dims(), onednn::dt::f32, onednn::tag::hwio),
                         ctx.engine);
            memory dst(part_pd.weights_desc(), ctx.engine);
            dnnl::stream stream(ctx.engine);
            onednn::reorder_now(user, dense, stream);
            onednn::reorder_now(dense, dst, stream);
            return dst;
          });
      std::optional<memory> bias;
      if (biased(ctx)) {
        const float* first = ctx.weight("bias").data<float>() + p * part_filters;
        bias = ctx.constant(fmt::format("bias/part{}of{}", p, count), part_pd.bias_desc(), [&]() {
          memory user(part_bias, ctx.engine, const_cast<float*>(first));
          dnnl::stream stream(ctx.engine);
          return onednn::reorder_to(user, part_pd.bias_desc(), stream);
        });
      }
      const size_t offset = static_cast<size_t>(p) * blocked(part_dims).get_size();
      parts.push_back(
          {dnnl::convolution_forward(part_pd), weights, bias, part_pd.dst_desc(), offset});
    }
    return parts;
  }

  int spatial_;
  int64_t filters_ = 0;
  std::vector<int64_t> kernel_, strides_, dilation_;
  std::string padding_ = "valid";
  std::string activation_ = "linear";
  bool use_bias_ = true;
};

}  // namespace

OpInfo conv1d_op() {
  return {"conv1d", [] { return std::make_unique<Conv>(1); },
          "1D convolution over [batch, steps, channels] (Keras Conv1D)"};
}
OpInfo conv2d_op() {
  return {"conv2d", [] { return std::make_unique<Conv>(2); },
          "2D convolution over [batch, height, width, channels] (Keras Conv2D)"};
}

}  // namespace fg::layers
