// The kernel of ops whose output is input 0's bytes seen with another shape (flatten, reshape):
// one reorder into the output seen with the input's dims. An optimizing plan aliases such
// outputs instead (Op::is_view), and then this kernel does not run.
#pragma once

#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {

class ViewCopyKernel final : public Kernel {
 public:
  ViewCopyKernel(dnnl::reorder::primitive_desc pd, dnnl::memory::desc dst_view)
      : prim_(pd), impl_(onednn::impl_name(pd)), dst_view_(std::move(dst_view)) {}

  void execute(ExecContext& ctx) const override {
    dnnl::memory dst = onednn::view_as(ctx.dsts[0], dst_view_);
    execute_primitive(prim_, ctx, {{DNNL_ARG_FROM, ctx.srcs[0]}, {DNNL_ARG_TO, dst}});
  }
  std::string impl_info() const override { return impl_; }

 private:
  dnnl::reorder prim_;
  std::string impl_;
  dnnl::memory::desc dst_view_;
};

}  // namespace fg::layers
