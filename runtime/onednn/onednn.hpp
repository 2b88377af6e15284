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

// Window geometry in oneDNN's conventions: one entry per spatial axis; dilation 0 = none.
struct WindowGeometry {
  memory::dims strides, dilation, pad_l, pad_r;
};

// The user desc of a Keras conv kernel ([k, cin, filters] or [kh, kw, cin, filters]) with
// oneDNN's logical dims {O, I, spatial...} (tags wio / hwio).
memory::desc keras_conv_kernel_desc(const Dims& keras_kernel_shape);

// A forward-inference convolution pd. src/weights/dst are usually format_tag::any descs;
// `bias` may be a zero desc (no bias). `attr` carries the fused post-ops.
dnnl::convolution_forward::primitive_desc make_conv_pd(const memory::desc& src, const memory::desc& weights,
                                                        const memory::desc& bias, const memory::desc& dst,
                                                        const WindowGeometry& geometry,
                                                        const dnnl::primitive_attr& attr,
                                                        const dnnl::engine& engine);

// ---- pooling (layers/pooling.cpp) ----

// A forward-inference pooling pd (max, or average excluding padding as Keras does).
dnnl::pooling_forward::primitive_desc make_pool_pd(bool max, const memory::desc& src, const memory::desc& dst,
                                                   const memory::dims& kernel, const WindowGeometry& geometry,
                                                   const dnnl::engine& engine);

// ---- inner product / matmul (layers/dense.cpp) ----

// ---- eltwise / softmax (layers/activation.cpp, layers/softmax.cpp) ----

// ---- normalization (layers/batch_normalization.cpp, layers/layer_normalization.cpp) ----

// ---- binary / concat (layers/merge.cpp, layers/concatenate.cpp) ----

// ---- rnn (layers/lstm.cpp, layers/gru.cpp) ----

// Unidirectional (left to right), single-layer RNN for inference. Keras gate orders map onto
// oneDNN's directly: LSTM i,f,c,o = oneDNN i,f,c~,o; GRU z,r,h = oneDNN u,r,o.
enum class RnnKind { lstm, gru, lbr_gru };  // lbr_gru = Keras GRU(reset_after=True)

int rnn_gates(RnnKind kind);       // 4, 3, 3
int rnn_bias_gates(RnnKind kind);  // 4, 3, 4 (lbr: u, r, o-input, o-recurrent)

struct RnnPrimitive {
  dnnl::primitive prim;
  memory::desc src_layer;      // {T, N, F} ntc: the Keras [N, T, F] bytes
  memory::desc dst_layer;      // {T, N, U} ntc: the Keras [N, T, U] bytes
  memory::desc dst_iter;       // {1, 1, N, U} ldnc (the [N, U] bytes), zero desc if not asked for
  memory::desc dst_iter_c;     // LSTM with dst_iter: the last cell state (oneDNN needs both or neither)
  memory::desc weights_layer;  // the layout the primitive chose (weights `any`)
  memory::desc weights_iter;
  memory::desc bias;           // {1, 1, bias_gates, U} ldgo
  std::string impl;
};

// Builds the primitive for `steps` x `batch` x `features` -> `units`. With `with_dst_iter` the
// primitive also writes the last hidden state (DNNL_ARG_DST_ITER).
RnnPrimitive make_rnn_forward(RnnKind kind, int64_t steps, int64_t batch, int64_t features,
                              int64_t units, bool with_dst_iter, const dnnl::engine& engine);

// The Keras kernel [in, G*U] bytes as {1, 1, in, G, U} ldigo (in = features or units).
memory::desc rnn_keras_weights_desc(int64_t in, int gates, int64_t units);

}  // namespace fg::onednn
