// global_{average,max}_pooling{1,2}d (Keras GlobalAveragePooling1D/2D, GlobalMaxPooling1D/2D,
// channels-last): reduce over the steps (1d) or height and width (2d) to [batch, channels].
// Unmasked: oneDNN pooling_forward with the window = the whole input. global_average_pooling1d
// also takes a mask (Keras: mean over the unmasked steps only), computed in plain C++/OpenMP.
#include <fmt/format.h>

#include <vector>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/window_geometry.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

// The pooling primitive, or (when the input has a mask) Keras's masked mean in C++.
class GlobalPoolKernel final : public PrimitiveSequenceKernel {
 public:
  GlobalPoolKernel(PrimitiveSequence calls, int64_t batch, int64_t steps, int64_t channels)
      : PrimitiveSequenceKernel(std::move(calls)),
        batch_(batch),
        steps_(steps),
        channels_(channels) {}

  // The primitive's arguments, and the masked mean's sums (batch x channels, sized once).
  struct Binding final : KernelBinding {
    std::unique_ptr<KernelBinding> pooling;
    std::vector<double> sums;
  };

  std::unique_ptr<KernelBinding> bind(const StepBuffers& buffers) const override {
    auto binding = std::make_unique<Binding>();
    binding->pooling = PrimitiveSequenceKernel::bind(buffers);
    binding->sums.assign(static_cast<size_t>(batch_ * channels_), 0.0);
    return binding;
  }

  void execute(ExecContext& ctx) const override {
    auto& binding = static_cast<Binding&>(*ctx.binding);
    const uint8_t* mask = ctx.src_masks.empty() ? nullptr : ctx.src_masks[0];
    if (mask != nullptr) {
      ctx.stream.wait();
      masked_mean(static_cast<const float*>(ctx.srcs[0].get_data_handle()), mask,
                  static_cast<float*>(ctx.dsts[0].get_data_handle()), binding.sums.data(),
                  ctx.threads);
      return;
    }
    calls().run(ctx, static_cast<const PrimitiveSequence::Binding&>(*binding.pooling));
  }

 private:
  // Keras: sum(x * mask) / sum(mask) over the steps. A row with every step masked gives 0
  // (Keras would divide 0 by 0 and give NaN).
  void masked_mean(const float* src, const uint8_t* mask, float* dst, double* sums,
                   int threads) const {
    const int64_t T = steps_, C = channels_;
#pragma omp parallel for num_threads(threads)
    for (int64_t b = 0; b < batch_; ++b) {
      double* acc = sums + b * C;
      std::fill(acc, acc + C, 0.0);
      int64_t count = 0;
      for (int64_t t = 0; t < T; ++t) {
        if (!mask[b * T + t]) continue;
        ++count;
        const float* row = src + (b * T + t) * C;
        for (int64_t c = 0; c < C; ++c) acc[c] += row[c];
      }
      const double scale = count > 0 ? 1.0 / static_cast<double>(count) : 0.0;
      for (int64_t c = 0; c < C; ++c) dst[b * C + c] = static_cast<float>(acc[c] * scale);
    }
  }

  int64_t batch_, steps_, channels_;
};

class GlobalPooling final : public Op {
 public:
  GlobalPooling(int spatial, bool max) : spatial_(spatial), max_(max) {}

  void parse(AttrReader& attrs) override {
    keepdims_ = attrs.get_bool("keepdims", false);
    parse_channels_last(attrs);
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const TensorType& in = ctx.input(0);
    const std::string op = op_name();
    expect_float_input(ctx, op, "pooling");
    if (in.rank() != spatial_ + 2) {
      const std::string layout =
          spatial_ == 1 ? "[batch, steps, channels]" : "[batch, height, width, channels]";
      std::string hint = "reshape the input to " + layout;
      if (spatial_ == 1 && in.rank() == 4)
        hint = fmt::format("for images use global_{}_pooling2d", max_ ? "max" : "average");
      if (spatial_ == 2 && in.rank() == 3)
        hint = fmt::format("for sequences use global_{}_pooling1d", max_ ? "max" : "average");
      throw ctx
          .input_error(0, fmt::format("{} needs a rank-{} input {}, got rank {} with shape {}", op,
                                      spatial_ + 2, layout, in.rank(), format_shape(in.shape)))
          .hint(hint);
    }
    for (int i = 1; i <= spatial_; ++i)
      if (in.shape[i] == 0)
        throw ctx.input_error(
            0, fmt::format("{} needs a non-empty input, got shape {}", op, format_shape(in.shape)));
    Dims out{in.shape[0]};
    if (keepdims_)
      for (int i = 0; i < spatial_; ++i) out.push_back(1);
    out.push_back(in.shape.back());
    return {TensorType{out, DType::f32, false}};  // the mask is consumed
  }

  bool supports_masking() const override { return spatial_ == 1 && !max_; }
  OpTraits traits() const override {
    OpTraits t;
    t.accepts_blocked_inputs = true;
    return t;
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const TensorType& in = ctx.inputs.at(0);
    memory::desc src = onednn::channels_first_view(in.shape);
    // [batch, 1..., channels]: the same bytes as the [batch, channels] (or keepdims) output.
    Dims out_shape{in.shape[0]};
    for (int i = 0; i < spatial_; ++i) out_shape.push_back(1);
    out_shape.push_back(in.shape.back());
    memory::desc dst = onednn::channels_first_view(out_shape);
    if (ctx.input_descs.at(0) != onednn::plain_desc(in)) {
      // A producer's blocked layout (after a conv chain): pooled in that layout, whose
      // {N, C, 1...} output is the plain [N, C] bytes when the channels fill whole blocks. Else
      // the plan reorders the input to plain first.
      const memory::desc& given = ctx.input_descs[0];
      const bool two_d = spatial_ == 2;
      for (auto [tag, block] :
           {two_d ? std::pair{onednn::tag::aBcd16b, 16} : std::pair{onednn::tag::aBc16b, 16},
            two_d ? std::pair{onednn::tag::aBcd8b, 8} : std::pair{onednn::tag::aBc8b, 8}}) {
        if (given == memory::desc(given.dims(), onednn::dt::f32, tag) &&
            in.shape.back() % block == 0) {
          src = given;
          dst = memory::desc(dst.dims(), onednn::dt::f32, tag);
        }
      }
      if (src != given) build.src_descs[0] = src;  // not such a layout: plain, reordered before
    }
    onednn::WindowGeometry g;
    memory::dims kernel;
    for (int i = 1; i <= spatial_; ++i) {
      kernel.push_back(in.shape[i]);
      g.strides.push_back(1);
      g.dilation.push_back(0);
      g.pad_l.push_back(0);
      g.pad_r.push_back(0);
    }
    PrimitiveSequence calls;
    calls.add(onednn::make_pool_pd(max_, src, dst, kernel, g, ctx.engine),
              {{DNNL_ARG_SRC, CallArg::src(0, src)}, {DNNL_ARG_DST, CallArg::dst(0, dst)}}, build);
    const int64_t steps = spatial_ == 1 ? in.shape[1] : in.shape[1] * in.shape[2];
    build.kernel =
        std::make_unique<GlobalPoolKernel>(std::move(calls), in.shape[0], steps, in.shape.back());
    return build;
  }

 private:
  std::string op_name() const {
    return fmt::format("global_{}_pooling{}d", max_ ? "max" : "average", spatial_);
  }

  int spatial_;
  bool max_;
  bool keepdims_ = false;
};

}  // namespace

OpInfo global_average_pooling1d_op() {
  return {"global_average_pooling1d", [] { return std::make_unique<GlobalPooling>(1, false); },
          "mean over the steps, mask-aware (Keras GlobalAveragePooling1D)"};
}
OpInfo global_average_pooling2d_op() {
  return {"global_average_pooling2d", [] { return std::make_unique<GlobalPooling>(2, false); },
          "mean over height and width (Keras GlobalAveragePooling2D)"};
}
OpInfo global_max_pooling1d_op() {
  return {"global_max_pooling1d", [] { return std::make_unique<GlobalPooling>(1, true); },
          "max over the steps (Keras GlobalMaxPooling1D)"};
}
OpInfo global_max_pooling2d_op() {
  return {"global_max_pooling2d", [] { return std::make_unique<GlobalPooling>(2, true); },
          "max over height and width (Keras GlobalMaxPooling2D)"};
}

}  // namespace fg::layers
