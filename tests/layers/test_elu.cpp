// elu (Keras ELU layer with alpha): forward and gradient against the formula.
#include <cmath>

#include "tests/layers/pointwise_activation_test.hpp"

using namespace fg;
using namespace fg::test;

TEST_CASE("elu: values and gradient") {
  // alpha * (e^x - 1) below 0: e^-1 - 1 = -0.6321205588
  const auto y = pointwise_values("elu", "alpha: 0.7", {-1, 0, 2});
  CHECK(y[0] == doctest::Approx(0.7 * -0.6321205588).epsilon(1e-6));
  CHECK(y[1] == 0);
  CHECK(y[2] == 2);
  for (double alpha : {1.0, 0.7, 2.5}) {
    CAPTURE(alpha);
    check_pointwise_op("elu", fmt::format("alpha: {}", alpha),
                       [&](double x) { return x > 0 ? x : alpha * (std::exp(x) - 1); });
  }
}
