#include "layers/training_blocks.hpp"

#include <fmt/format.h>

#include "kernels/onednn/onednn.hpp"

namespace fg::layers {
namespace {

bool is_softmax(const std::string& a) {
  return a == "softmax" || a == "log_softmax";
}

dnnl::softmax_v2_forward::primitive_desc softmax_training_pd(const std::string& a,
                                                             const dnnl::memory::desc& desc) {
  const auto alg =
      a == "log_softmax" ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
  dnnl::softmax_v2_forward::desc d(dnnl::prop_kind::forward_training, alg, desc, desc,
                                   desc.data.ndims - 1);
  return {d, onednn::make_attr(), onednn::cpu_engine()};
}

dnnl::algorithm from_dst_algorithm(const std::string& a) {
  if (a == "relu") return dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
  if (a == "sigmoid") return dnnl::algorithm::eltwise_logistic_use_dst_for_bwd;
  if (a == "tanh") return dnnl::algorithm::eltwise_tanh_use_dst_for_bwd;
  return dnnl::algorithm::undef;
}

dnnl::eltwise_forward::primitive_desc eltwise_training_pd(const std::string& a,
                                                          const dnnl::memory::desc& desc,
                                                          dnnl::algorithm& alg, float& alpha,
                                                          float& beta) {
  if (!onednn::eltwise_for(a, alg, alpha, beta))
    throw Error(fmt::format("activation '{}' has no gradient in FusionGraph", a));
  if (from_dst_algorithm(a) != dnnl::algorithm::undef) alg = from_dst_algorithm(a);
  dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_training, alg, desc, alpha, beta);
  return {d, onednn::make_attr(), onednn::cpu_engine()};
}

}  // namespace

bool activation_backward_from_dst(const std::string& activation) {
  return is_softmax(activation) || from_dst_algorithm(activation) != dnnl::algorithm::undef;
}

bool activation_has_gradient(const std::string& activation) {
  dnnl::algorithm alg;
  float alpha, beta;
  return activation == "linear" || is_softmax(activation) ||
         onednn::eltwise_for(activation, alg, alpha, beta);
}

void append_activation_forward(const std::string& activation, const CallArg& z, const CallArg& y,
                               const dnnl::memory::desc& desc, PrimitiveSequence& calls,
                               KernelBuild& build) {
  if (activation == "linear") return;
  if (is_softmax(activation)) {
    calls.add(softmax_training_pd(activation, desc), {{DNNL_ARG_SRC, z}, {DNNL_ARG_DST, y}}, build);
    return;
  }
  dnnl::algorithm alg;
  float alpha, beta;
  calls.add(eltwise_training_pd(activation, desc, alg, alpha, beta),
            {{DNNL_ARG_SRC, z}, {DNNL_ARG_DST, y}}, build);
}

void append_activation_backward(const std::string& activation, const CallArg& z, const CallArg& y,
                                const CallArg& dy, const CallArg& dz,
                                const dnnl::memory::desc& desc, PrimitiveSequence& calls,
                                KernelBuild& build) {
  if (activation == "linear") return;
  const auto& eng = onednn::cpu_engine();
  if (is_softmax(activation)) {
    auto hint = softmax_training_pd(activation, desc);
    const auto alg = activation == "log_softmax" ? dnnl::algorithm::softmax_log
                                                 : dnnl::algorithm::softmax_accurate;
    dnnl::softmax_v2_backward::desc d(alg, desc, desc, desc, desc.data.ndims - 1);
    dnnl::softmax_v2_backward::primitive_desc pd(d, onednn::make_attr(), eng, hint);
    calls.add(pd, {{DNNL_ARG_DST, y}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dz}}, build);
    return;
  }
  dnnl::algorithm alg;
  float alpha, beta;
  auto hint = eltwise_training_pd(activation, desc, alg, alpha, beta);
  dnnl::eltwise_backward::desc d(alg, desc, desc, alpha, beta);
  dnnl::eltwise_backward::primitive_desc pd(d, onednn::make_attr(), eng, hint);
  if (from_dst_algorithm(activation) != dnnl::algorithm::undef)
    calls.add(pd, {{DNNL_ARG_DST, y}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dz}}, build);
  else
    calls.add(pd, {{DNNL_ARG_SRC, z}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dz}}, build);
}

void append_sum_rows(const CallArg& src, const CallArg& dst, const dnnl::memory::desc& src_desc,
                     PrimitiveSequence& calls, KernelBuild& build) {
  const auto dims = src_desc.dims();
  const dnnl::memory::desc row = onednn::plain_desc(Dims{1, dims.at(1)});
  if (dims.at(0) == 1) {  // nothing to reduce (oneDNN's reduction refuses equal shapes): copy
    calls.add(onednn::make_reorder_pd(src_desc, row), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}},
              build);
    return;
  }
  calls.add(onednn::make_sum_rows_pd(src_desc, row), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}},
            build);
}

}  // namespace fg::layers
