// The oneDNN adapter: the one place that knows the oneDNN 2.x descriptor API. Layers call these
// helpers to build primitive descriptors; a move to oneDNN 3.x changes runtime/onednn/ only.
// Execution (primitive::execute with DNNL_ARG_*) is the same in 2.x and 3.x and stays in layers.
//
// Conventions: a tensor's *plain* desc has the Keras shape as dims, row-major (tags a, ab, abc,
// abcd, abcde). oneDNN's convolution/pooling/RNN want channels-first logical dims; use
// channels_first_view() for the same plain bytes seen as {N, C, spatial...} with an nwc/nhwc tag.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <string>
#include <vector>

#include "framework/shape.hpp"

namespace fg::onednn {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

const dnnl::engine& cpu_engine();

memory::data_type to_dnnl(DType dtype);
memory::dims to_dims(const Dims& dims);

// Keras shape, row major.
memory::desc plain_desc(const TensorType& type);
memory::desc plain_desc(const Dims& shape, DType dtype = DType::f32);
// [N, spatial..., C] bytes seen as {N, C, spatial...} (tags nwc, nhwc, ndhwc).
memory::desc channels_first_view(const Dims& keras_shape, DType dtype = DType::f32);

// impl_info_str() of a primitive descriptor, e.g. "jit:avx2".
std::string impl_name(const dnnl::primitive_desc_base& pd);

// Copies `src` into a new memory of `want` (or returns src when the descs are equal).
memory reorder_to(const memory& src, const memory::desc& want, dnnl::stream& stream);

// Activation name (Keras) -> eltwise algorithm and alpha/beta, for eltwise primitives and
// post-ops. Returns false for activations oneDNN has no single eltwise for ("softmax",
// "log_softmax", "linear" is identity and returns false too).
bool eltwise_for(const std::string& activation, dnnl::algorithm& alg, float& alpha, float& beta);
// Appends the activation as a post-op when eltwise_for() knows it; returns false otherwise.
bool append_activation(dnnl::post_ops& ops, const std::string& activation);

// ---- convolution (layers/conv.cpp) ----

// ---- pooling (layers/pooling.cpp) ----

// ---- inner product / matmul (layers/dense.cpp) ----

// ---- eltwise / softmax (layers/activation.cpp, layers/softmax.cpp) ----

// ---- normalization (layers/batch_normalization.cpp, layers/layer_normalization.cpp) ----

// Inference batch normalization with the given (moving) mean and variance: `data` has the
// channels on logical dim 1 (e.g. {outer, C} or {outer, C, inner}); mean/variance/scale/shift
// are {C}. scale/shift say whether gamma/beta are passed (DNNL_ARG_SCALE / DNNL_ARG_SHIFT).
dnnl::batch_normalization_forward::primitive_desc make_batch_norm_pd(const memory::desc& data, float epsilon,
                                                                     bool scale, bool shift);
// Inference layer normalization over the last logical dim of `data` (mean and variance
// computed per row); scale/shift as above, each {last dim}.
dnnl::layer_normalization_forward::primitive_desc make_layer_norm_pd(const memory::desc& data, float epsilon,
                                                                     bool scale, bool shift);

// ---- binary / concat (layers/merge.cpp, layers/concatenate.cpp) ----

// dst = src0 <alg> src1 (src1 may have size-1 dims that broadcast), then dst = post_alpha * dst
// when post_alpha != 1 (eltwise_linear post-op: averages and the negated subtract).
dnnl::binary::primitive_desc make_binary_pd(dnnl::algorithm alg, const memory::desc& src0,
                                            const memory::desc& src1, const memory::desc& dst,
                                            float post_alpha = 1.f);
// Concatenation of `srcs` along logical dim `axis` into `dst`.
dnnl::concat::primitive_desc make_concat_pd(const memory::desc& dst, int axis,
                                            const std::vector<memory::desc>& srcs);

// ---- rnn (layers/lstm.cpp, layers/gru.cpp) ----

}  // namespace fg::onednn
