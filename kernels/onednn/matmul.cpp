// Descriptor building for tensor_fusion, low_rank_fusion and cross_attention (oneDNN 2.x API).
#include <fmt/format.h>

#include "framework/error.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

memory::desc strided_desc(const memory::dims& dims, const memory::dims& strides) {
  if (dims.size() != strides.size())
    throw Error(fmt::format("internal: strided_desc with {} dims and {} strides", dims.size(),
                            strides.size()));
  return memory::desc(dims, dt::f32, strides);
}

dnnl::matmul::primitive_desc make_matmul_pd(const memory::desc& src, const memory::desc& weights,
                                            const memory::desc& bias, const memory::desc& dst,
                                            float scale) {
  dnnl::primitive_attr attr = make_attr();
  if (scale != 1.f) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, scale, 0.f);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::desc d(src, weights, bias, dst);
  return dnnl::matmul::primitive_desc(d, attr, cpu_engine());
}

}  // namespace fg::onednn
