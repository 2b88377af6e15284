#include "layers/unfused_activation.hpp"

#include "framework/error.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {

bool activation_fuses(const std::string& activation) {
  if (activation == "linear" || activation == "selu") return true;
  dnnl::algorithm alg;
  float alpha, beta;
  return onednn::eltwise_for(activation, alg, alpha, beta);
}

bool activation_supported(const std::string& activation) {
  return activation_fuses(activation) || activation == "softmax" || activation == "log_softmax" ||
         activation == "softsign";
}

std::string append_unfused_activation(const std::string& activation, const CallArg& src,
                                      const CallArg& dst, const dnnl::memory::desc& desc,
                                      PrimitiveSequence& calls, KernelBuild& build) {
  if (activation_fuses(activation)) return "";
  if (activation == "softmax" || activation == "log_softmax") {
    const int axis = desc.data.ndims - 1;  // Keras activations act on the last axis
    auto pd = onednn::make_softmax_pd(desc, desc, axis, activation == "log_softmax");
    calls.add(pd, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, build);
    return onednn::impl_name(pd);
  }
  if (activation == "softsign") {
    // No oneDNN 2.6 eltwise for softsign: |x| into a temporary, + 1 there, then x / that.
    // Each operation rounds once, as x / (1.f + std::fabs(x)) does in C++.
    const CallArg denominator = CallArg::temp(build.add_temp(desc));
    auto abs = onednn::make_eltwise_pd(desc, dnnl::algorithm::eltwise_abs, 0.f, 0.f);
    auto plus_one = onednn::make_eltwise_pd(desc, dnnl::algorithm::eltwise_linear, 1.f, 1.f);
    auto divide = onednn::make_binary_pd(dnnl::algorithm::binary_div, desc, desc, desc);
    calls.add(abs, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, denominator}}, build);
    calls.add(plus_one, {{DNNL_ARG_SRC, denominator}, {DNNL_ARG_DST, denominator}}, build);
    calls.add(divide, {{DNNL_ARG_SRC_0, src}, {DNNL_ARG_SRC_1, denominator}, {DNNL_ARG_DST, dst}},
              build);
    std::string impl;
    add_impl(impl, abs);
    add_impl(impl, divide);
    return impl;
  }
  throw Error("activation '" + activation + "' has no oneDNN post-op and no unfused form");
}

}  // namespace fg::layers
