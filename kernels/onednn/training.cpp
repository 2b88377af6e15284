// Descriptor helpers for the ops' training kernels (oneDNN 2.x API).
#include <fmt/format.h>

#include "framework/error.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

memory::desc transposed_desc(const memory::desc& plain) {
  memory::dims dims = plain.dims();
  const int rank = static_cast<int>(dims.size());
  if (rank < 2) throw Error("internal: transposed_desc of a rank < 2 desc");
  memory::dims strides(rank, 1);
  for (int i = rank - 2; i >= 0; --i) strides[i] = strides[i + 1] * dims[i + 1];
  std::swap(dims[rank - 1], dims[rank - 2]);
  std::swap(strides[rank - 1], strides[rank - 2]);
  return memory::desc(dims, plain.data_type(), strides);
}

dnnl::reduction::primitive_desc make_sum_rows_pd(const memory::desc& src, const memory::desc& dst) {
  const memory::dims dims = src.dims();
  if (dims.size() != 2) throw Error("internal: make_sum_rows_pd of a rank != 2 desc");
  const memory::desc row({1, dims[1]}, dt::f32, tag::ab);
  if (dst.get_size() != row.get_size())
    throw Error("internal: make_sum_rows_pd destination of another size");
  dnnl::reduction::desc d(dnnl::algorithm::reduction_sum, src, row, 0.f, 0.f);
  return dnnl::reduction::primitive_desc(d, make_attr(), cpu_engine());
}

dnnl::sum::primitive_desc make_sum_pd(const memory::desc& desc, size_t count) {
  std::vector<float> scales(count, 1.f);
  std::vector<memory::desc> srcs(count, desc);
  return dnnl::sum::primitive_desc(desc, scales, srcs, cpu_engine(), make_attr());
}

}  // namespace fg::onednn
