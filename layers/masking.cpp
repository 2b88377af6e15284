// Keras Masking: on [batch, steps, features], a step is kept when any of its features differs
// from mask_value (compared in float32, as Keras); output[b, t, :] = x[b, t, :] times the keep
// flag (1 or 0), and the op writes the mask [b, t] (1 = kept) for its consumers (an
// lstm / gru then skips the masked steps). An incoming mask is replaced, as Keras's compute_mask
// does. Plain C++. Training: d x = d y on kept steps, 0 on masked ones (the keep flags are
// recomputed from x; nothing saved). See docs/ops/recurrent_embedding.md.
#include <fmt/format.h>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

bool step_is_kept(const float* row, int64_t features, float mask_value) {
  for (int64_t f = 0; f < features; ++f)
    if (row[f] != mask_value) return true;
  return false;
}

// Forward: srcs x; dsts y (and dst mask 0 when the plan gives one).
// Backward (`backward`): srcs / dsts by the training convention; d x from d y.
class MaskingKernel final : public Kernel {
 public:
  MaskingKernel(int64_t rows, int64_t features, float mask_value, bool backward, BackwardArgs args)
      : rows_(rows),
        features_(features),
        mask_value_(mask_value),
        backward_(backward),
        args_(args) {}

  void execute(ExecContext& ctx) const override {
    ctx.stream.wait();
    const auto* x = static_cast<const float*>(ctx.srcs[args_.input(0)].get_data_handle());
    const auto* from =
        backward_ ? static_cast<const float*>(ctx.srcs[args_.diff_output(0)].get_data_handle()) : x;
    auto* out = static_cast<float*>(ctx.dsts[args_.diff_input(0)].get_data_handle());
    uint8_t* mask = !backward_ && !ctx.dst_masks.empty() ? ctx.dst_masks[0] : nullptr;
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (rows_ * features_ > 4096)
    for (int64_t r = 0; r < rows_; ++r) {
      const bool keep = step_is_kept(x + r * features_, features_, mask_value_);
      // times the keep flag, as Keras (x * cast(mask)): a masked step of an infinite
      // mask_value gives NaN there too
      const float flag = keep ? 1.f : 0.f;
      for (int64_t f = r * features_; f < (r + 1) * features_; ++f) out[f] = from[f] * flag;
      if (mask) mask[r] = keep ? 1 : 0;
    }
  }

 private:
  int64_t rows_, features_;
  float mask_value_;
  bool backward_;
  BackwardArgs args_;  // forward: input(0) = src 0, diff_input(0) = dst 0
};

class Masking final : public Op {
 public:
  void parse(AttrReader& attrs) override { mask_value_ = attrs.get_float("mask_value", 0.0); }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    ctx.expect_dtype(0, DType::f32);
    const TensorType& x = ctx.input(0);
    if (x.rank() != 3) {
      Error e = ctx.input_error(
          0, fmt::format("masking takes [batch, steps, features] (rank 3: the mask is one flag "
                         "per step), got {} (rank {})",
                         format_shape(x.shape), x.rank()));
      e.hint("reshape the input to [batch, steps, features] before the masking node");
      throw e;
    }
    TensorType out = x;
    out.masked = true;
    return {out};
  }

  double flops_per_sample(const InferContext&, const std::vector<TensorType>&) const override {
    return 0.0;
  }
  bool supports_masking() const override { return true; }
  bool produces_mask() const override { return true; }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const Dims& xs = ctx.inputs[0].shape;
    build.kernel = std::make_unique<MaskingKernel>(
        xs[0] * xs[1], xs[2], static_cast<float>(mask_value_), false, BackwardArgs{});
    return build;
  }

  bool has_gradient() const override { return true; }
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    build = start_training_build(ctx, {});
    const Dims& xs = ctx.inputs[0].shape;
    const float value = static_cast<float>(mask_value_);
    build.forward.kernel =
        std::make_unique<MaskingKernel>(xs[0] * xs[1], xs[2], value, false, BackwardArgs{});
    if (ctx.needs_input_gradient[0])
      build.backward.kernel =
          std::make_unique<MaskingKernel>(xs[0] * xs[1], xs[2], value, true, backward_args(ctx, 0));
    else
      build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(PrimitiveSequence{});
  }

 private:
  double mask_value_ = 0.0;
};

}  // namespace

OpInfo masking_op() {
  return {"masking", [] { return std::make_unique<Masking>(); },
          "Keras Masking: zeroes and masks the steps whose features all equal mask_value"};
}

}  // namespace fg::layers
