// leaky_relu (Keras LeakyReLU): the Keras documentation's example, forward and gradient.
#include "tests/layers/pointwise_activation_test.hpp"

using namespace fg;
using namespace fg::test;

TEST_CASE("leaky_relu: the Keras documentation's examples") {
  // tf.keras.layers.LeakyReLU docs: [-3, -1, 0, 2] -> [-0.9, -0.3, 0, 2] (default 0.3), and
  // [-0.3, -0.1, 0, 2] with 0.1
  const std::vector<float> x{-3, -1, 0, 2};
  CHECK(pointwise_values("leaky_relu", "", x) == std::vector<float>{-0.9f, -0.3f, 0, 2});
  CHECK(pointwise_values("leaky_relu", "negative_slope: 0.1", x) ==
        std::vector<float>{-0.3f, -0.1f, 0, 2});
}

TEST_CASE("leaky_relu: forward and gradient against the naive formula") {
  for (double slope : {0.3, 0.01, 1.7}) {
    CAPTURE(slope);
    check_pointwise_op("leaky_relu", fmt::format("negative_slope: {}", slope),
                       [&](double x) { return x >= 0 ? x : slope * x; });
  }
  CHECK(compile_error(pointwise_yaml("leaky_relu", "[7]", "negative_slope: -1")) != "");
}
