// The Keras activation layers with parameters that oneDNN 2.6 has no single eltwise for, or
// whose Keras definitions differ from oneDNN's at the edges (ReLU with max_value, negative_slope
// and threshold; LeakyReLU; ELU with alpha; ThresholdedReLU): one op class per layer
// (layers/relu.cpp, leaky_relu.cpp, elu.cpp, thresholded_relu.cpp) over the plain C++ kernel
// here. Each op supplies f(x) and f'(x) in double; the kernel reads the input plain and writes
// y = f(x) (inference and the training forward) or dx = f'(x) * dy (the training backward,
// from the input; nothing saved). OpenMP over the elements.
#pragma once

#include <fmt/format.h>

#include <memory>

#include "framework/op.hpp"
#include "kernels/kernel.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {

// f and f' of one activation, with its parameters.
class PointwiseFunction {
 public:
  virtual ~PointwiseFunction() = default;
  virtual double value(double x) const = 0;
  virtual double derivative(double x) const = 0;
};

class PointwiseKernel final : public Kernel {
 public:
  // backward: srcs[x] is the input, srcs[dy] d loss / d output, dsts[0] d loss / d input.
  PointwiseKernel(std::shared_ptr<const PointwiseFunction> f, bool backward, int64_t size, int x,
                  int dy)
      : f_(std::move(f)), backward_(backward), size_(size), x_(x), dy_(dy) {}

  void execute(ExecContext& ctx) const override {
    const auto* x = static_cast<const float*>(ctx.srcs[x_].get_data_handle());
    auto* out = static_cast<float*>(ctx.dsts[0].get_data_handle());
    const float* dy =
        backward_ ? static_cast<const float*>(ctx.srcs[dy_].get_data_handle()) : nullptr;
    const PointwiseFunction& f = *f_;
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
    for (int64_t i = 0; i < size_; ++i)
      out[i] = static_cast<float>(backward_ ? f.derivative(x[i]) * dy[i] : f.value(x[i]));
  }

 private:
  std::shared_ptr<const PointwiseFunction> f_;
  bool backward_;
  int64_t size_;
  int x_, dy_;
};

// The op: float32 in, same shape out, masks pass on; the subclass parses its attributes and
// returns its function.
class PointwiseActivationOp : public Op {
 public:
  virtual std::shared_ptr<const PointwiseFunction> function() const = 0;

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    ctx.expect_dtype(0, DType::f32);
    return {ctx.input(0)};
  }
  bool supports_masking() const override { return true; }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    build.kernel = std::make_unique<PointwiseKernel>(function(), false,
                                                     num_elements(ctx.inputs[0].shape), 0, 0);
    return build;
  }

  bool has_gradient() const override { return true; }
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    build = start_training_build(ctx, {});
    const BackwardArgs a = backward_args(ctx, 0);
    const int64_t size = num_elements(ctx.inputs[0].shape);
    build.forward.kernel = std::make_unique<PointwiseKernel>(function(), false, size, 0, 0);
    if (ctx.needs_input_gradient[0])
      build.backward.kernel =
          std::make_unique<PointwiseKernel>(function(), true, size, a.input(0), a.diff_output(0));
    else
      build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(PrimitiveSequence{});
  }
};

// A non-negative float attribute (Keras validates these at construction).
inline double non_negative_float(AttrReader& attrs, const std::string& key, double fallback) {
  const double v = attrs.get_float(key, fallback);
  if (!(v >= 0)) throw attrs.error(key, fmt::format("'{}' must be >= 0, got {}", key, v));
  return v;
}

}  // namespace fg::layers
