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

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/fusion_training.hpp"
#include "layers/training_blocks.hpp"

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

// Attention dropout in training: entry i of step `step` is kept when a hash of (seed, step, i)
// mapped to [0, 1) is at least `rate` (SplitMix64 finalizer).
inline bool keep_entry(uint64_t seed, int64_t step, uint64_t i, double rate) {
  uint64_t z = seed ^ (static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ull) ^
               (i * 0xBF58476D1CE4E5B9ull + 0x94D049BB133111EBull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0) >= rate;
}

// The attention's training kernels over plain buffers (see CrossAttention::compile_training).
// Saved: Q, K, V (projections, [B, T, H * dim]), A (softmax weights [B, H, Tq, Tk], 0 for
// masked keys), C (context [B, Tq, H * vd]) and, with dropout, A after dropout.
struct AttentionTraining {
  enum Saved { kQ = 0, kK, kV, kA, kC, kDroppedA };
  const TrainingKernelContext& ctx;
  TrainingBuild& build;
  bool use_bias;
  double dropout;
  int64_t B, tq, tk, dq, dk, H, kd, vd, out;
  BackwardArgs a;

  memory::desc plain(Dims d) const { return onednn::plain_desc(d); }
  // Weight index of `which` (0 query, 1 key, 2 value, 3 output) and its bias.
  int kernel(int which) const { return use_bias ? 2 * which : which; }
  int bias(int which) const { return kernel(which) + 1; }
  float scale() const { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(kd))); }
  // Per-head views of [B, T, H, D] bytes as {B, H, T, D}, and their transposes {B, H, D, T}.
  memory::desc heads(int64_t t, int64_t d) const {
    return onednn::strided_desc({B, H, t, d}, {t * H * d, d, H * d, 1});
  }
  memory::desc heads_t(int64_t t, int64_t d) const {
    return onednn::strided_desc({B, H, d, t}, {t * H * d, d, 1, H * d});
  }
  memory::desc scores() const { return plain({B, H, tq, tk}); }

  // dst = x W + b on x seen as [B * T, in] (`src` / `dst` are CallArgs without views).
  void projection(StagedKernel& k, KernelBuild& kb, CallArg x, int64_t rows, int64_t in, int w,
                  int b, CallArg dst, int64_t units) const {
    x.view = plain({rows, in});
    dst.view = plain({rows, units});
    add_matmul(k.calls(), kb, x, CallArg::src(w, plain({in, units})), dst, false,
               use_bias ? CallArg::src(b, plain({1, units})) : CallArg{});
  }

  void forward() {
    auto k = std::make_unique<StagedKernel>();
    KernelBuild& f = build.forward;
    const int w0 = 2;  // forward srcs: query, key/value, then the weights
    const int saved = 1;
    projection(*k, f, CallArg::src(0), B * tq, dq, w0 + kernel(0), w0 + bias(0),
               CallArg::dst(saved + kQ), H * kd);
    projection(*k, f, CallArg::src(1), B * tk, dk, w0 + kernel(1), w0 + bias(1),
               CallArg::dst(saved + kK), H * kd);
    projection(*k, f, CallArg::src(1), B * tk, dk, w0 + kernel(2), w0 + bias(2),
               CallArg::dst(saved + kV), H * vd);
    add_matmul(k->calls(), f, CallArg::dst(saved + kQ, heads(tq, kd)),
               CallArg::dst(saved + kK, heads_t(tk, kd)), CallArg::dst(saved + kA, scores()), false,
               {}, scale());
    k->add_stage(softmax_stage(saved));
    const int weights_used = dropout > 0 ? saved + kDroppedA : saved + kA;
    add_matmul(k->calls(), f, CallArg::dst(weights_used, scores()),
               CallArg::dst(saved + kV, heads(tk, vd)), CallArg::dst(saved + kC, heads(tq, vd)));
    projection(*k, f, CallArg::dst(saved + kC), B * tq, H * vd, w0 + kernel(3), w0 + bias(3),
               CallArg::dst(0), out);
    build.forward.kernel = std::move(k);
  }

  // The key mask and the softmax over the keys, in place on the scores (forward dst kA); with
  // dropout, the dropped weights (scaled by 1 / (1 - rate)) into kDroppedA. The stage runs long
  // after this builder is gone: it captures copies only, never `this`.
  StagedKernel::Stage softmax_stage(int saved) const {
    const int64_t samples = B, rows = H * tq, keys = tk;
    const double rate = dropout;
    const uint64_t seed = ctx.seed;
    return [samples, rows, keys, rate, seed, saved](ExecContext& e) {
      const uint8_t* mask = e.src_masks.size() > 1 ? e.src_masks[1] : nullptr;
      float* w = data_of(e.dsts[saved + kA]);
      float* dropped = rate > 0 ? data_of(e.dsts[saved + kDroppedA]) : nullptr;
      const float keep_scale = static_cast<float>(1.0 / (1.0 - rate));
#pragma omp parallel for num_threads(e.threads) schedule(static)
      for (int64_t row = 0; row < samples * rows; ++row) {
        const uint8_t* m = mask ? mask + (row / rows) * keys : nullptr;
        float* s = w + row * keys;
        float top = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < keys; ++j)
          if (!m || m[j]) top = std::max(top, s[j]);
        float total = 0.f;
        for (int64_t j = 0; j < keys; ++j) {
          s[j] = (!m || m[j]) ? std::exp(s[j] - top) : 0.f;
          total += s[j];
        }
        // every key masked: top stays -inf, total 0 and the weights are all 0
        for (int64_t j = 0; j < keys; ++j) s[j] = total > 0.f ? s[j] / total : 0.f;
        if (!dropped) continue;
        for (int64_t j = 0; j < keys; ++j) {
          const uint64_t i = static_cast<uint64_t>(row * keys + j);
          dropped[row * keys + j] = keep_entry(seed, e.step, i, rate) ? s[j] * keep_scale : 0.f;
        }
      }
    };
  }

  // dA (temp) -> dS = scale A (dA' - sum_j A dA') in place, dA' = dA after the dropout's scaling.
  StagedKernel::Stage softmax_backward_stage(int da) const {
    const int64_t keys = tk, rows = B * H * tq;
    const bool dropped = dropout > 0;
    const float keep_scale = static_cast<float>(1.0 / (1.0 - dropout)), s = scale();
    const BackwardArgs args = a;
    return [keys, rows, dropped, keep_scale, s, args, da](ExecContext& e) {
      const float* w = data_of(e.srcs[args.saved_tensor(kA)]);
      const float* wd = dropped ? data_of(e.srcs[args.saved_tensor(kDroppedA)]) : nullptr;
      float* g = data_of(e.temps[da]);
#pragma omp parallel for num_threads(e.threads) schedule(static)
      for (int64_t row = 0; row < rows; ++row) {
        float* gr = g + row * keys;
        const float* wr = w + row * keys;
        float dot = 0.f;
        for (int64_t j = 0; j < keys; ++j) {
          if (wd) gr[j] = wd[row * keys + j] != 0.f ? gr[j] * keep_scale : 0.f;
          dot += wr[j] * gr[j];
        }
        for (int64_t j = 0; j < keys; ++j) gr[j] = s * wr[j] * (gr[j] - dot);
      }
    };
  }

  void backward();
  void backward_projections(StagedKernel& k, int dq_temp, int dk_temp, int dv_temp);
};

void AttentionTraining::backward() {
  auto k = std::make_unique<StagedKernel>();
  KernelBuild& bk = build.backward;
  const int dc = bk.add_temp(plain({B, tq, H * vd})), da = bk.add_temp(scores());
  const int dqt = bk.add_temp(plain({B, tq, H * kd})), dkt = bk.add_temp(plain({B, tk, H * kd}));
  const int dvt = bk.add_temp(plain({B, tk, H * vd}));
  PrimitiveSequence& calls = k->calls();
  const memory::desc y2 = plain({B * tq, out}), c2 = plain({B * tq, H * vd});
  // dC = dy Wo^T; dWo = C^T dy, dbo = sum dy
  add_matmul(calls, bk, CallArg::src(a.diff_output(0), y2),
             CallArg::src(a.weight(kernel(3)), onednn::transposed_desc(plain({H * vd, out}))),
             CallArg::temp(dc, c2));
  if (!ctx.frozen) {
    add_matmul(calls, bk, CallArg::src(a.saved_tensor(kC), onednn::transposed_desc(c2)),
               CallArg::src(a.diff_output(0), y2),
               CallArg::dst(a.diff_weight(kernel(3)), plain({H * vd, out})));
    if (use_bias)
      append_sum_rows(CallArg::src(a.diff_output(0), y2),
                      CallArg::dst(a.diff_weight(bias(3)), plain({1, out})), y2, calls, bk);
  }
  // dA = dC V^T per head; dV = A^T dC per head (A after dropout when there is one)
  add_matmul(calls, bk, CallArg::temp(dc, heads(tq, vd)),
             CallArg::src(a.saved_tensor(kV), heads_t(tk, vd)), CallArg::temp(da, scores()));
  const int used = dropout > 0 ? kDroppedA : kA;
  add_matmul(calls, bk, CallArg::src(a.saved_tensor(used), onednn::transposed_desc(scores())),
             CallArg::temp(dc, heads(tq, vd)), CallArg::temp(dvt, heads(tk, vd)));
  k->add_stage(softmax_backward_stage(da));
  // dQ = dS K, dK = dS^T Q per head (dS already carries the 1 / sqrt(key_dim))
  add_matmul(calls, bk, CallArg::temp(da, scores()),
             CallArg::src(a.saved_tensor(kK), heads(tk, kd)), CallArg::temp(dqt, heads(tq, kd)));
  add_matmul(calls, bk, CallArg::temp(da, onednn::transposed_desc(scores())),
             CallArg::src(a.saved_tensor(kQ), heads(tq, kd)), CallArg::temp(dkt, heads(tk, kd)));
  backward_projections(*k, dqt, dkt, dvt);
  build.backward.kernel = std::move(k);
}

// The projections' gradients: dW = x^T dP, db = sum dP for P = Q, K, V; dxq = dQ Wq^T,
// dxkv = dK Wk^T + dV Wv^T.
void AttentionTraining::backward_projections(StagedKernel& k, int dq_temp, int dk_temp,
                                             int dv_temp) {
  KernelBuild& bk = build.backward;
  PrimitiveSequence& calls = k.calls();
  struct Part {
    int which, input, temp;
    int64_t rows, in, units;
  };
  const Part parts[3] = {{0, 0, dq_temp, B * tq, dq, H * kd},
                         {1, 1, dk_temp, B * tk, dk, H * kd},
                         {2, 1, dv_temp, B * tk, dk, H * vd}};
  for (const Part& p : parts) {
    const memory::desc x2 = plain({p.rows, p.in}), d2 = plain({p.rows, p.units});
    if (!ctx.frozen) {
      add_matmul(calls, bk, CallArg::src(a.input(p.input), onednn::transposed_desc(x2)),
                 CallArg::temp(p.temp, d2),
                 CallArg::dst(a.diff_weight(kernel(p.which)), plain({p.in, p.units})));
      if (use_bias)
        append_sum_rows(CallArg::temp(p.temp, d2),
                        CallArg::dst(a.diff_weight(bias(p.which)), plain({1, p.units})), d2, calls,
                        bk);
    }
    if (!ctx.needs_input_gradient[p.input]) continue;
    add_matmul(
        calls, bk, CallArg::temp(p.temp, d2),
        CallArg::src(a.weight(kernel(p.which)), onednn::transposed_desc(plain({p.in, p.units}))),
        CallArg::dst(a.diff_input(p.input), x2), p.which == 2);
  }
}

class CrossAttention final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    heads_ = attrs.get_positive_int("num_heads");
    key_dim_ = attrs.get_positive_int("key_dim");
    value_dim_ = attrs.get_positive_int("value_dim", key_dim_);
    output_dim_ = attrs.has("output_dim") ? attrs.get_positive_int("output_dim") : 0;
    use_bias_ = attrs.get_bool("use_bias", true);
    dropout_ = attrs.get_float("dropout", 0.0);
    if (dropout_ < 0 || dropout_ >= 1)
      throw attrs.error("dropout", fmt::format("dropout must be in [0, 1), got {}", dropout_));
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

  bool has_gradient() const override { return true; }

  // Training (AttentionTraining): the projections and the per-head products are matmuls on
  // plain buffers and strided per-head views; the key mask, the softmax, the attention dropout
  // and the softmax backward are C++.
  //   forward   Q, K, V, A = softmax(mask(Q K^T / sqrt(key_dim))), A' = dropout(A), C = A' V,
  //             y = C Wo + bo (Q, K, V, A, C and A' saved)
  //   backward  dC = dy Wo^T, dWo = C^T dy, dbo = sum dy; dA' = dC V^T, dV = A'^T dC;
  //             dA = dA' * keep / (1 - rate); dS = A (dA - rowsum(A dA)) / sqrt(key_dim)
  //             (0 for masked keys: A is 0 there); dQ = dS K, dK = dS^T Q;
  //             dW = x^T dP, db = sum dP (P = Q, K, V); dxq = dQ Wq^T, dxkv = dK Wk^T + dV Wv^T
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const Dims& qs = ctx.inputs[0].shape;
    const Dims& ks = ctx.inputs[1].shape;
    const int64_t B = qs[0], tq = qs[1], tk = ks[1], H = heads_, kd = key_dim_, vd = value_dim_;
    std::vector<memory::desc> saved{
        onednn::plain_desc(Dims{B, tq, H * kd}), onednn::plain_desc(Dims{B, tk, H * kd}),
        onednn::plain_desc(Dims{B, tk, H * vd}), onednn::plain_desc(Dims{B, H, tq, tk}),
        onednn::plain_desc(Dims{B, tq, H * vd})};
    if (dropout_ > 0) saved.push_back(onednn::plain_desc(Dims{B, H, tq, tk}));
    build = start_training_build(ctx, saved);
    AttentionTraining t{ctx,
                        build,
                        use_bias_,
                        dropout_,
                        B,
                        tq,
                        tk,
                        qs[2],
                        ks[2],
                        H,
                        kd,
                        vd,
                        out_dim(qs[2]),
                        backward_args(ctx, saved.size())};
    t.forward();
    t.backward();
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
  double dropout_ = 0.0;
};

}  // namespace

OpInfo cross_attention_op() {
  return {"cross_attention", [] { return std::make_unique<CrossAttention>(); },
          "multi-head scaled dot-product attention of a query sequence over another (Keras "
          "MultiHeadAttention weights; oneDNN matmul + softmax)"};
}

}  // namespace fg::layers
