// Keras ThresholdedReLU: y = x for x > theta, 0 otherwise (default theta 1). Plain C++
// (layers/pointwise_activation.hpp).
#include "framework/registry.hpp"
#include "layers/pointwise_activation.hpp"

namespace fg::layers {
namespace {

class ThresholdedReluFunction final : public PointwiseFunction {
 public:
  explicit ThresholdedReluFunction(double theta) : theta_(theta) {}
  double value(double x) const override { return x > theta_ ? x : 0.0; }
  double derivative(double x) const override { return x > theta_ ? 1.0 : 0.0; }

 private:
  double theta_;
};

class ThresholdedRelu final : public PointwiseActivationOp {
 public:
  void parse(AttrReader& attrs) override { theta_ = non_negative_float(attrs, "theta", 1.0); }
  std::shared_ptr<const PointwiseFunction> function() const override {
    return std::make_shared<ThresholdedReluFunction>(theta_);
  }

 private:
  double theta_ = 1.0;
};

}  // namespace

OpInfo thresholded_relu_op() {
  return {"thresholded_relu", [] { return std::make_unique<ThresholdedRelu>(); },
          "Keras ThresholdedReLU: x above theta, else 0"};
}

}  // namespace fg::layers
