// Keras Dropout: identity at inference. `rate` in [0, 1) is validated; Keras's `noise_shape` and
// `seed` only matter in training and are accepted and ignored. The copy is a oneDNN reorder.
#include <fmt/format.h>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/view_copy.hpp"

namespace fg::layers {
namespace {

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
        attrs.get_int_list("noise_shape", /*allow_null=*/true);
      else if (!scalar.empty())
        throw attrs.error("noise_shape",
                          "attribute 'noise_shape' must be a list of integers "
                          "(null for a dimension) or null");
    }
    attrs.get_int("seed", 0);
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    return {ctx.input(0)};  // the mask passes on
  }

  bool supports_masking() const override { return true; }

  KernelBuild compile(const KernelContext& ctx) const override { return compile_view_copy(ctx); }

 private:
  double rate_ = 0;
};

}  // namespace

OpInfo dropout_op() {
  return {"dropout", [] { return std::make_unique<Dropout>(); },
          "Keras Dropout: identity at inference"};
}

}  // namespace fg::layers
