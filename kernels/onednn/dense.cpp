// Inner product and matmul descriptors for layers/dense.cpp (oneDNN 2.x API).
#include <cstdlib>
#include <string>

#include "framework/error.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

memory::desc dense_kernel_desc(memory::dim in, memory::dim units) {
  return memory::desc({units, in}, dt::f32, tag::io);
}

namespace {

memory::desc row_major(const memory::dims& dims, memory::data_type type = dt::f32) {
  memory::dims strides(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * dims[i + 1];
  return memory::desc(dims, type, strides);
}

bool is_ref(const dnnl::primitive_desc_base& pd) {
  return is_reference_impl(pd);
}

// Builds the pd with weights `any` for a batch-1 (leading dims 1) shape, then asks for that
// concrete weights layout at the real shape: one prepacked copy of the kernel then serves every
// batch size / sequence length (the weight cache is keyed by layout). Falls back to `any` when
// oneDNN refuses it or would pick a ref kernel.
template <typename Pd, typename Make>
Pd with_shared_weights(const memory::desc& src, const memory::desc& dst, const memory::desc& any,
                       Make make) {
  memory::dims s1 = src.dims(), d1 = dst.dims();
  bool unit = true;
  for (size_t i = 0; i + 1 < s1.size(); ++i) {
    unit = unit && s1[i] == 1;
    s1[i] = d1[i] = 1;
  }
  if (!unit) {
    try {
      Pd one = make(row_major(s1, src.data_type()), row_major(d1, dst.data_type()), any);
      Pd pd = make(src, dst, one.weights_desc());
      if (!is_ref(pd)) return pd;
    } catch (const dnnl::error&) {
    }
  }
  return make(src, dst, any);
}

}  // namespace

dnnl::inner_product_forward::primitive_desc make_inner_product_pd(const memory::desc& src,
                                                                  const memory::desc& dst,
                                                                  bool bias,
                                                                  const dnnl::primitive_attr& attr,
                                                                  memory::data_type weights_type) {
  using Pd = dnnl::inner_product_forward::primitive_desc;
  dnnl::primitive_attr user_attr = attr;
  user_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const memory::dim in = src.dims().back(), units = dst.dims().back();
  memory::desc bia = bias ? memory::desc({units}, dt::f32, tag::a) : memory::desc();
  auto make = [&](const memory::desc& s, const memory::desc& d, const memory::desc& w) {
    dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_inference, s, w, bia, d);
    return Pd(desc, user_attr, cpu_engine());
  };
  // A large kernel is used in its Keras layout when oneDNN has a fast (non-ref) kernel for it:
  // the loaded weights are then used without a copy (a 177 MB dense after flatten would
  // otherwise be resident twice). At batch 1 such a layer is bound by memory bandwidth, so the
  // layout costs nothing there.
  constexpr memory::dim kZeroCopyBytes = 16 << 20;
  const bool plain_ok = std::getenv("FG_DENSE_PACKED") == nullptr;
  if (plain_ok && weights_type == dt::f32 && in * units * 4 >= kZeroCopyBytes) {
    try {
      Pd pd = make(src, dst, dense_kernel_desc(in, units));
      if (!is_ref(pd)) return pd;
    } catch (const dnnl::error&) {
    }
  }
  return with_shared_weights<Pd>(src, dst, memory::desc({units, in}, weights_type, tag::any), make);
}

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
                                                  bool bias, const dnnl::primitive_attr& attr,
                                                  memory::data_type weights_type) {
  const int rank = src.data.ndims;
  if (rank < 3) throw Error("internal: make_dense_matmul_pd wants rank >= 3");
  const memory::dim in = src.dims().back(), units = dst.dims().back();
  memory::dims wd(rank, 1);
  wd[rank - 2] = in;
  wd[rank - 1] = units;
  memory::desc bia = bias ? dense_matmul_bias_desc(rank, units) : memory::desc();
  using Pd = dnnl::matmul::primitive_desc;
  dnnl::primitive_attr user_attr = attr;
  user_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto make = [&](const memory::desc& s, const memory::desc& d, const memory::desc& w) {
    return Pd(dnnl::matmul::desc(s, w, bia, d), user_attr, cpu_engine());
  };
  return with_shared_weights<Pd>(src, dst, memory::desc(wd, weights_type, tag::any), make);
}

}  // namespace fg::onednn
