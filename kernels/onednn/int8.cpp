// int8 pieces shared by the int8 kernels of dense and conv (see onednn.hpp).
#include <fmt/format.h>

#include "framework/error.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

dnnl::reorder::primitive_desc make_quantize_pd(const memory::desc& src, const memory::desc& dst,
                                               float scale) {
  dnnl::primitive_attr attr = make_attr();
  attr.set_output_scales(0, {1.f / scale});
  return dnnl::reorder::primitive_desc(cpu_engine(), src, cpu_engine(), dst, attr);
}

dnnl::primitive_attr int8_output_attr(const dnnl::post_ops& ops, int channel_dim,
                                      const std::vector<float>& scales) {
  dnnl::primitive_attr attr;
  attr.set_output_scales(1 << channel_dim, scales);
  attr.set_post_ops(ops);
  return attr;
}

dnnl::primitive_attr int8_runtime_output_attr(const dnnl::post_ops& ops, int channel_dim) {
  dnnl::primitive_attr attr;
  attr.set_output_scales(1 << channel_dim, {DNNL_RUNTIME_F32_VAL});
  attr.set_post_ops(ops);
  return attr;
}

memory int8_weights(const memory::desc& keras_desc_f32, const void* keras_s8,
                    const memory::desc& want) {
  const memory::desc user = with_data_type(keras_desc_f32, dt::s8);
  memory src(user, cpu_engine(), const_cast<void*>(keras_s8));
  memory dst(want, cpu_engine());
  dnnl::stream stream(cpu_engine());
  reorder_now(src, dst, stream);
  return dst;
}

}  // namespace fg::onednn
