// reverse: the input with one per-sample axis in reverse order (y[..., i, ...] = x[..., n-1-i,
// ...]), what Keras's go_backwards and Bidirectional do to a sequence in time. oneDNN 2.6 has no
// reversing primitive (memory descriptors take no negative strides), so the kernel is plain C++:
// the tensor seen as [outer, n, inner], each inner block copied to its mirrored place. The
// [batch, steps] mask is reversed with the steps when the axis is the steps axis (1), else
// copied. The gradient is the same reversal of d output. See docs/ops/reverse.md.
#include <fmt/format.h>

#include <cstring>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

// The tensor seen as [outer, axis, inner] around the reversed axis.
struct ReverseGeometry {
  int64_t outer = 1, length = 1, inner = 1;
  int64_t batch = 1, steps = 1;  // the mask's [batch, steps]
  bool time_axis = false;        // the reversed axis is the steps axis (1)
};

ReverseGeometry reverse_geometry(const Dims& shape, int64_t axis) {
  ReverseGeometry g;
  for (int64_t d = 0; d < axis; ++d) g.outer *= shape[d];
  g.length = shape[axis];
  for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) g.inner *= shape[d];
  g.batch = shape[0];
  g.steps = shape.size() > 1 ? shape[1] : 1;
  g.time_axis = axis == 1;
  return g;
}

void reverse_floats(const ReverseGeometry& g, const float* src, float* dst, int threads) {
  const size_t block = static_cast<size_t>(g.inner) * sizeof(float);
#pragma omp parallel for num_threads(threads) schedule(static) if (g.outer > 1)
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t i = 0; i < g.length; ++i)
      std::memcpy(dst + (o * g.length + i) * g.inner,
                  src + (o * g.length + (g.length - 1 - i)) * g.inner, block);
}

// src 0 reversed into dst 0 (inference, and the training forward); with `with_mask` the output
// mask from the input's (reversed on the steps axis, else copied; all ones when the input has
// none). The training backward is the same kernel on d output -> d input, without masks.
class ReverseKernel final : public Kernel {
 public:
  ReverseKernel(ReverseGeometry g, int src, int dst, bool with_mask)
      : g_(g), src_(src), dst_(dst), with_mask_(with_mask) {}

  void execute(ExecContext& ctx) const override {
    ctx.stream.wait();
    reverse_floats(g_, static_cast<const float*>(ctx.srcs[src_].get_data_handle()),
                   static_cast<float*>(ctx.dsts[dst_].get_data_handle()), ctx.threads);
    if (!with_mask_ || ctx.dst_masks.empty() || ctx.dst_masks[0] == nullptr) return;
    uint8_t* out = ctx.dst_masks[0];
    const uint8_t* in = ctx.src_masks.empty() ? nullptr : ctx.src_masks[0];
    for (int64_t b = 0; b < g_.batch; ++b)
      for (int64_t t = 0; t < g_.steps; ++t) {
        const int64_t from = g_.time_axis ? g_.steps - 1 - t : t;
        out[b * g_.steps + t] = in == nullptr ? 1 : in[b * g_.steps + from];
      }
  }

 private:
  ReverseGeometry g_;
  int src_, dst_;
  bool with_mask_;
};

class Reverse final : public Op {
 public:
  void parse(AttrReader& attrs) override { axis_ = attrs.get_int("axis", 1); }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    ctx.expect_rank_at_least(0, 2);
    ctx.expect_dtype(0, DType::f32);
    resolved_axis(ctx);
    return {ctx.input(0)};
  }

  double flops_per_sample(const InferContext&, const std::vector<TensorType>&) const override {
    return 0.0;
  }
  // The output mask is the input's, reversed when the steps are: the kernel writes it.
  bool supports_masking() const override { return true; }
  bool produces_mask() const override { return true; }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    if (ctx.input_descs.at(0) != onednn::plain_desc(ctx.inputs.at(0)))
      throw ctx.error("internal: reverse expects a plain (row-major) input layout");
    const Dims& shape = ctx.inputs.at(0).shape;
    build.kernel = std::make_unique<ReverseKernel>(
        reverse_geometry(shape, full_axis(static_cast<int64_t>(shape.size()))), 0, 0, true);
    return build;
  }

  bool has_gradient() const override { return true; }
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    build = start_training_build(ctx, {});
    const BackwardArgs a = backward_args(ctx, 0);
    const Dims& shape = ctx.inputs.at(0).shape;
    const ReverseGeometry g =
        reverse_geometry(shape, full_axis(static_cast<int64_t>(shape.size())));
    build.forward.kernel = std::make_unique<ReverseKernel>(g, 0, 0, true);
    if (ctx.needs_input_gradient[0])
      build.backward.kernel =
          std::make_unique<ReverseKernel>(g, a.diff_output(0), a.diff_input(0), false);
    else
      build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(PrimitiveSequence{});
  }

 private:
  // axis as an index into the full shape (batch 0), negative counted from the end.
  int64_t full_axis(int64_t rank) const { return axis_ < 0 ? axis_ + rank : axis_; }

  void resolved_axis(const InferContext& ctx) const {
    const int64_t rank = ctx.input(0).rank();
    const int64_t a = full_axis(rank);
    if (a < 1 || a >= rank) {
      Error e = ctx.attr_error(
          "axis", fmt::format("axis {} is {} for the input {} (rank {}): valid axes are 1 to {} "
                              "(or -1 to -{})",
                              axis_, a == 0 ? "the batch axis" : "out of range",
                              format_shape(ctx.input(0).shape), rank, rank - 1, rank - 1));
      e.hint("reverse works within each sample; axis 1 (the default) reverses the steps");
      throw e;
    }
  }

  int64_t axis_ = 1;
};

}  // namespace

OpInfo reverse_op() {
  return {"reverse", [] { return std::make_unique<Reverse>(); },
          "reverses one per-sample axis (the steps by default), as Keras's go_backwards"};
}

}  // namespace fg::layers
