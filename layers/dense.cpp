// Keras Dense: y = activation(x @ kernel + bias) on the last axis.
// Rank 2: oneDNN inner_product_forward; rank >= 3: oneDNN matmul with the kernel broadcast over
// the leading dims. Both with weights `any` (the Keras kernel is reordered once) and the
// activation fused as a post-op, or run after it in place (layers/unfused_activation.hpp: softmax,
// log_softmax, softsign).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "framework/registry.hpp"
#include "kernels/int8_weights.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/training_blocks.hpp"
#include "layers/unfused_activation.hpp"

namespace fg::layers {
namespace {

// Dense with dynamic int8 quantization: per run, s = max |x| / 127 (1 when the input is all
// zeros), q = saturate(round_half_even(x / s)) into an s8 temporary and the output scales
// s * kernel_scale[c] into an f32 temporary, then the int8 primitive (and any unfused activation).
class DynamicInt8Kernel final : public Kernel {
 public:
  DynamicInt8Kernel(PrimitiveSequence calls, std::string impl, int quantized, int scales,
                    std::vector<float> kernel_scales)
      : calls_(std::move(calls)),
        impl_(std::move(impl)),
        quantized_(quantized),
        scales_(scales),
        kernel_scales_(std::move(kernel_scales)) {}

  std::unique_ptr<KernelBinding> bind(const StepBuffers& buffers) const override {
    return calls_.bind(buffers);
  }

  void execute(ExecContext& ctx) const override {
    const dnnl::memory& src = ctx.srcs[0];
    const auto* x = static_cast<const float*>(src.get_data_handle());
    const auto n = static_cast<int64_t>(src.get_desc().get_size() / sizeof(float));
    float max_abs = 0;
#pragma omp parallel for num_threads(ctx.threads) reduction(max : max_abs) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
    const float scale = max_abs > 0 && std::isfinite(max_abs) ? max_abs / 127.f : 1.f;
    auto* q = static_cast<int8_t*>(ctx.temps[quantized_].get_data_handle());
#pragma omp parallel for num_threads(ctx.threads) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      const float v = std::nearbyint(x[i] / scale);
      q[i] = static_cast<int8_t>(v > 127.f ? 127.f : v < -127.f ? -127.f : v == v ? v : 0.f);
    }
    auto* scales = static_cast<float*>(ctx.temps[scales_].get_data_handle());
    for (size_t c = 0; c < kernel_scales_.size(); ++c) scales[c] = scale * kernel_scales_[c];
    calls_.run(ctx, *static_cast<const PrimitiveSequence::Binding*>(ctx.binding));
  }

  std::string impl_info() const override {
    return impl_;
  }

 private:
  PrimitiveSequence calls_;
  std::string impl_;
  int quantized_, scales_;
  std::vector<float> kernel_scales_;
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
  // f32 bias and output. With int8 (and VNNI): the calibrated int8 product (add_static_int8)
  // when the weights file holds the node's input scale, else dynamic quantization
  // (compile_dynamic_int8). Otherwise, or when oneDNN has no fast kernel for the shape, f32.
  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    dnnl::post_ops ops;
    const bool fused = onednn::append_activation(ops, activation_);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);

    PrimitiveSequence calls;
    if (ctx.precision == Precision::int8) {
      if (!onednn::native_int8_isa()) {
        build.precision_fallback = onednn::no_native_int8_reason();
      } else if (ctx.int8 == nullptr || ctx.int8->input == Int8Node::Input::dynamic) {
        if (compile_dynamic_int8(ctx, build)) return build;
        build.precision_fallback = fmt::format("no fast int8 kernel in oneDNN for this shape on {}",
                                               onednn::cpu_isa_name());
      } else if (!add_static_int8(ctx, ops, calls, build)) {
        build.precision_fallback = fmt::format("no fast int8 kernel in oneDNN for this shape on {}",
                                               onednn::cpu_isa_name());
      }
    }
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

  // The kernel's s8 form: from the quantized weights file, or quantized here (dynamic inputs
  // without one).
  Int8Node int8_kernel(const KernelContext& ctx) const {
    Int8Node q = ctx.int8 != nullptr ? *ctx.int8 : quantize_kernel(ctx.weight("kernel"));
    const Dims want{ctx.inputs[0].shape.back(), units_};
    if (q.kernel.shape() != want)
      throw ctx.error(fmt::format("the int8 kernel has shape {}, expected {}",
                                  format_shape(q.kernel.shape()), format_shape(want)));
    return q;
  }

  dnnl::memory int8_kernel_memory(const KernelContext& ctx, const Int8Node& q,
                                  const dnnl::memory::desc& want) const {
    const int rank = ctx.inputs[0].rank();
    const Dim in = ctx.inputs[0].shape.back();
    const dnnl::memory::desc user = rank == 2 ? onednn::dense_kernel_desc(in, units_)
                                              : onednn::dense_matmul_kernel_desc(rank, in, units_);
    return ctx.constant("int8.kernel", want,
                        [&] { return onednn::int8_weights(user, q.kernel.raw(), want); });
  }

  // x @ kernel + bias with the input quantized by its calibrated scale (u8 or s8, a reorder into
  // a temporary), s8 weights, s32 accumulation, and output scales input_scale * kernel_scale[c]
  // with the bias divided by them (oneDNN 2.x adds the bias before scaling), f32 output.
  bool add_static_int8(const KernelContext& ctx, const dnnl::post_ops& ops,
                       PrimitiveSequence& calls, KernelBuild& build) const {
    const Int8Node q = int8_kernel(ctx);
    const int rank = ctx.inputs[0].rank();
    std::vector<float> scales(static_cast<size_t>(units_));
    for (size_t c = 0; c < scales.size(); ++c) scales[c] = q.input_scale * q.kernel_scales[c];
    const dnnl::primitive_attr attr = onednn::int8_output_attr(ops, rank - 1, scales);
    const auto src_type = q.input == Int8Node::Input::u8 ? onednn::dt::u8 : onednn::dt::s8;
    const dnnl::memory::desc src = onednn::with_data_type(build.src_descs[0], src_type);
    const std::optional<dnnl::primitive_desc> pd = int8_product_pd(ctx, src, build, attr);
    if (!pd) return false;
    const CallArg quantized = CallArg::temp(build.add_temp(pd->src_desc()));
    calls.add(onednn::make_quantize_pd(build.src_descs[0], pd->src_desc(), q.input_scale),
              {{DNNL_ARG_FROM, CallArg::src(0)}, {DNNL_ARG_TO, quantized}}, build);
    std::vector<std::pair<int, CallArg>> args{
        {DNNL_ARG_SRC, quantized},
        {DNNL_ARG_DST, CallArg::dst(0)},
        {DNNL_ARG_WEIGHTS, CallArg::constant(int8_kernel_memory(ctx, q, pd->weights_desc()))}};
    if (use_bias_) {
      const dnnl::memory::desc bias_desc = pd->weights_desc(1);
      args.push_back({DNNL_ARG_BIAS, CallArg::constant(ctx.constant("int8.bias", bias_desc, [&] {
                        dnnl::memory m(bias_desc, ctx.engine);
                        const float* b = ctx.weight("bias").data<float>();
                        auto* dst = static_cast<float*>(m.get_data_handle());
                        for (size_t c = 0; c < scales.size(); ++c) dst[c] = b[c] / scales[c];
                        return m;
                      }))});
    }
    calls.add(*pd, std::move(args), build);
    build.precision = Precision::int8;
    build.precision_detail = fmt::format("{} input", int8_input_name(q.input));
    return true;
  }

  // The int8 inner product (rank 2) or matmul (rank >= 3) for an s8 / u8 `src`, or nothing
  // when oneDNN has none or only its reference kernel.
  std::optional<dnnl::primitive_desc> int8_product_pd(const KernelContext& ctx,
                                                      const dnnl::memory::desc& src,
                                                      const KernelBuild& build,
                                                      const dnnl::primitive_attr& attr,
                                                      bool bias_argument = true) const {
    const bool bias = use_bias_ && bias_argument;
    try {
      dnnl::primitive_desc pd = ctx.inputs[0].rank() == 2
                                    ? dnnl::primitive_desc(onednn::make_inner_product_pd(
                                          src, build.dst_descs[0], bias, attr, onednn::dt::s8))
                                    : dnnl::primitive_desc(onednn::make_dense_matmul_pd(
                                          src, build.dst_descs[0], bias, attr, onednn::dt::s8));
      if (onednn::is_reference_impl(pd)) return std::nullopt;
      return pd;
    } catch (const dnnl::error&) {
      return std::nullopt;
    }
  }

  // Dynamic quantization (no calibrated input scale): each run quantizes the input by its own
  // max |x| / 127 to s8 (DynamicInt8Kernel), then the int8 product with run-time output scales;
  // the bias (a binary post-op, after the scales) and the activation follow as post-ops.
  bool compile_dynamic_int8(const KernelContext& ctx, KernelBuild& build) const {
    const Int8Node q = int8_kernel(ctx);
    const TensorType& x = ctx.inputs[0];
    const int rank = x.rank();
    const dnnl::memory::desc bias_desc = rank == 2 ? onednn::plain_desc(Dims{1, units_})
                                                   : onednn::dense_matmul_bias_desc(rank, units_);
    dnnl::post_ops ops;
    if (use_bias_) ops.append_binary(dnnl::algorithm::binary_add, bias_desc);
    const bool fused = onednn::append_activation(ops, activation_);
    const dnnl::primitive_attr attr = onednn::int8_runtime_output_attr(ops, rank - 1);
    build.src_descs[0] = onednn::plain_desc(x);  // the kernel's loops read it in Keras order
    const dnnl::memory::desc src = onednn::plain_desc(x.shape, DType::i8);
    const std::optional<dnnl::primitive_desc> pd =
        int8_product_pd(ctx, src, build, attr, /*bias_argument=*/false);
    if (!pd || pd->src_desc() != src) return false;
    const int quantized = build.add_temp(src);
    const int scales = build.add_temp(onednn::plain_desc(Dims{units_}));
    std::vector<std::pair<int, CallArg>> args{
        {DNNL_ARG_SRC, CallArg::temp(quantized)},
        {DNNL_ARG_DST, CallArg::dst(0)},
        {DNNL_ARG_WEIGHTS, CallArg::constant(int8_kernel_memory(ctx, q, pd->weights_desc()))},
        {DNNL_ARG_ATTR_OUTPUT_SCALES, CallArg::temp(scales)}};
    if (use_bias_)
      args.push_back({DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                      CallArg::constant(ctx.weight_memory("bias", onednn::plain_desc(Dims{units_}),
                                                          onednn::plain_desc(Dims{units_})))});
    PrimitiveSequence calls;
    calls.add(*pd, std::move(args), build);
    std::string impl = calls.impl();
    if (!fused) {
      const std::string unfused = append_unfused_activation(
          activation_, CallArg::dst(0), CallArg::dst(0), build.dst_descs[0], calls, build);
      if (!unfused.empty()) impl += " + " + unfused;
    }
    build.precision = Precision::int8;
    build.precision_detail = "dynamic s8 input";
    build.kernel = std::make_unique<DynamicInt8Kernel>(std::move(calls), impl, quantized, scales,
                                                       q.kernel_scales);
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
