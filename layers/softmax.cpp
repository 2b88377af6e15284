// Keras Softmax layer: softmax over `axis` (default -1). oneDNN softmax_v2_forward. oneDNN 2.6
// only has a jit kernel when the axis is innermost in memory; for another axis the kernel
// reorders into a temporary with that axis innermost, runs softmax in place there and reorders
// back (three jit passes, about 12x faster than the ref:any kernel on a middle axis).
//
// Training: softmax_v2_forward (forward_training) and softmax_v2_backward over the same axis, on
// the plain buffers or (another axis) in temporaries with the axis innermost; the backward reads
// the forward's output, nothing is saved.
#include <fmt/format.h>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

class Softmax final : public Op {
 public:
  void parse(AttrReader& attrs) override { axis_ = attrs.get_int("axis", -1); }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    ctx.expect_dtype(0, DType::f32);
    const TensorType& x = ctx.input(0);
    if (normalize_axis(static_cast<int>(axis_), x.rank()) < 0 || axis_ != static_cast<int>(axis_))
      throw ctx.attr_error(
          "axis", fmt::format("axis {} is out of range for the rank-{} input {}: "
                              "use {}..{}",
                              axis_, x.rank(), format_shape(x.shape), -x.rank(), x.rank() - 1));
    return {x};  // the mask passes on (it is not applied: see docs)
  }

  bool supports_masking() const override { return true; }
  OpTraits traits() const override {
    OpTraits t;
    t.outputs_probabilities = axis_ == -1;
    if (axis_ == -1) t.final_activation = "softmax";
    return t;
  }

  bool has_gradient() const override { return true; }

  // forward y = softmax(x) over the axis; backward dx = y * (dy - sum over the axis of dy * y).
  // With ctx.output_logits (last axis only: the loss takes the softmax) both are copies. A
  // non-innermost axis runs in temporaries with the axis innermost, as compile() does.
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    build = start_training_build(ctx, {});
    const BackwardArgs a = backward_args(ctx, 0);
    const TensorType& x = ctx.inputs[0];
    const auto desc = onednn::plain_desc(x);
    PrimitiveSequence fwd, bwd;
    const CallArg dy = CallArg::src(a.diff_output(0)), dx = CallArg::dst(a.diff_input(0));
    auto copy = [&](const dnnl::memory::desc& from_desc, const CallArg& from,
                    const dnnl::memory::desc& to_desc, const CallArg& to, PrimitiveSequence& calls,
                    KernelBuild& kb) {
      calls.add(onednn::make_reorder_pd(from_desc, to_desc),
                {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, kb);
    };
    if (ctx.output_logits && !traits().final_activation.empty()) {
      copy(desc, CallArg::src(0), desc, CallArg::dst(0), fwd, build.forward);
      if (ctx.needs_input_gradient[0]) copy(desc, dy, desc, dx, bwd, build.backward);
    } else {
      const int axis = normalize_axis(static_cast<int>(axis_), x.rank());
      Dim inner = 1;
      for (int i = axis + 1; i < x.rank(); ++i) inner *= x.shape[i];
      const bool direct = inner == 1;
      // Where the softmax runs: the plain buffers, or temporaries with the axis innermost.
      const auto work =
          direct ? desc
                 : onednn::axis_innermost_desc(onednn::to_dims(x.shape), onednn::dt::f32, axis);
      const auto alg = dnnl::algorithm::softmax_accurate;
      const auto& eng = onednn::cpu_engine();
      dnnl::softmax_v2_forward::desc fd(dnnl::prop_kind::forward_training, alg, work, work, axis);
      dnnl::softmax_v2_forward::primitive_desc fpd(fd, onednn::make_attr(), eng);
      const CallArg t0 = direct ? CallArg::dst(0) : CallArg::temp(build.forward.add_temp(work));
      if (!direct) copy(desc, CallArg::src(0), work, t0, fwd, build.forward);
      fwd.add(fpd, {{DNNL_ARG_SRC, direct ? CallArg::src(0) : t0}, {DNNL_ARG_DST, t0}},
              build.forward);
      if (!direct) copy(work, t0, desc, CallArg::dst(0), fwd, build.forward);
      if (ctx.needs_input_gradient[0]) {
        dnnl::softmax_v2_backward::desc bd(alg, work, work, work, axis);
        dnnl::softmax_v2_backward::primitive_desc bpd(bd, onednn::make_attr(), eng, fpd);
        CallArg y = CallArg::src(a.output(0)), d = dy, out = dx;
        if (!direct) {  // y and dy into temporaries; d x in place of d y there
          y = CallArg::temp(build.backward.add_temp(work));
          d = out = CallArg::temp(build.backward.add_temp(work));
          copy(desc, CallArg::src(a.output(0)), work, y, bwd, build.backward);
          copy(desc, dy, work, d, bwd, build.backward);
        }
        bwd.add(bpd, {{DNNL_ARG_DST, y}, {DNNL_ARG_DIFF_DST, d}, {DNNL_ARG_DIFF_SRC, out}},
                build.backward);
        if (!direct) copy(work, out, desc, dx, bwd, build.backward);
      }
    }
    build.forward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(fwd));
    build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(bwd));
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const TensorType& x = ctx.inputs[0];
    const int axis = normalize_axis(static_cast<int>(axis_), x.rank());
    const auto& src = build.src_descs[0];
    const auto& dst = build.dst_descs[0];
    PrimitiveSequence calls;
    // Plain layouts: the axis is innermost when every dim after it is 1.
    Dim inner = 1;
    for (int i = axis + 1; i < x.rank(); ++i) inner *= x.shape[i];
    if (inner == 1 || axis == x.rank() - 1) {
      calls.add(onednn::make_softmax_pd(src, dst, axis, false),
                {{DNNL_ARG_SRC, CallArg::src(0)}, {DNNL_ARG_DST, CallArg::dst(0)}}, build);
      build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls));
      return build;
    }
    // Another axis: into a temporary with the axis innermost, softmax in place there, back.
    const auto tmp = onednn::axis_innermost_desc(onednn::to_dims(x.shape), onednn::dt::f32, axis);
    const CallArg t = CallArg::temp(build.add_temp(tmp));
    auto to_pd = onednn::make_reorder_pd(src, tmp);
    auto sm_pd = onednn::make_softmax_pd(tmp, tmp, axis, false);
    auto from_pd = onednn::make_reorder_pd(tmp, dst);
    calls.add(to_pd, {{DNNL_ARG_FROM, CallArg::src(0)}, {DNNL_ARG_TO, t}}, build);
    calls.add(sm_pd, {{DNNL_ARG_SRC, t}, {DNNL_ARG_DST, t}}, build);
    calls.add(from_pd, {{DNNL_ARG_FROM, t}, {DNNL_ARG_TO, CallArg::dst(0)}}, build);
    std::string impl = onednn::impl_name(to_pd) + " + " + onednn::impl_name(sm_pd) + " + " +
                       onednn::impl_name(from_pd);
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls), std::move(impl));
    return build;
  }

 private:
  int64_t axis_ = -1;
};

}  // namespace

OpInfo softmax_op() {
  return {"softmax", [] { return std::make_unique<Softmax>(); },
          "Keras Softmax layer over `axis` (oneDNN softmax)"};
}

}  // namespace fg::layers
