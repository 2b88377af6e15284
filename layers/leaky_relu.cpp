// Keras LeakyReLU: y = x for x >= 0, negative_slope * x otherwise (Keras 3 `negative_slope`,
// Keras 2 `alpha`; default 0.3). Plain C++ (layers/pointwise_activation.hpp).
#include "framework/registry.hpp"
#include "layers/pointwise_activation.hpp"

namespace fg::layers {
namespace {

class LeakyReluFunction final : public PointwiseFunction {
 public:
  explicit LeakyReluFunction(double slope) : slope_(slope) {}
  double value(double x) const override { return x >= 0 ? x : slope_ * x; }
  double derivative(double x) const override { return x > 0 ? 1.0 : slope_; }

 private:
  double slope_;
};

class LeakyRelu final : public PointwiseActivationOp {
 public:
  void parse(AttrReader& attrs) override {
    negative_slope_ = non_negative_float(attrs, "negative_slope", 0.3);
  }
  std::shared_ptr<const PointwiseFunction> function() const override {
    return std::make_shared<LeakyReluFunction>(negative_slope_);
  }

 private:
  double negative_slope_ = 0.3;
};

}  // namespace

OpInfo leaky_relu_op() {
  return {"leaky_relu", [] { return std::make_unique<LeakyRelu>(); },
          "Keras LeakyReLU: x, or negative_slope * x below 0"};
}

}  // namespace fg::layers
