// Descriptor building for the fusion ops weighted_average, gated, film and upsampling2d
// (oneDNN 2.x API).
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

dnnl::binary::primitive_desc make_scaled_binary_pd(dnnl::algorithm alg, const memory::desc& src0,
                                                   const memory::desc& src1,
                                                   const memory::desc& dst, float scale0,
                                                   float scale1) {
  dnnl::binary::desc d(alg, src0, src1, dst);
  dnnl::primitive_attr attr = make_attr();
  if (scale0 != 1.f) attr.set_scales(DNNL_ARG_SRC_0, 0, {scale0});
  if (scale1 != 1.f) attr.set_scales(DNNL_ARG_SRC_1, 0, {scale1});
  return dnnl::binary::primitive_desc(d, attr, cpu_engine());
}

dnnl::binary::primitive_desc make_binary_chain_pd(dnnl::algorithm alg, const memory::desc& src0,
                                                  const memory::desc& src1, const memory::desc& dst,
                                                  const std::vector<BinaryPostOp>& post_ops) {
  dnnl::binary::desc d(alg, src0, src1, dst);
  dnnl::primitive_attr attr = make_attr();
  dnnl::post_ops ops;
  for (const auto& p : post_ops) ops.append_binary(p.alg, p.src1);
  attr.set_post_ops(ops);
  return dnnl::binary::primitive_desc(d, attr, cpu_engine());
}

dnnl::resampling_forward::primitive_desc make_resampling_pd(bool linear, const memory::desc& src,
                                                            const memory::desc& dst) {
  const auto alg =
      linear ? dnnl::algorithm::resampling_linear : dnnl::algorithm::resampling_nearest;
  dnnl::resampling_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, dst);
  return dnnl::resampling_forward::primitive_desc(d, make_attr(), cpu_engine());
}

dnnl::matmul::primitive_desc make_activation_matmul_pd(const memory::desc& src,
                                                       const memory::desc& weights,
                                                       const memory::desc& dst) {
  dnnl::matmul::desc d(src, weights, dst);
  return dnnl::matmul::primitive_desc(d, make_attr(), cpu_engine());
}

}  // namespace fg::onednn
