// Keras Dense: y = activation(x @ kernel + bias) on the last axis.
// Rank 2: oneDNN inner_product_forward; rank >= 3: oneDNN matmul with the kernel broadcast over
// the leading dims. Both with weights `any` (the Keras kernel is reordered once) and the
// activation fused as a post-op, or run after as an ActivationStep (softmax, log_softmax,
// softsign).
#include <fmt/format.h>

#include "layers/activation_step.hpp"
#include "layers/builtin_ops.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {
namespace {

class DenseKernel final : public Kernel {
 public:
  DenseKernel(dnnl::primitive prim, std::string impl, dnnl::memory weights,
              std::optional<dnnl::memory> bias, std::optional<ActivationStep> step)
      : prim_(std::move(prim)),
        impl_(std::move(impl)),
        weights_(std::move(weights)),
        bias_(std::move(bias)),
        step_(std::move(step)) {}

  void execute(ExecContext& ctx) const override {
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, ctx.srcs[0]}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, ctx.dsts[0]}};
    if (bias_) args.emplace(DNNL_ARG_BIAS, *bias_);
    execute_primitive(prim_, ctx, std::move(args));
    if (step_) step_->execute(ctx, ctx.dsts[0]);
  }

  std::string impl_info() const override {
    return step_ ? impl_ + " + " + step_->impl_info() : impl_;
  }

 private:
  dnnl::primitive prim_;
  std::string impl_;
  dnnl::memory weights_;
  std::optional<dnnl::memory> bias_;
  std::optional<ActivationStep> step_;
};

class Dense final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    units_ = attrs.get_positive_int("units");
    activation_ = attrs.get_activation("activation", "linear");
    if (!activation_supported(activation_))
      throw attrs.error("activation",
                        fmt::format("activation '{}' is not supported by dense", activation_));
    use_bias_ = attrs.get_bool("use_bias", true);
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const TensorType& x = ctx.input(0);
    if (x.dtype != DType::f32) {
      Error e =
          ctx.input_error(0, fmt::format("dense needs a float32 input, got {}", format_type(x)));
      e.hint(x.dtype == DType::i32
                 ? "int32 inputs are usually token ids: put an `embedding` node before the dense"
                 : "convert the input to float32");
      throw e;
    }
    ctx.expect_rank_at_least(0, 2);
    if (x.shape.back() == kDynamic)
      throw ctx.input_error(0, fmt::format("dense needs the last dimension of its input known (it "
                                           "sets the kernel shape [in, units]), got {}",
                                           format_shape(x.shape)));
    TensorType out = x;
    out.shape.back() = units_;
    return {out};
  }

  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    const Dim in = ctx.input(0).shape.back();
    WeightSpec kernel{"kernel", {in, units_}, Init::glorot_uniform, in, units_};
    if (!use_bias_) return {kernel};
    return {kernel, WeightSpec{"bias", {units_}, Init::zeros}};
  }

  double flops_per_sample(const InferContext& ctx,
                          const std::vector<TensorType>& outputs) const override {
    const Dims& s = ctx.input(0).shape;
    double positions = 1;
    for (size_t i = 1; i + 1 < s.size(); ++i) {
      if (s[i] == kDynamic) return 0;
      positions *= static_cast<double>(s[i]);
    }
    if (s.back() == kDynamic) return 0;
    return 2.0 * static_cast<double>(s.back()) * static_cast<double>(units_) * positions;
  }

  bool supports_masking() const override { return true; }
  bool outputs_probabilities() const override { return activation_ == "softmax"; }

  std::unique_ptr<Kernel> compile(KernelContext& ctx) const override {
    const TensorType& x = ctx.inputs[0];
    const int rank = x.rank();
    const Dim in = x.shape.back();
    dnnl::post_ops ops;
    std::optional<ActivationStep> step;
    if (!onednn::append_activation(ops, activation_))
      step = ActivationStep::make(activation_, ctx.dst_descs[0], ctx);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);

    dnnl::primitive prim;
    std::string impl;
    dnnl::memory weights;
    std::optional<dnnl::memory> bias;
    const auto bias_user = onednn::plain_desc(Dims{units_});
    if (rank == 2) {
      auto pd = onednn::make_inner_product_pd(ctx.src_descs[0], ctx.dst_descs[0], use_bias_, attr);
      ctx.add_scratchpad(pd);
      weights =
          ctx.weight_memory("kernel", onednn::dense_kernel_desc(in, units_), pd.weights_desc());
      if (use_bias_) bias = ctx.weight_memory("bias", bias_user, pd.bias_desc());
      prim = dnnl::inner_product_forward(pd);
      impl = onednn::impl_name(pd);
    } else {
      auto pd = onednn::make_dense_matmul_pd(ctx.src_descs[0], ctx.dst_descs[0], use_bias_, attr);
      ctx.add_scratchpad(pd);
      weights = ctx.weight_memory("kernel", onednn::dense_matmul_kernel_desc(rank, in, units_),
                                  pd.weights_desc());
      if (use_bias_)
        bias =
            ctx.weight_memory("bias", onednn::dense_matmul_bias_desc(rank, units_), pd.bias_desc());
      prim = dnnl::matmul(pd);
      impl = onednn::impl_name(pd);
    }
    return std::make_unique<DenseKernel>(std::move(prim), std::move(impl), std::move(weights),
                                         std::move(bias), std::move(step));
  }

 private:
  int64_t units_ = 0;
  std::string activation_ = "linear";
  bool use_bias_ = true;
};

}  // namespace

OpInfo dense_op() {
  return {"dense", [] { return std::make_unique<Dense>(); },
          "Keras Dense on the last axis (oneDNN inner product / matmul, fused activation)"};
}

}  // namespace fg::layers
