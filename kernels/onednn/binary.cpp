// Descriptor building for binary (elementwise merges) and concat (oneDNN 2.x API).
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

dnnl::binary::primitive_desc make_binary_pd(dnnl::algorithm alg, const memory::desc& src0,
                                            const memory::desc& src1, const memory::desc& dst,
                                            float post_alpha) {
  dnnl::binary::desc d(alg, src0, src1, dst);
  dnnl::primitive_attr attr = make_attr();
  if (post_alpha != 1.f) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, post_alpha, 0.f);
    attr.set_post_ops(ops);
  }
  return dnnl::binary::primitive_desc(d, attr, cpu_engine());
}

dnnl::concat::primitive_desc make_concat_pd(const memory::desc& dst, int axis,
                                            const std::vector<memory::desc>& srcs) {
  return dnnl::concat::primitive_desc(dst, axis, srcs, cpu_engine(), make_attr());
}

}  // namespace fg::onednn
