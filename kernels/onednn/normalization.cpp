// Descriptor building for batch and layer normalization (oneDNN 2.x API).
#include "framework/error.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

namespace {
dnnl::normalization_flags norm_flags(bool global_stats, bool scale, bool shift) {
  unsigned flags = 0;
  if (global_stats) flags |= static_cast<unsigned>(dnnl::normalization_flags::use_global_stats);
  if (scale) flags |= static_cast<unsigned>(dnnl::normalization_flags::use_scale);
  if (shift) flags |= static_cast<unsigned>(dnnl::normalization_flags::use_shift);
  return static_cast<dnnl::normalization_flags>(flags);
}
}  // namespace

dnnl::batch_normalization_forward::primitive_desc make_batch_norm_pd(const memory::desc& data,
                                                                     float epsilon, bool scale,
                                                                     bool shift) {
  dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_inference, data, epsilon,
                                            norm_flags(true, scale, shift));
  return dnnl::batch_normalization_forward::primitive_desc(d, make_attr(), cpu_engine());
}

dnnl::layer_normalization_forward::primitive_desc make_layer_norm_pd(const memory::desc& data,
                                                                     float epsilon, bool scale,
                                                                     bool shift) {
  dnnl::layer_normalization_forward::desc d(dnnl::prop_kind::forward_inference, data, epsilon,
                                            norm_flags(false, scale, shift));
  return dnnl::layer_normalization_forward::primitive_desc(d, make_attr(), cpu_engine());
}

}  // namespace fg::onednn
