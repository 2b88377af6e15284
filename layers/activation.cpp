// Keras Activation: one of the Keras activations applied elementwise (softmax and log_softmax
// over the last axis). oneDNN eltwise_forward where 2.6 has the algorithm, softmax_v2 for
// softmax / log_softmax, three primitives for softsign (layers/unfused_activation.hpp); selu is
// elu(alpha) followed by a linear scale.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "framework/op_fusion.hpp"
#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/unfused_activation.hpp"

namespace fg::layers {
namespace {

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
    return t;
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
