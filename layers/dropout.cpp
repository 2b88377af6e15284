// Keras Dropout: identity at inference. `rate` in [0, 1) is validated; Keras's `noise_shape` and
// `seed` only matter in training. The inference copy is a oneDNN reorder (or a view).
//
// Training (compile_training, plain C++): inverted dropout, y = x * keep / (1 - rate). The keep
// mask (uint8, one per element of the noise shape: the input shape with the noise_shape's 1s)
// is a saved tensor; each entry comes from a counter-based hash of (ctx.seed, the `seed`
// attribute, ExecContext::step, the entry's index), so it depends on neither the thread count
// nor the order of the loop, and a resumed run draws the same masks. rate 0 is a copy.
#include <fmt/format.h>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/view_copy.hpp"

namespace fg::layers {
namespace {

uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Where element i of the input reads its mask entry: the noise shape's row-major index, with
// broadcast (size-1) dims contributing nothing. Identity when the noise shape is the shape.
class NoiseIndex {
 public:
  NoiseIndex(const Dims& shape, const Dims& noise) : shape_(shape), strides_(shape.size(), 0) {
    identity_ = shape == noise;
    int64_t stride = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      strides_[d] = noise[d] == 1 && shape[d] != 1 ? 0 : stride;
      stride *= noise[d];
    }
  }
  int64_t operator()(int64_t i) const {
    if (identity_) return i;
    int64_t off = 0;
    for (size_t d = shape_.size(); d-- > 0;) {
      off += (i % shape_[d]) * strides_[d];
      i /= shape_[d];
    }
    return off;
  }

 private:
  Dims shape_;
  std::vector<int64_t> strides_;
  bool identity_ = true;
};

// forward: draws the mask (dst 1) then y = x * mask / (1 - rate) (dst 0).
// backward: dx = dy * mask / (1 - rate) (src `diff`, mask at src `mask`).
class DropoutKernel final : public Kernel {
 public:
  DropoutKernel(bool forward, double rate, uint64_t seed, const Dims& shape, const Dims& noise,
                int mask, int diff)
      : forward_(forward),
        scale_(static_cast<float>(1.0 / (1.0 - rate))),
        threshold_(static_cast<uint64_t>(rate * 16777216.0 + 0.5)),
        seed_(seed),
        size_(num_elements(shape)),
        noise_size_(num_elements(noise)),
        index_(shape, noise),
        mask_(mask),
        diff_(diff) {}

  void execute(ExecContext& ctx) const override {
    auto* out = static_cast<float*>(ctx.dsts[0].get_data_handle());
    const float* in;
    const uint8_t* mask;
    if (forward_) {
      auto* m = static_cast<uint8_t*>(ctx.dsts[1].get_data_handle());
      draw_mask(m, ctx);
      mask = m;
      in = static_cast<const float*>(ctx.srcs[0].get_data_handle());
    } else {
      mask = static_cast<const uint8_t*>(ctx.srcs[mask_].get_data_handle());
      in = static_cast<const float*>(ctx.srcs[diff_].get_data_handle());
    }
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
    for (int64_t i = 0; i < size_; ++i) out[i] = mask[index_(i)] ? in[i] * scale_ : 0.0f;
  }

 private:
  // Entry j is kept when the top 24 bits of hash(key + j) are >= rate * 2^24.
  void draw_mask(uint8_t* mask, const ExecContext& ctx) const {
    const uint64_t key = splitmix64(seed_ ^ splitmix64(static_cast<uint64_t>(ctx.step)));
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
    for (int64_t j = 0; j < noise_size_; ++j)
      mask[j] = (splitmix64(key + static_cast<uint64_t>(j)) >> 40) >= threshold_ ? 1 : 0;
  }

  bool forward_;
  float scale_;
  uint64_t threshold_, seed_;
  int64_t size_, noise_size_;
  NoiseIndex index_;
  int mask_, diff_;
};

class Dropout final : public Op {
 public:
  OpTraits traits() const override {
    OpTraits t;
    t.is_view = true;
    return t;
  }
  void parse(AttrReader& attrs) override {
    rate_ = attrs.get_float("rate");
    if (!(rate_ >= 0 && rate_ < 1))
      throw attrs.error("rate", fmt::format("dropout rate must be in [0, 1), got {}", rate_))
          .hint("rate is the fraction of inputs dropped in training, e.g. 0.5");
    // Training-only Keras arguments: read (so they are not unknown keys) and ignored.
    if (attrs.has("noise_shape")) {
      // null (the Keras default) or a list of ints with nulls.
      bool is_list = false;
      std::string scalar;
      try {
        scalar = attrs.get_string("noise_shape", "");
      } catch (const Error&) {
        is_list = true;
      }
      if (is_list)
        noise_shape_ = attrs.get_int_list("noise_shape", /*allow_null=*/true);
      else if (!scalar.empty())
        throw attrs.error("noise_shape",
                          "attribute 'noise_shape' must be a list of integers "
                          "(null for a dimension) or null");
    }
    seed_ = attrs.get_int("seed", 0);
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const Dims& shape = ctx.input(0).shape;
    if (!noise_shape_.empty() && noise_shape_.size() != shape.size())
      throw ctx.attr_error("noise_shape",
                           fmt::format("noise_shape has {} entries for the rank-{} input {}",
                                       noise_shape_.size(), shape.size(), format_shape(shape)));
    for (size_t d = 0; d < noise_shape_.size(); ++d) {
      const Dim n = noise_shape_[d];
      if (n != kDynamic && n != 1 && shape[d] != kDynamic && n != shape[d])
        throw ctx
            .attr_error(
                "noise_shape",
                fmt::format("noise_shape {} does not broadcast to the input {}: {} on "
                            "axis {} where the input has {}",
                            format_shape(noise_shape_), format_shape(shape), n, d, shape[d]))
            .hint(
                "each entry is null (the input's size), 1 (one draw shared along the axis) or "
                "the input's size");
    }
    return {ctx.input(0)};  // the mask passes on
  }

  bool supports_masking() const override { return true; }

  bool has_gradient() const override { return true; }

  // See the top of the file. Masks pass on and are not used.
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const TensorType& x = ctx.inputs[0];
    if (x.dtype != DType::f32)
      throw ctx.error(
          fmt::format("dropout in training needs a float32 input, got {}", format_type(x)));
    const auto desc = onednn::plain_desc(x);
    if (rate_ == 0) {  // identity: copies
      build = start_training_build(ctx, {});
      const BackwardArgs a = backward_args(ctx, 0);
      PrimitiveSequence fwd, bwd;
      fwd.add(onednn::make_reorder_pd(desc, desc),
              {{DNNL_ARG_FROM, CallArg::src(0)}, {DNNL_ARG_TO, CallArg::dst(0)}}, build.forward);
      if (ctx.needs_input_gradient[0])
        bwd.add(onednn::make_reorder_pd(desc, desc),
                {{DNNL_ARG_FROM, CallArg::src(a.diff_output(0))},
                 {DNNL_ARG_TO, CallArg::dst(a.diff_input(0))}},
                build.backward);
      build.forward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(fwd));
      build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(bwd));
      return;
    }
    Dims noise = x.shape;
    for (size_t d = 0; d < noise_shape_.size(); ++d)
      if (noise_shape_[d] == 1) noise[d] = 1;
    const dnnl::memory::desc mask({num_elements(noise)}, onednn::dt::u8, onednn::tag::a);
    build = start_training_build(ctx, {mask});
    const BackwardArgs a = backward_args(ctx, 1);
    const uint64_t seed = splitmix64(ctx.seed ^ splitmix64(static_cast<uint64_t>(seed_) + 1));
    build.forward.kernel = std::make_unique<DropoutKernel>(true, rate_, seed, x.shape, noise, 0, 0);
    build.backward.kernel = std::make_unique<DropoutKernel>(false, rate_, seed, x.shape, noise,
                                                            a.saved_tensor(0), a.diff_output(0));
    if (!ctx.needs_input_gradient[0])
      build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(PrimitiveSequence{});
  }

  KernelBuild compile(const KernelContext& ctx) const override { return compile_view_copy(ctx); }

 private:
  double rate_ = 0;
  std::vector<int64_t> noise_shape_;  // empty: the input shape; kDynamic entries = null
  int64_t seed_ = 0;
};

}  // namespace

OpInfo dropout_op() {
  return {"dropout", [] { return std::make_unique<Dropout>(); },
          "Keras Dropout: identity at inference"};
}

}  // namespace fg::layers
