// Inner product and matmul descriptors for layers/dense.cpp (oneDNN 2.x API).
#include "framework/error.hpp"
#include "runtime/onednn/onednn.hpp"

namespace fg::onednn {

memory::desc dense_kernel_desc(memory::dim in, memory::dim units) {
  return memory::desc({units, in}, dt::f32, tag::io);
}

dnnl::inner_product_forward::primitive_desc make_inner_product_pd(
    const memory::desc& src, const memory::desc& dst, bool bias, const dnnl::primitive_attr& attr) {
  const memory::dim in = src.dims().back(), units = dst.dims().back();
  memory::desc wei({units, in}, dt::f32, tag::any);
  memory::desc bia = bias ? memory::desc({units}, dt::f32, tag::a) : memory::desc();
  dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, src, wei, bia, dst);
  return dnnl::inner_product_forward::primitive_desc(d, attr, cpu_engine());
}

namespace {
memory::desc row_major(const memory::dims& dims) {
  memory::dims strides(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * dims[i + 1];
  return memory::desc(dims, dt::f32, strides);
}
}  // namespace

memory::desc dense_matmul_kernel_desc(int rank, memory::dim in, memory::dim units) {
  memory::dims d(rank, 1);
  d[rank - 2] = in;
  d[rank - 1] = units;
  return row_major(d);
}

memory::desc dense_matmul_bias_desc(int rank, memory::dim units) {
  memory::dims d(rank, 1);
  d[rank - 1] = units;
  return row_major(d);
}

dnnl::matmul::primitive_desc make_dense_matmul_pd(const memory::desc& src, const memory::desc& dst,
                                                  bool bias, const dnnl::primitive_attr& attr) {
  const int rank = src.data.ndims;
  if (rank < 3) throw Error("internal: make_dense_matmul_pd wants rank >= 3");
  const memory::dim in = src.dims().back(), units = dst.dims().back();
  memory::dims wd(rank, 1);
  wd[rank - 2] = in;
  wd[rank - 1] = units;
  memory::desc wei(wd, dt::f32, tag::any);
  memory::desc bia = bias ? dense_matmul_bias_desc(rank, units) : memory::desc();
  dnnl::matmul::desc d(src, wei, bia, dst);
  return dnnl::matmul::primitive_desc(d, attr, cpu_engine());
}

}  // namespace fg::onednn
