// batch_normalization (Keras BatchNormalization) at inference:
//   y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta
// over the channels on `axis`. Runs oneDNN batch_normalization_forward with global statistics.
//
// Training (Keras 3): oneDNN batch_normalization_forward (forward_training, use_scale /
// use_shift) normalises with the batch's mean and biased variance over every axis but `axis`
// (saved for the backward), then C++ updates moving_mean / moving_variance in place in their
// weight srcs: moving = moving * momentum + batch * (1 - momentum). The backward is
// batch_normalization_backward (prop_kind::backward: d x, d gamma, d beta). A frozen node runs
// in inference mode (moving statistics, no update) and its d x = d y * gamma / sqrt(var + eps)
// is plain C++.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "framework/op_fusion.hpp"
#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

dnnl::normalization_flags bn_flags(bool global_stats, bool scale, bool shift) {
  unsigned flags = 0;
  if (global_stats) flags |= static_cast<unsigned>(dnnl::normalization_flags::use_global_stats);
  if (scale) flags |= static_cast<unsigned>(dnnl::normalization_flags::use_scale);
  if (shift) flags |= static_cast<unsigned>(dnnl::normalization_flags::use_shift);
  return static_cast<dnnl::normalization_flags>(flags);
}

// The training forward: the primitive (batch statistics into the saved mean / variance), then
// the moving statistics' update in place.
class BatchNormTrainingKernel final : public PrimitiveSequenceKernel {
 public:
  BatchNormTrainingKernel(PrimitiveSequence calls, Dim channels, float momentum, int moving_mean,
                          int moving_variance, int batch_mean, int batch_variance)
      : PrimitiveSequenceKernel(std::move(calls)),
        c_(channels),
        momentum_(momentum),
        moving_mean_(moving_mean),
        moving_variance_(moving_variance),
        batch_mean_(batch_mean),
        batch_variance_(batch_variance) {}

  void execute(ExecContext& ctx) const override {
    PrimitiveSequenceKernel::execute(ctx);
    ctx.stream.wait();
    auto* mm = static_cast<float*>(ctx.srcs[moving_mean_].get_data_handle());
    auto* mv = static_cast<float*>(ctx.srcs[moving_variance_].get_data_handle());
    const auto* bm = static_cast<const float*>(ctx.dsts[batch_mean_].get_data_handle());
    const auto* bv = static_cast<const float*>(ctx.dsts[batch_variance_].get_data_handle());
    for (Dim k = 0; k < c_; ++k) {
      mm[k] = mm[k] * momentum_ + bm[k] * (1 - momentum_);
      mv[k] = mv[k] * momentum_ + bv[k] * (1 - momentum_);
    }
  }

 private:
  Dim c_;
  float momentum_;
  int moving_mean_, moving_variance_, batch_mean_, batch_variance_;
};

// The training backward: the primitive (d x, d gamma, d beta), then zeros for the moving
// statistics' gradients (the batch-statistics forward does not read them).
class BatchNormBackwardKernel final : public PrimitiveSequenceKernel {
 public:
  BatchNormBackwardKernel(PrimitiveSequence calls, Dim channels, int d_moving_mean,
                          int d_moving_variance)
      : PrimitiveSequenceKernel(std::move(calls)),
        c_(channels),
        d_mean_(d_moving_mean),
        d_variance_(d_moving_variance) {}

  void execute(ExecContext& ctx) const override {
    PrimitiveSequenceKernel::execute(ctx);
    for (int i : {d_mean_, d_variance_})
      std::fill_n(static_cast<float*>(ctx.dsts[i].get_data_handle()), c_, 0.0f);
  }

 private:
  Dim c_;
  int d_mean_, d_variance_;
};

// The frozen (inference-mode) backward: dx = dy * gamma[c] / sqrt(moving_variance[c] + eps) over
// the [outer, c, inner] view.
class BatchNormFrozenBackwardKernel final : public Kernel {
 public:
  BatchNormFrozenBackwardKernel(Dim outer, Dim c, Dim inner, double epsilon, int gamma,
                                int variance, int dy)
      : outer_(outer),
        c_(c),
        inner_(inner),
        epsilon_(epsilon),
        gamma_(gamma),
        variance_(variance),
        dy_(dy) {}

  void execute(ExecContext& ctx) const override {
    const auto* var = static_cast<const float*>(ctx.srcs[variance_].get_data_handle());
    const float* gamma =
        gamma_ < 0 ? nullptr : static_cast<const float*>(ctx.srcs[gamma_].get_data_handle());
    const auto* dy = static_cast<const float*>(ctx.srcs[dy_].get_data_handle());
    auto* dx = static_cast<float*>(ctx.dsts[0].get_data_handle());
    const int64_t rows = outer_ * c_;
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const Dim k = r % c_;
      const float s = static_cast<float>((gamma ? gamma[k] : 1.0) /
                                         std::sqrt(static_cast<double>(var[k]) + epsilon_));
      for (Dim i = 0; i < inner_; ++i) dx[r * inner_ + i] = dy[r * inner_ + i] * s;
    }
  }

 private:
  Dim outer_, c_, inner_;
  double epsilon_;
  int gamma_, variance_, dy_;
};

class BatchNormalization final : public Op, public ChannelAffineOp {
 public:
  void parse(AttrReader& attrs) override {
    axis_ = static_cast<int>(attrs.get_int("axis", -1));
    epsilon_ = attrs.get_float("epsilon", 0.001);
    if (!(epsilon_ > 0))
      throw attrs.error("epsilon", fmt::format("epsilon must be > 0, got {}", epsilon_));
    momentum_ = attrs.get_float("momentum", 0.99);  // training only
    if (!(momentum_ >= 0 && momentum_ <= 1))
      throw attrs.error("momentum", fmt::format("momentum must be in [0, 1], got {}", momentum_));
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

  bool has_gradient() const override { return true; }

  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    if (ctx.frozen)
      compile_frozen_training(ctx, build);
    else
      compile_batch_statistics_training(ctx, build);
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const Dim c = ctx.inputs[0].shape[normalize_axis(axis_, ctx.inputs[0].rank())];
    const dnnl::memory::desc view = channels_view(ctx.inputs[0].shape);
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
  // oneDNN wants the channels on logical dim 1. Last axis: [N, mid, C] bytes are nhwc with
  // W = 1 (the fast nspc kernels); any other axis: [outer, C, inner] bytes are nchw with W = 1.
  dnnl::memory::desc channels_view(const Dims& shape) const {
    const int rank = static_cast<int>(shape.size());
    const int axis = normalize_axis(axis_, rank);
    Dim outer = 1, inner = 1, mid = 1;
    for (int i = 0; i < axis; ++i) outer = dim_mul(outer, shape[i]);
    for (int i = axis + 1; i < rank; ++i) inner = dim_mul(inner, shape[i]);
    for (int i = 1; i < axis; ++i) mid = dim_mul(mid, shape[i]);
    const Dim c = shape[axis];
    if (axis == rank - 1)
      return dnnl::memory::desc({shape[0], c, mid, 1}, onednn::dt::f32, onednn::tag::nhwc);
    return dnnl::memory::desc({outer, c, inner, 1}, onednn::dt::f32, onednn::tag::nchw);
  }

  // Weight src indices in the convention (gamma / beta -1 when absent).
  struct WeightIndex {
    int gamma = -1, beta = -1, mean = 0, variance = 0;
  };
  WeightIndex weight_index(int first) const {
    WeightIndex w;
    int next = first;
    if (scale_) w.gamma = next++;
    if (center_) w.beta = next++;
    w.mean = next++;
    w.variance = next;
    return w;
  }

  // Keras 3 training mode: batch statistics (saved: mean, variance {C}), moving update.
  void compile_batch_statistics_training(const TrainingKernelContext& ctx,
                                         TrainingBuild& build) const {
    const Dims& shape = ctx.inputs[0].shape;
    const Dim c = shape[normalize_axis(axis_, ctx.inputs[0].rank())];
    const auto stat = onednn::plain_desc(Dims{c});
    build = start_training_build(ctx, {stat, stat});
    const BackwardArgs a = backward_args(ctx, 2);
    const auto view = channels_view(shape);
    const auto& eng = onednn::cpu_engine();
    const auto flags = bn_flags(false, scale_, center_);
    const auto eps = static_cast<float>(epsilon_);
    dnnl::batch_normalization_forward::desc fd(dnnl::prop_kind::forward_training, view, eps, flags);
    dnnl::batch_normalization_forward::primitive_desc fpd(fd, onednn::make_attr(), eng);
    const WeightIndex fw = weight_index(1);
    std::vector<std::pair<int, CallArg>> fargs{{DNNL_ARG_SRC, CallArg::src(0, view)},
                                               {DNNL_ARG_DST, CallArg::dst(0, view)},
                                               {DNNL_ARG_MEAN, CallArg::dst(1)},
                                               {DNNL_ARG_VARIANCE, CallArg::dst(2)}};
    if (scale_) fargs.push_back({DNNL_ARG_SCALE, CallArg::src(fw.gamma)});
    if (center_) fargs.push_back({DNNL_ARG_SHIFT, CallArg::src(fw.beta)});
    PrimitiveSequence fwd, bwd;
    fwd.add(fpd, std::move(fargs), build.forward);
    build.forward.kernel = std::make_unique<BatchNormTrainingKernel>(
        std::move(fwd), c, static_cast<float>(momentum_), fw.mean, fw.variance, 1, 2);

    // d x, d gamma, d beta in one primitive; d x into a temporary when it is not needed.
    dnnl::batch_normalization_backward::desc bd(dnnl::prop_kind::backward, view, view, eps, flags);
    dnnl::batch_normalization_backward::primitive_desc bpd(bd, onednn::make_attr(), eng, fpd);
    const WeightIndex bw = weight_index(a.weight(0));
    const CallArg dx = ctx.needs_input_gradient[0] ? CallArg::dst(a.diff_input(0), view)
                                                   : CallArg::temp(build.backward.add_temp(view));
    std::vector<std::pair<int, CallArg>> bargs{
        {DNNL_ARG_SRC, CallArg::src(a.input(0), view)},
        {DNNL_ARG_MEAN, CallArg::src(a.saved_tensor(0))},
        {DNNL_ARG_VARIANCE, CallArg::src(a.saved_tensor(1))},
        {DNNL_ARG_DIFF_DST, CallArg::src(a.diff_output(0), view)},
        {DNNL_ARG_DIFF_SRC, dx}};
    int next = a.diff_weight(0);
    if (scale_) {
      bargs.push_back({DNNL_ARG_SCALE, CallArg::src(bw.gamma)});
      bargs.push_back({DNNL_ARG_DIFF_SCALE, CallArg::dst(next++)});
    }
    if (center_) {  // beta is not read, but oneDNN 2.6 asks for it with use_shift
      bargs.push_back({DNNL_ARG_SHIFT, CallArg::src(bw.beta)});
      bargs.push_back({DNNL_ARG_DIFF_SHIFT, CallArg::dst(next++)});
    }
    bwd.add(bpd, std::move(bargs), build.backward);
    build.backward.kernel =
        std::make_unique<BatchNormBackwardKernel>(std::move(bwd), c, next, next + 1);
  }

  // Frozen (trainable: false, Keras 3): inference mode, moving statistics, no update; d x only.
  void compile_frozen_training(const TrainingKernelContext& ctx, TrainingBuild& build) const {
    const Dims& shape = ctx.inputs[0].shape;
    const int rank = static_cast<int>(shape.size());
    const int axis = normalize_axis(axis_, rank);
    build = start_training_build(ctx, {});
    const BackwardArgs a = backward_args(ctx, 0);
    const auto view = channels_view(shape);
    auto pd = onednn::make_batch_norm_pd(view, static_cast<float>(epsilon_), scale_, center_);
    const WeightIndex fw = weight_index(1);
    std::vector<std::pair<int, CallArg>> args{{DNNL_ARG_SRC, CallArg::src(0, view)},
                                              {DNNL_ARG_DST, CallArg::dst(0, view)},
                                              {DNNL_ARG_MEAN, CallArg::src(fw.mean)},
                                              {DNNL_ARG_VARIANCE, CallArg::src(fw.variance)}};
    if (scale_) args.push_back({DNNL_ARG_SCALE, CallArg::src(fw.gamma)});
    if (center_) args.push_back({DNNL_ARG_SHIFT, CallArg::src(fw.beta)});
    PrimitiveSequence fwd;
    fwd.add(pd, std::move(args), build.forward);
    build.forward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(fwd));
    if (!ctx.needs_input_gradient[0]) {
      build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(PrimitiveSequence{});
      return;
    }
    Dim outer = 1, inner = 1;
    for (int i = 0; i < axis; ++i) outer = dim_mul(outer, shape[i]);
    for (int i = axis + 1; i < rank; ++i) inner = dim_mul(inner, shape[i]);
    const WeightIndex bw = weight_index(a.weight(0));
    build.backward.kernel = std::make_unique<BatchNormFrozenBackwardKernel>(
        outer, shape[axis], inner, epsilon_, bw.gamma, bw.variance, a.diff_output(0));
  }

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
