// weighted_average: y = sum_m w_m * x_m over 2+ float32 inputs of equal shape.
// The weights are either fixed (attribute `weights`, one float per input) or learned (weight
// `<node>.weights` of shape [M], init ones). With `normalize: softmax` the weights used are
// softmax(weights) (so a learned op starts as the plain mean, 1/M each).
// Runs a chain of oneDNN binary_add primitives with the weights as src scales (fixed when the
// kernel is compiled, from the attribute or the loaded weight). Output mask = AND of the masks.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {
namespace {

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
