// gated: the gated multimodal unit (Arevalo et al. 2017) for M >= 2 rank-2 inputs x_m [B, d_m].
//   h_m = tanh(x_m @ kernel_m + bias_m)                       [B, units] each
//   x   = concat(x_0, ..., x_{M-1})                           [B, sum d_m]
//   gate: sigmoid (M = 2 only): z = sigmoid(x @ gate_kernel + gate_bias), [B, units]
//         y = z * h_0 + (1 - z) * h_1
//   gate: softmax: s = x @ gate_kernel + gate_bias, [B, M * units] read as [B, M, units]
//         (column m * units + j is modality m, unit j); z = softmax of s over m;
//         y = sum_m z[:, m, :] * h_m
// oneDNN: concat, inner products with fused tanh / sigmoid, binary with post-ops (sigmoid
// gate); for softmax reorders putting m innermost and back around the softmax, a concat of the
// h_m, binary mul and a batched matmul with ones summing over m.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/fusion_training.hpp"
#include "layers/training_blocks.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

// Builds the gated kernel's primitive calls, part by part (see the formulas at the top).
struct GatedBuilder {
  const KernelContext& ctx;
  KernelBuild build;
  PrimitiveSequence calls;
  bool use_bias;
  Dim units;
  Dim batch = 0;
  memory::desc x_desc, h_desc;  // [B, sum d], [B, U]
  int x_temp = -1;
  std::vector<int> h_temps;  // h_m

  // x = concat(x_m) [B, sum d]
  void concat_inputs() {
    batch = ctx.outputs[0].shape[0];
    Dim total = 0;
    for (const auto& in : ctx.inputs) total += in.shape[1];
    x_desc = onednn::plain_desc(Dims{batch, total});
    h_desc = onednn::plain_desc(Dims{batch, units});
    x_temp = build.add_temp(x_desc);
    auto pd = onednn::make_concat_pd(x_desc, 1, build.src_descs);
    std::vector<std::pair<int, CallArg>> args{{DNNL_ARG_DST, CallArg::temp(x_temp)}};
    for (size_t m = 0; m < ctx.inputs.size(); ++m)
      args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(m), CallArg::src(m)});
    calls.add(pd, std::move(args), build);
  }

  // An inner product src -> dst with the Keras kernel / bias `param`s and an activation.
  void dense(const memory::desc& src, CallArg src_arg, const memory::desc& dst, CallArg dst_arg,
             const std::string& kernel, const std::string& bias, const std::string& activation) {
    dnnl::post_ops ops;
    if (!activation.empty()) onednn::append_activation(ops, activation);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    auto pd = onednn::make_inner_product_pd(src, dst, use_bias, attr);
    const Dim in = src.dims()[1], out = dst.dims()[1];
    std::vector<std::pair<int, CallArg>> args{
        {DNNL_ARG_SRC, src_arg},
        {DNNL_ARG_WEIGHTS, CallArg::constant(ctx.weight_memory(
                               kernel, onednn::dense_kernel_desc(in, out), pd.weights_desc()))},
        {DNNL_ARG_DST, dst_arg}};
    if (use_bias)
      args.push_back({DNNL_ARG_BIAS, CallArg::constant(ctx.weight_memory(
                                         bias, onednn::plain_desc(Dims{out}), pd.bias_desc()))});
    calls.add(pd, std::move(args), build);
  }

  // h_m = tanh(x_m @ kernel_m + bias_m)
  void project_inputs() {
    for (size_t m = 0; m < ctx.inputs.size(); ++m) {
      h_temps.push_back(build.add_temp(h_desc));
      dense(build.src_descs[m], CallArg::src(m), h_desc, CallArg::temp(h_temps.back()),
            fmt::format("kernel_{}", m), fmt::format("bias_{}", m), "tanh");
    }
  }

  // z = sigmoid(x @ gate_kernel + gate_bias); y = (h_0 - h_1) * z + h_1
  void mix_by_sigmoid() {
    const int z_temp = build.add_temp(h_desc);
    dense(x_desc, CallArg::temp(x_temp), h_desc, CallArg::temp(z_temp), "gate_kernel", "gate_bias",
          "sigmoid");
    auto pd = onednn::make_binary_chain_pd(
        dnnl::algorithm::binary_sub, h_desc, h_desc, build.dst_descs[0],
        {{dnnl::algorithm::binary_mul, h_desc}, {dnnl::algorithm::binary_add, h_desc}});
    calls.add(pd,
              {{DNNL_ARG_SRC_0, CallArg::temp(h_temps[0])},
               {DNNL_ARG_SRC_1, CallArg::temp(h_temps[1])},
               {DNNL_ARG_DST, CallArg::dst(0)},
               {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, CallArg::temp(z_temp)},
               {DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, CallArg::temp(h_temps[1])}},
              build);
  }

  // s = x @ gate_kernel + gate_bias [B, M*U] = {B, M, U} row major; z = softmax of s over m
  // (into s); y = sum_m z[:, m, :] * h_m
  void mix_by_softmax() {
    const Dim M = static_cast<Dim>(ctx.inputs.size()), B = batch, U = units;
    const memory::desc s_desc = onednn::plain_desc(Dims{B, M * U});
    const int s_temp = build.add_temp(s_desc);
    dense(x_desc, CallArg::temp(x_temp), s_desc, CallArg::temp(s_temp), "gate_kernel", "gate_bias",
          "");
    const memory::desc s3 = onednn::plain_desc(Dims{B, M, U});
    softmax_over_modalities(CallArg::temp(s_temp, s3), s3);
    // H = [h_0; ...; h_{M-1}] as [B, M, U]; H *= z; y = sum over m
    const int hh_temp = build.add_temp(s3);
    const memory::desc h3 = onednn::plain_desc(Dims{B, 1, U});
    std::vector<std::pair<int, CallArg>> args{{DNNL_ARG_DST, CallArg::temp(hh_temp)}};
    for (size_t m = 0; m < ctx.inputs.size(); ++m)
      args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(m), CallArg::temp(h_temps[m], h3)});
    calls.add(onednn::make_concat_pd(s3, 1, std::vector<memory::desc>(ctx.inputs.size(), h3)),
              std::move(args), build);
    calls.add(onednn::make_binary_pd(dnnl::algorithm::binary_mul, s3, s3, s3),
              {{DNNL_ARG_SRC_0, CallArg::temp(hh_temp)},
               {DNNL_ARG_SRC_1, CallArg::temp(s_temp, s3)},
               {DNNL_ARG_DST, CallArg::temp(hh_temp)}},
              build);
    // y = sum over m = ones[1, M] @ H[b] per sample: a batched matmul (oneDNN's reduction over a
    // middle axis is ref:any only)
    const memory::desc ones = onednn::plain_desc(Dims{1, 1, M});
    const memory::desc y3 = onednn::plain_desc(Dims{B, 1, U});
    dnnl::memory ones_mem = ctx.constant("ones", ones, [&] {
      dnnl::memory m(ones, ctx.engine);
      float* p = static_cast<float*>(m.get_data_handle());
      for (Dim i = 0; i < M; ++i) p[i] = 1.f;
      return m;
    });
    calls.add(onednn::make_activation_matmul_pd(ones, s3, y3),
              {{DNNL_ARG_SRC, CallArg::constant(ones_mem)},
               {DNNL_ARG_WEIGHTS, CallArg::temp(hh_temp)},
               {DNNL_ARG_DST, CallArg::dst(0, y3)}},
              build);
  }

  // Softmax over m of `s` ({B, M, U}) in place: reorder m innermost (softmax_v2 has a jit kernel
  // only for the innermost axis), softmax there, reorder back.
  void softmax_over_modalities(const CallArg& s, const memory::desc& s3) {
    const memory::desc inner =
        onednn::axis_innermost_desc(s3.dims(), onednn::dt::f32, 1);  // [B, U, M]
    const CallArg z = CallArg::temp(build.add_temp(inner));
    calls.add(onednn::make_reorder_pd(s3, inner), {{DNNL_ARG_FROM, s}, {DNNL_ARG_TO, z}}, build);
    calls.add(onednn::make_softmax_pd(inner, inner, 1, false),
              {{DNNL_ARG_SRC, z}, {DNNL_ARG_DST, z}}, build);
    calls.add(onednn::make_reorder_pd(inner, s3), {{DNNL_ARG_FROM, z}, {DNNL_ARG_TO, s}}, build);
  }
};

// The gated unit's training kernels over plain buffers (see Gated::compile_training). Saved:
// h_m = tanh(...) [B, U] for each m, then z [B, G] (the sigmoid gate, or the softmax weights in
// the layout of s: column m * U + j).
struct GatedTraining {
  const TrainingKernelContext& ctx;
  TrainingBuild& build;
  bool use_bias, sigmoid;
  Dim B, U, G;
  size_t M;
  BackwardArgs a;
  std::vector<Dim> dims, offsets;  // d_m and the first row of modality m in gate_kernel

  int kernel(size_t m) const { return static_cast<int>(use_bias ? 2 * m : m); }
  int bias(size_t m) const { return kernel(m) + 1; }
  int gate_kernel() const { return static_cast<int>(use_bias ? 2 * M : M); }
  memory::desc plain(Dim rows, Dim cols) const { return onednn::plain_desc(Dims{rows, cols}); }
  // Modality m's rows of gate_kernel [sum d, G]: byte offset of the block {d_m, G}.
  size_t gate_rows_offset(size_t m) const { return static_cast<size_t>(offsets[m] * G) * 4; }

  void forward() {
    auto k = std::make_unique<StagedKernel>();
    const int w0 = static_cast<int>(M);  // forward srcs: inputs, then weights
    auto no_bias = CallArg{};
    for (size_t m = 0; m < M; ++m)  // h_m (before tanh) = x_m W_m + b_m
      add_matmul(k->calls(), build.forward, CallArg::src(m, plain(B, dims[m])),
                 CallArg::src(w0 + kernel(m), plain(dims[m], U)), CallArg::dst(1 + m, plain(B, U)),
                 false, use_bias ? CallArg::src(w0 + bias(m), plain(1, U)) : no_bias);
    for (size_t m = 0; m < M; ++m)  // s = sum_m x_m gate_kernel[rows of m] + gate_bias
      add_matmul(k->calls(), build.forward, CallArg::src(m, plain(B, dims[m])),
                 CallArg::src(w0 + gate_kernel(), plain(dims[m], G), gate_rows_offset(m)),
                 CallArg::dst(1 + M, plain(B, G)), m > 0,
                 use_bias && m == 0 ? CallArg::src(w0 + gate_kernel() + 1, plain(1, G)) : no_bias);
    k->add_stage([B = B, U = U, M = M, sigmoid = sigmoid](ExecContext& e) {
      float* y = data_of(e.dsts[0]);
      float* z = data_of(e.dsts[1 + M]);
#pragma omp parallel for num_threads(e.threads) schedule(static)
      for (Dim b = 0; b < B; ++b) {
        for (size_t m = 0; m < M; ++m)
          for (Dim j = 0; j < U; ++j) {
            float& h = data_of(e.dsts[1 + m])[b * U + j];
            h = std::tanh(h);
          }
        for (Dim j = 0; j < U; ++j) {
          if (sigmoid) {
            float& g = z[b * U + j];
            g = 1.f / (1.f + std::exp(-g));
            y[b * U + j] =
                g * data_of(e.dsts[1])[b * U + j] + (1.f - g) * data_of(e.dsts[2])[b * U + j];
            continue;
          }
          float* s = z + b * static_cast<Dim>(M) * U + j;  // s[m * U]
          float top = s[0], total = 0.f, out = 0.f;
          for (size_t m = 1; m < M; ++m) top = std::max(top, s[m * U]);
          for (size_t m = 0; m < M; ++m) total += (s[m * U] = std::exp(s[m * U] - top));
          for (size_t m = 0; m < M; ++m) {
            s[m * U] /= total;
            out += s[m * U] * data_of(e.dsts[1 + m])[b * U + j];
          }
          y[b * U + j] = out;
        }
      }
    });
    build.forward.kernel = std::move(k);
  }

  // d pre-tanh of each h_m (temps 0..M-1) and ds (temp M) from dy, h and z.
  StagedKernel::Stage backward_gate() const {
    return [B = B, U = U, M = M, sigmoid = sigmoid, a = a](ExecContext& e) {
      const float* dy = data_of(e.srcs[a.diff_output(0)]);
      const float* z = data_of(e.srcs[a.saved_tensor(static_cast<int>(M))]);
      float* ds = data_of(e.temps[M]);
      auto h = [&](size_t m) { return data_of(e.srcs[a.saved_tensor(static_cast<int>(m))]); };
      auto dpre = [&](size_t m) { return data_of(e.temps[m]); };
#pragma omp parallel for num_threads(e.threads) schedule(static)
      for (Dim b = 0; b < B; ++b)
        for (Dim j = 0; j < U; ++j) {
          const Dim at = b * U + j;
          if (sigmoid) {
            const float g = z[at], h0 = h(0)[at], h1 = h(1)[at];
            ds[at] = dy[at] * (h0 - h1) * g * (1.f - g);
            dpre(0)[at] = dy[at] * g * (1.f - h0 * h0);
            dpre(1)[at] = dy[at] * (1.f - g) * (1.f - h1 * h1);
            continue;
          }
          const Dim row = b * static_cast<Dim>(M) * U + j;  // z[row + m * U]
          float weighted = 0.f;
          for (size_t m = 0; m < M; ++m) weighted += z[row + m * U] * dy[at] * h(m)[at];
          for (size_t m = 0; m < M; ++m) {
            const float g = z[row + m * U], hm = h(m)[at];
            ds[row + m * U] = g * (dy[at] * hm - weighted);
            dpre(m)[at] = dy[at] * g * (1.f - hm * hm);
          }
        }
    };
  }

  void backward() {
    auto k = std::make_unique<StagedKernel>();
    for (size_t m = 0; m < M; ++m) build.backward.add_temp(plain(B, U));
    const int ds = build.backward.add_temp(plain(B, G));
    k->add_stage(backward_gate());
    PrimitiveSequence& calls = k->calls();
    for (size_t m = 0; m < M; ++m) {
      if (!ctx.needs_input_gradient[m]) continue;
      // dx_m = dpre_m W_m^T + ds gate_kernel[rows of m]^T
      add_matmul(calls, build.backward, CallArg::temp(m, plain(B, U)),
                 CallArg::src(a.weight(kernel(m)), onednn::transposed_desc(plain(dims[m], U))),
                 CallArg::dst(a.diff_input(m), plain(B, dims[m])));
      add_matmul(calls, build.backward, CallArg::temp(ds, plain(B, G)),
                 CallArg::src(a.weight(gate_kernel()), onednn::transposed_desc(plain(dims[m], G)),
                              gate_rows_offset(m)),
                 CallArg::dst(a.diff_input(m), plain(B, dims[m])), true);
    }
    if (!ctx.frozen) {
      for (size_t m = 0; m < M; ++m) {
        const CallArg xt = CallArg::src(a.input(m), onednn::transposed_desc(plain(B, dims[m])));
        add_matmul(calls, build.backward, xt, CallArg::temp(m, plain(B, U)),
                   CallArg::dst(a.diff_weight(kernel(m)), plain(dims[m], U)));
        if (use_bias)
          append_sum_rows(CallArg::temp(m, plain(B, U)),
                          CallArg::dst(a.diff_weight(bias(m)), plain(1, U)), plain(B, U), calls,
                          build.backward);
        add_matmul(
            calls, build.backward, xt, CallArg::temp(ds, plain(B, G)),
            CallArg::dst(a.diff_weight(gate_kernel()), plain(dims[m], G), gate_rows_offset(m)));
      }
      if (use_bias)
        append_sum_rows(CallArg::temp(ds, plain(B, G)),
                        CallArg::dst(a.diff_weight(gate_kernel() + 1), plain(1, G)), plain(B, G),
                        calls, build.backward);
    }
    build.backward.kernel = std::move(k);
  }
};

class Gated final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    use_bias_ = attrs.get_bool("use_bias", true);
    if (attrs.has("gate")) gate_ = attrs.get_choice("gate", {"sigmoid", "softmax"}, "sigmoid");
    units_ = attrs.get_positive_int("units");
  }

  // The gate actually used for n inputs: sigmoid for 2 inputs, softmax otherwise (by default).
  bool sigmoid_gate(size_t n) const { return gate_.empty() ? n == 2 : gate_ == "sigmoid"; }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    const size_t n = ctx.num_inputs();
    if (n < 2) throw ctx.error(fmt::format("gated takes at least 2 inputs, got {}", n));
    if (gate_ == "sigmoid" && n != 2)
      throw ctx.attr_error("gate", fmt::format("gate: sigmoid needs exactly 2 inputs, got {}", n))
          .hint("use gate: softmax (the default for 3 or more inputs)");
    Dim batch = kDynamic;
    for (size_t i = 0; i < n; ++i) {
      const TensorType& x = ctx.input(i);
      if (x.dtype != DType::f32)
        throw ctx.input_error(i, fmt::format("gated needs float32 inputs, but '{}' is {}",
                                             ctx.input_name(i), dtype_name(x.dtype)));
      if (x.rank() != 2) {
        Error e = ctx.input_error(i, fmt::format("gated needs rank-2 inputs [batch, features], "
                                                 "but '{}' is {}",
                                                 ctx.input_name(i), format_shape(x.shape)));
        if (x.rank() > 2) e.hint("apply global pooling or flatten to it first");
        throw e;
      }
      if (x.shape[1] == kDynamic)
        throw ctx.input_error(i, fmt::format("gated needs the feature size of '{}' known (it sets "
                                             "the shape of kernel_{}), got {}",
                                             ctx.input_name(i), i, format_shape(x.shape)));
      if (x.shape[0] != kDynamic) {
        if (batch != kDynamic && batch != x.shape[0])
          throw ctx.input_error(i, fmt::format("inputs of gated must have the same batch size, "
                                               "got {} and {}",
                                               batch, x.shape[0]));
        batch = x.shape[0];
      }
    }
    return {TensorType{{batch, units_}, DType::f32, false}};
  }

  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    const size_t n = ctx.num_inputs();
    std::vector<WeightSpec> out;
    Dim total = 0;
    for (size_t m = 0; m < n; ++m) {
      const Dim d = ctx.input(m).shape[1];
      total = dim_add(total, d);
      out.push_back({fmt::format("kernel_{}", m), {d, units_}, Init::glorot_uniform, d, units_});
      if (use_bias_) out.push_back({fmt::format("bias_{}", m), {units_}, Init::zeros});
    }
    const Dim g = sigmoid_gate(n) ? units_ : dim_mul(static_cast<Dim>(n), units_);
    out.push_back({"gate_kernel", {total, g}, Init::glorot_uniform, total, g});
    if (use_bias_) out.push_back({"gate_bias", {g}, Init::zeros});
    return out;
  }

  double flops_per_sample(const InferContext& ctx, const std::vector<TensorType>&) const override {
    const size_t n = ctx.num_inputs();
    double total = 0;
    for (size_t m = 0; m < n; ++m) total += static_cast<double>(ctx.input(m).shape[1]);
    const double g = sigmoid_gate(n) ? units_ : static_cast<double>(n) * units_;
    return 2.0 * total * units_ + 2.0 * total * g;
  }

  bool has_gradient() const override { return true; }

  // Training: matmuls for the projections (gate_kernel applied per modality's block of rows, so
  // no concatenation), the tanh and the gate in C++.
  //   forward   h_m = tanh(x_m W_m + b_m), s = x gate_kernel + gate_bias, z = gate(s), y as above
  //   backward  sigmoid: dh_0 = z dy, dh_1 = (1 - z) dy, ds = (h_0 - h_1) dy z (1 - z)
  //             softmax: dh_m = z_m dy, ds_m = z_m (h_m dy - sum_k z_k h_k dy)
  //             dp_m = dh_m (1 - h_m^2); dx_m = dp_m W_m^T + ds G_m^T (G_m: rows of x_m);
  //             dW_m = x_m^T dp_m, db_m = sum_b dp_m; dG_m = x_m^T ds, dgate_bias = sum_b ds
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const size_t n = ctx.inputs.size();
    const bool sigmoid = sigmoid_gate(n);
    const Dim B = ctx.outputs[0].shape[0];
    const Dim G = sigmoid ? units_ : static_cast<Dim>(n) * units_;
    std::vector<memory::desc> saved(n, onednn::plain_desc(Dims{B, units_}));
    saved.push_back(onednn::plain_desc(Dims{B, G}));
    build = start_training_build(ctx, saved);
    GatedTraining t{ctx, build, use_bias_, sigmoid, B, units_, G, n, backward_args(ctx, n + 1)};
    Dim offset = 0;
    for (const auto& in : ctx.inputs) {
      t.dims.push_back(in.shape[1]);
      t.offsets.push_back(offset);
      offset += in.shape[1];
    }
    t.forward();
    t.backward();
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    GatedBuilder b{ctx, ctx.start_build(), {}, use_bias_, units_};
    b.concat_inputs();
    b.project_inputs();
    if (sigmoid_gate(ctx.inputs.size()))
      b.mix_by_sigmoid();
    else
      b.mix_by_softmax();
    b.build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(b.calls));
    return std::move(b.build);
  }

 private:
  int64_t units_ = 0;
  bool use_bias_ = true;
  std::string gate_;  // "" = by input count
};

}  // namespace

OpInfo gated_op() {
  return {"gated", [] { return std::make_unique<Gated>(); },
          "gated multimodal unit: tanh projections mixed by a sigmoid / softmax gate"};
}

}  // namespace fg::layers
