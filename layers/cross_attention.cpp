// cross_attention: multi-head scaled dot-product attention of a query sequence (input 0,
// [B, Tq, dq]) over a key/value sequence (input 1, [B, Tk, dk]), as the crossmodal attention of
// MulT (Tsai et al. 2019); Keras MultiHeadAttention(query, value) with key = value. Weights in
// Keras MultiHeadAttention names and layouts:
//   query_kernel [dq, heads, key_dim]     query_bias [heads, key_dim]
//   key_kernel   [dk, heads, key_dim]     key_bias   [heads, key_dim]
//   value_kernel [dk, heads, value_dim]   value_bias [heads, value_dim]
//   output_kernel [heads, value_dim, output_dim]   output_bias [output_dim]
// Q = xq Wq + bq, K = xkv Wk + bk, V = xkv Wv + bv;
// A[b,h] = softmax(Q[b,:,h] K[b,:,h]^T / sqrt(key_dim)) over the keys;
// C[b,:,h] = A[b,h] V[b,:,h]; y = concat_h(C) Wo + bo, shape [B, Tq, output_dim].
// Masks: a key/value mask removes masked keys from the softmax (weight exactly 0); when every key
// of a sample is masked its attention weights are all 0 (so y = output_bias there). A query mask
// passes on to the output unchanged (it does not change the values).
// oneDNN: the four projections are matmuls (weights `any`, as Dense); the two attention products
// are batched matmuls on strided per-head views (no transposes); the softmax is oneDNN softmax on
// the innermost axis; the key mask is applied to the scores in plain C++.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

enum Temp { kQ = 0, kK = 1, kV = 2, kScores = 3, kContext = 4 };

// Calls: the query, key and value projections, the scores, the softmax, the context and the
// output projection; a key mask is applied in C++ around the softmax.
class CrossAttentionKernel final : public PrimitiveSequenceKernel {
 public:
  static constexpr size_t kSoftmaxCall = 4;

  CrossAttentionKernel(PrimitiveSequence calls, std::string impl, int64_t batch, int64_t heads,
                       int64_t tq, int64_t tk)
      : PrimitiveSequenceKernel(std::move(calls), std::move(impl)),
        batch_(batch),
        heads_(heads),
        tq_(tq),
        tk_(tk) {}

  void execute(ExecContext& ctx) const override {
    const auto& binding = static_cast<const PrimitiveSequence::Binding&>(*ctx.binding);
    const uint8_t* key_mask = ctx.src_masks.size() > 1 ? ctx.src_masks[1] : nullptr;
    auto* scores = static_cast<float*>(ctx.temps[kScores].get_data_handle());
    calls().run(ctx, binding, 0, kSoftmaxCall);
    if (key_mask) {
      ctx.stream.wait();
      apply_key_mask(scores, key_mask, false, ctx.threads);
    }
    calls().run(ctx, binding, kSoftmaxCall, kSoftmaxCall + 1);
    if (key_mask) {
      ctx.stream.wait();
      apply_key_mask(scores, key_mask, true, ctx.threads);
    }
    calls().run(ctx, binding, kSoftmaxCall + 1);
  }

 private:
  // Before the softmax: masked keys get -inf; a sample without any valid key gets 0 scores (to
  // keep the softmax finite). After: masked keys and every weight of such a sample become 0.
  void apply_key_mask(float* scores, const uint8_t* mask, bool after, int threads) const {
    const int64_t rows = heads_ * tq_, tk = tk_;
    const float minus_inf = -std::numeric_limits<float>::infinity();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < batch_; ++b) {
      const uint8_t* m = mask + b * tk;
      bool any = false;
      for (int64_t j = 0; j < tk; ++j) any = any || m[j] != 0;
      float* s = scores + b * rows * tk;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < tk; ++j) {
          float& v = s[r * tk + j];
          if (!any)
            v = 0.f;
          else if (!m[j])
            v = after ? 0.f : minus_inf;
        }
    }
  }

  int64_t batch_, heads_, tq_, tk_;
};

class CrossAttention final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    heads_ = attrs.get_positive_int("num_heads");
    key_dim_ = attrs.get_positive_int("key_dim");
    value_dim_ = attrs.get_positive_int("value_dim", key_dim_);
    output_dim_ = attrs.has("output_dim") ? attrs.get_positive_int("output_dim") : 0;
    use_bias_ = attrs.get_bool("use_bias", true);
    const double dropout = attrs.get_float("dropout", 0.0);
    if (dropout < 0 || dropout >= 1)
      throw attrs.error("dropout", fmt::format("dropout must be in [0, 1), got {}", dropout));
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    if (ctx.num_inputs() != 2)
      throw ctx
          .error(fmt::format("cross_attention takes exactly 2 inputs [query, key_value], got {}",
                             ctx.num_inputs()))
          .hint("the first input is the query sequence, the second the sequence attended to");
    const char* role[2] = {"query", "key/value"};
    for (size_t i = 0; i < 2; ++i) {
      const TensorType& x = ctx.input(i);
      if (x.dtype != DType::f32)
        throw ctx
            .input_error(i, fmt::format("cross_attention needs a float32 {} input, but '{}' is {}",
                                        role[i], ctx.input_name(i), format_type(x)))
            .hint("int32 inputs are usually token ids: put an `embedding` node before");
      if (x.rank() != 3)
        throw ctx
            .input_error(i, fmt::format("cross_attention needs a rank-3 {} input [batch, steps, "
                                        "features], but '{}' has shape {}",
                                        role[i], ctx.input_name(i), format_shape(x.shape)))
            .hint(x.rank() == 2 ? "use a sequence (e.g. lstm with return_sequences: true), or "
                                  "reshape [batch, features] to [batch, 1, features]"
                                : "reshape the input to [batch, steps, features]");
      if (x.shape[2] == kDynamic)
        throw ctx.input_error(
            i, fmt::format("cross_attention needs the feature size of '{}' known, got {}",
                           ctx.input_name(i), format_shape(x.shape)));
      if (x.shape[1] == 0)
        throw ctx.input_error(i, fmt::format("cross_attention needs at least one step, got {}",
                                             format_shape(x.shape)));
    }
    const Dim bq = ctx.input(0).shape[0], bk = ctx.input(1).shape[0];
    if (bq != kDynamic && bk != kDynamic && bq != bk)
      throw ctx.input_error(1, fmt::format("query and key/value must have equal batch sizes, got "
                                           "{} and {}",
                                           bq, bk));
    dim_mul(heads_, std::max(key_dim_, value_dim_));
    TensorType out = ctx.input(0);  // keeps the query's mask flag
    if (out.shape[0] == kDynamic) out.shape[0] = bk;
    out.shape[2] = out_dim(ctx.input(0).shape[2]);
    return {out};
  }

  bool supports_masking() const override { return true; }

  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    const Dim dq = ctx.input(0).shape[2], dk = ctx.input(1).shape[2], out = out_dim(dq);
    const Dim h = heads_, kd = key_dim_, vd = value_dim_;
    // Keras glorot fans for an n-d kernel: receptive field = prod(shape[:-2]).
    auto kernel = [](std::string name, Dims s) {
      const Dim field = s[0];
      return WeightSpec{std::move(name), s, Init::glorot_uniform, s[1] * field, s[2] * field};
    };
    std::vector<WeightSpec> w;
    w.push_back(kernel("query_kernel", {dq, h, kd}));
    if (use_bias_) w.push_back({"query_bias", {h, kd}, Init::zeros});
    w.push_back(kernel("key_kernel", {dk, h, kd}));
    if (use_bias_) w.push_back({"key_bias", {h, kd}, Init::zeros});
    w.push_back(kernel("value_kernel", {dk, h, vd}));
    if (use_bias_) w.push_back({"value_bias", {h, vd}, Init::zeros});
    w.push_back(kernel("output_kernel", {h, vd, out}));
    if (use_bias_) w.push_back({"output_bias", {out}, Init::zeros});
    return w;
  }

  double flops_per_sample(const InferContext& ctx,
                          const std::vector<TensorType>& outputs) const override {
    const Dim tq = ctx.input(0).shape[1], tk = ctx.input(1).shape[1];
    if (tq == kDynamic || tk == kDynamic) return 0;
    const double dq = ctx.input(0).shape[2], dk = ctx.input(1).shape[2];
    const double h = heads_, kd = key_dim_, vd = value_dim_, out = out_dim(ctx.input(0).shape[2]);
    const double q = tq, k = tk;
    return 2.0 *
           (q * dq * h * kd + k * dk * h * (kd + vd) + h * q * k * (kd + vd) + q * h * vd * out);
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const Dims& qs = ctx.inputs[0].shape;
    const Dims& ks = ctx.inputs[1].shape;
    for (size_t i = 0; i < 2; ++i)
      if (ctx.input_descs[i] != onednn::plain_desc(ctx.inputs[i]))
        throw ctx.error("internal: cross_attention expects its inputs in the plain layout");
    const int64_t B = qs[0], tq = qs[1], tk = ks[1], dq = qs[2], dk = ks[2];
    const int64_t H = heads_, kd = key_dim_, vd = value_dim_, out = out_dim(dq);
    build.temp_descs = {
        onednn::plain_desc(Dims{B, tq, H * kd}), onednn::plain_desc(Dims{B, tk, H * kd}),
        onednn::plain_desc(Dims{B, tk, H * vd}), onednn::plain_desc(Dims{B, H, tq, tk}),
        onednn::plain_desc(Dims{B, tq, H * vd})};
    PrimitiveSequence calls;
    std::string impl;
    auto projection = [&](const std::string& name, const memory::desc& src, CallArg src_arg,
                          const memory::desc& dst, CallArg dst_arg, int64_t in, int64_t units) {
      auto pd = onednn::make_dense_matmul_pd(src, dst, use_bias_, dnnl::primitive_attr());
      std::vector<std::pair<int, CallArg>> args{
          {DNNL_ARG_SRC, src_arg},
          {DNNL_ARG_WEIGHTS, CallArg::constant(ctx.weight_memory(
                                 name + "_kernel", onednn::dense_matmul_kernel_desc(3, in, units),
                                 pd.weights_desc()))},
          {DNNL_ARG_DST, dst_arg}};
      if (use_bias_)
        args.push_back({DNNL_ARG_BIAS, CallArg::constant(ctx.weight_memory(
                                           name + "_bias", onednn::dense_matmul_bias_desc(3, units),
                                           pd.bias_desc()))});
      if (impl.empty()) impl = onednn::impl_name(pd);
      calls.add(pd, std::move(args), build);
    };
    const auto& temps = build.temp_descs;
    projection("query", build.src_descs[0], CallArg::src(0), temps[kQ], CallArg::temp(kQ), dq,
               H * kd);
    projection("key", build.src_descs[1], CallArg::src(1), temps[kK], CallArg::temp(kK), dk,
               H * kd);
    projection("value", build.src_descs[1], CallArg::src(1), temps[kV], CallArg::temp(kV), dk,
               H * vd);
    // Per-head views of [B, T, H, D] bytes as {B, H, T, D} (and K as {B, H, kd, Tk}).
    const auto q_view = onednn::strided_desc({B, H, tq, kd}, {tq * H * kd, kd, H * kd, 1});
    const auto k_view = onednn::strided_desc({B, H, kd, tk}, {tk * H * kd, kd, 1, H * kd});
    const auto v_view = onednn::strided_desc({B, H, tk, vd}, {tk * H * vd, vd, H * vd, 1});
    const auto c_view = onednn::strided_desc({B, H, tq, vd}, {tq * H * vd, vd, H * vd, 1});
    const memory::desc scores = temps[kScores];
    auto scores_pd = onednn::make_matmul_pd(q_view, k_view, memory::desc(), scores,
                                            static_cast<float>(1.0 / std::sqrt(double(kd))));
    calls.add(scores_pd,
              {{DNNL_ARG_SRC, CallArg::temp(kQ, q_view)},
               {DNNL_ARG_WEIGHTS, CallArg::temp(kK, k_view)},
               {DNNL_ARG_DST, CallArg::temp(kScores)}},
              build);
    auto softmax_pd = onednn::make_softmax_pd(scores, scores, 3, false);
    calls.add(softmax_pd,
              {{DNNL_ARG_SRC, CallArg::temp(kScores)}, {DNNL_ARG_DST, CallArg::temp(kScores)}},
              build);
    calls.add(onednn::make_matmul_pd(scores, v_view, memory::desc(), c_view),
              {{DNNL_ARG_SRC, CallArg::temp(kScores)},
               {DNNL_ARG_WEIGHTS, CallArg::temp(kV, v_view)},
               {DNNL_ARG_DST, CallArg::temp(kContext, c_view)}},
              build);
    projection("output", temps[kContext], CallArg::temp(kContext), build.dst_descs[0],
               CallArg::dst(0), H * vd, out);
    impl += " + " + onednn::impl_name(scores_pd) + " + " + onednn::impl_name(softmax_pd);
    build.kernel =
        std::make_unique<CrossAttentionKernel>(std::move(calls), std::move(impl), B, H, tq, tk);
    return build;
  }

 private:
  Dim out_dim(Dim dq) const { return output_dim_ > 0 ? output_dim_ : dq; }

  int64_t heads_ = 0, key_dim_ = 0, value_dim_ = 0, output_dim_ = 0;
  bool use_bias_ = true;
};

}  // namespace

OpInfo cross_attention_op() {
  return {"cross_attention", [] { return std::make_unique<CrossAttention>(); },
          "multi-head scaled dot-product attention of a query sequence over another (Keras "
          "MultiHeadAttention weights; oneDNN matmul + softmax)"};
}

}  // namespace fg::layers
