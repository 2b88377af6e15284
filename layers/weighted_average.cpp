// weighted_average: y = sum_m w_m * x_m over 2+ float32 inputs of equal shape.
// The weights are either fixed (attribute `weights`, one float per input) or learned (weight
// `<node>.weights` of shape [M], init ones). With `normalize: softmax` the weights used are
// softmax(weights) (so a learned op starts as the plain mean, 1/M each).
// Runs a chain of oneDNN binary_add primitives with the weights as src scales (fixed when the
// kernel is compiled, from the attribute or the loaded weight). Output mask = AND of the masks.
//
// Training (plain C++, the learned weights read live each step): the forward computes
// s = w or softmax(w) and y = sum_m s_m x_m; the backward d x_m = s_m d y and, for learned
// weights, d s_m = <d y, x_m> (double sums), then d w = d s (normalize: none) or
// d w_j = s_j (d s_j - sum_k s_k d s_k) (softmax). Nothing is saved.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

// The weights applied, s_m, from the fixed ones or the live weight `w` (n floats), without
// allocating: softmax's max and sum are computed once per call of `weights()`.
class AppliedWeights {
 public:
  AppliedWeights(std::vector<double> fixed, bool softmax, size_t n)
      : fixed_(std::move(fixed)), softmax_(softmax), n_(n) {}

  size_t size() const { return n_; }
  bool learned() const { return fixed_.empty(); }

  struct Values {
    const AppliedWeights* owner;
    const float* w;
    double max = 0, sum = 1;
    double operator[](size_t m) const {
      const double v = owner->learned() ? w[m] : owner->fixed_[m];
      return owner->softmax_ ? std::exp(v - max) / sum : v;
    }
  };
  Values weights(const float* w) const {
    Values v{this, w};
    if (!softmax_) return v;
    auto raw = [&](size_t m) { return learned() ? static_cast<double>(w[m]) : fixed_[m]; };
    v.max = raw(0);
    for (size_t m = 1; m < n_; ++m) v.max = std::max(v.max, raw(m));
    v.sum = 0;
    for (size_t m = 0; m < n_; ++m) v.sum += std::exp(raw(m) - v.max);
    return v;
  }
  bool softmax() const { return softmax_; }

 private:
  std::vector<double> fixed_;
  bool softmax_;
  size_t n_;
};

// forward: y = sum_m s_m x_m, then the output mask (the AND of the input masks).
class WeightedAverageTrainingForwardKernel final : public Kernel {
 public:
  WeightedAverageTrainingForwardKernel(AppliedWeights w, int64_t size, Dim batch, Dim steps)
      : w_(std::move(w)), size_(size), batch_(batch), steps_(steps) {}

  void execute(ExecContext& ctx) const override {
    const size_t n = w_.size();
    const float* raw =
        w_.learned() ? static_cast<const float*>(ctx.srcs[n].get_data_handle()) : nullptr;
    const auto s = w_.weights(raw);
    auto* y = static_cast<float*>(ctx.dsts[0].get_data_handle());
    for (size_t m = 0; m < n; ++m) {
      const auto* x = static_cast<const float*>(ctx.srcs[m].get_data_handle());
      const auto sm = static_cast<float>(s[m]);
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
      for (int64_t i = 0; i < size_; ++i) y[i] = (m == 0 ? 0.0f : y[i]) + sm * x[i];
    }
    if (ctx.dst_masks.empty() || ctx.dst_masks[0] == nullptr) return;
    uint8_t* dst = ctx.dst_masks[0];
    const Dim count = batch_ * steps_;
    std::fill(dst, dst + count, uint8_t{1});
    for (const uint8_t* src : ctx.src_masks)
      if (src)
        for (Dim i = 0; i < count; ++i) dst[i] = dst[i] && src[i];
  }

 private:
  AppliedWeights w_;
  int64_t size_;
  Dim batch_, steps_;
};

// backward (see the top of the file); d weights only when learned and `weight_gradient`.
class WeightedAverageBackwardKernel final : public Kernel {
 public:
  WeightedAverageBackwardKernel(AppliedWeights w, int64_t size, std::vector<bool> wanted,
                                bool weight_gradient, int diff_output)
      : w_(std::move(w)),
        size_(size),
        wanted_(std::move(wanted)),
        weight_gradient_(weight_gradient),
        dy_(diff_output) {}

  void execute(ExecContext& ctx) const override {
    const size_t n = w_.size();
    const float* raw =
        w_.learned() ? static_cast<const float*>(ctx.srcs[n].get_data_handle()) : nullptr;
    const auto s = w_.weights(raw);
    const auto* dy = static_cast<const float*>(ctx.srcs[dy_].get_data_handle());
    for (size_t m = 0; m < n; ++m) {
      if (!wanted_[m]) continue;
      auto* dx = static_cast<float*>(ctx.dsts[m].get_data_handle());
      const auto sm = static_cast<float>(s[m]);
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
      for (int64_t i = 0; i < size_; ++i) dx[i] = sm * dy[i];
    }
    if (!weight_gradient_) return;
    auto* dw = static_cast<float*>(ctx.dsts[n].get_data_handle());
    double weighted = 0;  // sum_k s_k d s_k
    for (size_t m = 0; m < n; ++m) {
      const auto* x = static_cast<const float*>(ctx.srcs[m].get_data_handle());
      double dot = 0;
#pragma omp parallel for num_threads(ctx.threads) schedule(static) reduction(+ : dot)
      for (int64_t i = 0; i < size_; ++i) dot += static_cast<double>(dy[i]) * x[i];
      dw[m] = static_cast<float>(dot);
      weighted += s[m] * dot;
    }
    if (w_.softmax())
      for (size_t m = 0; m < n; ++m) dw[m] = static_cast<float>(s[m] * (dw[m] - weighted));
  }

 private:
  AppliedWeights w_;
  int64_t size_;
  std::vector<bool> wanted_;
  bool weight_gradient_;
  int dy_;
};

// The weights actually applied: w, or softmax(w) (computed in double).
std::vector<float> effective_weights(const std::vector<double>& w, bool softmax) {
  std::vector<float> out(w.size());
  if (!softmax) {
    for (size_t i = 0; i < w.size(); ++i) out[i] = static_cast<float>(w[i]);
    return out;
  }
  const double mx = *std::max_element(w.begin(), w.end());
  double sum = 0;
  for (double v : w) sum += std::exp(v - mx);
  for (size_t i = 0; i < w.size(); ++i) out[i] = static_cast<float>(std::exp(w[i] - mx) / sum);
  return out;
}

// The scaled additions, then the output mask (the AND of the input masks).
class WeightedAverageKernel final : public PrimitiveSequenceKernel {
 public:
  WeightedAverageKernel(PrimitiveSequence calls, std::string impl, Dim batch, Dim steps_dim)
      : PrimitiveSequenceKernel(std::move(calls), std::move(impl)),
        batch_(batch),
        steps_dim_(steps_dim) {}

  void execute(ExecContext& ctx) const override {
    PrimitiveSequenceKernel::execute(ctx);
    if (ctx.dst_masks.empty() || ctx.dst_masks[0] == nullptr) return;
    uint8_t* dst = ctx.dst_masks[0];
    const Dim n = batch_ * steps_dim_;
    std::fill(dst, dst + n, uint8_t{1});
    for (const uint8_t* src : ctx.src_masks)
      if (src)
        for (Dim i = 0; i < n; ++i) dst[i] = dst[i] && src[i];
  }

 private:
  Dim batch_, steps_dim_;
};

class WeightedAverage final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    softmax_ = attrs.get_choice("normalize", {"none", "softmax"}, "none") == "softmax";
    if (attrs.has("weights")) {
      fixed_ = attrs.get_float_list("weights");
      if (fixed_.size() < 2)
        throw attrs.error("weights", fmt::format("weights must list one number per input (2 or "
                                                 "more), got {}",
                                                 fixed_.size()));
    }
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    const size_t n = ctx.num_inputs();
    if (n < 2) throw ctx.error(fmt::format("weighted_average takes at least 2 inputs, got {}", n));
    if (!fixed_.empty() && fixed_.size() != n)
      throw ctx
          .attr_error("weights", fmt::format("weights has {} values but the node has {} inputs:{}",
                                             fixed_.size(), n, ctx.describe_inputs()))
          .hint("give one weight per input, in the order of `inputs`");
    for (size_t i = 0; i < n; ++i)
      if (ctx.input(i).dtype != DType::f32)
        throw ctx.input_error(i, fmt::format("weighted_average needs float32 inputs, but '{}' is "
                                             "{}:{}",
                                             ctx.input_name(i), dtype_name(ctx.input(i).dtype),
                                             ctx.describe_inputs()));
    const int rank = ctx.input(0).rank();
    TensorType out = ctx.input(0);
    out.masked = false;
    for (size_t i = 0; i < n; ++i) {
      const TensorType& x = ctx.input(i);
      bool equal = x.rank() == rank;
      for (int d = 0; equal && d < rank; ++d) {
        const Dim a = out.shape[d], b = x.shape[d];
        if (a == kDynamic)
          out.shape[d] = b;
        else if (b != kDynamic && a != b)
          equal = false;
      }
      if (!equal)
        throw ctx
            .input_error(i, fmt::format("inputs of weighted_average must all have the same shape, "
                                        "but '{}' is {} where '{}' is {}:{}",
                                        ctx.input_name(i), format_shape(x.shape), ctx.input_name(0),
                                        format_shape(ctx.input(0).shape), ctx.describe_inputs()))
            .hint("project the inputs to a common size first (e.g. a dense node per input)");
      out.masked = out.masked || x.masked;
    }
    return {out};
  }

  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    if (!fixed_.empty()) return {};
    return {WeightSpec{"weights", {static_cast<Dim>(ctx.num_inputs())}, Init::ones}};
  }

  bool supports_masking() const override { return true; }
  bool produces_mask() const override { return true; }

  bool has_gradient() const override { return true; }

  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    build = start_training_build(ctx, {});
    const BackwardArgs a = backward_args(ctx, 0);
    const size_t n = ctx.inputs.size();
    const AppliedWeights w(fixed_, softmax_, n);
    const Dims& shape = ctx.outputs[0].shape;
    const int64_t size = num_elements(shape);
    build.forward.kernel = std::make_unique<WeightedAverageTrainingForwardKernel>(
        w, size, shape[0], shape.size() > 1 ? shape[1] : 1);
    build.backward.kernel = std::make_unique<WeightedAverageBackwardKernel>(
        w, size, ctx.needs_input_gradient, fixed_.empty() && !ctx.frozen, a.diff_output(0));
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const size_t n = ctx.inputs.size();
    std::vector<double> raw = fixed_;
    if (raw.empty()) {
      const Tensor& w = ctx.weight("weights");
      if (w.size() != n)
        throw ctx.error(fmt::format("weight 'weights' has {} values for {} inputs", w.size(), n));
      for (size_t i = 0; i < w.size(); ++i) raw.push_back(w.data<float>()[i]);
    }
    const std::vector<float> w = effective_weights(raw, softmax_);
    const auto& dst = build.dst_descs[0];
    PrimitiveSequence calls;
    std::string impl;
    // call 1: dst = w0 x0 + w1 x1; call k: dst = dst + w_k x_k
    for (size_t k = 1; k < n; ++k) {
      const auto& src0 = k == 1 ? build.src_descs[0] : dst;
      auto pd = onednn::make_scaled_binary_pd(dnnl::algorithm::binary_add, src0, build.src_descs[k],
                                              dst, k == 1 ? w[0] : 1.f, w[k]);
      if (impl.empty()) impl = onednn::impl_name(pd);
      calls.add(pd,
                {{DNNL_ARG_SRC_0, k == 1 ? CallArg::src(0) : CallArg::dst(0)},
                 {DNNL_ARG_SRC_1, CallArg::src(static_cast<int>(k))},
                 {DNNL_ARG_DST, CallArg::dst(0)}},
                build);
    }
    const Dims& shape = ctx.outputs[0].shape;
    build.kernel = std::make_unique<WeightedAverageKernel>(std::move(calls), impl, shape[0],
                                                           shape.size() > 1 ? shape[1] : 1);
    return build;
  }

 private:
  std::vector<double> fixed_;
  bool softmax_ = false;
};

}  // namespace

OpInfo weighted_average_op() {
  return {"weighted_average", [] { return std::make_unique<WeightedAverage>(); },
          "sum_m w_m x_m over inputs of equal shape, fixed or learned weights (oneDNN binary)"};
}

}  // namespace fg::layers
