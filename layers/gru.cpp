// keras.layers.GRU: one layer, left to right, zero initial state. reset_after=True maps to
// oneDNN's linear-before-reset GRU, reset_after=False to the vanilla GRU.
// See docs/ops/recurrent_embedding.md.
#include "kernels/kernel.hpp"
#include "layers/builtin_ops.hpp"
#include "layers/recurrent.hpp"

namespace fg::layers {
namespace {

class Gru final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    config_.cell = RnnCell::gru;
    config_.reset_after = attrs.get_bool("reset_after", true);
    parse_rnn_common(attrs, config_);
  }
  std::vector<TensorType> infer(const InferContext& ctx) const override {
    return infer_rnn(ctx, config_);
  }
  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    return rnn_weights(ctx, config_);
  }
  double flops_per_sample(const InferContext& ctx, const std::vector<TensorType>&) const override {
    return rnn_flops(ctx, config_);
  }
  bool supports_masking() const override { return true; }
  KernelBuild compile(const KernelContext& ctx) const override { return compile_rnn(ctx, config_); }

 private:
  RnnConfig config_;
};

}  // namespace

OpInfo gru_op() {
  return {"gru", [] { return std::make_unique<Gru>(); },
          "gated recurrent unit layer (oneDNN gru_forward / lbr_gru_forward), Keras GRU"};
}

}  // namespace fg::layers
