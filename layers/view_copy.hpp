// The kernel of ops whose output is input 0's bytes seen with another shape (flatten, reshape,
// dropout at inference): one reorder into the output seen with the input's dims. An optimizing
// plan aliases such outputs instead (Op::is_view), and then this kernel does not run.
#pragma once

#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {

inline KernelBuild compile_view_copy(const KernelContext& ctx) {
  KernelBuild build = ctx.start_build();
  const auto view = onednn::plain_desc(ctx.inputs[0]);
  if (view.get_size() != build.dst_descs[0].get_size())
    throw ctx.error("internal: the output's size differs from the input's");
  PrimitiveSequence calls;
  calls.add(onednn::make_reorder_pd(build.src_descs[0], view),
            {{DNNL_ARG_FROM, CallArg::src(0)}, {DNNL_ARG_TO, CallArg::dst(0, view)}}, build);
  build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls));
  return build;
}

}  // namespace fg::layers
