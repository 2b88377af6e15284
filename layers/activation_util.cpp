#include "layers/activation_util.hpp"

#include <cmath>

#include "runtime/onednn/onednn.hpp"

namespace fg::layers {

bool activation_fuses(const std::string& activation) {
  if (activation == "linear" || activation == "selu") return true;
  dnnl::algorithm alg;
  float alpha, beta;
  return onednn::eltwise_for(activation, alg, alpha, beta);
}

std::optional<ActivationStep> ActivationStep::make(const std::string& activation,
                                                   const dnnl::memory::desc& desc,
                                                   const dnnl::engine& engine) {
  if (activation_fuses(activation)) return std::nullopt;
  ActivationStep step;
  step.activation_ = activation;
  if (activation == "softmax" || activation == "log_softmax") {
    int axis = desc.data.ndims - 1;
    if (activation == "softmax") {
      dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, desc, axis);
      dnnl::softmax_forward::primitive_desc pd(d, engine);
      step.impl_ = onednn::impl_name(pd);
      step.prim_ = dnnl::softmax_forward(pd);
    } else {
      dnnl::logsoftmax_forward::desc d(dnnl::prop_kind::forward_inference, desc, axis);
      dnnl::logsoftmax_forward::primitive_desc pd(d, engine);
      step.impl_ = onednn::impl_name(pd);
      step.prim_ = dnnl::logsoftmax_forward(pd);
    }
  } else {
    step.impl_ = "c++";  // softsign: no oneDNN 2.6 eltwise
  }
  return step;
}

void ActivationStep::execute(dnnl::stream& stream, const dnnl::memory& data) const {
  if (prim_) {
    prim_->execute(stream, {{DNNL_ARG_SRC, data}, {DNNL_ARG_DST, data}});
    return;
  }
  stream.wait();
  float* p = static_cast<float*>(data.get_data_handle());
  const int64_t n = static_cast<int64_t>(data.get_desc().get_size() / sizeof(float));
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) p[i] = p[i] / (1.f + std::fabs(p[i]));
}

std::string ActivationStep::impl_info() const {
  return impl_;
}

}  // namespace fg::layers
