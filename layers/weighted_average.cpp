// weighted_average: y = sum_m w_m * x_m over 2+ float32 inputs of equal shape.
// The weights are either fixed (attribute `weights`, one float per input) or learned (weight
// `<node>.weights` of shape [M], init ones). With `normalize: softmax` the weights used are
// softmax(weights) (so a learned op starts as the plain mean, 1/M each).
// Runs a chain of oneDNN binary_add primitives with the weights as src scales (fixed when the
// kernel is compiled, from the attribute or the loaded weight). Output mask = AND of the masks.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "layers/builtin_ops.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {
namespace {

std::string list_inputs(const InferContext& ctx) {
  std::string out;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    out += fmt::format("\n  {}: {}", ctx.input_name(i), format_shape(ctx.input(i).shape));
  return out;
}

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

class WeightedAverageKernel final : public Kernel {
 public:
  WeightedAverageKernel(std::vector<dnnl::binary> steps, std::string impl, Dim batch, Dim steps_dim)
      : steps_(std::move(steps)), impl_(std::move(impl)), batch_(batch), steps_dim_(steps_dim) {}

  void execute(ExecContext& ctx) const override {
    // step 0: dst = w0 x0 + w1 x1; step k: dst = dst + w_{k+1} x_{k+1}
    for (size_t k = 0; k < steps_.size(); ++k) {
      const dnnl::memory& a = k == 0 ? ctx.srcs[0] : ctx.dsts[0];
      execute_primitive(
          steps_[k], ctx,
          {{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, ctx.srcs[k + 1]}, {DNNL_ARG_DST, ctx.dsts[0]}});
    }
    if (ctx.dst_masks.empty() || ctx.dst_masks[0] == nullptr) return;
    uint8_t* dst = ctx.dst_masks[0];
    const Dim n = batch_ * steps_dim_;
    std::fill(dst, dst + n, uint8_t{1});
    for (const uint8_t* src : ctx.src_masks)
      if (src)
        for (Dim i = 0; i < n; ++i) dst[i] = dst[i] && src[i];
  }
  std::string impl_info() const override { return impl_; }

 private:
  std::vector<dnnl::binary> steps_;
  std::string impl_;
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
                                             fixed_.size(), n, list_inputs(ctx)))
          .hint("give one weight per input, in the order of `inputs`");
    for (size_t i = 0; i < n; ++i)
      if (ctx.input(i).dtype != DType::f32)
        throw ctx.input_error(
            i, fmt::format("weighted_average needs float32 inputs, but '{}' is "
                           "{}:{}",
                           ctx.input_name(i), dtype_name(ctx.input(i).dtype), list_inputs(ctx)));
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
                                        format_shape(ctx.input(0).shape), list_inputs(ctx)))
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

  std::unique_ptr<Kernel> compile(KernelContext& ctx) const override {
    const size_t n = ctx.inputs.size();
    std::vector<double> raw = fixed_;
    if (raw.empty()) {
      const Tensor& w = ctx.weight("weights");
      if (w.size() != n)
        throw ctx.error(fmt::format("weight 'weights' has {} values for {} inputs", w.size(), n));
      for (size_t i = 0; i < w.size(); ++i) raw.push_back(w.data<float>()[i]);
    }
    const std::vector<float> w = effective_weights(raw, softmax_);
    const auto& dst = ctx.dst_descs[0];
    std::vector<dnnl::binary> steps;
    std::string impl;
    for (size_t k = 1; k < n; ++k) {
      const auto& src0 = k == 1 ? ctx.src_descs[0] : dst;
      auto pd = onednn::make_scaled_binary_pd(dnnl::algorithm::binary_add, src0, ctx.src_descs[k],
                                              dst, k == 1 ? w[0] : 1.f, w[k]);
      ctx.add_scratchpad(pd);
      if (impl.empty()) impl = onednn::impl_name(pd);
      steps.emplace_back(pd);
    }
    const Dims& shape = ctx.outputs[0].shape;
    return std::make_unique<WeightedAverageKernel>(std::move(steps), impl, shape[0],
                                                   shape.size() > 1 ? shape[1] : 1);
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
