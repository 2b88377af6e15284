#include <fmt/format.h>

#include "framework/error.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::data_type to_dnnl(DType dtype) {
  if (dtype == DType::i8) return dt::s8;
  return dtype == DType::i32 ? dt::s32 : dt::f32;
}

memory::dims to_dims(const Dims& dims) {
  memory::dims out(dims.begin(), dims.end());
  for (auto d : out)
    if (d < 0)
      throw Error("internal: a oneDNN memory needs concrete dims, got " + format_shape(dims));
  return out;
}

namespace {
memory::desc row_major(const memory::dims& dims, memory::data_type type) {
  memory::dims strides(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * dims[i + 1];
  return memory::desc(dims, type, strides);
}
}  // namespace

memory::desc plain_desc(const Dims& shape, DType dtype) {
  return row_major(to_dims(shape), to_dnnl(dtype));
}

memory::desc plain_desc(const TensorType& type) {
  return plain_desc(type.shape, type.dtype);
}

memory::desc channels_first_view(const Dims& keras_shape, DType dtype) {
  memory::dims d = to_dims(keras_shape);
  if (d.size() < 3) return row_major(d, to_dnnl(dtype));
  memory::dims cf{d[0], d.back()};
  cf.insert(cf.end(), d.begin() + 1, d.end() - 1);
  tag t = d.size() == 3 ? tag::nwc : d.size() == 4 ? tag::nhwc : tag::ndhwc;
  if (d.size() > 5) throw Error("internal: channels_first_view supports rank 3 to 5");
  return memory::desc(cf, to_dnnl(dtype), t);
}

dnnl::primitive_attr make_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

std::string impl_name(const dnnl::primitive_desc_base& pd) {
  return pd.impl_info_str();
}

void reorder_now(const memory& src, const memory& dst, dnnl::stream& stream) {
  // A user scratchpad freed on return: with the library's scratchpad (the default) oneDNN keeps
  // a global one at its largest size (4.7 MB for the Winograd weights of the reference graph).
  dnnl::reorder::primitive_desc pd(src.get_engine(), src.get_desc(), dst.get_engine(),
                                   dst.get_desc(), make_attr());
  memory scratchpad(pd.scratchpad_desc(), src.get_engine());
  dnnl::reorder(pd).execute(stream, {{DNNL_ARG_FROM, const_cast<memory&>(src)},
                                     {DNNL_ARG_TO, const_cast<memory&>(dst)},
                                     {DNNL_ARG_SCRATCHPAD, scratchpad}});
  stream.wait();
}

memory reorder_to(const memory& src, const memory::desc& want, dnnl::stream& stream) {
  if (src.get_desc() == want) return src;
  memory dst(want, src.get_engine());
  reorder_now(src, dst, stream);
  return dst;
}

bool eltwise_for(const std::string& activation, dnnl::algorithm& alg, float& alpha, float& beta) {
  using a = dnnl::algorithm;
  alpha = 0.f;
  beta = 0.f;
  if (activation == "relu")
    alg = a::eltwise_relu;
  else if (activation == "relu6") {
    alg = a::eltwise_clip;
    alpha = 0.f;
    beta = 6.f;
  } else if (activation == "sigmoid")
    alg = a::eltwise_logistic;
  else if (activation == "tanh")
    alg = a::eltwise_tanh;
  else if (activation == "elu") {
    alg = a::eltwise_elu;
    alpha = 1.f;
  } else if (activation == "softplus")
    alg = a::eltwise_soft_relu;
  else if (activation == "swish" || activation == "silu") {
    alg = a::eltwise_swish;
    alpha = 1.f;
  } else if (activation == "gelu")
    alg = a::eltwise_gelu_erf;
  else if (activation == "gelu_approximate")
    alg = a::eltwise_gelu_tanh;
  else if (activation == "mish")
    alg = a::eltwise_mish;
  else
    return false;
  return true;
}

bool append_activation(dnnl::post_ops& ops, const std::string& activation) {
  dnnl::algorithm alg;
  float alpha, beta;
  if (activation == "selu") {
    // selu(x) = scale * elu(x, alpha): oneDNN's post-op scale multiplies the result.
    ops.append_eltwise(1.0507009873554805f, dnnl::algorithm::eltwise_elu, 1.6732632423543772f, 0.f);
    return true;
  }
  if (!eltwise_for(activation, alg, alpha, beta)) return false;
  ops.append_eltwise(1.f, alg, alpha, beta);
  return true;
}

}  // namespace fg::onednn
