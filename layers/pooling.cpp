// max_pooling1d/2d and average_pooling1d/2d (Keras MaxPooling*/AveragePooling*, channels-last),
// on oneDNN pooling_forward. One class serves all four.
#include <fmt/format.h>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/onednn/window_training.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/window_geometry.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

class Pooling final : public Op {
 public:
  Pooling(int spatial, bool max) : spatial_(spatial), max_(max) {}

  void parse(AttrReader& attrs) override {
    const size_t n = static_cast<size_t>(spatial_);
    pool_ = attrs.get_positive_ints("pool_size", n, std::vector<int64_t>(n, 2));
    // Keras strides=None (absent or null) means strides = pool_size.
    strides_ = attrs.get_positive_ints("strides", n, pool_);
    padding_ = attrs.get_choice("padding", {"valid", "same"}, "valid");
    parse_channels_last(attrs);
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const TensorType& in = ctx.input(0);
    const std::string op = op_name();
    expect_float_input(ctx, op, "pooling");
    if (in.rank() != spatial_ + 2) {
      const std::string layout =
          spatial_ == 1 ? "[batch, steps, channels]" : "[batch, height, width, channels]";
      throw ctx
          .input_error(0, fmt::format("{} needs a rank-{} input {}, got rank {} with shape {}", op,
                                      spatial_ + 2, layout, in.rank(), format_shape(in.shape)))
          .hint(spatial_ == 1
                    ? "add a channels axis with reshape (target_shape [steps, 1])"
                    : "add a channels axis with reshape (target_shape [height, width, 1])");
    }
    Dims out{in.shape[0]};
    for (Dim d : window_output_dims(ctx, axes(in.shape), padding_, "pool_size")) out.push_back(d);
    out.push_back(in.shape.back());
    return {TensorType{out, DType::f32, false}};
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const TensorType& in = ctx.inputs.at(0);
    // Plain nwc/nhwc in and out (blocked layouts are faster inside oneDNN but reorders in and out
    // of a lone pooling cost more than they save), or, after a convolution that wrote a blocked
    // layout, that layout in and out: no reorders in a convolution / pooling chain.
    const bool plain_src = ctx.input_descs.at(0) == onednn::plain_desc(in);
    const memory::desc src =
        plain_src ? onednn::channels_first_view(in.shape) : ctx.input_descs.at(0);
    const memory::desc dst_plain = onednn::channels_first_view(ctx.outputs.at(0).shape);
    const memory::desc dst =
        plain_src ? dst_plain : memory::desc(dst_plain.dims(), onednn::dt::f32, onednn::tag::any);
    auto pd = onednn::make_pool_pd(max_, src, dst, memory::dims(pool_.begin(), pool_.end()),
                                   geometry(in.shape), ctx.engine);
    if (pd.dst_desc() != dst_plain) build.dst_descs.at(0) = pd.dst_desc();
    // Plain nwc/nhwc bytes seen channels-first, or blocked ones as they are.
    PrimitiveSequence calls;
    calls.add(
        pd, {{DNNL_ARG_SRC, CallArg::src(0, src)}, {DNNL_ARG_DST, CallArg::dst(0, pd.dst_desc())}},
        build);
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls));
    return build;
  }

  OpTraits traits() const override {
    OpTraits t;
    t.accepts_blocked_inputs = true;
    return t;
  }

  bool has_gradient() const override { return true; }

  // Training, on the plain NWC / NHWC bytes (pooling runs about as fast there as in a blocked
  // layout once the reorders in and out are counted): oneDNN pooling_forward (forward_training)
  // and pooling_backward. Max pooling saves the forward's workspace (where each window's
  // maximum was) and sends each window's gradient to that one input; average pooling spreads
  // it evenly over the window cells inside the input.
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const memory::desc src = onednn::channels_first_view(ctx.inputs[0].shape);
    const memory::desc dst = onednn::channels_first_view(ctx.outputs[0].shape);
    const onednn::PoolTrainingPds pds = onednn::make_pool_training_pds(
        max_, src, dst, memory::dims(pool_.begin(), pool_.end()), geometry(ctx.inputs[0].shape));
    build = start_training_build(ctx, max_ ? std::vector<memory::desc>{pds.forward.workspace_desc()}
                                           : std::vector<memory::desc>{});
    const BackwardArgs a = backward_args(ctx, build.saved_descs.size());
    PrimitiveSequence fwd;
    std::vector<std::pair<int, CallArg>> fwd_args{{DNNL_ARG_SRC, CallArg::src(0, src)},
                                                  {DNNL_ARG_DST, CallArg::dst(0, dst)}};
    if (max_) fwd_args.push_back({DNNL_ARG_WORKSPACE, CallArg::dst(1)});
    fwd.add(pds.forward, std::move(fwd_args), build.forward);
    build.forward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(fwd));

    PrimitiveSequence bwd;
    if (ctx.needs_input_gradient[0]) {
      std::vector<std::pair<int, CallArg>> bwd_args{
          {DNNL_ARG_DIFF_DST, CallArg::src(a.diff_output(0), dst)},
          {DNNL_ARG_DIFF_SRC, CallArg::dst(a.diff_input(0), src)}};
      if (max_) bwd_args.push_back({DNNL_ARG_WORKSPACE, CallArg::src(a.saved_tensor(0))});
      bwd.add(pds.backward, std::move(bwd_args), build.backward);
    }
    build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(bwd));
  }

 private:
  onednn::WindowGeometry geometry(const Dims& in_shape) const {
    onednn::WindowGeometry g;
    for (const WindowAxis& a : axes(in_shape)) {
      const WindowPad pad = window_padding(a, padding_);
      g.strides.push_back(a.s);
      g.dilation.push_back(0);
      g.pad_l.push_back(pad.left);
      g.pad_r.push_back(pad.right);
    }
    return g;
  }

  std::string op_name() const {
    return fmt::format("{}_pooling{}d", max_ ? "max" : "average", spatial_);
  }

  std::vector<WindowAxis> axes(const Dims& in_shape) const {
    std::vector<WindowAxis> out;
    for (int i = 0; i < spatial_; ++i) out.push_back({in_shape[1 + i], pool_[i], strides_[i], 1});
    return out;
  }

  int spatial_;
  bool max_;
  std::vector<int64_t> pool_, strides_;
  std::string padding_ = "valid";
};

}  // namespace

OpInfo max_pooling1d_op() {
  return {"max_pooling1d", [] { return std::make_unique<Pooling>(1, true); },
          "max over windows of steps (Keras MaxPooling1D)"};
}
OpInfo max_pooling2d_op() {
  return {"max_pooling2d", [] { return std::make_unique<Pooling>(2, true); },
          "max over 2D windows (Keras MaxPooling2D)"};
}
OpInfo average_pooling1d_op() {
  return {"average_pooling1d", [] { return std::make_unique<Pooling>(1, false); },
          "mean over windows of steps, padding excluded (Keras AveragePooling1D)"};
}
OpInfo average_pooling2d_op() {
  return {"average_pooling2d", [] { return std::make_unique<Pooling>(2, false); },
          "mean over 2D windows, padding excluded (Keras AveragePooling2D)"};
}

}  // namespace fg::layers
