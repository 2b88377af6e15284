// Keras Softmax layer: softmax over `axis` (default -1). oneDNN softmax_v2_forward. oneDNN 2.6
// only has a jit kernel when the axis is innermost in memory; for another axis the kernel
// reorders into a temporary with that axis innermost, runs softmax in place there and reorders
// back (three jit passes, about 12x faster than the ref:any kernel on a middle axis).
#include <fmt/format.h>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

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
    return t;
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
