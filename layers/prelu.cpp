// Keras PReLU: y = x for x >= 0, alpha * x otherwise, with a trainable `alpha` of the input's
// per-sample shape where every axis in `shared_axes` (Keras numbering, batch = 0) has size 1.
// Plain C++ with OpenMP: oneDNN 2.6's prelu primitive broadcasts its weights channel-wise,
// channel-shared or not at all (weights of the full src shape, batch included); Keras's alpha is
// shared over the batch and, per shared_axes, over any other axes, which none of the three
// covers. Training: d x = dy where x > 0, alpha * dy where x < 0, 0 at x = 0 (the gradient of
// Keras's relu(x) - alpha * relu(-x)); d alpha = sum over the batch and the shared axes of
// x * dy where x < 0. Nothing saved. See docs/ops/keras_activation_layers.md.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <vector>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

// For each element of one sample (row major), the index of its alpha (shared axes broadcast).
std::vector<int64_t> alpha_index_of_sample(const Dims& sample, const Dims& alpha) {
  std::vector<int64_t> strides(sample.size(), 0);
  int64_t stride = 1;
  for (size_t k = alpha.size(); k-- > 0;) {
    strides[k] = alpha[k] == 1 && sample[k] != 1 ? 0 : stride;
    stride *= alpha[k];
  }
  std::vector<int64_t> index(static_cast<size_t>(num_elements(sample)), 0);
  std::vector<int64_t> pos(sample.size(), 0);
  for (size_t i = 0; i < index.size(); ++i) {
    int64_t a = 0;
    for (size_t k = 0; k < sample.size(); ++k) a += pos[k] * strides[k];
    index[i] = a;
    for (size_t k = sample.size(); k-- > 0;) {  // next position, last axis fastest
      if (++pos[k] < sample[k]) break;
      pos[k] = 0;
    }
  }
  return index;
}

// Forward: srcs x, alpha (a constant at inference: `alpha` set); dsts y.
class PreluForwardKernel final : public Kernel {
 public:
  PreluForwardKernel(int64_t batch, std::vector<int64_t> alpha_index, dnnl::memory alpha)
      : batch_(batch), alpha_index_(std::move(alpha_index)), alpha_(std::move(alpha)) {}

  void execute(ExecContext& ctx) const override {
    ctx.stream.wait();
    const auto* x = static_cast<const float*>(ctx.srcs[0].get_data_handle());
    const auto* alpha = static_cast<const float*>(alpha_ ? alpha_.get_data_handle()
                                                         : ctx.srcs[1].get_data_handle());
    auto* y = static_cast<float*>(ctx.dsts[0].get_data_handle());
    const int64_t sample = static_cast<int64_t>(alpha_index_.size());
    const int64_t* index = alpha_index_.data();
    const int64_t total = batch_ * sample;
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (total > 4096)
    for (int64_t n = 0; n < total; ++n) {
      const float v = x[n];
      y[n] = v >= 0 ? v : alpha[index[n % sample]] * v;
    }
  }

 private:
  int64_t batch_;
  std::vector<int64_t> alpha_index_;
  dnnl::memory alpha_;
};

// Backward under the training convention: srcs x, alpha, y, dy; dsts dx, d alpha.
class PreluBackwardKernel final : public Kernel {
 public:
  PreluBackwardKernel(int64_t batch, std::vector<int64_t> alpha_index, int64_t alpha_size,
                      bool input_gradient, bool alpha_gradient, BackwardArgs args)
      : batch_(batch),
        alpha_index_(std::move(alpha_index)),
        alpha_size_(alpha_size),
        input_gradient_(input_gradient),
        alpha_gradient_(alpha_gradient),
        args_(args) {}

  void execute(ExecContext& ctx) const override {
    ctx.stream.wait();
    const auto* x = static_cast<const float*>(ctx.srcs[args_.input(0)].get_data_handle());
    const auto* alpha = static_cast<const float*>(ctx.srcs[args_.weight(0)].get_data_handle());
    const auto* dy = static_cast<const float*>(ctx.srcs[args_.diff_output(0)].get_data_handle());
    const int64_t sample = static_cast<int64_t>(alpha_index_.size());
    const int64_t* index = alpha_index_.data();
    const int64_t total = batch_ * sample;
    if (input_gradient_) {
      auto* dx = static_cast<float*>(ctx.dsts[args_.diff_input(0)].get_data_handle());
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (total > 4096)
      for (int64_t n = 0; n < total; ++n) {
        const float v = x[n];
        dx[n] = v > 0 ? dy[n] : v < 0 ? alpha[index[n % sample]] * dy[n] : 0.f;
      }
    }
    if (alpha_gradient_) {
      // Serial, in element order: deterministic sums over the batch and the shared axes.
      auto* dalpha = static_cast<float*>(ctx.dsts[args_.diff_weight(0)].get_data_handle());
      std::fill(dalpha, dalpha + alpha_size_, 0.f);
      for (int64_t n = 0; n < total; ++n)
        if (x[n] < 0) dalpha[index[n % sample]] += x[n] * dy[n];
    }
  }

 private:
  int64_t batch_;
  std::vector<int64_t> alpha_index_;
  int64_t alpha_size_;
  bool input_gradient_, alpha_gradient_;
  BackwardArgs args_;
};

class Prelu final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    if (attrs.has("shared_axes")) {  // Keras: an int or a list of ints
      try {
        shared_axes_ = attrs.get_int_list("shared_axes");
      } catch (const Error&) {
        try {
          shared_axes_ = {attrs.get_int("shared_axes")};
        } catch (const Error&) {
          throw attrs.error("shared_axes",
                            "'shared_axes' must be an integer or a list of integers");
        }
      }
    }
    for (int64_t a : shared_axes_)
      if (a < 1)
        throw attrs.error("shared_axes",
                          fmt::format("shared_axes are Keras axes of the input after the batch "
                                      "(1, 2, ...), got {}",
                                      a));
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    ctx.expect_dtype(0, DType::f32);
    ctx.expect_rank_at_least(0, 2);
    const TensorType& x = ctx.input(0);
    for (int64_t a : shared_axes_)
      if (a >= x.rank())
        throw ctx.attr_error(
            "shared_axes",
            fmt::format("shared axis {} is out of range for the input {} (rank {}: axes 1 to {})",
                        a, format_shape(x.shape), x.rank(), x.rank() - 1));
    for (int k = 1; k < x.rank(); ++k)
      if (x.shape[k] == kDynamic && !is_shared(k))
        throw ctx.input_error(
            0, fmt::format("prelu needs axis {} of its input {} known (alpha has the per-sample "
                           "shape), or that axis in shared_axes",
                           k, format_shape(x.shape)));
    return {x};
  }

  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    return {{"alpha", alpha_shape(ctx.input(0).shape), Init::zeros}};
  }
  double flops_per_sample(const InferContext&, const std::vector<TensorType>&) const override {
    return 0.0;
  }
  bool supports_masking() const override { return true; }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const Dims& xs = ctx.inputs[0].shape;
    const Dims alpha = alpha_shape(xs);
    const Tensor& w = ctx.weight("alpha");
    if (w.shape() != alpha)
      throw ctx.error(
          fmt::format("weight '{}.alpha' has shape {}, expected {} (the input {} with "
                      "shared_axes {} of size 1)",
                      ctx.node.name, format_shape(w.shape()), format_shape(alpha), format_shape(xs),
                      fmt::join(shared_axes_, ", ")));
    const auto desc = dnnl::memory::desc({num_elements(alpha)}, dnnl::memory::data_type::f32,
                                         dnnl::memory::format_tag::a);
    build.kernel = std::make_unique<PreluForwardKernel>(
        xs[0], alpha_index_of_sample(Dims(xs.begin() + 1, xs.end()), alpha),
        ctx.weight_memory("alpha", desc, desc));
    return build;
  }

  bool has_gradient() const override { return true; }
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    build = start_training_build(ctx, {});
    const Dims& xs = ctx.inputs[0].shape;
    const Dims alpha = alpha_shape(xs);
    auto index = alpha_index_of_sample(Dims(xs.begin() + 1, xs.end()), alpha);
    build.forward.kernel = std::make_unique<PreluForwardKernel>(xs[0], index, dnnl::memory());
    build.backward.kernel = std::make_unique<PreluBackwardKernel>(
        xs[0], std::move(index), num_elements(alpha), ctx.needs_input_gradient[0], !ctx.frozen,
        backward_args(ctx, 0));
  }

 private:
  bool is_shared(int64_t axis) const {
    return std::find(shared_axes_.begin(), shared_axes_.end(), axis) != shared_axes_.end();
  }
  // The input's per-sample shape with the shared axes 1 (Keras's param_shape).
  Dims alpha_shape(const Dims& input) const {
    Dims shape(input.begin() + 1, input.end());
    for (int64_t a : shared_axes_) shape[static_cast<size_t>(a - 1)] = 1;
    return shape;
  }

  std::vector<int64_t> shared_axes_;
};

}  // namespace

OpInfo prelu_op() {
  return {"prelu", [] { return std::make_unique<Prelu>(); },
          "Keras PReLU: x, or alpha * x below 0, with a trainable alpha (shared_axes broadcast)"};
}

}  // namespace fg::layers
