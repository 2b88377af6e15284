// Training descriptors of convolution, pooling and resampling (oneDNN 2.x API).
#include "kernels/onednn/window_training.hpp"

#include <string>

namespace fg::onednn {

namespace {

bool is_ref(const dnnl::primitive_desc_base& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
}

// The three training pds with activations in `act(dims)` layouts and weights `any`.
template <typename Layout>
ConvTrainingPds conv_training_pds(const memory::dims& src, const memory::dims& weights, bool bias,
                                  const memory::dims& dst, const WindowGeometry& g, Layout act) {
  const memory::desc any_weights(weights, dt::f32, tag::any);
  const memory::desc bias_desc =
      bias ? memory::desc({weights[0]}, dt::f32, tag::a) : memory::desc();
  const auto alg = dnnl::algorithm::convolution_direct;
  const dnnl::engine& engine = cpu_engine();
  dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, alg, act(src), any_weights,
                                     bias_desc, act(dst), g.strides, g.dilation, g.pad_l, g.pad_r);
  dnnl::convolution_forward::primitive_desc forward(fd, make_attr(), engine);
  dnnl::convolution_backward_data::desc dd(alg, act(src), any_weights, act(dst), g.strides,
                                           g.dilation, g.pad_l, g.pad_r);
  dnnl::convolution_backward_data::primitive_desc backward_data(dd, make_attr(), engine, forward);
  dnnl::convolution_backward_weights::desc wd(alg, act(src), any_weights, bias_desc, act(dst),
                                              g.strides, g.dilation, g.pad_l, g.pad_r);
  dnnl::convolution_backward_weights::primitive_desc backward_weights(wd, make_attr(), engine,
                                                                      forward);
  return {forward, backward_data, backward_weights};
}

}  // namespace

// Activations stay in the plain channels-last bytes (nwc / nhwc / ndhwc) when oneDNN has a
// non-reference kernel for all three primitives there: no reorder of the (large) activations
// and their gradients around every convolution. Otherwise `any` (blocked layouts, reordered by
// the kernel).
ConvTrainingPds make_conv_training_pds(const memory::dims& src, const memory::dims& weights,
                                       bool bias, const memory::dims& dst,
                                       const WindowGeometry& g) {
  const auto channels_last = [](const memory::dims& d) {
    const tag t = d.size() == 3 ? tag::nwc : d.size() == 4 ? tag::nhwc : tag::ndhwc;
    return memory::desc(d, dt::f32, t);
  };
  try {
    ConvTrainingPds pds = conv_training_pds(src, weights, bias, dst, g, channels_last);
    if (!is_ref(pds.forward) && !is_ref(pds.backward_data) && !is_ref(pds.backward_weights))
      return pds;
  } catch (const dnnl::error&) {
  }
  const auto any = [](const memory::dims& d) { return memory::desc(d, dt::f32, tag::any); };
  return conv_training_pds(src, weights, bias, dst, g, any);
}

PoolTrainingPds make_pool_training_pds(bool max, const memory::desc& src, const memory::desc& dst,
                                       const memory::dims& kernel, const WindowGeometry& g) {
  // Keras averages over the window cells inside the input only (TF's "SAME" average pooling).
  const auto alg =
      max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding;
  const dnnl::engine& engine = cpu_engine();
  dnnl::pooling_forward::desc fd(dnnl::prop_kind::forward_training, alg, src, dst, g.strides,
                                 kernel, g.pad_l, g.pad_r);
  dnnl::pooling_forward::primitive_desc forward(fd, make_attr(), engine);
  dnnl::pooling_backward::desc bd(alg, src, dst, g.strides, kernel, g.pad_l, g.pad_r);
  dnnl::pooling_backward::primitive_desc backward(bd, make_attr(), engine, forward);
  return {forward, backward};
}

ResamplingTrainingPds make_resampling_training_pds(bool linear, const memory::desc& src,
                                                   const memory::desc& dst) {
  const auto alg =
      linear ? dnnl::algorithm::resampling_linear : dnnl::algorithm::resampling_nearest;
  const dnnl::engine& engine = cpu_engine();
  dnnl::resampling_forward::desc fd(dnnl::prop_kind::forward_training, alg, src, dst);
  dnnl::resampling_forward::primitive_desc forward(fd, make_attr(), engine);
  dnnl::resampling_backward::desc bd(alg, src, dst);
  dnnl::resampling_backward::primitive_desc backward(bd, make_attr(), engine, forward);
  return {forward, backward};
}

}  // namespace fg::onednn
