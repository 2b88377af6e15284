// Keras Flatten: [B, d1, ..., dn] -> [B, d1 * ... * dn] in C order (for NHWC that is H, W, C, as
// Keras channels_last). The plain bytes are identical: one oneDNN reorder from the input's
// layout into the output buffer seen with the input's dims (a plain copy today).
#include <fmt/format.h>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/copy_training.hpp"
#include "layers/view_copy.hpp"

namespace fg::layers {
namespace {

class Flatten final : public Op {
 public:
  OpTraits traits() const override {
    OpTraits t;
    t.is_view = true;
    return t;
  }
  void parse(AttrReader& attrs) override {}

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const TensorType& x = ctx.input(0);
    ctx.expect_rank_at_least(0, 1);
    TensorType out = x;
    out.masked = false;
    // Keras flattens a [B] tensor to [B, 1].
    out.shape = {x.shape[0], x.rank() == 1 ? Dim{1} : sample_elements(x.shape)};
    return {out};
  }

  KernelBuild compile(const KernelContext& ctx) const override { return compile_view_copy(ctx); }

  // Training: a copy forward and a copy of the gradient backward (layers/copy_training.hpp).
  bool has_gradient() const override { return true; }
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    compile_copy_training(ctx, build);
  }
};

}  // namespace

OpInfo flatten_op() {
  return {"flatten", [] { return std::make_unique<Flatten>(); },
          "Keras Flatten: [B, ...] -> [B, prod] in C order"};
}

}  // namespace fg::layers
