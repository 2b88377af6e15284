// keras.layers.LSTM: one layer, left to right, zero initial state. See
// docs/ops/recurrent_embedding.md.
#include "kernels/kernel.hpp"
#include "layers/builtin_ops.hpp"
#include "layers/recurrent.hpp"

namespace fg::layers {
namespace {

class Lstm final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    config_.cell = RnnCell::lstm;
    config_.unit_forget_bias = attrs.get_bool("unit_forget_bias", true);
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

OpInfo lstm_op() {
  return {"lstm", [] { return std::make_unique<Lstm>(); },
          "long short-term memory layer (oneDNN lstm_forward), Keras LSTM"};
}

}  // namespace fg::layers
