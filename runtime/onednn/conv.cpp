// Convolution descriptors (oneDNN 2.x API) for layers/conv.cpp.
#include "framework/error.hpp"
#include "runtime/onednn/onednn.hpp"

namespace fg::onednn {

memory::desc keras_conv_kernel_desc(const Dims& keras_kernel_shape) {
  const memory::dims k = to_dims(keras_kernel_shape);
  if (k.size() == 3) return memory::desc({k[2], k[1], k[0]}, dt::f32, tag::wio);
  if (k.size() == 4) return memory::desc({k[3], k[2], k[0], k[1]}, dt::f32, tag::hwio);
  if (k.size() == 5) return memory::desc({k[4], k[3], k[0], k[1], k[2]}, dt::f32, tag::dhwio);
  throw Error("internal: a conv kernel has rank 3 to 5, got " + format_shape(keras_kernel_shape));
}

dnnl::convolution_forward::primitive_desc make_conv_pd(
    const memory::desc& src, const memory::desc& weights, const memory::desc& bias,
    const memory::desc& dst, const WindowGeometry& g, const dnnl::primitive_attr& attr,
    const dnnl::engine& engine) {
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                    dnnl::algorithm::convolution_direct, src, weights, bias, dst,
                                    g.strides, g.dilation, g.pad_l, g.pad_r);
  dnnl::primitive_attr user_attr = attr;  // shares the caller's post-ops
  user_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return dnnl::convolution_forward::primitive_desc(d, user_attr, engine);
}

}  // namespace fg::onednn
