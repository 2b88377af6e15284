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

#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/builtin_ops.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

struct Projection {
  dnnl::matmul prim;
  memory weights;
  std::optional<memory> bias;
};

enum Temp { kQ = 0, kK = 1, kV = 2, kScores = 3, kContext = 4 };

class CrossAttentionKernel final : public Kernel {
 public:
  struct Parts {
    Projection query, key, value, output;
    dnnl::matmul scores, context;
    dnnl::softmax_v2_forward softmax;
    memory::desc q_view, k_view, v_view, c_view;  // per-head strided views of the temps
    int64_t batch = 0, heads = 0, tq = 0, tk = 0;
    std::string impl;
  };

  explicit CrossAttentionKernel(Parts parts) : p_(std::move(parts)) {}

  void execute(ExecContext& ctx) const override {
    const dnnl::engine engine = ctx.stream.get_engine();
    auto project = [&](const Projection& pr, const memory& src, const memory& dst) {
      std::unordered_map<int, memory> args{
          {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, pr.weights}, {DNNL_ARG_DST, dst}};
      if (pr.bias) args.emplace(DNNL_ARG_BIAS, *pr.bias);
      execute_primitive(pr.prim, ctx, std::move(args));
    };
    project(p_.query, ctx.srcs[0], ctx.temps[kQ]);
    project(p_.key, ctx.srcs[1], ctx.temps[kK]);
    project(p_.value, ctx.srcs[1], ctx.temps[kV]);
    auto view = [&](const memory::desc& d, int temp) {
      return memory(d, engine, ctx.temps[temp].get_data_handle());
    };
    execute_primitive(p_.scores, ctx,
                      {{DNNL_ARG_SRC, view(p_.q_view, kQ)},
                       {DNNL_ARG_WEIGHTS, view(p_.k_view, kK)},
                       {DNNL_ARG_DST, ctx.temps[kScores]}});
    const uint8_t* key_mask = ctx.src_masks.size() > 1 ? ctx.src_masks[1] : nullptr;
    auto* scores = static_cast<float*>(ctx.temps[kScores].get_data_handle());
    if (key_mask) {
      ctx.stream.wait();
      apply_key_mask(scores, key_mask, false, ctx.threads);
    }
    execute_primitive(p_.softmax, ctx,
                      {{DNNL_ARG_SRC, ctx.temps[kScores]}, {DNNL_ARG_DST, ctx.temps[kScores]}});
    if (key_mask) {
      ctx.stream.wait();
      apply_key_mask(scores, key_mask, true, ctx.threads);
    }
    execute_primitive(p_.context, ctx,
                      {{DNNL_ARG_SRC, ctx.temps[kScores]},
                       {DNNL_ARG_WEIGHTS, view(p_.v_view, kV)},
                       {DNNL_ARG_DST, view(p_.c_view, kContext)}});
    project(p_.output, ctx.temps[kContext], ctx.dsts[0]);
  }

  std::string impl_info() const override { return p_.impl; }

 private:
  // Before the softmax: masked keys get -inf; a sample without any valid key gets 0 scores (to
  // keep the softmax finite). After: masked keys and every weight of such a sample become 0.
  void apply_key_mask(float* scores, const uint8_t* mask, bool after, int threads) const {
    const int64_t rows = p_.heads * p_.tq, tk = p_.tk;
    const float minus_inf = -std::numeric_limits<float>::infinity();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < p_.batch; ++b) {
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

  Parts p_;
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

  std::unique_ptr<Kernel> compile(KernelContext& ctx) const override {
    const Dims& qs = ctx.inputs[0].shape;
    const Dims& ks = ctx.inputs[1].shape;
    for (size_t i = 0; i < 2; ++i)
      if (ctx.src_descs[i] != onednn::plain_desc(ctx.inputs[i]))
        throw ctx.error("internal: cross_attention expects its inputs in the plain layout");
    const int64_t B = qs[0], tq = qs[1], tk = ks[1], dq = qs[2], dk = ks[2];
    const int64_t H = heads_, kd = key_dim_, vd = value_dim_, out = out_dim(dq);
    CrossAttentionKernel::Parts p;
    p.batch = B;
    p.heads = H;
    p.tq = tq;
    p.tk = tk;
    ctx.temp_descs = {
        onednn::plain_desc(Dims{B, tq, H * kd}), onednn::plain_desc(Dims{B, tk, H * kd}),
        onednn::plain_desc(Dims{B, tk, H * vd}), onednn::plain_desc(Dims{B, H, tq, tk}),
        onednn::plain_desc(Dims{B, tq, H * vd})};
    auto projection = [&](const std::string& name, const memory::desc& src, const memory::desc& dst,
                          int64_t in, int64_t units) {
      auto pd = onednn::make_dense_matmul_pd(src, dst, use_bias_, dnnl::primitive_attr());
      ctx.add_scratchpad(pd);
      Projection pr{
          dnnl::matmul(pd),
          ctx.weight_memory(name + "_kernel", onednn::dense_matmul_kernel_desc(3, in, units),
                            pd.weights_desc()),
          std::nullopt};
      if (use_bias_)
        pr.bias = ctx.weight_memory(name + "_bias", onednn::dense_matmul_bias_desc(3, units),
                                    pd.bias_desc());
      if (p.impl.empty()) p.impl = onednn::impl_name(pd);
      return pr;
    };
    p.query = projection("query", ctx.src_descs[0], ctx.temp_descs[kQ], dq, H * kd);
    p.key = projection("key", ctx.src_descs[1], ctx.temp_descs[kK], dk, H * kd);
    p.value = projection("value", ctx.src_descs[1], ctx.temp_descs[kV], dk, H * vd);
    p.output = projection("output", ctx.temp_descs[kContext], ctx.dst_descs[0], H * vd, out);
    // Per-head views of [B, T, H, D] bytes as {B, H, T, D} (and K as {B, H, kd, Tk}).
    p.q_view = onednn::strided_desc({B, H, tq, kd}, {tq * H * kd, kd, H * kd, 1});
    p.k_view = onednn::strided_desc({B, H, kd, tk}, {tk * H * kd, kd, 1, H * kd});
    p.v_view = onednn::strided_desc({B, H, tk, vd}, {tk * H * vd, vd, H * vd, 1});
    p.c_view = onednn::strided_desc({B, H, tq, vd}, {tq * H * vd, vd, H * vd, 1});
    const memory::desc& scores = ctx.temp_descs[kScores];
    auto scores_pd = onednn::make_matmul_pd(p.q_view, p.k_view, memory::desc(), scores,
                                            static_cast<float>(1.0 / std::sqrt(double(kd))));
    ctx.add_scratchpad(scores_pd);
    auto softmax_pd = onednn::make_softmax_pd(scores, scores, 3, false);
    ctx.add_scratchpad(softmax_pd);
    auto context_pd = onednn::make_matmul_pd(scores, p.v_view, memory::desc(), p.c_view);
    ctx.add_scratchpad(context_pd);
    p.scores = dnnl::matmul(scores_pd);
    p.softmax = dnnl::softmax_v2_forward(softmax_pd);
    p.context = dnnl::matmul(context_pd);
    p.impl += " + " + onednn::impl_name(scores_pd) + " + " + onednn::impl_name(softmax_pd);
    return std::make_unique<CrossAttentionKernel>(std::move(p));
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
