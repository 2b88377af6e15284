#include "layers/activation_step.hpp"

#include <cmath>

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

std::optional<ActivationStep> ActivationStep::make(const std::string& activation,
                                                   const dnnl::memory::desc& desc,
                                                   KernelContext& ctx) {
  if (activation_fuses(activation)) return std::nullopt;
  ActivationStep step;
  step.activation_ = activation;
  if (activation == "softmax" || activation == "log_softmax") {
    const int axis = desc.data.ndims - 1;  // Keras activations act on the last axis
    auto pd = onednn::make_softmax_pd(desc, desc, axis, activation == "log_softmax");
    ctx.add_scratchpad(pd);
    step.impl_ = onednn::impl_name(pd);
    step.prim_ = dnnl::softmax_v2_forward(pd);
  } else if (activation == "softsign") {
    step.impl_ = "c++";  // no oneDNN 2.6 eltwise for softsign
  } else {
    throw Error("activation '" + activation + "' has no oneDNN post-op and no separate step");
  }
  return step;
}

void ActivationStep::execute(ExecContext& ctx, const dnnl::memory& data) const {
  if (prim_) {
    execute_primitive(*prim_, ctx, {{DNNL_ARG_SRC, data}, {DNNL_ARG_DST, data}});
    return;
  }
  ctx.stream.wait();
  float* p = static_cast<float*>(data.get_data_handle());
  const int64_t n = static_cast<int64_t>(data.get_desc().get_size() / sizeof(float));
#pragma omp parallel for num_threads(ctx.threads)
  for (int64_t i = 0; i < n; ++i) p[i] = p[i] / (1.f + std::fabs(p[i]));
}

std::string ActivationStep::impl_info() const {
  return impl_;
}

}  // namespace fg::layers
