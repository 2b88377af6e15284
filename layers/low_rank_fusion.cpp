// low_rank_fusion (Liu et al. 2018, Low-rank Multimodal Fusion): M >= 2 inputs [B, d_m] give
//   y = sum_{r < rank} prod_m ([x_m; 1] W_m[r]) + bias,       shape [B, units],
// with one factor W_m = `factor_<m>` of Keras shape [rank, d_m + 1, units] per input (row d_m of
// each W_m[r] multiplies the appended 1) and `bias` [units] (use_bias). The paper's rank
// weights w_r are folded into the factors (scale factor_0[r] by w_r).
// oneDNN: per modality an inner product [B, d_m] x {d_m -> rank * units} whose bias is the
// appended-1 row (weights `any`, rearranged and reordered once); a chain of binary multiplies;
// and one batched matmul ones[1, rank] x [B, rank, units] (+ bias) for the sum over the rank.
#include <fmt/format.h>

#include <algorithm>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/fusion_training.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

class LowRankFusion final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    rank_ = attrs.get_positive_int("rank");
    units_ = attrs.get_positive_int("units");
    use_bias_ = attrs.get_bool("use_bias", true);
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    const size_t n = ctx.num_inputs();
    if (n < 2)
      throw ctx
          .error(
              fmt::format("low_rank_fusion takes at least 2 inputs (one per modality), got {}", n))
          .hint("list the modality features as `inputs: [a, b, ...]`; for one input use dense");
    Dim batch = kDynamic;
    for (size_t i = 0; i < n; ++i) {
      const TensorType& x = ctx.input(i);
      if (x.dtype != DType::f32)
        throw ctx
            .input_error(i, fmt::format("low_rank_fusion needs float32 inputs, but '{}' is {}",
                                        ctx.input_name(i), format_type(x)))
            .hint("int32 inputs are usually token ids: encode them first (embedding + lstm)");
      if (x.rank() != 2)
        throw ctx
            .input_error(i, fmt::format("low_rank_fusion needs rank-2 inputs [batch, features], "
                                        "but '{}' has shape {}",
                                        ctx.input_name(i), format_shape(x.shape)))
            .hint(x.rank() == 3 ? "pool the sequence first (global_average_pooling1d) or take the "
                                  "last lstm state"
                                : "flatten the input first");
      if (x.shape[1] == kDynamic)
        throw ctx.input_error(
            i, fmt::format("low_rank_fusion needs the feature size of '{}' known (it sets the "
                           "factor shape [rank, features + 1, units]), got {}",
                           ctx.input_name(i), format_shape(x.shape)));
      if (x.shape[0] != kDynamic) {
        if (batch != kDynamic && x.shape[0] != batch)
          throw ctx.input_error(i, fmt::format("inputs of low_rank_fusion must have equal batch "
                                               "sizes, but '{}' has {} where another has {}",
                                               ctx.input_name(i), x.shape[0], batch));
        batch = x.shape[0];
      }
    }
    dim_mul(rank_, units_);  // overflow check of the projection width
    return {TensorType{{batch, units_}, DType::f32, false}};
  }

  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    std::vector<WeightSpec> out;
    for (size_t m = 0; m < ctx.num_inputs(); ++m) {
      const Dim rows = dim_add(ctx.input(m).shape[1], 1);
      out.push_back(WeightSpec{
          fmt::format("factor_{}", m), {rank_, rows, units_}, Init::glorot_uniform, rows, units_});
    }
    if (use_bias_) out.push_back(WeightSpec{"bias", {units_}, Init::zeros});
    return out;
  }

  double flops_per_sample(const InferContext& ctx,
                          const std::vector<TensorType>& outputs) const override {
    double rows = 0;
    for (size_t m = 0; m < ctx.num_inputs(); ++m) rows += ctx.input(m).shape[1] + 1.0;
    return 2.0 * rows * static_cast<double>(rank_) * static_cast<double>(units_);
  }

  bool has_gradient() const override { return true; }

  // Training, with P_m[r] = [x_m; 1] W_m[r] kept as [rank, B, units] per modality (saved):
  //   forward   P_m[r] = x_m W_m[r, :d] (one batched matmul over r, x broadcast) + W_m[r, d]
  //             (C++); y = sum_r prod_m P_m[r] + bias (C++)
  //   backward  dP_m[r] = dy prod_{k != m} P_k[r] (C++); dW_m[r, :d] = x_m^T dP_m[r] (batched
  //             matmul into a strided view of dW_m), dW_m[r, d] = sum_b dP_m[r];
  //             dx_m = sum_r dP_m[r] W_m[r, :d]^T (batched matmul, then the sum over r in C++);
  //             dbias = sum_b dy
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const size_t n = ctx.inputs.size();
    const Dim B = ctx.inputs[0].shape[0], R = rank_, U = units_;
    const memory::desc p_desc = onednn::plain_desc(Dims{R, B, U});
    build = start_training_build(ctx, std::vector<memory::desc>(n, p_desc));
    const BackwardArgs a = backward_args(ctx, n);
    std::vector<Dim> dims;
    Dim widest = 1;
    for (const auto& in : ctx.inputs) {
      dims.push_back(in.shape[1]);
      widest = std::max(widest, in.shape[1]);
    }
    // W_m[:, :d, :] as {R, d, U}, its transpose {R, U, d}, and x_m as {1, B, d}.
    auto factor_view = [&](size_t m) {
      const Dim d = dims[m];
      return onednn::strided_desc({R, d, U}, {(d + 1) * U, U, 1});
    };
    auto factor_transposed = [&](size_t m) {
      const Dim d = dims[m];
      return onednn::strided_desc({R, U, d}, {(d + 1) * U, 1, U});
    };
    auto x_view = [&](size_t m) { return onednn::plain_desc(Dims{1, B, dims[m]}); };

    auto fwd = std::make_unique<StagedKernel>();
    for (size_t m = 0; m < n; ++m)
      add_matmul(fwd->calls(), build.forward, CallArg::src(m, x_view(m)),
                 CallArg::src(n + m, factor_view(m)), CallArg::dst(1 + m, p_desc));
    const bool bias = use_bias_;
    fwd->add_stage([=](ExecContext& e) {
      float* y = data_of(e.dsts[0]);
#pragma omp parallel for num_threads(e.threads) schedule(static)
      for (Dim b = 0; b < B; ++b) {
        for (Dim u = 0; u < U; ++u) y[b * U + u] = bias ? data_of(e.srcs[2 * n])[u] : 0.f;
        for (Dim r = 0; r < R; ++r)
          for (Dim u = 0; u < U; ++u) {
            float prod = 1.f;
            for (size_t m = 0; m < n; ++m) {
              float& p = data_of(e.dsts[1 + m])[(r * B + b) * U + u];
              p += data_of(e.srcs[n + m])[(r * (dims[m] + 1) + dims[m]) * U + u];
              prod *= p;
            }
            y[b * U + u] += prod;
          }
      }
    });
    build.forward.kernel = std::move(fwd);

    auto bwd = std::make_unique<StagedKernel>();
    for (size_t m = 0; m < n; ++m) build.backward.add_temp(p_desc);  // dP_m
    const int dx_parts = build.backward.add_temp(onednn::plain_desc(Dims{R, B, widest}));
    bwd->add_stage(diff_products(a, dims, B, !ctx.frozen));
    for (size_t m = 0; m < n; ++m) {
      if (!ctx.frozen)
        add_matmul(bwd->calls(), build.backward,
                   CallArg::src(a.input(m), onednn::transposed_desc(x_view(m))),
                   CallArg::temp(m, p_desc), CallArg::dst(a.diff_weight(m), factor_view(m)));
      if (!ctx.needs_input_gradient[m]) continue;
      const memory::desc parts = onednn::plain_desc(Dims{R, B, dims[m]});
      add_matmul(bwd->calls(), build.backward, CallArg::temp(m, p_desc),
                 CallArg::src(a.weight(m), factor_transposed(m)), CallArg::temp(dx_parts, parts));
      bwd->add_stage([=, d = dims[m]](ExecContext& e) {
        const float* part = data_of(e.temps[dx_parts]);
        float* dx = data_of(e.dsts[a.diff_input(m)]);
#pragma omp parallel for num_threads(e.threads) schedule(static)
        for (Dim bi = 0; bi < B * d; ++bi) {
          float s = 0.f;
          for (Dim r = 0; r < R; ++r) s += part[r * B * d + bi];
          dx[bi] = s;
        }
      });
    }
    build.backward.kernel = std::move(bwd);
  }

  // Calls: each modality's projection into temp 0 (the product over modalities) or temp 1 (then
  // multiplied into temp 0), then the sum over the rank into the output.
  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const size_t n = ctx.inputs.size();
    const int64_t batch = ctx.inputs[0].shape[0];
    const int64_t width = rank_ * units_;
    const memory::desc proj_dst = onednn::plain_desc(Dims{batch, width});
    const CallArg product = CallArg::temp(build.add_temp(proj_dst));
    const CallArg projection = CallArg::temp(build.add_temp(proj_dst));
    auto mul_pd = onednn::make_binary_pd(dnnl::algorithm::binary_mul, proj_dst, proj_dst, proj_dst);
    PrimitiveSequence calls;
    std::string impl;
    for (size_t m = 0; m < n; ++m) {
      if (ctx.input_descs[m] != onednn::plain_desc(ctx.inputs[m]))
        throw ctx.error("internal: low_rank_fusion expects its inputs in the plain layout");
      auto pd =
          onednn::make_inner_product_pd(build.src_descs[m], proj_dst, true, dnnl::primitive_attr());
      if (m == 0) impl = onednn::impl_name(pd);
      const auto [weights, bias] = factor_memories(ctx, pd, m);
      calls.add(pd,
                {{DNNL_ARG_SRC, CallArg::src(static_cast<int>(m))},
                 {DNNL_ARG_WEIGHTS, CallArg::constant(weights)},
                 {DNNL_ARG_BIAS, CallArg::constant(bias)},
                 {DNNL_ARG_DST, m == 0 ? product : projection}},
                build);
      if (m > 0)
        calls.add(
            mul_pd,
            {{DNNL_ARG_SRC_0, product}, {DNNL_ARG_SRC_1, projection}, {DNNL_ARG_DST, product}},
            build);
    }
    // Sum over the rank: ones{1, 1, rank} x {B, rank, units} (+ bias {1, 1, units}).
    const memory::desc ones_desc = onednn::plain_desc(Dims{1, 1, rank_});
    const memory::desc sum_src = onednn::plain_desc(Dims{batch, rank_, units_});
    const memory::desc sum_dst = onednn::plain_desc(Dims{batch, 1, units_});
    const memory::desc bias_desc =
        use_bias_ ? onednn::plain_desc(Dims{1, 1, units_}) : memory::desc();
    auto sum_pd = onednn::make_matmul_pd(ones_desc, sum_src, bias_desc, sum_dst);
    memory ones = ctx.constant("rank_ones", ones_desc, [&] {
      memory mem(ones_desc, ctx.engine);
      float* p = static_cast<float*>(mem.get_data_handle());
      for (int64_t r = 0; r < rank_; ++r) p[r] = 1.f;
      return mem;
    });
    std::vector<std::pair<int, CallArg>> sum_args{
        {DNNL_ARG_SRC, CallArg::constant(ones)},
        {DNNL_ARG_WEIGHTS, CallArg::temp(product.index, sum_src)},
        {DNNL_ARG_DST, CallArg::dst(0, sum_dst)}};
    if (use_bias_)
      sum_args.push_back({DNNL_ARG_BIAS, CallArg::constant(ctx.weight_memory("bias", bias_desc,
                                                                             sum_pd.bias_desc()))});
    calls.add(sum_pd, std::move(sum_args), build);
    if (n < 2) build.add_scratchpad(mul_pd);
    impl += " + " + onednn::impl_name(mul_pd) + " + " + onednn::impl_name(sum_pd);
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls), std::move(impl));
    return build;
  }

 private:
  // The backward's first stage: dP_m = dy prod_{k != m} P_k into temps 0..n-1, and with
  // `weights` the gradients that are sums over the batch (dW_m[r, d] and dbias).
  StagedKernel::Stage diff_products(const BackwardArgs& a, const std::vector<Dim>& dims, Dim B,
                                    bool weights) const {
    const Dim R = rank_, U = units_;
    const bool bias = use_bias_ && weights;
    const size_t n = dims.size();
    return [=](ExecContext& e) {
      const float* dy = data_of(e.srcs[a.diff_output(0)]);
#pragma omp parallel for num_threads(e.threads) schedule(static)
      for (Dim r = 0; r < R; ++r)
        for (Dim b = 0; b < B; ++b)
          for (Dim u = 0; u < U; ++u) {
            const Dim at = (r * B + b) * U + u;
            for (size_t m = 0; m < n; ++m) {
              float others = dy[b * U + u];
              for (size_t k = 0; k < n; ++k)
                if (k != m) others *= data_of(e.srcs[a.saved_tensor(static_cast<int>(k))])[at];
              data_of(e.temps[m])[at] = others;
            }
          }
      if (!weights) return;
#pragma omp parallel for num_threads(e.threads) schedule(static)
      for (Dim r = 0; r < R; ++r)
        for (size_t m = 0; m < n; ++m) {
          float* row = data_of(e.dsts[a.diff_weight(static_cast<int>(m))]) +
                       (r * (dims[m] + 1) + dims[m]) * U;
          for (Dim u = 0; u < U; ++u) row[u] = 0.f;
          for (Dim b = 0; b < B; ++b)
            for (Dim u = 0; u < U; ++u) row[u] += data_of(e.temps[m])[(r * B + b) * U + u];
        }
      if (!bias) return;
      float* db = data_of(e.dsts[a.diff_weight(static_cast<int>(n))]);
      for (Dim u = 0; u < U; ++u) db[u] = 0.f;
      for (Dim b = 0; b < B; ++b)
        for (Dim u = 0; u < U; ++u) db[u] += dy[b * U + u];
    };
  }

  // Modality m's projection weights and bias in the primitive's layouts, from factor_m
  // [rank, d + 1, units]: rows 0..d-1 are the kernel {d -> rank * units} (column r * units + u),
  // row d is the bias (multiplies the appended 1).
  std::pair<memory, memory> factor_memories(const KernelContext& ctx,
                                            const dnnl::inner_product_forward::primitive_desc& pd,
                                            size_t m) const {
    const int64_t d = ctx.inputs[m].shape[1];
    const int64_t width = rank_ * units_;
    const std::string param = fmt::format("factor_{}", m);
    const Tensor& factor = ctx.weight(param);
    if (factor.shape() != Dims{rank_, d + 1, units_})
      throw ctx.error(
          fmt::format("internal: weight '{}' has shape {}", param, format_shape(factor.shape())));
    const float* w = factor.data<float>();
    memory weights = ctx.constant(param + "/kernel", pd.weights_desc(), [&] {
      std::vector<float> io(static_cast<size_t>(d * width));
      for (int64_t r = 0; r < rank_; ++r)
        for (int64_t i = 0; i < d; ++i)
          for (int64_t u = 0; u < units_; ++u)
            io[i * width + r * units_ + u] = w[(r * (d + 1) + i) * units_ + u];
      memory user(onednn::dense_kernel_desc(d, width), ctx.engine, io.data());
      memory dst(pd.weights_desc(), ctx.engine);
      dnnl::stream stream(ctx.engine);
      onednn::reorder_now(user, dst, stream);
      return dst;
    });
    memory bias = ctx.constant(param + "/bias", pd.bias_desc(), [&] {
      std::vector<float> row(static_cast<size_t>(width));
      for (int64_t r = 0; r < rank_; ++r)
        for (int64_t u = 0; u < units_; ++u)
          row[r * units_ + u] = w[(r * (d + 1) + d) * units_ + u];
      memory user(onednn::plain_desc(Dims{width}), ctx.engine, row.data());
      memory dst(pd.bias_desc(), ctx.engine);
      dnnl::stream stream(ctx.engine);
      onednn::reorder_now(user, dst, stream);
      return dst;
    });
    return {weights, bias};
  }

  int64_t rank_ = 0, units_ = 0;
  bool use_bias_ = true;
};

}  // namespace

OpInfo low_rank_fusion_op() {
  return {"low_rank_fusion", [] { return std::make_unique<LowRankFusion>(); },
          "Low-rank Multimodal Fusion (Liu et al. 2018): sum over rank of products of factor "
          "projections (oneDNN inner product, binary, matmul)"};
}

}  // namespace fg::layers
