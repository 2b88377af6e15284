// The training kernels of ops whose output is input 0's bytes seen with another shape (flatten,
// reshape): in training there are no views, so the forward copies the input into the output and
// the backward copies d output into d input (the same bytes in the same C order), each one oneDNN
// reorder over the plain buffers seen with the input's dims.
#pragma once

#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {

inline void compile_copy_training(const TrainingKernelContext& ctx, TrainingBuild& build) {
  build = start_training_build(ctx, {});
  const BackwardArgs a = backward_args(ctx, 0);
  const auto view = onednn::plain_desc(ctx.inputs[0]);
  const auto diff_view = onednn::plain_desc(ctx.inputs[0].shape, DType::f32);
  if (view.get_size() != build.forward.dst_descs[0].get_size())
    throw ctx.error("internal: the output's size differs from the input's");
  PrimitiveSequence fwd, bwd;
  fwd.add(onednn::make_reorder_pd(view, view),
          {{DNNL_ARG_FROM, CallArg::src(0, view)}, {DNNL_ARG_TO, CallArg::dst(0, view)}},
          build.forward);
  if (ctx.needs_input_gradient[0])
    bwd.add(onednn::make_reorder_pd(diff_view, diff_view),
            {{DNNL_ARG_FROM, CallArg::src(a.diff_output(0), diff_view)},
             {DNNL_ARG_TO, CallArg::dst(a.diff_input(0), diff_view)}},
            build.backward);
  build.forward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(fwd));
  build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(bwd));
}

}  // namespace fg::layers
