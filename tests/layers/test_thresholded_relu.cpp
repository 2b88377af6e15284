// thresholded_relu (Keras ThresholdedReLU): x above theta, else 0 (x == theta gives 0).
#include "tests/layers/pointwise_activation_test.hpp"

using namespace fg;
using namespace fg::test;

TEST_CASE("thresholded_relu: values and gradient") {
  CHECK(pointwise_values("thresholded_relu", "", {-3, 0.5, 1, 1.5, 2}) ==
        std::vector<float>{0, 0, 0, 1.5f, 2});  // default theta 1
  CHECK(pointwise_values("thresholded_relu", "theta: 0", {-1, 0, 0.25f}) ==
        std::vector<float>{0, 0, 0.25f});
  for (double theta : {1.0, 0.7, 0.0}) {
    CAPTURE(theta);
    check_pointwise_op("thresholded_relu", fmt::format("theta: {}", theta),
                       [&](double x) { return x > theta ? x : 0.0; });
  }
  CHECK(compile_error(pointwise_yaml("thresholded_relu", "[7]", "theta: -1"))
            .find("'theta' must be >= 0") != std::string::npos);
}
