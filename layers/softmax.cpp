// Keras Softmax layer: softmax over `axis` (default -1). oneDNN softmax_v2_forward. oneDNN 2.6
// only has a jit kernel when the axis is innermost in memory; for another axis the kernel
// reorders into a temporary with that axis innermost, runs softmax in place there and reorders
// back (three jit passes, about 12x faster than the ref:any kernel on a middle axis).
#include <fmt/format.h>

#include "layers/builtin_ops.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {
namespace {

class MiddleAxisSoftmaxKernel final : public Kernel {
 public:
  MiddleAxisSoftmaxKernel(dnnl::primitive to_tmp, dnnl::primitive softmax, dnnl::primitive from_tmp,
                          std::string impl)
      : to_tmp_(std::move(to_tmp)),
        softmax_(std::move(softmax)),
        from_tmp_(std::move(from_tmp)),
        impl_(std::move(impl)) {}

  void execute(ExecContext& ctx) const override {
    const dnnl::memory& tmp = ctx.temps[0];
    execute_primitive(to_tmp_, ctx, {{DNNL_ARG_FROM, ctx.srcs[0]}, {DNNL_ARG_TO, tmp}});
    execute_primitive(softmax_, ctx, {{DNNL_ARG_SRC, tmp}, {DNNL_ARG_DST, tmp}});
    execute_primitive(from_tmp_, ctx, {{DNNL_ARG_FROM, tmp}, {DNNL_ARG_TO, ctx.dsts[0]}});
  }
  std::string impl_info() const override { return impl_; }

 private:
  dnnl::primitive to_tmp_, softmax_, from_tmp_;
  std::string impl_;
};

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
  bool outputs_probabilities() const override { return axis_ == -1; }

  std::unique_ptr<Kernel> compile(KernelContext& ctx) const override {
    const TensorType& x = ctx.inputs[0];
    const int axis = normalize_axis(static_cast<int>(axis_), x.rank());
    const auto& src = ctx.src_descs[0];
    const auto& dst = ctx.dst_descs[0];
    // Plain layouts: the axis is innermost when every dim after it is 1.
    Dim inner = 1;
    for (int i = axis + 1; i < x.rank(); ++i) inner *= x.shape[i];
    if (inner == 1 || axis == x.rank() - 1) {
      auto pd = onednn::make_softmax_pd(src, dst, axis, false);
      ctx.add_scratchpad(pd);
      return std::make_unique<PrimitiveKernel>(dnnl::softmax_v2_forward(pd), onednn::impl_name(pd),
                                               std::vector<std::pair<int, dnnl::memory>>{});
    }
    const auto tmp = onednn::axis_innermost_desc(onednn::to_dims(x.shape), onednn::dt::f32, axis);
    ctx.temp_descs.push_back(tmp);
    auto to_pd = onednn::make_reorder_pd(src, tmp);
    ctx.add_scratchpad(to_pd);
    auto sm_pd = onednn::make_softmax_pd(tmp, tmp, axis, false);
    auto from_pd = onednn::make_reorder_pd(tmp, dst);
    ctx.add_scratchpad(from_pd);
    std::string impl = onednn::impl_name(to_pd) + " + " + onednn::impl_name(sm_pd) + " + " +
                       onednn::impl_name(from_pd);
    return std::make_unique<MiddleAxisSoftmaxKernel>(dnnl::reorder(to_pd),
                                                     dnnl::softmax_v2_forward(sm_pd),
                                                     dnnl::reorder(from_pd), std::move(impl));
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
