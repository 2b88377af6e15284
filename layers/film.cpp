// film: feature-wise linear modulation (Perez et al. 2018) of x_1 [B, ..., C] (rank 2, 3 or 4)
// by a conditioning vector x_2 [B, d]:
//   gamma = x_2 @ gamma_kernel + gamma_bias     [B, C]
//   beta  = x_2 @ beta_kernel + beta_bias       [B, C]
//   y[b, ..., c] = gamma[b, c] * x_1[b, ..., c] + beta[b, c]   (broadcast over the middle dims)
// oneDNN: two inner products, then a binary mul (gamma broadcast) and a binary add (beta
// broadcast), on x seen channels-first. The mask of x_1 passes on unchanged.
#include <fmt/format.h>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/fusion_training.hpp"
#include "layers/training_blocks.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

class Film final : public Op {
 public:
  void parse(AttrReader&) override {}

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    if (ctx.num_inputs() != 2)
      throw ctx
          .error(fmt::format("film takes exactly 2 inputs [features, condition], got {}",
                             ctx.num_inputs()))
          .hint(
              "inputs: [x, condition]: x [batch, ..., channels] is modulated by a rank-2 "
              "condition [batch, d]");
    for (size_t i = 0; i < 2; ++i)
      if (ctx.input(i).dtype != DType::f32)
        throw ctx.input_error(i, fmt::format("film needs float32 inputs, but '{}' is {}",
                                             ctx.input_name(i), dtype_name(ctx.input(i).dtype)));
    const TensorType& x = ctx.input(0);
    const TensorType& c = ctx.input(1);
    if (x.rank() < 2 || x.rank() > 4)
      throw ctx.input_error(0, fmt::format("film modulates a tensor of rank 2, 3 or 4 [batch, "
                                           "..., channels], but '{}' is {}",
                                           ctx.input_name(0), format_shape(x.shape)));
    if (x.shape.back() == kDynamic)
      throw ctx.input_error(0, fmt::format("film needs the channel count (last dim) of '{}' "
                                           "known, got {}",
                                           ctx.input_name(0), format_shape(x.shape)));
    if (c.rank() != 2) {
      Error e = ctx.input_error(1, fmt::format("film's condition (second input) must be rank 2 "
                                               "[batch, d], but '{}' is {}",
                                               ctx.input_name(1), format_shape(c.shape)));
      if (c.rank() > 2) e.hint("apply global pooling or flatten to the condition first");
      throw e;
    }
    if (c.shape[1] == kDynamic)
      throw ctx.input_error(
          1, fmt::format("film needs the condition's size known, got {}", format_shape(c.shape)));
    if (c.masked)
      throw ctx.input_error(1, fmt::format("film's condition '{}' carries a mask; only the first "
                                           "input may be masked",
                                           ctx.input_name(1)));
    if (x.shape[0] != kDynamic && c.shape[0] != kDynamic && x.shape[0] != c.shape[0])
      throw ctx.error(fmt::format("inputs of film must have the same batch size, got {} and {}",
                                  x.shape[0], c.shape[0]));
    TensorType out = x;
    if (out.shape[0] == kDynamic) out.shape[0] = c.shape[0];
    return {out};
  }

  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    const Dim d = ctx.input(1).shape[1], C = ctx.input(0).shape.back();
    return {{"gamma_kernel", {d, C}, Init::glorot_uniform, d, C},
            {"gamma_bias", {C}, Init::ones},
            {"beta_kernel", {d, C}, Init::glorot_uniform, d, C},
            {"beta_bias", {C}, Init::zeros}};
  }

  double flops_per_sample(const InferContext& ctx, const std::vector<TensorType>&) const override {
    return 4.0 * static_cast<double>(ctx.input(1).shape[1]) *
           static_cast<double>(ctx.input(0).shape.back());
  }

  bool supports_masking() const override { return true; }

  bool has_gradient() const override { return true; }

  // Training, with x seen as [B, P, C] (P = the middle dims) and the condition c [B, d]:
  //   forward   gamma = c Wg + bg (saved), beta = c Wb + bb (matmuls); y = gamma x + beta (C++)
  //   backward  dx = gamma dy; dgamma = sum_p dy x, dbeta = sum_p dy (C++);
  //             dc = dgamma Wg^T + dbeta Wb^T; dWg = c^T dgamma, dbg = sum_b dgamma (and beta)
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const Dims& xs = ctx.inputs[0].shape;
    const Dim B = xs[0], C = xs.back(), d = ctx.inputs[1].shape[1];
    const Dim P = num_elements(xs) / (B * C);
    const memory::desc bc = onednn::plain_desc(Dims{B, C}), bd = onednn::plain_desc(Dims{B, d});
    const memory::desc dc = onednn::plain_desc(Dims{d, C}), bias = onednn::plain_desc(Dims{1, C});
    build = start_training_build(ctx, {bc});
    const BackwardArgs a = backward_args(ctx, 1);

    auto fwd = std::make_unique<StagedKernel>();
    const int beta = build.forward.add_temp(bc);
    add_matmul(fwd->calls(), build.forward, CallArg::src(1, bd), CallArg::src(2, dc),
               CallArg::dst(1, bc), false, CallArg::src(3, bias));
    add_matmul(fwd->calls(), build.forward, CallArg::src(1, bd), CallArg::src(4, dc),
               CallArg::temp(beta, bc), false, CallArg::src(5, bias));
    fwd->add_stage([B, P, C, beta](ExecContext& e) {
      const float* x = data_of(e.srcs[0]);
      const float* g = data_of(e.dsts[1]);
      const float* be = data_of(e.temps[beta]);
      float* y = data_of(e.dsts[0]);
#pragma omp parallel for num_threads(e.threads) schedule(static)
      for (Dim bp = 0; bp < B * P; ++bp) {
        const Dim b = bp / P;
        for (Dim k = 0; k < C; ++k) y[bp * C + k] = g[b * C + k] * x[bp * C + k] + be[b * C + k];
      }
    });
    build.forward.kernel = std::move(fwd);

    auto bwd = std::make_unique<StagedKernel>();
    const int dgamma = build.backward.add_temp(bc), dbeta = build.backward.add_temp(bc);
    const bool dx_needed = ctx.needs_input_gradient[0];
    bwd->add_stage([=](ExecContext& e) {
      const float* x = data_of(e.srcs[a.input(0)]);
      const float* g = data_of(e.srcs[a.saved_tensor(0)]);
      const float* dy = data_of(e.srcs[a.diff_output(0)]);
      float* dx = dx_needed ? data_of(e.dsts[a.diff_input(0)]) : nullptr;
      float* dg = data_of(e.temps[dgamma]);
      float* db = data_of(e.temps[dbeta]);
#pragma omp parallel for num_threads(e.threads) schedule(static)
      for (Dim b = 0; b < B; ++b) {
        for (Dim k = 0; k < C; ++k) dg[b * C + k] = db[b * C + k] = 0.f;
        for (Dim p = 0; p < P; ++p) {
          const Dim at = (b * P + p) * C;
          for (Dim k = 0; k < C; ++k) {
            dg[b * C + k] += dy[at + k] * x[at + k];
            db[b * C + k] += dy[at + k];
            if (dx) dx[at + k] = dy[at + k] * g[b * C + k];
          }
        }
      }
    });
    PrimitiveSequence& calls = bwd->calls();
    if (ctx.needs_input_gradient[1]) {
      add_matmul(calls, build.backward, CallArg::temp(dgamma, bc),
                 CallArg::src(a.weight(0), onednn::transposed_desc(dc)),
                 CallArg::dst(a.diff_input(1), bd));
      add_matmul(calls, build.backward, CallArg::temp(dbeta, bc),
                 CallArg::src(a.weight(2), onednn::transposed_desc(dc)),
                 CallArg::dst(a.diff_input(1), bd), true);
    }
    if (!ctx.frozen)
      for (int w : {0, 2}) {
        const CallArg diff = CallArg::temp(w == 0 ? dgamma : dbeta, bc);
        add_matmul(calls, build.backward, CallArg::src(a.input(1), onednn::transposed_desc(bd)),
                   diff, CallArg::dst(a.diff_weight(w), dc));
        append_sum_rows(diff, CallArg::dst(a.diff_weight(w + 1), bias), bc, calls, build.backward);
      }
    build.backward.kernel = std::move(bwd);
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const Dims& xs = ctx.inputs[0].shape;
    const Dim B = xs[0], C = xs.back(), d = ctx.inputs[1].shape[1];
    PrimitiveSequence calls;
    const memory::desc gb = onednn::plain_desc(Dims{B, C});
    for (const char* which : {"gamma", "beta"}) {
      const int t = build.add_temp(gb);
      auto pd = onednn::make_inner_product_pd(build.src_descs[1], gb, true, onednn::make_attr());
      const std::string w = which;
      calls.add(pd,
                {{DNNL_ARG_SRC, CallArg::src(1)},
                 {DNNL_ARG_WEIGHTS,
                  CallArg::constant(ctx.weight_memory(
                      w + "_kernel", onednn::dense_kernel_desc(d, C), pd.weights_desc()))},
                 {DNNL_ARG_BIAS, CallArg::constant(ctx.weight_memory(
                                     w + "_bias", onednn::plain_desc(Dims{C}), pd.bias_desc()))},
                 {DNNL_ARG_DST, CallArg::temp(t)}},
                build);
    }
    // x seen channels-first {B, C, spatial...} (tags nwc / nhwc: the same bytes), gamma and beta
    // [B, C] seen as {B, C, 1, ...}: a broadcast oneDNN's jit binary handles (a channels-last
    // {B, 1, ..., C} broadcast falls back to ref:any).
    const memory::desc xview =
        xs.size() == 2 ? build.src_descs[0] : onednn::channels_first_view(xs);
    Dims bshape(xs.size(), 1);
    bshape[0] = B;
    bshape[1] = C;
    const memory::desc bview = onednn::plain_desc(bshape);
    // dst = x * gamma, then dst += beta (two binaries: as a post-op the {B, C, 1, ...}
    // broadcast is ref:any)
    for (const auto alg : {dnnl::algorithm::binary_mul, dnnl::algorithm::binary_add}) {
      const bool mul = alg == dnnl::algorithm::binary_mul;
      calls.add(onednn::make_binary_pd(alg, xview, bview, xview),
                {{DNNL_ARG_SRC_0, mul ? CallArg::src(0, xview) : CallArg::dst(0, xview)},
                 {DNNL_ARG_SRC_1, CallArg::temp(mul ? 0 : 1, bview)},
                 {DNNL_ARG_DST, CallArg::dst(0, xview)}},
                build);
    }
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls));
    return build;
  }
};

}  // namespace

OpInfo film_op() {
  return {"film", [] { return std::make_unique<Film>(); },
          "feature-wise linear modulation: gamma(c) * x + beta(c) (oneDNN inner product, binary)"};
}

}  // namespace fg::layers
