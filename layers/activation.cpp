// Keras Activation: one of the Keras activations applied elementwise (softmax and log_softmax
// over the last axis). oneDNN eltwise_forward where 2.6 has the algorithm, softmax_v2 for
// softmax / log_softmax, three primitives for softsign (layers/unfused_activation.hpp); selu is
// elu(alpha) followed by a linear scale.
//
// Training (compile_training): the same primitives in forward_training mode and their backward
// (layers/training_blocks.hpp: eltwise_backward from the input, softmax_v2_backward from the
// output); selu and softsign, which oneDNN 2.6 has no single eltwise for, are plain C++.
// Nothing is saved: the backward reads the input and the output.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "framework/op_fusion.hpp"
#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/training_blocks.hpp"
#include "layers/unfused_activation.hpp"

namespace fg::layers {
namespace {

// selu and softsign in C++ (training): forward y = f(x), backward dx = f'(x) dy.
class ElementwiseActivationKernel final : public Kernel {
 public:
  enum class Pass { forward, backward };
  ElementwiseActivationKernel(std::string activation, Pass pass, int64_t size, int x, int dy)
      : selu_(activation == "selu"), pass_(pass), size_(size), x_(x), dy_(dy) {}

  void execute(ExecContext& ctx) const override {
    static constexpr double kAlpha = 1.6732632423543772, kScale = 1.0507009873554805;
    const auto* x = static_cast<const float*>(ctx.srcs[x_].get_data_handle());
    auto* out = static_cast<float*>(ctx.dsts[0].get_data_handle());
    const float* dy = pass_ == Pass::backward
                          ? static_cast<const float*>(ctx.srcs[dy_].get_data_handle())
                          : nullptr;
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
    for (int64_t i = 0; i < size_; ++i) {
      const double v = x[i];
      double r;
      if (pass_ == Pass::forward)
        r = selu_ ? kScale * (v > 0 ? v : kAlpha * std::expm1(v)) : v / (1 + std::fabs(v));
      else if (selu_)
        r = dy[i] * (v > 0 ? kScale : kScale * kAlpha * std::exp(v));
      else
        r = dy[i] / ((1 + std::fabs(v)) * (1 + std::fabs(v)));
      out[i] = static_cast<float>(r);
    }
  }

 private:
  bool selu_;
  Pass pass_;
  int64_t size_;
  int x_, dy_;
};

class Activation final : public Op, public FusableActivationOp {
 public:
  void parse(AttrReader& attrs) override {
    attrs.get_string("activation");  // required: "missing required attribute"
    activation_ = attrs.get_activation("activation", "linear");
    if (!activation_supported(activation_))
      throw attrs.error("activation",
                        fmt::format("activation '{}' is not supported yet", activation_));
    approximate_ = attrs.get_bool("approximate", false);
    if (approximate_ && activation_ != "gelu")
      throw attrs.error(
          "approximate",
          fmt::format("`approximate` only applies to gelu, not to '{}'", activation_));
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    ctx.expect_dtype(0, DType::f32);
    return {ctx.input(0)};  // the mask passes on
  }

  // What a producer can apply as its post-op (not the tanh form of gelu, not softmax & co.).
  std::string fused_activation() const override {
    return !approximate_ && activation_fuses(activation_) ? activation_ : "";
  }

  bool supports_masking() const override { return true; }
  OpTraits traits() const override {
    OpTraits t;
    t.outputs_probabilities = activation_ == "softmax";
    if (activation_ == "softmax" || activation_ == "sigmoid") t.final_activation = activation_;
    return t;
  }

  bool has_gradient() const override { return true; }

  // forward y = f(x); backward dx = f'(x) dy (eltwise) or the softmax Jacobian product from y.
  // With ctx.output_logits (softmax / sigmoid taken by the loss) both are copies.
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    build = start_training_build(ctx, {});
    const BackwardArgs a = backward_args(ctx, 0);
    std::string name = approximate_ ? "gelu_approximate" : activation_;
    if (ctx.output_logits && !traits().final_activation.empty()) name = "linear";
    const auto desc = onednn::plain_desc(ctx.inputs[0]);
    const int64_t size = num_elements(ctx.inputs[0].shape);
    using Pass = ElementwiseActivationKernel::Pass;
    const bool cpp = name == "selu" || name == "softsign";
    PrimitiveSequence fwd, bwd;
    if (cpp) {
      build.forward.kernel =
          std::make_unique<ElementwiseActivationKernel>(name, Pass::forward, size, 0, 0);
    } else {
      if (name == "linear")
        fwd.add(onednn::make_reorder_pd(desc, desc),
                {{DNNL_ARG_FROM, CallArg::src(0)}, {DNNL_ARG_TO, CallArg::dst(0)}}, build.forward);
      append_activation_forward(name, CallArg::src(0), CallArg::dst(0), desc, fwd, build.forward);
      build.forward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(fwd));
    }
    if (cpp && ctx.needs_input_gradient[0]) {
      build.backward.kernel = std::make_unique<ElementwiseActivationKernel>(
          name, Pass::backward, size, a.input(0), a.diff_output(0));
      return;
    }
    if (ctx.needs_input_gradient[0]) {
      const CallArg dy = CallArg::src(a.diff_output(0)), dx = CallArg::dst(a.diff_input(0));
      if (name == "linear")
        bwd.add(onednn::make_reorder_pd(desc, desc), {{DNNL_ARG_FROM, dy}, {DNNL_ARG_TO, dx}},
                build.backward);
      append_activation_backward(name, CallArg::src(a.input(0)), CallArg::src(a.output(0)), dy, dx,
                                 desc, bwd, build.backward);
    }
    build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(bwd));
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const auto& src = build.src_descs[0];
    const auto& dst = build.dst_descs[0];
    // Calls: an optional copy src -> dst (when no primitive reads src directly), then primitives
    // (the first reads src unless a copy ran, the rest work in place on dst).
    PrimitiveSequence calls;
    std::string impl;
    CallArg from = CallArg::src(0);
    const CallArg to = CallArg::dst(0);
    auto add = [&](const dnnl::primitive_desc_base& pd) {
      calls.add(pd, {{DNNL_ARG_SRC, from}, {DNNL_ARG_DST, to}}, build);
      impl += (impl.empty() ? "" : " + ") + onednn::impl_name(pd);
      from = to;
    };
    auto add_copy = [&] {
      auto pd = onednn::make_reorder_pd(src, dst);
      calls.add(pd, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, build);
      impl = onednn::impl_name(pd);
      from = to;
    };
    // Primitives below take one layout for src and dst: copy first if the layouts differ.
    const bool same = src == dst;
    const std::string name = approximate_ ? "gelu_approximate" : activation_;
    dnnl::algorithm alg;
    float alpha, beta;
    if (!same) add_copy();
    if (name == "linear") {
      if (same) add_copy();
    } else if (onednn::eltwise_for(name, alg, alpha, beta)) {
      add(onednn::make_eltwise_pd(dst, alg, alpha, beta));
    } else if (name == "selu") {
      // selu(x) = scale * elu(x, alpha), Keras constants. An eltwise post-op on an eltwise
      // primitive drops to ref:any in 2.6, so this is two jit passes.
      add(onednn::make_eltwise_pd(dst, dnnl::algorithm::eltwise_elu, 1.6732632423543772f, 0.f));
      add(onednn::make_eltwise_pd(dst, dnnl::algorithm::eltwise_linear, 1.0507009873554805f, 0.f));
    } else if (name == "softmax" || name == "log_softmax") {
      const int axis = ctx.inputs[0].rank() - 1;
      add(onednn::make_softmax_pd(dst, dst, axis, name == "log_softmax"));
    } else if (name == "softsign") {
      const std::string unfused = append_unfused_activation(name, from, to, dst, calls, build);
      impl += (impl.empty() ? "" : " + ") + unfused;
    } else {
      throw ctx.error(fmt::format("activation '{}' is not implemented by the activation op", name));
    }
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls), impl);
    return build;
  }

 private:
  std::string activation_;
  bool approximate_ = false;
};

}  // namespace

OpInfo activation_op() {
  return {"activation", [] { return std::make_unique<Activation>(); },
          "Keras Activation (oneDNN eltwise / softmax)"};
}

}  // namespace fg::layers
