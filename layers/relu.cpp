// Keras ReLU layer (keras.layers.ReLU) with max_value, negative_slope and threshold, computed as
// tf.keras's backend.relu: y = min(max(x > threshold ? x : 0, 0), max_value)
// - negative_slope * max(threshold - x, 0). Plain C++ (layers/pointwise_activation.hpp).
#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/registry.hpp"
#include "layers/pointwise_activation.hpp"

namespace fg::layers {
namespace {

class ReluFunction final : public PointwiseFunction {
 public:
  ReluFunction(double max_value, double slope, double threshold)
      : max_(max_value), slope_(slope), threshold_(threshold) {}
  double value(double x) const override {
    const double positive = std::min(std::max(x > threshold_ ? x : 0.0, 0.0), max_);
    return positive - slope_ * std::max(threshold_ - x, 0.0);
  }
  double derivative(double x) const override {
    if (x > threshold_) return x > 0 && x < max_ ? 1.0 : 0.0;
    return x < threshold_ ? slope_ : 0.0;
  }

 private:
  double max_, slope_, threshold_;
};

class Relu final : public PointwiseActivationOp {
 public:
  void parse(AttrReader& attrs) override {
    // null (the default): no upper bound
    max_value_ = non_negative_float(attrs, "max_value", std::numeric_limits<double>::infinity());
    negative_slope_ = non_negative_float(attrs, "negative_slope", 0.0);
    threshold_ = attrs.get_float("threshold", 0.0);
  }
  std::shared_ptr<const PointwiseFunction> function() const override {
    return std::make_shared<ReluFunction>(max_value_, negative_slope_, threshold_);
  }

 private:
  double max_value_ = 0, negative_slope_ = 0, threshold_ = 0;
};

}  // namespace

OpInfo relu_op() {
  return {"relu", [] { return std::make_unique<Relu>(); },
          "Keras ReLU layer: max_value, negative_slope, threshold"};
}

}  // namespace fg::layers
