// Keras Reshape: per-sample target_shape with at most one -1. The plain bytes are identical: one
// oneDNN reorder from the input's layout into the output buffer seen with the input's dims.
#include <fmt/format.h>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/copy_training.hpp"
#include "layers/view_copy.hpp"

namespace fg::layers {
namespace {

// Keras style: (5, 5), (-1, 3), (91,)
std::string format_target(const std::vector<int64_t>& t) {
  std::string out = "(";
  for (size_t i = 0; i < t.size(); ++i) out += (i ? ", " : "") + std::to_string(t[i]);
  return out + (t.size() == 1 ? ",)" : ")");
}

class Reshape final : public Op {
 public:
  OpTraits traits() const override {
    OpTraits t;
    t.is_view = true;
    return t;
  }
  void parse(AttrReader& attrs) override {
    target_ = attrs.get_int_list("target_shape");
    int unknown = 0;
    for (int64_t d : target_) {
      if (d == -1) {
        ++unknown;
      } else if (d < 1) {
        throw attrs.error("target_shape",
                          fmt::format("target_shape {} has the dimension {}: every dimension must "
                                      "be positive, or -1 (once) to be inferred",
                                      format_target(target_), d));
      }
    }
    if (unknown > 1)
      throw attrs
          .error("target_shape",
                 fmt::format("target_shape {} has {} dimensions of -1; only one can be "
                             "inferred",
                             format_target(target_), unknown))
          .hint("give every dimension but one explicitly");
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const TensorType& x = ctx.input(0);
    ctx.expect_rank_at_least(0, 1);
    const Dim count = sample_elements(x.shape);  // kDynamic when a per-sample dim is unknown
    Dim known = 1;
    int unknown_at = -1;
    for (size_t i = 0; i < target_.size(); ++i) {
      if (target_[i] == -1)
        unknown_at = static_cast<int>(i);
      else
        known = dim_mul(known, target_[i]);
    }
    TensorType out = x;
    out.masked = false;
    out.shape = {x.shape[0]};
    for (int64_t d : target_) out.shape.push_back(d);
    const std::string in_desc = format_shape(x.shape);
    if (unknown_at >= 0) {
      if (count == kDynamic) {
        out.shape[1 + unknown_at] = kDynamic;  // resolved when the input dims are known
      } else if (count % known != 0) {
        throw ctx.attr_error(
            "target_shape",
            fmt::format("cannot reshape {} ({} elements per sample) to target_shape {}: {} is not "
                        "a multiple of the {} elements of the known dimensions",
                        in_desc, count, format_target(target_), count, known));
      } else {
        out.shape[1 + unknown_at] = count / known;
      }
    } else if (count != kDynamic && count != known) {
      throw ctx.attr_error(
          "target_shape",
          fmt::format("cannot reshape {} ({} elements per sample) to target_shape {} ({} "
                      "elements)",
                      in_desc, count, format_target(target_), known));
    }
    return {out};
  }

  KernelBuild compile(const KernelContext& ctx) const override { return compile_view_copy(ctx); }

  // Training: a copy forward and a copy of the gradient backward (layers/copy_training.hpp).
  bool has_gradient() const override { return true; }
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    compile_copy_training(ctx, build);
  }

 private:
  std::vector<int64_t> target_;
};

}  // namespace

OpInfo reshape_op() {
  return {"reshape", [] { return std::make_unique<Reshape>(); },
          "Keras Reshape: per-sample target_shape, one -1 allowed"};
}

}  // namespace fg::layers
