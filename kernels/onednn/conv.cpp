// Convolution descriptors (oneDNN 2.x API) for layers/conv.cpp.
#include <cstdlib>
#include <string>

#include "framework/error.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

memory::desc keras_conv_kernel_desc(const Dims& keras_kernel_shape) {
  const memory::dims k = to_dims(keras_kernel_shape);
  if (k.size() == 3) return memory::desc({k[2], k[1], k[0]}, dt::f32, tag::wio);
  if (k.size() == 4) return memory::desc({k[3], k[2], k[0], k[1]}, dt::f32, tag::hwio);
  if (k.size() == 5) return memory::desc({k[4], k[3], k[0], k[1], k[2]}, dt::f32, tag::dhwio);
  throw Error("internal: a conv kernel has rank 3 to 5, got " + format_shape(keras_kernel_shape));
}

namespace {

// oneDNN 2.6 has two f32 Winograd kernels on AVX-512: F(4x4, 3x3) ("jit_wino_4x3") and
// F(2x2, 3x3) ("jit_fp32_wino_2x3"). Measured on the reference graph at batch 1, 2 threads
// (docs/performance.md): 4x3 takes image_conv2 from 7.1 to 4.9 ms and image_conv3 from 5.8 to
// 4.1 ms, while 2x3 is slower than the direct kernel (8.2 ms) and both are 5x slower with 3 input
// channels. So only the 4x3 kernel is accepted, and only for enough input channels.
bool is_wino_4x3(const dnnl::primitive_desc_base& pd) {
  return std::string(pd.impl_info_str()).find("wino_4x3") != std::string::npos;
}

}  // namespace

bool winograd_enabled() {
  const char* env = std::getenv("FG_CONV_WINOGRAD");
  return env == nullptr || std::string(env) != "0";
}

dnnl::convolution_forward::primitive_desc make_conv_pd(
    const memory::desc& src, const memory::desc& weights, const memory::desc& bias,
    const memory::desc& dst, const WindowGeometry& g, const dnnl::primitive_attr& attr,
    const dnnl::engine& engine, bool allow_winograd) {
  dnnl::primitive_attr user_attr = attr;  // shares the caller's post-ops
  user_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (allow_winograd && winograd_enabled()) {
    try {
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                        dnnl::algorithm::convolution_winograd, src, weights, bias,
                                        dst, g.strides, g.dilation, g.pad_l, g.pad_r);
      dnnl::convolution_forward::primitive_desc pd(d, user_attr, engine);
      do {
        if (is_wino_4x3(pd)) return pd;
      } while (pd.next_impl());
    } catch (const dnnl::error&) {
      // No Winograd kernel for this shape or CPU (e.g. AVX2): the direct algorithm below.
    }
  }
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                    dnnl::algorithm::convolution_direct, src, weights, bias, dst,
                                    g.strides, g.dilation, g.pad_l, g.pad_r);
  dnnl::convolution_forward::primitive_desc pd(d, user_attr, engine);
  // One input channel (a raw signal such as audio): oneDNN 2.6's brgconv builds about 9 MB of
  // tables for a 16000-step signal (measured: +9.0 MB resident at primitive creation, 4% of the
  // reference graph's peak memory) while jit:avx512_core takes 0.2 MB and ran as fast in the graph
  // (0.33 ms both). Take the next implementation that is neither brgconv nor the reference one.
  if (src.dims()[1] == 1) {
    const dnnl::convolution_forward::primitive_desc first = pd;
    do {
      const std::string impl = pd.impl_info_str();
      if (impl.find("brg") == std::string::npos && impl.find("ref") == std::string::npos &&
          impl.find("gemm") == std::string::npos)
        return pd;
    } while (pd.next_impl());
    return first;
  }
  return pd;
}

}  // namespace fg::onednn
