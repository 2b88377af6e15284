// Keras RepeatVector: [batch, features] -> [batch, n, features], every step a copy of the input
// row. Plain C++ (a copy per step). Training: d x = the sum over the n steps of d y. Nothing
// saved. See docs/ops/dense_shape_activation.md.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

// y[b, t, :] = x[b, :]; srcs x, dsts y.
class RepeatVectorKernel final : public Kernel {
 public:
  RepeatVectorKernel(int64_t batch, int64_t n, int64_t features)
      : batch_(batch), n_(n), features_(features) {}

  void execute(ExecContext& ctx) const override {
    ctx.stream.wait();
    const auto* x = static_cast<const float*>(ctx.srcs[0].get_data_handle());
    auto* y = static_cast<float*>(ctx.dsts[0].get_data_handle());
    const int64_t rows = batch_ * n_;
    const size_t row_bytes = static_cast<size_t>(features_) * sizeof(float);
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (rows * features_ > 4096)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(y + r * features_, x + (r / n_) * features_, row_bytes);
  }

 private:
  int64_t batch_, n_, features_;
};

// d x[b, :] = sum over t of d y[b, t, :], in step order; srcs / dsts by the training convention.
class RepeatVectorBackwardKernel final : public Kernel {
 public:
  RepeatVectorBackwardKernel(int64_t batch, int64_t n, int64_t features, BackwardArgs args)
      : batch_(batch), n_(n), features_(features), args_(args) {}

  void execute(ExecContext& ctx) const override {
    ctx.stream.wait();
    const auto* dy = static_cast<const float*>(ctx.srcs[args_.diff_output(0)].get_data_handle());
    auto* dx = static_cast<float*>(ctx.dsts[args_.diff_input(0)].get_data_handle());
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (batch_ > 1)
    for (int64_t b = 0; b < batch_; ++b) {
      float* out = dx + b * features_;
      std::fill(out, out + features_, 0.f);
      for (int64_t t = 0; t < n_; ++t) {
        const float* g = dy + (b * n_ + t) * features_;
        for (int64_t f = 0; f < features_; ++f) out[f] += g[f];
      }
    }
  }

 private:
  int64_t batch_, n_, features_;
  BackwardArgs args_;
};

class RepeatVector final : public Op {
 public:
  void parse(AttrReader& attrs) override { n_ = attrs.get_positive_int("n"); }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    ctx.expect_dtype(0, DType::f32);
    const TensorType& x = ctx.input(0);
    if (x.rank() != 2) {
      Error e = ctx.input_error(
          0, fmt::format("repeat_vector takes [batch, features] (rank 2, as Keras RepeatVector), "
                         "got {} (rank {})",
                         format_shape(x.shape), x.rank()));
      e.hint("flatten the input first, or use a recurrent layer's return_sequences: false");
      throw e;
    }
    TensorType out = x;
    out.shape = {x.shape[0], n_, x.shape[1]};
    out.masked = false;
    return {out};
  }

  double flops_per_sample(const InferContext&, const std::vector<TensorType>&) const override {
    return 0.0;
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const Dims& xs = ctx.inputs[0].shape;
    build.kernel = std::make_unique<RepeatVectorKernel>(xs[0], n_, xs[1]);
    return build;
  }

  bool has_gradient() const override { return true; }
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    build = start_training_build(ctx, {});
    const Dims& xs = ctx.inputs[0].shape;
    build.forward.kernel = std::make_unique<RepeatVectorKernel>(xs[0], n_, xs[1]);
    if (ctx.needs_input_gradient[0])
      build.backward.kernel =
          std::make_unique<RepeatVectorBackwardKernel>(xs[0], n_, xs[1], backward_args(ctx, 0));
    else
      build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(PrimitiveSequence{});
  }

 private:
  int64_t n_ = 1;
};

}  // namespace

OpInfo repeat_vector_op() {
  return {"repeat_vector", [] { return std::make_unique<RepeatVector>(); },
          "Keras RepeatVector: [batch, features] -> [batch, n, features]"};
}

}  // namespace fg::layers
