// upsampling2d (Keras UpSampling2D, channels_last): [B, H, W, C] -> [B, H*sh, W*sw, C].
//   interpolation: nearest  repeats every row sh times and every column sw times;
//                  bilinear as tf.image.resize(method=bilinear, antialias=False): half-pixel
//                  centres, source coordinate (o + 0.5) / s - 0.5, clamped to the edge pixels.
// oneDNN resampling_forward (resampling_nearest / resampling_linear) on the plain NHWC bytes.
#include <fmt/format.h>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/onednn/window_training.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/window_geometry.hpp"

namespace fg::layers {
namespace {

class UpSampling2D final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    bilinear_ = attrs.get_choice("interpolation", {"nearest", "bilinear"}, "nearest") == "bilinear";
    parse_channels_last(attrs);
    size_ = attrs.get_positive_ints("size", 2, {2, 2});
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const TensorType& x = ctx.input(0);
    if (x.dtype != DType::f32)
      throw ctx.input_error(
          0, fmt::format("upsampling2d needs a float32 input, got {}", dtype_name(x.dtype)));
    if (x.rank() != 4)
      throw ctx.input_error(0, fmt::format("upsampling2d needs a rank-4 input [batch, height, "
                                           "width, channels], got {}",
                                           format_shape(x.shape)));
    TensorType out = x;
    out.shape[1] = x.shape[1] == kDynamic ? kDynamic : dim_mul(x.shape[1], size_[0]);
    out.shape[2] = x.shape[2] == kDynamic ? kDynamic : dim_mul(x.shape[2], size_[1]);
    return {out};
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const memory_desc_pair views{onednn::channels_first_view(ctx.inputs[0].shape),
                                 onednn::channels_first_view(ctx.outputs[0].shape)};
    PrimitiveSequence calls;
    calls.add(
        onednn::make_resampling_pd(bilinear_, views.src, views.dst),
        {{DNNL_ARG_SRC, CallArg::src(0, views.src)}, {DNNL_ARG_DST, CallArg::dst(0, views.dst)}},
        build);
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls));
    return build;
  }

  bool has_gradient() const override { return true; }

  // Training: oneDNN resampling_forward (forward_training) and resampling_backward on the plain
  // NHWC bytes. Nothing is saved: the gradient of a resampling is linear in d output only
  // (nearest: each input cell sums the d output of the sh x sw cells it was copied to; bilinear:
  // each d output is spread back over its (up to) four source cells with the forward weights).
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const memory_desc_pair views{onednn::channels_first_view(ctx.inputs[0].shape),
                                 onednn::channels_first_view(ctx.outputs[0].shape)};
    const onednn::ResamplingTrainingPds pds =
        onednn::make_resampling_training_pds(bilinear_, views.src, views.dst);
    build = start_training_build(ctx, {});
    const BackwardArgs a = backward_args(ctx, 0);
    PrimitiveSequence fwd, bwd;
    fwd.add(
        pds.forward,
        {{DNNL_ARG_SRC, CallArg::src(0, views.src)}, {DNNL_ARG_DST, CallArg::dst(0, views.dst)}},
        build.forward);
    if (ctx.needs_input_gradient[0])
      bwd.add(pds.backward,
              {{DNNL_ARG_DIFF_DST, CallArg::src(a.diff_output(0), views.dst)},
               {DNNL_ARG_DIFF_SRC, CallArg::dst(a.diff_input(0), views.src)}},
              build.backward);
    build.forward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(fwd));
    build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(bwd));
  }

 private:
  struct memory_desc_pair {
    dnnl::memory::desc src, dst;
  };
  std::vector<int64_t> size_{2, 2};
  bool bilinear_ = false;
};

}  // namespace

OpInfo upsampling2d_op() {
  return {"upsampling2d", [] { return std::make_unique<UpSampling2D>(); },
          "Keras UpSampling2D: nearest or bilinear (half-pixel) upsampling (oneDNN resampling)"};
}

}  // namespace fg::layers
