// Keras Activation: one of the Keras activations applied elementwise (softmax and log_softmax
// over the last axis). oneDNN eltwise_forward where 2.6 has the algorithm, softmax_v2 for
// softmax / log_softmax, plain C++ for softsign; selu is elu(alpha) followed by a linear scale.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "framework/op_fusion.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/activation_step.hpp"
#include "layers/builtin_ops.hpp"

namespace fg::layers {
namespace {

// Runs: an optional copy src -> dst (when no primitive reads src directly), then primitives
// (the first reads src unless a copy ran, the rest work in place on dst), then softsign in C++.
class ActivationKernel final : public Kernel {
 public:
  std::optional<dnnl::primitive> copy;
  std::vector<dnnl::primitive> prims;
  bool softsign = false;
  std::string impl;

  void execute(ExecContext& ctx) const override {
    dnnl::memory src = ctx.srcs[0];
    const dnnl::memory& dst = ctx.dsts[0];
    if (copy) {
      execute_primitive(*copy, ctx, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
      src = dst;
    }
    for (const auto& p : prims) {
      execute_primitive(p, ctx, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
      src = dst;
    }
    if (softsign) {
      ctx.stream.wait();
      const float* in = static_cast<const float*>(src.get_data_handle());
      float* out = static_cast<float*>(dst.get_data_handle());
      const int64_t n = static_cast<int64_t>(dst.get_desc().get_size() / sizeof(float));
#pragma omp parallel for num_threads(ctx.threads) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) out[i] = in[i] / (1.f + std::fabs(in[i]));
    }
  }
  std::string impl_info() const override {
    return impl;
  }
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

  std::unique_ptr<Kernel> compile(KernelContext& ctx) const override {
    auto kernel = std::make_unique<ActivationKernel>();
    const auto& src = ctx.src_descs[0];
    const auto& dst = ctx.dst_descs[0];
    // Primitives below take one layout for src and dst: copy first if the layouts differ.
    const bool same = src == dst;
    auto add_copy = [&] {
      auto pd = onednn::make_reorder_pd(src, dst);
      ctx.add_scratchpad(pd);
      kernel->copy = dnnl::reorder(pd);
      kernel->impl = onednn::impl_name(pd);
    };
    auto add = [&](const dnnl::primitive& p, const std::string& impl) {
      kernel->prims.push_back(p);
      kernel->impl += (kernel->impl.empty() ? "" : " + ") + impl;
    };
    const std::string name = approximate_ ? "gelu_approximate" : activation_;
    dnnl::algorithm alg;
    float alpha, beta;
    if (!same) add_copy();
    if (name == "linear") {
      if (same) add_copy();
    } else if (onednn::eltwise_for(name, alg, alpha, beta)) {
      auto pd = onednn::make_eltwise_pd(dst, alg, alpha, beta);
      ctx.add_scratchpad(pd);
      add(dnnl::eltwise_forward(pd), onednn::impl_name(pd));
    } else if (name == "selu") {
      // selu(x) = scale * elu(x, alpha), Keras constants. An eltwise post-op on an eltwise
      // primitive drops to ref:any in 2.6, so this is two jit passes.
      auto elu =
          onednn::make_eltwise_pd(dst, dnnl::algorithm::eltwise_elu, 1.6732632423543772f, 0.f);
      auto scale =
          onednn::make_eltwise_pd(dst, dnnl::algorithm::eltwise_linear, 1.0507009873554805f, 0.f);
      ctx.add_scratchpad(elu);
      ctx.add_scratchpad(scale);
      add(dnnl::eltwise_forward(elu), onednn::impl_name(elu));
      add(dnnl::eltwise_forward(scale), onednn::impl_name(scale));
    } else if (name == "softmax" || name == "log_softmax") {
      const int axis = ctx.inputs[0].rank() - 1;
      auto pd = onednn::make_softmax_pd(dst, dst, axis, name == "log_softmax");
      ctx.add_scratchpad(pd);
      add(dnnl::softmax_v2_forward(pd), onednn::impl_name(pd));
    } else if (name == "softsign") {
      kernel->softsign = true;
      kernel->impl += kernel->impl.empty() ? "c++" : " + c++";
    } else {
      throw ctx.error(fmt::format("activation '{}' is not implemented by the activation op", name));
    }
    return kernel;
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
