// The Keras merge layers add, subtract, multiply, average, maximum, minimum: one class
// parameterised by kind. Inputs have equal rank and dtype; every non-batch dim is equal or 1
// (size-1 dims broadcast, as in Keras _Merge); subtract takes exactly 2 inputs.
// Runs a chain of oneDNN binary primitives (src1 may broadcast); average adds and scales by
// 1/n with an eltwise_linear post-op on the last step. Output mask = AND of the input masks.
//
// Training: the forward is the inference kernel on plain buffers (mask as above); the backward
// is plain C++: d x_i = d y * (d y / d x_i), summed over the dims where x_i broadcasts: 1 (add),
// 1 / n (average), +1 / -1 (subtract), the product of the other inputs (multiply), and for
// maximum / minimum 1 at the first input holding the extreme (ties go to the first, as in
// TensorFlow), 0 elsewhere. Nothing is saved (the backward reads the inputs).
#include <fmt/format.h>

#include <algorithm>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

enum class MergeKind { add, subtract, multiply, average, maximum, minimum };

const char* kind_name(MergeKind kind) {
  switch (kind) {
    case MergeKind::add:
      return "add";
    case MergeKind::subtract:
      return "subtract";
    case MergeKind::multiply:
      return "multiply";
    case MergeKind::average:
      return "average";
    case MergeKind::maximum:
      return "maximum";
    case MergeKind::minimum:
      return "minimum";
  }
  return "?";
}

dnnl::algorithm binary_alg(MergeKind kind) {
  switch (kind) {
    case MergeKind::subtract:
      return dnnl::algorithm::binary_sub;
    case MergeKind::multiply:
      return dnnl::algorithm::binary_mul;
    case MergeKind::maximum:
      return dnnl::algorithm::binary_max;
    case MergeKind::minimum:
      return dnnl::algorithm::binary_min;
    default:
      return dnnl::algorithm::binary_add;
  }
}

// Runs: a broadcast copy of input copy_first into dst (when no input has the full shape), the
// binary calls (dst = a <op> src, a being an input or dst), then the output mask.
class MergeKernel final : public PrimitiveSequenceKernel {
 public:
  MergeKernel(PrimitiveSequence calls, std::string impl, int copy_first,
              std::vector<Dims> in_shapes, Dims out_shape)
      : PrimitiveSequenceKernel(std::move(calls), std::move(impl)),
        copy_first_(copy_first),
        in_shapes_(std::move(in_shapes)),
        out_shape_(std::move(out_shape)) {
    if (copy_first_ < 0) return;
    const Dims& in = in_shapes_[static_cast<size_t>(copy_first_)];
    const int rank = static_cast<int>(out_shape_.size());
    copy_strides_.assign(static_cast<size_t>(rank), 0);
    int64_t stride = 1;
    for (int d = rank - 1; d >= 0; --d) {
      copy_strides_[d] = in[d] == 1 ? 0 : stride;
      stride *= in[d];
    }
  }

  void execute(ExecContext& ctx) const override {
    if (copy_first_ >= 0) broadcast_copy(ctx, copy_first_);
    PrimitiveSequenceKernel::execute(ctx);
    write_mask(ctx);
  }

 private:
  // dst = srcs[i] broadcast to the output shape (when no input has the full shape). Both dtypes
  // are 4 bytes, so the copy is by uint32.
  void broadcast_copy(ExecContext& ctx, int i) const {
    ctx.stream.wait();
    const int rank = static_cast<int>(out_shape_.size());
    const std::vector<int64_t>& in_strides = copy_strides_;
    const auto* src = static_cast<const uint32_t*>(ctx.srcs[i].get_data_handle());
    auto* dst = static_cast<uint32_t*>(ctx.dsts[0].get_data_handle());
    const int64_t total = num_elements(out_shape_);
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
    for (int64_t o = 0; o < total; ++o) {
      int64_t rest = o, off = 0;
      for (int d = rank - 1; d >= 0; --d) {
        off += (rest % out_shape_[d]) * in_strides[d];
        rest /= out_shape_[d];
      }
      dst[o] = src[off];
    }
  }

  void write_mask(ExecContext& ctx) const {
    if (ctx.dst_masks.empty() || ctx.dst_masks[0] == nullptr) return;
    const Dim batch = out_shape_[0], steps = out_shape_[1];
    uint8_t* dst = ctx.dst_masks[0];
    std::fill(dst, dst + batch * steps, uint8_t{1});
    for (size_t i = 0; i < ctx.src_masks.size(); ++i) {
      const uint8_t* src = ctx.src_masks[i];
      if (!src) continue;
      const Dim in_steps = in_shapes_[i][1];  // equal to steps, or 1 (broadcast)
      for (Dim b = 0; b < batch; ++b)
        for (Dim t = 0; t < steps; ++t)
          dst[b * steps + t] = dst[b * steps + t] && src[b * in_steps + (in_steps == 1 ? 0 : t)];
    }
  }

  int copy_first_;
  std::vector<Dims> in_shapes_;
  Dims out_shape_;
  std::vector<int64_t> copy_strides_;  // input copy_first's element strides (0 where broadcast)
};

// The training backward (see the top of the file). srcs: inputs first, d output at `dy_`.
class MergeBackwardKernel final : public Kernel {
 public:
  MergeBackwardKernel(MergeKind kind, const std::vector<Dims>& in_shapes, Dims out_shape,
                      std::vector<bool> wanted, int diff_output)
      : kind_(kind),
        out_shape_(std::move(out_shape)),
        wanted_(std::move(wanted)),
        dy_(diff_output) {
    const size_t rank = out_shape_.size();
    for (const Dims& in : in_shapes) {
      std::vector<int64_t> strides(rank, 0);
      int64_t stride = 1;
      for (size_t d = rank; d-- > 0;) {
        strides[d] = in[d] == 1 ? 0 : stride;
        stride *= in[d];
      }
      strides_.push_back(std::move(strides));
      full_.push_back(in == out_shape_);
    }
  }

  // Per execution state: room for the input pointers (filled each run: inputs may move).
  struct Pointers final : KernelBinding {
    std::vector<const float*> xs;
  };
  std::unique_ptr<KernelBinding> bind(const StepBuffers&) const override {
    auto b = std::make_unique<Pointers>();
    b->xs.resize(strides_.size());
    return b;
  }

  void execute(ExecContext& ctx) const override {
    const auto* dy = static_cast<const float*>(ctx.srcs[dy_].get_data_handle());
    std::vector<const float*>& xs = static_cast<Pointers*>(ctx.binding)->xs;
    for (size_t j = 0; j < strides_.size(); ++j)
      xs[j] = static_cast<const float*>(ctx.srcs[j].get_data_handle());
    const int64_t total = num_elements(out_shape_);
    for (size_t i = 0; i < strides_.size(); ++i) {
      if (!wanted_[i]) continue;
      auto* dx = static_cast<float*>(ctx.dsts[i].get_data_handle());
      if (full_[i]) {
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
        for (int64_t o = 0; o < total; ++o) dx[o] = dy[o] * factor(xs, i, o);
        continue;
      }
      // A broadcast input: several outputs add into one entry (serial, in output order).
      std::fill_n(dx, num_elements_of(i), 0.0f);
      for (int64_t o = 0; o < total; ++o) dx[offset(i, o)] += dy[o] * factor(xs, i, o);
    }
  }

 private:
  int64_t offset(size_t i, int64_t o) const {
    if (full_[i]) return o;
    int64_t off = 0;
    for (size_t d = out_shape_.size(); d-- > 0;) {
      off += (o % out_shape_[d]) * strides_[i][d];
      o /= out_shape_[d];
    }
    return off;
  }

  int64_t num_elements_of(size_t i) const {
    int64_t n = 1;
    for (size_t d = 0; d < out_shape_.size(); ++d)
      if (strides_[i][d] != 0 || out_shape_[d] == 1) n *= out_shape_[d];
    return n;
  }

  // d y / d x_i at output element o.
  float factor(const std::vector<const float*>& xs, size_t i, int64_t o) const {
    const size_t n = xs.size();
    switch (kind_) {
      case MergeKind::add:
        return 1.0f;
      case MergeKind::average:
        return 1.0f / static_cast<float>(n);
      case MergeKind::subtract:
        return i == 0 ? 1.0f : -1.0f;
      case MergeKind::multiply: {
        float p = 1.0f;
        for (size_t j = 0; j < n; ++j)
          if (j != i) p *= xs[j][offset(j, o)];
        return p;
      }
      case MergeKind::maximum:
      case MergeKind::minimum: {
        size_t best = 0;
        float v = xs[0][offset(0, o)];
        for (size_t j = 1; j < n; ++j) {
          const float x = xs[j][offset(j, o)];
          if (kind_ == MergeKind::maximum ? x > v : x < v) {
            v = x;
            best = j;
          }
        }
        return best == i ? 1.0f : 0.0f;
      }
    }
    return 0.0f;
  }

  MergeKind kind_;
  Dims out_shape_;
  std::vector<bool> wanted_;
  int dy_;
  std::vector<std::vector<int64_t>> strides_;  // per input: element strides, 0 where broadcast
  std::vector<bool> full_;                     // per input: has the output shape
};

class Merge final : public Op {
 public:
  explicit Merge(MergeKind kind) : kind_(kind) {}

  void parse(AttrReader&) override {}

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    const size_t n = ctx.num_inputs();
    if (kind_ == MergeKind::subtract) {
      if (n != 2)
        throw ctx
            .error(
                fmt::format("subtract takes exactly 2 inputs, got {}:{}", n, ctx.describe_inputs()))
            .hint("for a - b - c, chain two subtract nodes, or add the negated terms");
    } else if (n < 2) {
      throw ctx.error(fmt::format("{} takes at least 2 inputs, got {}", kind_name(kind_), n));
    }
    for (size_t i = 1; i < n; ++i)
      if (ctx.input(i).dtype != ctx.input(0).dtype)
        throw ctx.input_error(
            i,
            fmt::format("inputs of {} must have the same dtype, but '{}' is {} and '{}' is {}:{}",
                        kind_name(kind_), ctx.input_name(i), dtype_name(ctx.input(i).dtype),
                        ctx.input_name(0), dtype_name(ctx.input(0).dtype), ctx.describe_inputs()));
    if (kind_ == MergeKind::average && ctx.input(0).dtype != DType::f32)
      throw ctx.input_error(
          0, fmt::format("average needs float32 inputs, got {}", dtype_name(ctx.input(0).dtype)));
    const int rank = ctx.input(0).rank();
    for (size_t i = 1; i < n; ++i)
      if (ctx.input(i).rank() != rank)
        throw ctx.input_error(
            i,
            fmt::format("inputs of {} must have equal rank, but '{}' has rank {} and '{}' has rank "
                        "{}:{}",
                        kind_name(kind_), ctx.input_name(i), ctx.input(i).rank(), ctx.input_name(0),
                        rank, ctx.describe_inputs()));
    TensorType out = ctx.input(0);
    out.masked = false;
    for (int d = 0; d < rank; ++d) {
      // The dim is the one known value other than 1 (batch: equal, no broadcasting).
      Dim value = kDynamic;
      size_t from = n;
      bool all_one = true, any_dynamic = false;
      for (size_t i = 0; i < n; ++i) {
        const Dim v = ctx.input(i).shape[d];
        if (v == kDynamic) {
          any_dynamic = true;
          all_one = false;
          continue;
        }
        if (v == 1 && d > 0) continue;
        all_one = false;
        if (from == n) {
          from = i;
          value = v;
        } else if (v != value) {
          throw ctx.input_error(
              i,
              fmt::format("inputs of {} must have equal shapes (size-1 dims broadcast), but '{}' "
                          "has {} on axis {} where '{}' has {}:{}",
                          kind_name(kind_), ctx.input_name(i), v, d, ctx.input_name(from), value,
                          ctx.describe_inputs()));
        }
      }
      out.shape[d] = from != n ? value : (all_one && !any_dynamic ? 1 : kDynamic);
    }
    for (size_t i = 0; i < n; ++i) out.masked = out.masked || ctx.input(i).masked;
    return {out};
  }

  bool supports_masking() const override { return true; }
  bool produces_mask() const override { return true; }

  bool has_gradient() const override { return true; }

  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    build = start_training_build(ctx, {});
    const BackwardArgs a = backward_args(ctx, 0);
    KernelContext plain = ctx;  // the inference kernel over the plain buffers
    plain.input_descs = build.forward.src_descs;
    KernelBuild forward = compile(plain);
    build.forward.kernel = std::move(forward.kernel);
    build.forward.temp_descs = forward.temp_descs;
    build.forward.scratchpad_bytes = forward.scratchpad_bytes;
    std::vector<Dims> in_shapes;
    std::vector<bool> wanted = ctx.needs_input_gradient;
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      in_shapes.push_back(ctx.inputs[i].shape);
      if (ctx.inputs[i].dtype != DType::f32) wanted[i] = false;  // int merges: no gradient
    }
    build.backward.kernel = std::make_unique<MergeBackwardKernel>(
        kind_, in_shapes, ctx.outputs[0].shape, std::move(wanted), a.diff_output(0));
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const size_t n = ctx.inputs.size();
    const Dims& out_shape = ctx.outputs[0].shape;
    const auto& dst = build.dst_descs[0];
    const dnnl::algorithm alg = binary_alg(kind_);
    const float last_alpha = kind_ == MergeKind::average ? 1.f / static_cast<float>(n) : 1.f;
    auto full = [&](size_t i) { return ctx.inputs[i].shape == out_shape; };
    PrimitiveSequence calls;
    std::string impl;
    // dst = a <op> srcs[src1], where a is srcs[src0] or (src0 < 0) dst.
    auto add_binary = [&](int src0, int src1, float alpha) {
      const auto& d0 = src0 < 0 ? dst : build.src_descs[src0];
      auto pd = onednn::make_binary_pd(alg, d0, build.src_descs[src1], dst, alpha);
      if (impl.empty()) impl = onednn::impl_name(pd);
      calls.add(pd,
                {{DNNL_ARG_SRC_0, src0 < 0 ? CallArg::dst(0) : CallArg::src(src0)},
                 {DNNL_ARG_SRC_1, CallArg::src(src1)},
                 {DNNL_ARG_DST, CallArg::dst(0)}},
                build);
    };
    int copy_first = -1;
    if (kind_ == MergeKind::subtract) {
      if (full(0)) {
        add_binary(0, 1, 1.f);
      } else if (full(1)) {
        add_binary(1, 0, -1.f);  // -(b - a)
      } else {
        copy_first = 0;
        add_binary(-1, 1, 1.f);
      }
    } else {
      std::vector<int> order;
      for (size_t i = 0; i < n; ++i)
        if (full(i)) {
          order.push_back(static_cast<int>(i));
          break;
        }
      const bool has_full = !order.empty();
      if (!has_full) order.push_back(0);
      for (size_t i = 0; i < n; ++i)
        if (static_cast<int>(i) != order[0]) order.push_back(static_cast<int>(i));
      if (!has_full) copy_first = 0;
      for (size_t k = 1; k < n; ++k) {
        const int src0 = (k == 1 && has_full) ? order[0] : -1;
        add_binary(src0, order[k], k == n - 1 ? last_alpha : 1.f);
      }
    }
    std::vector<Dims> in_shapes;
    for (const auto& in : ctx.inputs) in_shapes.push_back(in.shape);
    build.kernel = std::make_unique<MergeKernel>(std::move(calls), impl, copy_first,
                                                 std::move(in_shapes), out_shape);
    return build;
  }

 private:
  MergeKind kind_;
};

OpInfo merge_info(MergeKind kind, const char* summary) {
  return {kind_name(kind), [kind] { return std::make_unique<Merge>(kind); }, summary};
}

}  // namespace

OpInfo add_op() {
  return merge_info(MergeKind::add, "Keras Add: elementwise sum of 2+ inputs");
}
OpInfo subtract_op() {
  return merge_info(MergeKind::subtract, "Keras Subtract: a - b of exactly 2 inputs");
}
OpInfo multiply_op() {
  return merge_info(MergeKind::multiply, "Keras Multiply: elementwise product of 2+ inputs");
}
OpInfo average_op() {
  return merge_info(MergeKind::average, "Keras Average: elementwise mean of 2+ inputs");
}
OpInfo maximum_op() {
  return merge_info(MergeKind::maximum, "Keras Maximum: elementwise max of 2+ inputs");
}
OpInfo minimum_op() {
  return merge_info(MergeKind::minimum, "Keras Minimum: elementwise min of 2+ inputs");
}

}  // namespace fg::layers
