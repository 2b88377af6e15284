// Eltwise, softmax and reorder descriptors for layers/activation.cpp, layers/softmax.cpp and the
// shape ops (oneDNN 2.x API).
#include <fmt/format.h>

#include "framework/error.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

dnnl::eltwise_forward::primitive_desc make_eltwise_pd(const memory::desc& data, dnnl::algorithm alg,
                                                      float alpha, float beta) {
  dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg, data, alpha, beta);
  return dnnl::eltwise_forward::primitive_desc(d, make_attr(), cpu_engine());
}

dnnl::softmax_v2_forward::primitive_desc make_softmax_pd(const memory::desc& src,
                                                         const memory::desc& dst, int axis,
                                                         bool log) {
  if (axis < 0 || axis >= src.data.ndims)
    throw Error(fmt::format("internal: softmax axis {} for a rank-{} desc", axis, src.data.ndims));
  const auto alg = log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
  dnnl::softmax_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, dst, axis);
  return dnnl::softmax_v2_forward::primitive_desc(d, make_attr(), cpu_engine());
}

memory::desc axis_innermost_desc(const memory::dims& dims, memory::data_type type, int axis) {
  const int rank = static_cast<int>(dims.size());
  if (axis < 0 || axis >= rank) throw Error("internal: axis_innermost_desc axis out of range");
  memory::dims strides(rank, 1);
  memory::dim stride = dims[axis];
  for (int i = rank - 1; i >= 0; --i) {
    if (i == axis) continue;
    strides[i] = stride;
    stride *= dims[i];
  }
  strides[axis] = 1;
  return memory::desc(dims, type, strides);
}

dnnl::reorder::primitive_desc make_reorder_pd(const memory::desc& src, const memory::desc& dst) {
  return dnnl::reorder::primitive_desc(cpu_engine(), src, cpu_engine(), dst, make_attr());
}

memory view_as(const memory& mem, const memory::desc& desc) {
  if (mem.get_desc().get_size() != desc.get_size())
    throw Error(fmt::format("internal: view of {} bytes as a desc of {} bytes",
                            mem.get_desc().get_size(), desc.get_size()));
  return memory(desc, mem.get_engine(), mem.get_data_handle());
}

}  // namespace fg::onednn
