// batch_normalization (Keras BatchNormalization) at inference:
//   y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta
// over the channels on `axis`. Runs oneDNN batch_normalization_forward with global statistics.
#include <fmt/format.h>

#include <cmath>

#include "framework/op_fusion.hpp"
#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {
namespace {

class BatchNormalization final : public Op, public ChannelAffineOp {
 public:
  void parse(AttrReader& attrs) override {
    axis_ = static_cast<int>(attrs.get_int("axis", -1));
    epsilon_ = attrs.get_float("epsilon", 0.001);
    if (!(epsilon_ > 0))
      throw attrs.error("epsilon", fmt::format("epsilon must be > 0, got {}", epsilon_));
    momentum_ = attrs.get_float("momentum", 0.99);  // training only; accepted and ignored
    center_ = attrs.get_bool("center", true);
    scale_ = attrs.get_bool("scale", true);
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    ctx.expect_rank_at_least(0, 2);
    ctx.expect_dtype(0, DType::f32);
    channels(ctx);          // validates the axis
    return {ctx.input(0)};  // the mask (if any) passes on
  }

  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    const Dim c = channels(ctx);
    if (c == kDynamic)
      throw ctx.input_error(0, fmt::format("batch_normalization needs a known size on axis {} to "
                                           "create its weights, got input shape {}",
                                           axis_, format_shape(ctx.input(0).shape)));
    std::vector<WeightSpec> specs;
    if (scale_) specs.push_back({"gamma", {c}, Init::ones});
    if (center_) specs.push_back({"beta", {c}, Init::zeros});
    WeightSpec mean{"moving_mean", {c}, Init::zeros};
    mean.trainable = false;
    WeightSpec var{"moving_variance", {c}, Init::ones};
    var.trainable = false;
    specs.push_back(mean);
    specs.push_back(var);
    return specs;
  }

  bool supports_masking() const override { return true; }

  // Over the last axis, y = x * scale + shift with scale = gamma / sqrt(var + epsilon) and
  // shift = beta - mean * scale (computed in double): what the plan fuses into a preceding conv.
  bool channel_affine(const TensorType& input, const WeightViewLookup& weight,
                      std::vector<float>& scale, std::vector<float>& shift) const override {
    const int rank = static_cast<int>(input.shape.size());
    if (normalize_axis(axis_, rank) != rank - 1) return false;
    const Dim c = input.shape.back();
    const float* mean = weight("moving_mean").data;
    const float* var = weight("moving_variance").data;
    const float* gamma = scale_ ? weight("gamma").data : nullptr;
    const float* beta = center_ ? weight("beta").data : nullptr;
    scale.resize(static_cast<size_t>(c));
    shift.resize(static_cast<size_t>(c));
    for (Dim i = 0; i < c; ++i) {
      const double s = (gamma ? gamma[i] : 1.0) / std::sqrt(static_cast<double>(var[i]) + epsilon_);
      scale[i] = static_cast<float>(s);
      shift[i] = static_cast<float>((beta ? beta[i] : 0.0) - mean[i] * s);
    }
    return true;
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const Dims& shape = ctx.inputs[0].shape;
    const int rank = static_cast<int>(shape.size());
    const int axis = normalize_axis(axis_, rank);
    Dim outer = 1, inner = 1;
    for (int i = 0; i < axis; ++i) outer = dim_mul(outer, shape[i]);
    for (int i = axis + 1; i < rank; ++i) inner = dim_mul(inner, shape[i]);
    const Dim c = shape[axis];
    // oneDNN wants the channels on logical dim 1. Last axis: [N, mid, C] bytes are nhwc with
    // W = 1 (the fast nspc kernels); any other axis: [outer, C, inner] bytes are nchw with W = 1.
    dnnl::memory::desc view;
    if (axis == rank - 1) {
      Dim mid = 1;
      for (int i = 1; i < axis; ++i) mid = dim_mul(mid, shape[i]);
      view = dnnl::memory::desc({shape[0], c, mid, 1}, onednn::dt::f32, onednn::tag::nhwc);
    } else {
      view = dnnl::memory::desc({outer, c, inner, 1}, onednn::dt::f32, onednn::tag::nchw);
    }
    auto pd = onednn::make_batch_norm_pd(view, static_cast<float>(epsilon_), scale_, center_);
    const auto vec = onednn::plain_desc(Dims{c});
    // The plain src/dst bytes seen through the channels-on-dim-1 view.
    std::vector<std::pair<int, CallArg>> args{
        {DNNL_ARG_SRC, CallArg::src(0, view)},
        {DNNL_ARG_DST, CallArg::dst(0, view)},
        {DNNL_ARG_MEAN, CallArg::constant(ctx.weight_memory("moving_mean", vec, pd.mean_desc()))},
        {DNNL_ARG_VARIANCE,
         CallArg::constant(ctx.weight_memory("moving_variance", vec, pd.variance_desc()))}};
    if (scale_)
      args.push_back({DNNL_ARG_SCALE, CallArg::constant(ctx.weight_memory("gamma", vec, vec))});
    if (center_)
      args.push_back({DNNL_ARG_SHIFT, CallArg::constant(ctx.weight_memory("beta", vec, vec))});
    PrimitiveSequence calls;
    calls.add(pd, std::move(args), build);
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls));
    return build;
  }

 private:
  Dim channels(const InferContext& ctx) const {
    const int rank = ctx.input(0).rank();
    const int axis = normalize_axis(axis_, rank);
    if (axis < 0)
      throw ctx.attr_error(
          "axis", fmt::format("axis {} is out of range for a rank-{} input {} "
                              "(valid: {} to {})",
                              axis_, rank, format_shape(ctx.input(0).shape), -rank, rank - 1));
    if (axis == 0)
      throw ctx.attr_error("axis", "batch_normalization cannot normalize over the batch axis 0");
    return ctx.input(0).shape[axis];
  }

  int axis_ = -1;
  double epsilon_ = 0.001, momentum_ = 0.99;
  bool center_ = true, scale_ = true;
};

}  // namespace

OpInfo batch_normalization_op() {
  return {"batch_normalization", [] { return std::make_unique<BatchNormalization>(); },
          "Keras BatchNormalization at inference (moving statistics)"};
}

}  // namespace fg::layers
