// The oneDNN adapter: the one place that knows the oneDNN 2.x descriptor API. Layers call these
// helpers to build primitive descriptors; a move to oneDNN 3.x changes kernels/onednn/ only.
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

// Attributes every primitive is created with: a user-managed scratchpad (see kernel.hpp), so
// that concurrent runs of one primitive never share scratch memory.
dnnl::primitive_attr make_attr();

// impl_info_str() of a primitive descriptor, e.g. "jit:avx2".
std::string impl_name(const dnnl::primitive_desc_base& pd);

// Reduced precision (kernels/onednn/precision.cpp).
// The ISA oneDNN dispatches to (dnnl::get_effective_cpu_isa(), capped by ONEDNN_MAX_CPU_ISA),
// e.g. "avx512_core_bf16", "avx2".
std::string cpu_isa_name();
// True when that ISA has native bf16 instructions (AVX-512 BF16: avx512_core_bf16 or later).
// Without them oneDNN 2.6 has no bf16 convolution / inner product kernel, or only emulated or
// reference ones: the ops then run in f32.
bool native_bf16_isa();
// "no native bf16 on avx2" (naming the ISA oneDNN found): why an op asked for bf16 runs in f32.
std::string no_native_bf16_reason();
// True when that ISA has VNNI (avx512_core_vnni or later, or avx2_vnni): u8 / s8 dot products
// in one instruction, exact s32 accumulation. Without it oneDNN 2.6's int8 kernels halve the
// weights to avoid 16-bit saturation (and some compute s8 inputs wrongly from pre-quantized
// weights), so the int8 ops run in f32 with the dequantized weights instead.
bool native_int8_isa();
// "no VNNI on avx2": why an op asked for int8 runs in f32.
std::string no_native_int8_reason();
// int8 (kernels/onednn/int8.cpp). Quantization x -> q = saturate(round_half_even(x / scale))
// is a reorder with output scale 1 / scale (f32 src, u8 or s8 dst in any layout).
dnnl::reorder::primitive_desc make_quantize_pd(const memory::desc& src, const memory::desc& dst,
                                               float scale);
// The attributes of an int8 convolution / inner product / matmul with f32 output: per-channel
// output scales (on logical dim `channel_dim`) and `ops` after them. oneDNN 2.x computes
// dst = post_ops(scale[c] * (sum of q_src * q_wei + bias[c])): the bias is in the accumulator's
// units, so an f32 bias b is passed as b / scale[c].
dnnl::primitive_attr int8_output_attr(const dnnl::post_ops& ops, int channel_dim,
                                      const std::vector<float>& scales);
// The same with the scales given at run time (DNNL_ARG_ATTR_OUTPUT_SCALES, f32 {channels}).
dnnl::primitive_attr int8_runtime_output_attr(const dnnl::post_ops& ops, int channel_dim);
// s8 weights in Keras bytes (described by `keras_desc_f32`, an f32 desc of the same layout)
// reordered once into `want` (the primitive's s8 weights desc, with any compensation it needs).
memory int8_weights(const memory::desc& keras_desc_f32, const void* keras_s8,
                    const memory::desc& want);
// The same desc (dims, layout or `any`) with another data type.
memory::desc with_data_type(const memory::desc& desc, memory::data_type type);
// True for oneDNN's reference implementations ("ref:any"), 100x slower than the jit ones.
bool is_reference_impl(const dnnl::primitive_desc_base& pd);

// Copies `src` into a new memory of `want` (or returns src when the descs are equal).
memory reorder_to(const memory& src, const memory::desc& want, dnnl::stream& stream);
// Reorders src into dst now (compile time, dumps) with a scratchpad freed on return.
void reorder_now(const memory& src, const memory& dst, dnnl::stream& stream);

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
// `bias` may be a zero desc (no bias). `attr` carries the fused post-ops. With
// `allow_winograd` (the caller checked: 3x3, stride 1, no dilation, enough channels) oneDNN's
// F(4x4, 3x3) Winograd kernel is used when it exists for the shape and CPU (AVX-512), else the
// direct algorithm.
dnnl::convolution_forward::primitive_desc make_conv_pd(
    const memory::desc& src, const memory::desc& weights, const memory::desc& bias,
    const memory::desc& dst, const WindowGeometry& geometry, const dnnl::primitive_attr& attr,
    const dnnl::engine& engine, bool allow_winograd = false);
// False when the environment sets FG_CONV_WINOGRAD=0 (for side-by-side measurements).
bool winograd_enabled();

// ---- pooling (layers/pooling.cpp) ----

// A forward-inference pooling pd (max, or average excluding padding as Keras does).
dnnl::pooling_forward::primitive_desc make_pool_pd(bool max, const memory::desc& src,
                                                   const memory::desc& dst,
                                                   const memory::dims& kernel,
                                                   const WindowGeometry& geometry,
                                                   const dnnl::engine& engine);

// ---- inner product / matmul (layers/dense.cpp) ----

// The Keras Dense kernel [in, units] (row major) as oneDNN inner-product weights {O=units, I=in}:
// tag `io` (I outer, O inner) describes exactly the Keras bytes.
memory::desc dense_kernel_desc(memory::dim in, memory::dim units);
// inner_product_forward (forward_inference) for a 2D src {N, in} -> dst {N, units}: weights
// `any` (reorder the Keras kernel into pd.weights_desc() once), bias {units} when `bias`.
// `weights_type` bf16 (with a bf16 src): the weights `any` in bf16 (bias and dst stay f32).
dnnl::inner_product_forward::primitive_desc make_inner_product_pd(
    const memory::desc& src, const memory::desc& dst, bool bias, const dnnl::primitive_attr& attr,
    memory::data_type weights_type = dt::f32);
// The Keras kernel [in, units] as matmul weights {1, ..., 1, in, units} for a rank-`rank` matmul
// (plain row major: the same bytes), and the bias {1, ..., 1, units}.
memory::desc dense_matmul_kernel_desc(int rank, memory::dim in, memory::dim units);
memory::desc dense_matmul_bias_desc(int rank, memory::dim units);
// matmul for src {d0, ..., in} -> dst {d0, ..., units} (rank >= 3, Keras Dense on the last axis):
// weights `any` broadcast over the leading dims, bias {1, ..., units} when `bias`.
// `weights_type` as for make_inner_product_pd.
dnnl::matmul::primitive_desc make_dense_matmul_pd(const memory::desc& src, const memory::desc& dst,
                                                  bool bias, const dnnl::primitive_attr& attr,
                                                  memory::data_type weights_type = dt::f32);

// ---- eltwise / softmax (layers/activation.cpp, layers/softmax.cpp) ----

// eltwise_forward (forward_inference) with src and dst in `data`'s layout (in place allowed).
dnnl::eltwise_forward::primitive_desc make_eltwise_pd(const memory::desc& data, dnnl::algorithm alg,
                                                      float alpha, float beta);
// Softmax (or log-softmax when `log`) over `axis`, a logical dim of the descs (Keras order for
// plain descs). oneDNN 2.6 has a jit kernel only when `axis` is the innermost dim in memory; for
// other axes it picks `ref:any` (about 30x slower): use axis_innermost_desc() and reorders.
dnnl::softmax_v2_forward::primitive_desc make_softmax_pd(const memory::desc& src,
                                                         const memory::desc& dst, int axis,
                                                         bool log);
// `dims` laid out with `axis` innermost and the other dims row major in their order.
memory::desc axis_innermost_desc(const memory::dims& dims, memory::data_type type, int axis);
// A reorder (copy / layout change) between two descs of the same dims.
dnnl::reorder::primitive_desc make_reorder_pd(const memory::desc& src, const memory::desc& dst);
// The same memory seen through another desc of the same byte size (e.g. a reshape of a plain
// tensor): wraps the handle, no copy.
memory view_as(const memory& mem, const memory::desc& desc);

// ---- normalization (layers/batch_normalization.cpp, layers/layer_normalization.cpp) ----

// Inference batch normalization with the given (moving) mean and variance: `data` has the
// channels on logical dim 1 (e.g. {outer, C} or {outer, C, inner}); mean/variance/scale/shift
// are {C}. scale/shift say whether gamma/beta are passed (DNNL_ARG_SCALE / DNNL_ARG_SHIFT).
dnnl::batch_normalization_forward::primitive_desc make_batch_norm_pd(const memory::desc& data,
                                                                     float epsilon, bool scale,
                                                                     bool shift);
// Inference layer normalization over the last logical dim of `data` (mean and variance
// computed per row); scale/shift as above, each {last dim}.
dnnl::layer_normalization_forward::primitive_desc make_layer_norm_pd(const memory::desc& data,
                                                                     float epsilon, bool scale,
                                                                     bool shift);

// ---- binary / concat (layers/merge.cpp, layers/concatenate.cpp) ----

// dst = src0 <alg> src1 (src1 may have size-1 dims that broadcast), then dst = post_alpha * dst
// when post_alpha != 1 (eltwise_linear post-op: averages and the negated subtract).
dnnl::binary::primitive_desc make_binary_pd(dnnl::algorithm alg, const memory::desc& src0,
                                            const memory::desc& src1, const memory::desc& dst,
                                            float post_alpha = 1.f);
// Concatenation of `srcs` along logical dim `axis` into `dst`.
dnnl::concat::primitive_desc make_concat_pd(const memory::desc& dst, int axis,
                                            const std::vector<memory::desc>& srcs);

// ---- rnn (layers/recurrent.cpp: lstm, gru, simple_rnn) ----

// Unidirectional (left to right), single-layer RNN for inference. Keras gate orders map onto
// oneDNN's directly: LSTM i,f,c,o = oneDNN i,f,c~,o; GRU z,r,h = oneDNN u,r,o; SimpleRNN is
// oneDNN's vanilla RNN (one gate).
enum class RnnKind { lstm, gru, lbr_gru, vanilla };  // lbr_gru = Keras GRU(reset_after=True)

int rnn_gates(RnnKind kind);       // 4, 3, 3, 1
int rnn_bias_gates(RnnKind kind);  // 4, 3, 4 (lbr: u, r, o-input, o-recurrent), 1

struct RnnPrimitive {
  dnnl::primitive prim;
  memory::desc src_layer;  // {T, N, F} ntc: the Keras [N, T, F] bytes
  memory::desc dst_layer;  // {T, N, U} ntc: the Keras [N, T, U] bytes
  memory::desc dst_iter;   // {1, 1, N, U} ldnc (the [N, U] bytes), zero desc if not asked for
  memory::desc
      dst_iter_c;  // LSTM with dst_iter: the last cell state (oneDNN needs both or neither)
  memory::desc weights_layer;  // the layout the primitive chose (weights `any`)
  memory::desc weights_iter;
  memory::desc bias;        // {1, 1, bias_gates, U} ldgo
  memory::desc scratchpad;  // user scratchpad (DNNL_ARG_SCRATCHPAD): one per concurrent run
  std::string impl;
};

// Builds the primitive for `steps` x `batch` x `features` -> `units`. With `with_dst_iter` the
// primitive also writes the last hidden state (DNNL_ARG_DST_ITER). `vanilla_activation` is the
// cell activation of RnnKind::vanilla (eltwise_tanh, eltwise_relu or eltwise_logistic).
RnnPrimitive make_rnn_forward(RnnKind kind, int64_t steps, int64_t batch, int64_t features,
                              int64_t units, bool with_dst_iter, const dnnl::engine& engine,
                              dnnl::algorithm vanilla_activation = dnnl::algorithm::eltwise_tanh);

// The Keras kernel [in, G*U] bytes as {1, 1, in, G, U} ldigo (in = features or units).
memory::desc rnn_keras_weights_desc(int64_t in, int gates, int64_t units);

// ---- fusion ops: weighted_average, gated, film, upsampling2d (kernels/onednn/binary_chain.cpp)
// ----

// dst = scale0 * src0 <alg> scale1 * src1 (binary with common src scales fixed at creation).
dnnl::binary::primitive_desc make_scaled_binary_pd(dnnl::algorithm alg, const memory::desc& src0,
                                                   const memory::desc& src1,
                                                   const memory::desc& dst, float scale0,
                                                   float scale1);
// One binary post-op: dst = dst <alg> src1 (src1 may broadcast).
struct BinaryPostOp {
  dnnl::algorithm alg;
  memory::desc src1;
};
// dst = src0 <alg> src1, then each post-op in order; at execute the post-op i's src1 goes in
// DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1.
dnnl::binary::primitive_desc make_binary_chain_pd(dnnl::algorithm alg, const memory::desc& src0,
                                                  const memory::desc& src1, const memory::desc& dst,
                                                  const std::vector<BinaryPostOp>& post_ops);
// Resampling (forward_inference) of {N, C, H, W} descs: nearest or linear (half-pixel centres).
dnnl::resampling_forward::primitive_desc make_resampling_pd(bool linear, const memory::desc& src,
                                                            const memory::desc& dst);
// A (batched) matmul dst = src @ weights with the given descs (batch dims of size 1 broadcast),
// for activations on both sides (no weights `any`, no bias).
dnnl::matmul::primitive_desc make_activation_matmul_pd(const memory::desc& src,
                                                       const memory::desc& weights,
                                                       const memory::desc& dst);

// ---- fusion ops: tensor_fusion, low_rank_fusion, cross_attention ----
// (layers/tensor_fusion.cpp, layers/low_rank_fusion.cpp, layers/cross_attention.cpp;
// implemented in kernels/onednn/matmul.cpp)

// An f32 desc with explicit strides: a view of (part of) a plain tensor, e.g. one head of a
// [B, T, heads, dim] tensor seen as {B, heads, T, dim}.
memory::desc strided_desc(const memory::dims& dims, const memory::dims& strides);
// matmul (forward) dst = src x weights (+ bias), batched over the leading dims (size-1 batch dims
// of src or weights broadcast); then dst *= scale when scale != 1 (eltwise_linear post-op).
// `bias` may be a zero desc. All descs are concrete (strided views are fine).
dnnl::matmul::primitive_desc make_matmul_pd(const memory::desc& src, const memory::desc& weights,
                                            const memory::desc& bias, const memory::desc& dst,
                                            float scale = 1.f);

// ---- training (kernels/onednn/training.cpp) ----

// The same bytes with the last two dims swapped (a strided view): a plain {.., r, c} as
// {.., c, r}, for matmuls with a transposed operand.
memory::desc transposed_desc(const memory::desc& plain);
// A reduction_sum of a plain {rows, cols} desc into {1, cols} (bias gradients): dst may be any
// desc of cols elements.
dnnl::reduction::primitive_desc make_sum_rows_pd(const memory::desc& src, const memory::desc& dst);
// sum of `srcs` (same desc) into dst, for gradients that fan out.
dnnl::sum::primitive_desc make_sum_pd(const memory::desc& desc, size_t count);

}  // namespace fg::onednn
