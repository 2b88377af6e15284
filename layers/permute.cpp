// Keras Permute: reorders the per-sample axes, `dims` a permutation of 1..rank-1 (1-indexed, the
// batch axis stays first), output axis i (1-based) is input axis dims[i-1]. One oneDNN reorder
// from the input's bytes seen with the output's dims and permuted strides into the plain
// output; the gradient is the same reorder the other way (dy plain into dx seen permuted).
#include <fmt/format.h>

#include <algorithm>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

// The input (full shape `in`) seen with the output's dims: strides of input axis perm[i].
dnnl::memory::desc permuted_view(const Dims& in, const std::vector<int64_t>& perm, DType dtype) {
  std::vector<int64_t> strides(in.size(), 1);
  for (size_t d = in.size() - 1; d-- > 0;) strides[d] = strides[d + 1] * in[d + 1];
  dnnl::memory::dims dims, view_strides;
  for (int64_t p : perm) {
    dims.push_back(in[p]);
    view_strides.push_back(strides[p]);
  }
  return dnnl::memory::desc(dims, onednn::to_dnnl(dtype), view_strides);
}

class Permute final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    dims_ = attrs.get_int_list("dims");
    std::vector<int64_t> sorted = dims_;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size(); ++i)
      if (sorted[i] != static_cast<int64_t>(i) + 1)
        throw attrs
            .error("dims", fmt::format("dims {} is not a permutation of 1..{}", format_shape(dims_),
                                       dims_.size()))
            .hint(
                "dims lists the per-sample axes from 1 (the batch axis 0 stays first), "
                "e.g. [2, 1] swaps steps and channels");
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const TensorType& x = ctx.input(0);
    if (x.rank() != static_cast<int>(dims_.size()) + 1)
      throw ctx.attr_error("dims", fmt::format("dims {} has {} entries for the input {}, which "
                                               "has {} axes after the batch",
                                               format_shape(dims_), dims_.size(),
                                               format_shape(x.shape), x.rank() - 1));
    TensorType out = x;
    out.masked = false;
    for (size_t i = 0; i < dims_.size(); ++i) out.shape[i + 1] = x.shape[dims_[i]];
    return {out};
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const auto view = permuted_view(ctx.inputs[0].shape, permutation(), ctx.inputs[0].dtype);
    PrimitiveSequence calls;
    calls.add(onednn::make_reorder_pd(view, build.dst_descs[0]),
              {{DNNL_ARG_FROM, CallArg::src(0, view)}, {DNNL_ARG_TO, CallArg::dst(0)}}, build);
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls));
    return build;
  }

  bool has_gradient() const override { return true; }
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    build = start_training_build(ctx, {});
    const BackwardArgs a = backward_args(ctx, 0);
    const auto view = permuted_view(ctx.inputs[0].shape, permutation(), DType::f32);
    const auto out = onednn::plain_desc(ctx.outputs[0].shape, DType::f32);
    PrimitiveSequence fwd, bwd;
    fwd.add(onednn::make_reorder_pd(view, out),
            {{DNNL_ARG_FROM, CallArg::src(0, view)}, {DNNL_ARG_TO, CallArg::dst(0)}},
            build.forward);
    if (ctx.needs_input_gradient[0])
      bwd.add(onednn::make_reorder_pd(out, view),
              {{DNNL_ARG_FROM, CallArg::src(a.diff_output(0))},
               {DNNL_ARG_TO, CallArg::dst(a.diff_input(0), view)}},
              build.backward);
    build.forward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(fwd));
    build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(bwd));
  }

 private:
  std::vector<int64_t> permutation() const {  // full axes, batch included
    std::vector<int64_t> p{0};
    p.insert(p.end(), dims_.begin(), dims_.end());
    return p;
  }
  std::vector<int64_t> dims_;
};

}  // namespace

OpInfo permute_op() {
  return {"permute", [] { return std::make_unique<Permute>(); },
          "Keras Permute: reorders the per-sample axes"};
}

}  // namespace fg::layers
