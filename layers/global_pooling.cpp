// global_{average,max}_pooling{1,2}d (Keras GlobalAveragePooling1D/2D, GlobalMaxPooling1D/2D,
// channels-last): reduce over the steps (1d) or height and width (2d) to [batch, channels].
// Unmasked: oneDNN pooling_forward with the window = the whole input. global_average_pooling1d
// also takes a mask (Keras: mean over the unmasked steps only), computed in plain C++/OpenMP.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
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

// The training backward in C++, as TensorFlow differentiates Keras's global pooling:
//   average (reduce_mean, or the masked sum(x * mask) / sum(mask)): dx = dy / count at every
//     (unmasked) step, 0 at masked steps (and everywhere in a row with every step masked);
//   max (reduce_max): dy split evenly between the steps that equal the maximum (ties share it,
//     as TF's reduce_max gradient does), 0 elsewhere. The maximum is the forward's output.
class GlobalPoolBackwardKernel final : public Kernel {
 public:
  GlobalPoolBackwardKernel(bool max, int64_t batch, int64_t steps, int64_t channels,
                           BackwardArgs args)
      : max_(max), batch_(batch), steps_(steps), channels_(channels), args_(args) {}

  void execute(ExecContext& ctx) const override {
    ctx.stream.wait();
    const auto* x = static_cast<const float*>(ctx.srcs[args_.input(0)].get_data_handle());
    const auto* y = static_cast<const float*>(ctx.srcs[args_.output(0)].get_data_handle());
    const auto* dy = static_cast<const float*>(ctx.srcs[args_.diff_output(0)].get_data_handle());
    auto* dx = static_cast<float*>(ctx.dsts[args_.diff_input(0)].get_data_handle());
    const uint8_t* mask = ctx.src_masks.empty() ? nullptr : ctx.src_masks[0];
    auto* ties = static_cast<float*>(ctx.temps[0].get_data_handle());  // [batch, channels]
    const int64_t S = steps_, C = channels_;
#pragma omp parallel for num_threads(ctx.threads)
    for (int64_t b = 0; b < batch_; ++b) {
      const float* xb = x + b * S * C;
      const float* yb = y + b * C;
      const float* dyb = dy + b * C;
      float* dxb = dx + b * S * C;
      if (max_) {
        float* count = ties + b * C;
        std::fill(count, count + C, 0.0f);
        for (int64_t s = 0; s < S; ++s)
          for (int64_t c = 0; c < C; ++c) count[c] += xb[s * C + c] == yb[c] ? 1.0f : 0.0f;
        for (int64_t s = 0; s < S; ++s)
          for (int64_t c = 0; c < C; ++c)
            dxb[s * C + c] = xb[s * C + c] == yb[c] ? dyb[c] / count[c] : 0.0f;
        continue;
      }
      int64_t count = S;
      if (mask != nullptr)
        count = std::count_if(mask + b * S, mask + (b + 1) * S, [](uint8_t m) { return m != 0; });
      const float scale = count > 0 ? 1.0f / static_cast<float>(count) : 0.0f;
      for (int64_t s = 0; s < S; ++s) {
        const float keep = mask == nullptr || mask[b * S + s] ? scale : 0.0f;
        for (int64_t c = 0; c < C; ++c) dxb[s * C + c] = dyb[c] * keep;
      }
    }
  }

 private:
  bool max_;
  int64_t batch_, steps_, channels_;
  BackwardArgs args_;
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
    memory::desc dst = onednn::channels_first_view(pooled_shape(in.shape));
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
    build.kernel = pool_kernel(in, src, dst, ctx.engine, build);
    return build;
  }

  bool has_gradient() const override { return true; }

  // Training: the forward is the inference kernel on the plain bytes (the pooling primitive, or
  // the masked mean), the backward GlobalPoolBackwardKernel (C++ / OpenMP, nothing saved: it
  // reads the input and the output).
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const TensorType& in = ctx.inputs.at(0);
    build = start_training_build(ctx, {});
    build.forward.kernel =
        pool_kernel(in, onednn::channels_first_view(in.shape),
                    onednn::channels_first_view(pooled_shape(in.shape)), ctx.engine, build.forward);
    if (!ctx.needs_input_gradient[0]) {
      build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(PrimitiveSequence{});
      return;
    }
    build.backward.add_temp(onednn::plain_desc(Dims{in.shape[0], in.shape.back()}));
    build.backward.kernel = std::make_unique<GlobalPoolBackwardKernel>(
        max_, in.shape[0], steps(in.shape), in.shape.back(), backward_args(ctx, 0));
  }

 private:
  // [batch, 1..., channels]: the same bytes as the [batch, channels] (or keepdims) output.
  Dims pooled_shape(const Dims& in_shape) const {
    Dims out{in_shape[0]};
    for (int i = 0; i < spatial_; ++i) out.push_back(1);
    out.push_back(in_shape.back());
    return out;
  }

  int64_t steps(const Dims& in_shape) const {
    return spatial_ == 1 ? in_shape[1] : in_shape[1] * in_shape[2];
  }

  // The pooling primitive with the window = the whole input, from `src` to `dst`.
  std::unique_ptr<Kernel> pool_kernel(const TensorType& in, const memory::desc& src,
                                      const memory::desc& dst, const dnnl::engine& engine,
                                      KernelBuild& build) const {
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
    calls.add(onednn::make_pool_pd(max_, src, dst, kernel, g, engine),
              {{DNNL_ARG_SRC, CallArg::src(0, src)}, {DNNL_ARG_DST, CallArg::dst(0, dst)}}, build);
    return std::make_unique<GlobalPoolKernel>(std::move(calls), in.shape[0], steps(in.shape),
                                              in.shape.back());
  }

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
