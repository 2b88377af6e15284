// Pooling descriptors (oneDNN 2.x API) for layers/pooling.cpp and
// layers/global_pooling.cpp.
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

dnnl::pooling_forward::primitive_desc make_pool_pd(bool max, const memory::desc& src,
                                                   const memory::desc& dst,
                                                   const memory::dims& kernel,
                                                   const WindowGeometry& g,
                                                   const dnnl::engine& engine) {
  // Keras averages over the window cells inside the input only (TF's "SAME" average pooling).
  const auto alg =
      max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding;
  dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, dst, g.strides,
                                kernel, g.pad_l, g.pad_r);
  return dnnl::pooling_forward::primitive_desc(d, make_attr(), engine);
}

}  // namespace fg::onednn
