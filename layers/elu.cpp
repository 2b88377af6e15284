// Keras ELU layer: y = x for x > 0, alpha * (e^x - 1) otherwise (default alpha 1). Plain C++
// (layers/pointwise_activation.hpp); expm1 for the small negative values.
#include <cmath>

#include "framework/registry.hpp"
#include "layers/pointwise_activation.hpp"

namespace fg::layers {
namespace {

class EluFunction final : public PointwiseFunction {
 public:
  explicit EluFunction(double alpha) : alpha_(alpha) {}
  double value(double x) const override { return x > 0 ? x : alpha_ * std::expm1(x); }
  double derivative(double x) const override { return x > 0 ? 1.0 : alpha_ * std::exp(x); }

 private:
  double alpha_;
};

class Elu final : public PointwiseActivationOp {
 public:
  void parse(AttrReader& attrs) override { alpha_ = attrs.get_float("alpha", 1.0); }
  std::shared_ptr<const PointwiseFunction> function() const override {
    return std::make_shared<EluFunction>(alpha_);
  }

 private:
  double alpha_ = 1.0;
};

}  // namespace

OpInfo elu_op() {
  return {"elu", [] { return std::make_unique<Elu>(); }, "Keras ELU layer: alpha"};
}

}  // namespace fg::layers
