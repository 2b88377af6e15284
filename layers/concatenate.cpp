// concatenate (Keras Concatenate): 2+ inputs of equal rank and dtype, equal dims except on
// `axis` (default -1), joined along `axis` with the oneDNN concat primitive.
// Masks (Keras Concatenate.compute_mask): an input without a mask counts as all ones; on the
// steps axis (axis 1) the masks are concatenated, on any later axis they are ANDed.
//
// Training: the forward is the inference kernel on plain buffers (masks as above); the backward
// (plain C++) copies each input's slice of d output: on the [outer, total * inner] view, input i
// owns the columns [offset_i, offset_i + size_i * inner).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

// d input i = its slice of d output (for the inputs in `wanted`).
class ConcatBackwardKernel final : public Kernel {
 public:
  ConcatBackwardKernel(int64_t outer, std::vector<int64_t> chunks, std::vector<bool> wanted,
                       int diff_output)
      : outer_(outer), chunks_(std::move(chunks)), wanted_(std::move(wanted)), dy_(diff_output) {
    for (int64_t c : chunks_) total_ += c;
  }

  void execute(ExecContext& ctx) const override {
    const auto* dy = static_cast<const float*>(ctx.srcs[dy_].get_data_handle());
    int64_t offset = 0;
    for (size_t i = 0; i < chunks_.size(); ++i) {
      const int64_t chunk = chunks_[i];
      if (wanted_[i]) {
        auto* dx = static_cast<float*>(ctx.dsts[i].get_data_handle());
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
        for (int64_t o = 0; o < outer_; ++o)
          std::memcpy(dx + o * chunk, dy + o * total_ + offset,
                      static_cast<size_t>(chunk) * sizeof(float));
      }
      offset += chunk;
    }
  }

 private:
  int64_t outer_;
  std::vector<int64_t> chunks_;
  std::vector<bool> wanted_;
  int dy_;
  int64_t total_ = 0;
};

// How to bring rank-`from` inputs to rank `to`.
std::string rank_hint(int from, int to) {
  if (from > to && to == 2) {
    if (from >= 3 && from <= 5) {
      const int d = from - 2;
      return fmt::format(
          "apply global_average_pooling{0}d, global_max_pooling{0}d or flatten to the rank-{1} "
          "input(s) to make them rank 2",
          d, from);
    }
    return fmt::format("apply flatten to the rank-{} input(s) to make them rank 2", from);
  }
  if (to == 3 && from == 2)
    return "apply repeat_vector or reshape to the rank-2 input(s) to make them rank 3";
  return fmt::format("apply reshape to the rank-{} input(s) to make them rank {}", from, to);
}

// The concat primitive, then the output mask from the input masks (in C++).
class ConcatKernel final : public PrimitiveSequenceKernel {
 public:
  ConcatKernel(PrimitiveSequence calls, int axis, Dim batch, std::vector<Dim> steps, Dim out_steps)
      : PrimitiveSequenceKernel(std::move(calls)),
        axis_(axis),
        batch_(batch),
        steps_(std::move(steps)),
        out_steps_(out_steps) {}

  void execute(ExecContext& ctx) const override {
    PrimitiveSequenceKernel::execute(ctx);
    if (ctx.dst_masks.empty() || ctx.dst_masks[0] == nullptr) return;
    uint8_t* dst_mask = ctx.dst_masks[0];
    for (Dim b = 0; b < batch_; ++b) {
      uint8_t* row = dst_mask + b * out_steps_;
      if (axis_ == 1) {  // concatenate the masks along the steps
        Dim offset = 0;
        for (size_t i = 0; i < steps_.size(); ++i) {
          const uint8_t* src = i < ctx.src_masks.size() ? ctx.src_masks[i] : nullptr;
          for (Dim t = 0; t < steps_[i]; ++t)
            row[offset + t] = src ? (src[b * steps_[i] + t] != 0) : 1;
          offset += steps_[i];
        }
      } else {  // AND of the masks
        std::fill(row, row + out_steps_, uint8_t{1});
        for (size_t i = 0; i < ctx.src_masks.size(); ++i) {
          const uint8_t* src = ctx.src_masks[i];
          if (!src) continue;
          for (Dim t = 0; t < out_steps_; ++t) row[t] = row[t] && src[b * out_steps_ + t];
        }
      }
    }
  }

 private:
  int axis_;
  Dim batch_;
  std::vector<Dim> steps_;
  Dim out_steps_;
};

class Concatenate final : public Op {
 public:
  void parse(AttrReader& attrs) override { axis_ = static_cast<int>(attrs.get_int("axis", -1)); }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs_at_least(2);
    const size_t n = ctx.num_inputs();
    // dtype
    for (size_t i = 1; i < n; ++i)
      if (ctx.input(i).dtype != ctx.input(0).dtype)
        throw ctx.input_error(
            i,
            fmt::format("inputs of concatenate must have the same dtype, but '{}' is {} and '{}' "
                        "is {}:{}",
                        ctx.input_name(i), dtype_name(ctx.input(i).dtype), ctx.input_name(0),
                        dtype_name(ctx.input(0).dtype), ctx.describe_inputs()));
    // rank: the most common one (ties: the lowest) is the reference
    std::map<int, int> count;
    for (size_t i = 0; i < n; ++i) count[ctx.input(i).rank()]++;
    int rank = count.begin()->first;
    for (const auto& [r, c] : count)
      if (c > count[rank]) rank = r;
    if (count.size() > 1) {
      size_t bad = 0, good = 0;  // the first input of a wrong rank, and of the reference rank
      for (size_t i = n; i-- > 0;)
        if (ctx.input(i).rank() != rank) bad = i;
      for (size_t i = n; i-- > 0;)
        if (ctx.input(i).rank() == rank) good = i;
      Error e = ctx.input_error(
          bad, fmt::format("inputs of concatenate must have equal rank, but '{}' has rank {} and "
                           "'{}' has rank {}:{}",
                           ctx.input_name(bad), ctx.input(bad).rank(), ctx.input_name(good), rank,
                           ctx.describe_inputs()));
      std::string hint;
      for (const auto& [r, c] : count)
        if (r != rank) hint += (hint.empty() ? "" : "; ") + rank_hint(r, rank);
      e.hint(hint);
      throw e;
    }
    const int axis = normalize_axis(axis_, rank);
    if (axis < 0)
      throw ctx.attr_error("axis",
                           fmt::format("axis {} is out of range for rank-{} inputs (valid: "
                                       "{} to {}):{}",
                                       axis_, rank, -rank, rank - 1, ctx.describe_inputs()));
    if (axis == 0) throw ctx.attr_error("axis", "concatenate cannot join along the batch axis 0");
    // dims: equal except on the axis (dynamic dims are compatible with anything)
    TensorType out = ctx.input(0);
    out.masked = false;
    for (int d = 0; d < rank; ++d) {
      if (d == axis) continue;
      size_t known = n;
      for (size_t i = 0; i < n; ++i) {
        const Dim v = ctx.input(i).shape[d];
        if (v == kDynamic) continue;
        if (known == n) {
          known = i;
          out.shape[d] = v;
        } else if (v != ctx.input(known).shape[d]) {
          throw ctx.input_error(
              i, fmt::format("inputs of concatenate on axis {} must have equal dims on every other "
                             "axis, but '{}' has {} on axis {} where '{}' has {}:{}",
                             axis_, ctx.input_name(i), v, d, ctx.input_name(known),
                             ctx.input(known).shape[d], ctx.describe_inputs()));
        }
      }
    }
    Dim total = 0;
    for (size_t i = 0; i < n; ++i) total = dim_add(total, ctx.input(i).shape[axis]);
    out.shape[axis] = total;
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

    const Dims& out = ctx.outputs[0].shape;
    const int axis = normalize_axis(axis_, static_cast<int>(out.size()));
    int64_t outer = 1;
    for (int d = 0; d < axis; ++d) outer *= out[d];
    std::vector<int64_t> chunks;
    for (const TensorType& in : ctx.inputs)
      chunks.push_back(outer > 0 ? num_elements(in.shape) / outer : 0);
    build.backward.kernel = std::make_unique<ConcatBackwardKernel>(
        outer, std::move(chunks), ctx.needs_input_gradient, a.diff_output(0));
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const int rank = ctx.outputs[0].rank();
    const int axis = normalize_axis(axis_, rank);
    std::vector<std::pair<int, CallArg>> args{{DNNL_ARG_DST, CallArg::dst(0)}};
    for (size_t i = 0; i < ctx.inputs.size(); ++i)
      args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), CallArg::src(i)});
    PrimitiveSequence calls;
    calls.add(onednn::make_concat_pd(build.dst_descs[0], axis, build.src_descs), std::move(args),
              build);
    std::vector<Dim> steps;
    for (const auto& in : ctx.inputs) steps.push_back(in.shape[1]);
    build.kernel = std::make_unique<ConcatKernel>(std::move(calls), axis, ctx.outputs[0].shape[0],
                                                  std::move(steps), ctx.outputs[0].shape[1]);
    return build;
  }

 private:
  int axis_ = -1;
};

}  // namespace

OpInfo concatenate_op() {
  return {"concatenate", [] { return std::make_unique<Concatenate>(); },
          "Keras Concatenate: joins 2+ tensors along an axis"};
}

}  // namespace fg::layers
