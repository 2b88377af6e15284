// conv1d and conv2d (Keras Conv1D / Conv2D, channels-last), on oneDNN convolution_forward.
// One class serves both: `spatial_` is the number of spatial axes (1 or 2).
#include <fmt/format.h>

#include <optional>

#include "layers/activation_util.hpp"
#include "layers/builtin_ops.hpp"
#include "layers/window_util.hpp"
#include "runtime/kernel.hpp"
#include "runtime/onednn/onednn.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

// Runs the convolution. The input arrives plain (NWC / NHWC) or in the blocked layout its
// producer chose; when the primitive wants another src layout the kernel reorders it through a
// temporary. The output is written in the primitive's layout (the plan reorders it to plain
// where a consumer needs that).
class ConvKernel final : public Kernel {
 public:
  ConvKernel(dnnl::convolution_forward prim, std::string impl, memory weights,
             std::optional<memory> bias, memory::desc src_given, memory::desc dst,
             std::optional<dnnl::reorder> src_reorder, int src_temp,
             std::optional<ActivationStep> activation)
      : prim_(std::move(prim)),
        impl_(std::move(impl)),
        weights_(std::move(weights)),
        bias_(std::move(bias)),
        src_given_(src_given),
        dst_(dst),
        src_reorder_(std::move(src_reorder)),
        src_temp_(src_temp),
        activation_(std::move(activation)) {}

  void execute(ExecContext& ctx) const override {
    const dnnl::engine engine = ctx.stream.get_engine();
    memory src(src_given_, engine, ctx.srcs[0].get_data_handle());
    memory dst(dst_, engine, ctx.dsts[0].get_data_handle());
    if (src_reorder_) {
      memory given = src;
      src = ctx.temps[src_temp_];
      execute_primitive(*src_reorder_, ctx, {{DNNL_ARG_FROM, given}, {DNNL_ARG_TO, src}});
    }
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}};
    if (bias_) args.emplace(DNNL_ARG_BIAS, *bias_);
    execute_primitive(prim_, ctx, std::move(args));
    if (activation_) activation_->execute(ctx, ctx.dsts[0]);
  }

  std::string impl_info() const override {
    return activation_ ? impl_ + " + " + activation_->impl_info() : impl_;
  }

 private:
  dnnl::convolution_forward prim_;
  std::string impl_;
  memory weights_;
  std::optional<memory> bias_;
  memory::desc src_given_, dst_;
  std::optional<dnnl::reorder> src_reorder_;
  int src_temp_;
  std::optional<ActivationStep> activation_;
};

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
    if (attrs.get_choice("data_format", {"channels_last", "channels_first"}, "channels_last") !=
        "channels_last")
      throw attrs.error("data_format", "only data_format: channels_last is supported")
          .hint(
              "FusionGraph tensors are channels-last like Keras's default; transpose the data "
              "instead");
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const TensorType& in = ctx.input(0);
    const std::string op = op_name();
    const std::string layout =
        spatial_ == 1 ? "[batch, steps, channels]" : "[batch, height, width, channels]";
    if (in.dtype != DType::f32)
      throw ctx
          .input_error(0, fmt::format("{} needs a float32 input, got {} of shape {}", op,
                                      dtype_name(in.dtype), format_shape(in.shape)))
          .hint("int32 tensors are token ids: put an embedding node before the convolution");
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

  std::unique_ptr<Kernel> compile(KernelContext& ctx) const override {
    const TensorType& in = ctx.inputs.at(0);
    const TensorType& out = ctx.outputs.at(0);
    // The input as stored: plain (seen channels-first) or a producer's blocked layout.
    const memory::desc src_given = ctx.src_descs.at(0) == onednn::plain_desc(in)
                                       ? onednn::channels_first_view(in.shape)
                                       : ctx.src_descs.at(0);
    const memory::desc dst_user = onednn::channels_first_view(out.shape);
    const Dim cin = in.shape.back();

    onednn::WindowGeometry g;
    const std::vector<WindowAxis> ax = axes(in.shape);
    for (const WindowAxis& a : ax) {
      const WindowPad pad = window_padding(a, padding_);
      g.strides.push_back(a.s);
      g.dilation.push_back(a.d - 1);  // oneDNN: 0 = no dilation
      g.pad_l.push_back(pad.left);
      g.pad_r.push_back(pad.right);
    }
    memory::dims wei_dims{filters_, cin};
    wei_dims.insert(wei_dims.end(), kernel_.begin(), kernel_.end());
    const memory::desc wei_any(wei_dims, onednn::dt::f32, onednn::tag::any);
    const memory::desc bias_desc =
        use_bias_ ? memory::desc({filters_}, onednn::dt::f32, onednn::tag::a) : memory::desc();
    // Let oneDNN pick src/dst layouts (blocked nCw8c / nChw8c on AVX2, nwc / nhwc on AVX-512):
    // forcing nwc dispatches 1D convs to a kernel about 8x slower, and forcing nhwc with few
    // channels gives the reference kernel. The kernel reorders its input when needed; a blocked
    // output is left to the plan (kept for consumers that accept it, else reordered to plain).
    // An activation that is not a post-op runs on the plain output afterwards.
    const bool plain_dst = !activation_fuses(activation_);
    const memory::desc src_want(src_given.dims(), onednn::dt::f32, onednn::tag::any);
    const memory::desc dst_any =
        plain_dst ? dst_user : memory::desc(dst_user.dims(), onednn::dt::f32, onednn::tag::any);

    dnnl::post_ops ops;
    onednn::append_activation(ops, activation_);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    // Winograd F(4x4, 3x3) where it pays (see make_conv_pd): 3x3, stride 1, no dilation and at
    // least kWinogradMinChannels input channels; only in optimized plans, so the unfused plan
    // (direct algorithm) checks it on whole graphs.
    constexpr Dim kWinogradMinChannels = 16;
    const bool winograd = ctx.optimize && spatial_ == 2 && kernel_ == std::vector<int64_t>{3, 3} &&
                          strides_ == std::vector<int64_t>{1, 1} &&
                          dilation_ == std::vector<int64_t>{1, 1} && cin >= kWinogradMinChannels;
    auto pd =
        onednn::make_conv_pd(src_want, wei_any, bias_desc, dst_any, g, attr, ctx.engine, winograd);
    ctx.add_scratchpad(pd);

    memory weights = ctx.weight_memory(
        "kernel", onednn::keras_conv_kernel_desc(ctx.weight("kernel").shape()), pd.weights_desc());
    std::optional<memory> bias;
    if (use_bias_)
      bias = ctx.weight_memory("bias", onednn::plain_desc(Dims{filters_}), pd.bias_desc());

    std::optional<dnnl::reorder> src_reorder;
    int src_temp = -1;
    if (pd.src_desc() != src_given) {
      auto reorder_pd = onednn::make_reorder_pd(src_given, pd.src_desc());
      ctx.add_scratchpad(reorder_pd);
      src_reorder = dnnl::reorder(reorder_pd);
      src_temp = static_cast<int>(ctx.temp_descs.size());
      ctx.temp_descs.push_back(pd.src_desc());
    }
    // A blocked output stays blocked for consumers that accept it (the plan decides).
    if (pd.dst_desc() != dst_user) ctx.dst_descs.at(0) = pd.dst_desc();
    auto activation = ActivationStep::make(activation_, ctx.dst_descs.at(0), ctx);
    return std::make_unique<ConvKernel>(dnnl::convolution_forward(pd), onednn::impl_name(pd),
                                        weights, bias, src_given, pd.dst_desc(),
                                        std::move(src_reorder), src_temp, std::move(activation));
  }

  bool accepts_blocked_inputs() const override { return true; }

 private:
  std::string op_name() const { return spatial_ == 1 ? "conv1d" : "conv2d"; }

  std::vector<WindowAxis> axes(const Dims& in_shape) const {
    std::vector<WindowAxis> out;
    for (int i = 0; i < spatial_; ++i)
      out.push_back({in_shape[1 + i], kernel_[i], strides_[i], dilation_[i]});
    return out;
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
