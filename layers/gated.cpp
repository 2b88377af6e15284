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

#include "layers/builtin_ops.hpp"
#include "layers/fusion_steps.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

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

  std::unique_ptr<Kernel> compile(KernelContext& ctx) const override {
    const size_t n = ctx.inputs.size();
    const Dim B = ctx.outputs[0].shape[0], U = units_;
    const bool sigmoid = sigmoid_gate(n);
    std::vector<Step> steps;
    std::string impl;
    auto temp = [&](const memory::desc& d) {
      ctx.temp_descs.push_back(d);
      return static_cast<int>(ctx.temp_descs.size() - 1);
    };

    // x = concat(x_m) [B, sum d]
    Dim total = 0;
    for (const auto& in : ctx.inputs) total += in.shape[1];
    const memory::desc x_desc = onednn::plain_desc(Dims{B, total});
    const int x_temp = temp(x_desc);
    {
      auto pd = onednn::make_concat_pd(x_desc, 1, ctx.src_descs);
      ctx.add_scratchpad(pd);
      add_impl(impl, pd);
      Step s{dnnl::concat(pd), {{DNNL_ARG_DST, StepArg::temp(x_temp)}}};
      for (size_t m = 0; m < n; ++m)
        s.args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(m), StepArg::src(m)});
      steps.push_back(std::move(s));
    }

    // An inner product src -> dst with the Keras kernel / bias `param`s and an activation.
    auto dense = [&](const memory::desc& src, StepArg src_arg, const memory::desc& dst,
                     StepArg dst_arg, const std::string& kernel, const std::string& bias,
                     const std::string& activation) {
      dnnl::post_ops ops;
      if (!activation.empty()) onednn::append_activation(ops, activation);
      dnnl::primitive_attr attr;
      attr.set_post_ops(ops);
      auto pd = onednn::make_inner_product_pd(src, dst, use_bias_, attr);
      ctx.add_scratchpad(pd);
      add_impl(impl, pd);
      const Dim in = src.dims()[1], out = dst.dims()[1];
      Step s{
          dnnl::inner_product_forward(pd),
          {{DNNL_ARG_SRC, src_arg},
           {DNNL_ARG_WEIGHTS, StepArg::constant(ctx.weight_memory(
                                  kernel, onednn::dense_kernel_desc(in, out), pd.weights_desc()))},
           {DNNL_ARG_DST, dst_arg}}};
      if (use_bias_)
        s.args.push_back(
            {DNNL_ARG_BIAS, StepArg::constant(ctx.weight_memory(bias, onednn::plain_desc(Dims{out}),
                                                                pd.bias_desc()))});
      steps.push_back(std::move(s));
    };

    // h_m = tanh(x_m @ kernel_m + bias_m)
    const memory::desc h_desc = onednn::plain_desc(Dims{B, U});
    std::vector<int> h_temps;
    for (size_t m = 0; m < n; ++m) {
      h_temps.push_back(temp(h_desc));
      dense(ctx.src_descs[m], StepArg::src(m), h_desc, StepArg::temp(h_temps.back()),
            fmt::format("kernel_{}", m), fmt::format("bias_{}", m), "tanh");
    }

    if (sigmoid) {
      // z = sigmoid(x @ gate_kernel + gate_bias); y = (h_0 - h_1) * z + h_1
      const int z_temp = temp(h_desc);
      dense(x_desc, StepArg::temp(x_temp), h_desc, StepArg::temp(z_temp), "gate_kernel",
            "gate_bias", "sigmoid");
      auto pd = onednn::make_binary_chain_pd(
          dnnl::algorithm::binary_sub, h_desc, h_desc, ctx.dst_descs[0],
          {{dnnl::algorithm::binary_mul, h_desc}, {dnnl::algorithm::binary_add, h_desc}});
      ctx.add_scratchpad(pd);
      add_impl(impl, pd);
      steps.push_back(
          {dnnl::binary(pd),
           {{DNNL_ARG_SRC_0, StepArg::temp(h_temps[0])},
            {DNNL_ARG_SRC_1, StepArg::temp(h_temps[1])},
            {DNNL_ARG_DST, StepArg::dst(0)},
            {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, StepArg::temp(z_temp)},
            {DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, StepArg::temp(h_temps[1])}}});
      return std::make_unique<StepKernel>(std::move(steps), impl);
    }

    // s = x @ gate_kernel + gate_bias  [B, M*U] = {B, M, U} row major
    const Dim M = static_cast<Dim>(n);
    const memory::desc s_desc = onednn::plain_desc(Dims{B, M * U});
    const int s_temp = temp(s_desc);
    dense(x_desc, StepArg::temp(x_temp), s_desc, StepArg::temp(s_temp), "gate_kernel", "gate_bias",
          "");
    const memory::dims bmu{B, M, U};
    const memory::desc s3 = onednn::plain_desc(Dims{B, M, U});
    const memory::desc inner = onednn::axis_innermost_desc(bmu, onednn::dt::f32, 1);  // [B, U, M]
    const int z_temp = temp(inner);
    auto add_step = [&](const auto& pd, dnnl::primitive prim,
                        std::vector<std::pair<int, StepArg>> args) {
      ctx.add_scratchpad(pd);
      add_impl(impl, pd);
      steps.push_back({std::move(prim), std::move(args)});
    };
    {  // z = softmax over m: reorder m innermost (softmax_v2 has a jit kernel only for the
       // innermost axis), softmax in place, reorder back to [B, M, U] into s
      auto to_inner = onednn::make_reorder_pd(s3, inner);
      add_step(to_inner, dnnl::reorder(to_inner),
               {{DNNL_ARG_FROM, StepArg::temp(s_temp, s3)}, {DNNL_ARG_TO, StepArg::temp(z_temp)}});
      auto sm = onednn::make_softmax_pd(inner, inner, 1, false);
      add_step(sm, dnnl::softmax_v2_forward(sm),
               {{DNNL_ARG_SRC, StepArg::temp(z_temp)}, {DNNL_ARG_DST, StepArg::temp(z_temp)}});
      auto back = onednn::make_reorder_pd(inner, s3);
      add_step(back, dnnl::reorder(back),
               {{DNNL_ARG_FROM, StepArg::temp(z_temp)}, {DNNL_ARG_TO, StepArg::temp(s_temp, s3)}});
    }
    // H = [h_0; ...; h_{M-1}] as [B, M, U]; H *= z; y = sum over m
    const int hh_temp = temp(s3);
    {
      const memory::desc h3 = onednn::plain_desc(Dims{B, 1, U});
      auto pd = onednn::make_concat_pd(s3, 1, std::vector<memory::desc>(n, h3));
      std::vector<std::pair<int, StepArg>> args{{DNNL_ARG_DST, StepArg::temp(hh_temp)}};
      for (size_t m = 0; m < n; ++m)
        args.push_back(
            {DNNL_ARG_MULTIPLE_SRC + static_cast<int>(m), StepArg::temp(h_temps[m], h3)});
      add_step(pd, dnnl::concat(pd), std::move(args));
    }
    {
      auto pd = onednn::make_binary_pd(dnnl::algorithm::binary_mul, s3, s3, s3);
      add_step(pd, dnnl::binary(pd),
               {{DNNL_ARG_SRC_0, StepArg::temp(hh_temp)},
                {DNNL_ARG_SRC_1, StepArg::temp(s_temp, s3)},
                {DNNL_ARG_DST, StepArg::temp(hh_temp)}});
    }
    {  // y = sum over m = ones[1, M] @ H[b] per sample: a batched matmul (oneDNN's reduction
       // over a middle axis is ref:any only)
      const memory::desc ones = onednn::plain_desc(Dims{1, 1, M});
      const memory::desc y3 = onednn::plain_desc(Dims{B, 1, U});
      auto pd = onednn::make_activation_matmul_pd(ones, s3, y3);
      dnnl::memory ones_mem = ctx.constant("ones", ones, [&] {
        dnnl::memory m(ones, ctx.engine);
        float* p = static_cast<float*>(m.get_data_handle());
        for (Dim i = 0; i < M; ++i) p[i] = 1.f;
        return m;
      });
      add_step(pd, dnnl::matmul(pd),
               {{DNNL_ARG_SRC, StepArg::constant(ones_mem)},
                {DNNL_ARG_WEIGHTS, StepArg::temp(hh_temp)},
                {DNNL_ARG_DST, StepArg::dst(0, y3)}});
    }
    return std::make_unique<StepKernel>(std::move(steps), impl);
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
