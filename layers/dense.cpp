// Keras Dense: y = activation(x @ kernel + bias) on the last axis.
// Rank 2: oneDNN inner_product_forward; rank >= 3: oneDNN matmul with the kernel broadcast over
// the leading dims. Both with weights `any` (the Keras kernel is reordered once) and the
// activation fused as a post-op, or run after it in place (layers/unfused_activation.hpp: softmax,
// log_softmax, softsign).
#include <fmt/format.h>

#include <optional>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/training_blocks.hpp"
#include "layers/unfused_activation.hpp"

namespace fg::layers {
namespace {

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
  OpTraits traits() const override {
    OpTraits t;
    t.outputs_probabilities = activation_ == "softmax";
    if (activation_ == "softmax" || activation_ == "sigmoid") t.final_activation = activation_;
    return t;
  }

  bool has_gradient() const override { return activation_has_gradient(activation_); }

  // Training, on the input seen as [M, in] (M = every leading dim): matmul primitives on plain
  // buffers (the Keras kernel [in, units] is the matmul's weights as stored).
  //   forward   z = x W + b (saved unless the activation is linear or taken by the loss),
  //             y = activation(z)
  //   backward  dz = activation'(dy); dx = dz W^T; dW = x^T dz; db = sum over M of dz
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const Dims& xs = ctx.inputs[0].shape;
    const Dim in = xs.back();
    const Dim rows = num_elements(xs) / in;
    const std::string act = ctx.output_logits ? "linear" : activation_;
    const auto x2 = onednn::plain_desc(Dims{rows, in});
    const auto z2 = onednn::plain_desc(Dims{rows, units_});
    const auto w2 = onednn::plain_desc(Dims{in, units_});
    const auto b2 = onednn::plain_desc(Dims{1, units_});
    // z is kept unless the activation is linear or its backward reads only y (relu, sigmoid,
    // tanh: applied in place).
    const bool saves_z = act != "linear" && !activation_backward_from_dst(act);
    build = start_training_build(
        ctx, saves_z ? std::vector<dnnl::memory::desc>{onednn::plain_desc(ctx.outputs[0])}
                     : std::vector<dnnl::memory::desc>{});
    const BackwardArgs a = backward_args(ctx, build.saved_descs.size());

    PrimitiveSequence fwd;
    const CallArg z = saves_z ? CallArg::dst(1, z2) : CallArg::dst(0, z2);
    std::vector<std::pair<int, CallArg>> args{{DNNL_ARG_SRC, CallArg::src(0, x2)},
                                              {DNNL_ARG_WEIGHTS, CallArg::src(1)},
                                              {DNNL_ARG_DST, z}};
    if (use_bias_) args.push_back({DNNL_ARG_BIAS, CallArg::src(2, b2)});
    fwd.add(onednn::make_matmul_pd(x2, w2, use_bias_ ? b2 : dnnl::memory::desc(), z2),
            std::move(args), build.forward);
    append_activation_forward(act, z, CallArg::dst(0, z2), z2, fwd, build.forward);
    build.forward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(fwd));

    PrimitiveSequence bwd;
    CallArg dz = CallArg::src(a.diff_output(0), z2);
    if (act != "linear") {
      dz = CallArg::temp(build.backward.add_temp(z2));
      append_activation_backward(
          act, saves_z ? CallArg::src(a.saved_tensor(0), z2) : CallArg::src(a.output(0), z2),
          CallArg::src(a.output(0), z2), CallArg::src(a.diff_output(0), z2), dz, z2, bwd,
          build.backward);
    }
    if (ctx.needs_input_gradient[0])  // dx = dz W^T
      bwd.add(onednn::make_matmul_pd(z2, onednn::transposed_desc(w2), {}, x2),
              {{DNNL_ARG_SRC, dz},
               {DNNL_ARG_WEIGHTS, CallArg::src(a.weight(0), onednn::transposed_desc(w2))},
               {DNNL_ARG_DST, CallArg::dst(a.diff_input(0), x2)}},
              build.backward);
    if (!ctx.frozen) {  // dW = x^T dz, db = column sums of dz
      bwd.add(onednn::make_matmul_pd(onednn::transposed_desc(x2), z2, {}, w2),
              {{DNNL_ARG_SRC, CallArg::src(a.input(0), onednn::transposed_desc(x2))},
               {DNNL_ARG_WEIGHTS, dz},
               {DNNL_ARG_DST, CallArg::dst(a.diff_weight(0))}},
              build.backward);
      if (use_bias_)
        append_sum_rows(dz, CallArg::dst(a.diff_weight(1), b2), z2, bwd, build.backward);
    }
    build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(bwd));
  }

  // Inference. With KernelContext::precision bf16 (and a native bf16 ISA): the input reordered
  // to bf16 in a temporary, the kernel stored in bf16 once (the weight cache), f32 accumulation,
  // f32 bias and output; otherwise, or when oneDNN has no fast bf16 kernel for the shape, f32.
  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    dnnl::post_ops ops;
    const bool fused = onednn::append_activation(ops, activation_);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);

    PrimitiveSequence calls;
    if (ctx.precision == Precision::bf16) {
      if (!onednn::native_bf16_isa())
        build.precision_fallback = onednn::no_native_bf16_reason();
      else if (!add_product(ctx, attr, onednn::dt::bf16, calls, build))
        build.precision_fallback = fmt::format("no fast bf16 kernel in oneDNN for this shape on {}",
                                               onednn::cpu_isa_name());
    }
    if (build.precision == Precision::f32) add_product(ctx, attr, onednn::dt::f32, calls, build);
    std::string impl = calls.impl();
    if (!fused) {
      const std::string unfused = append_unfused_activation(
          activation_, CallArg::dst(0), CallArg::dst(0), build.dst_descs[0], calls, build);
      if (!unfused.empty()) impl += " + " + unfused;
    }
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls), impl);
    return build;
  }

 private:
  // Appends x @ kernel + bias with inputs and weights in `type` (f32, or bf16: the input is
  // reordered into a bf16 temporary first, and build.precision says bf16) to `calls`. Rank 2:
  // inner product; rank >= 3: matmul. Returns false, adding nothing, when `type` is bf16 and
  // oneDNN has no primitive for it or only its reference kernel.
  bool add_product(const KernelContext& ctx, const dnnl::primitive_attr& attr, onednn::dt type,
                   PrimitiveSequence& calls, KernelBuild& build) const {
    const TensorType& x = ctx.inputs[0];
    const int rank = x.rank();
    const Dim in = x.shape.back();
    const bool bf16 = type == onednn::dt::bf16;
    const dnnl::memory::desc src = onednn::with_data_type(build.src_descs[0], type);
    const dnnl::memory::desc& dst = build.dst_descs[0];
    const auto make = [&]() -> std::optional<dnnl::primitive_desc> {
      try {
        dnnl::primitive_desc pd = rank == 2 ? dnnl::primitive_desc(onednn::make_inner_product_pd(
                                                  src, dst, use_bias_, attr, type))
                                            : dnnl::primitive_desc(onednn::make_dense_matmul_pd(
                                                  src, dst, use_bias_, attr, type));
        if (bf16 && onednn::is_reference_impl(pd)) return std::nullopt;
        return pd;
      } catch (const dnnl::error&) {
        if (!bf16) throw;
        return std::nullopt;
      }
    };
    const std::optional<dnnl::primitive_desc> pd = make();
    if (!pd) return false;
    const dnnl::memory::desc kernel_user = rank == 2
                                               ? onednn::dense_kernel_desc(in, units_)
                                               : onednn::dense_matmul_kernel_desc(rank, in, units_);
    const dnnl::memory::desc bias_user =
        rank == 2 ? onednn::plain_desc(Dims{units_}) : onednn::dense_matmul_bias_desc(rank, units_);
    CallArg product_src = CallArg::src(0);
    if (bf16) {
      product_src = CallArg::temp(build.add_temp(pd->src_desc()));
      calls.add(onednn::make_reorder_pd(build.src_descs[0], pd->src_desc()),
                {{DNNL_ARG_FROM, CallArg::src(0)}, {DNNL_ARG_TO, product_src}}, build);
      build.precision = Precision::bf16;
    }
    std::vector<std::pair<int, CallArg>> args{
        {DNNL_ARG_SRC, product_src},
        {DNNL_ARG_DST, CallArg::dst(0)},
        {DNNL_ARG_WEIGHTS,
         CallArg::constant(ctx.weight_memory("kernel", kernel_user, pd->weights_desc()))}};
    if (use_bias_)
      args.push_back({DNNL_ARG_BIAS, CallArg::constant(ctx.weight_memory("bias", bias_user,
                                                                         pd->weights_desc(1)))});
    calls.add(*pd, std::move(args), build);
    return true;
  }

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
