// relu (Keras ReLU layer): the examples of the Keras documentation, tf.keras's backend formula
// for every combination of max_value, negative_slope and threshold, the gradient, bad values.
#include <algorithm>
#include <cmath>

#include "tests/layers/pointwise_activation_test.hpp"

using namespace fg;
using namespace fg::test;

TEST_CASE("relu: the Keras documentation's examples") {
  // keras.layers.ReLU docs: [-3, -1, 0, 2] through ReLU(), ReLU(max_value=1),
  // ReLU(negative_slope=1), ReLU(threshold=1.5)
  const std::vector<float> x{-3, -1, 0, 2};
  CHECK(pointwise_values("relu", "", x) == std::vector<float>{0, 0, 0, 2});
  CHECK(pointwise_values("relu", "max_value: 1.0", x) == std::vector<float>{0, 0, 0, 1});
  CHECK(pointwise_values("relu", "negative_slope: 1.0", x) == std::vector<float>{-3, -1, 0, 2});
  CHECK(pointwise_values("relu", "threshold: 1.5", x) == std::vector<float>{0, 0, 0, 2});
}

TEST_CASE("relu: forward and gradient against the naive formula") {
  struct P {
    double max_value, slope, threshold;
    std::string attrs;
  };
  const double inf = INFINITY;
  for (const P& p :
       {P{inf, 0, 0, ""}, P{1.4, 0.2, 0.2, "max_value: 1.4, negative_slope: 0.2, threshold: 0.2"},
        P{inf, 0.3, 0, "negative_slope: 0.3"}, P{0.5, 0, 0, "max_value: 0.5"},
        P{inf, 0.1, -0.5, "negative_slope: 0.1, threshold: -0.5"}}) {
    CAPTURE(p.attrs);
    // f(x) = max_value for x >= max_value; x for threshold < x < max_value (clipped at 0);
    // negative_slope * (x - threshold) below the threshold
    check_pointwise_op("relu", p.attrs, [&](double x) {
      if (x > p.threshold) return std::min(std::max(x, 0.0), p.max_value);
      return p.slope * (x - p.threshold);
    });
  }
}

TEST_CASE("relu: attribute errors") {
  CHECK(compile_error(pointwise_yaml("relu", "[7]", "max_value: -1"))
            .find("'max_value' must be >= 0") != std::string::npos);
  CHECK(compile_error(pointwise_yaml("relu", "[7]", "negative_slope: -0.1"))
            .find("'negative_slope' must be >= 0") != std::string::npos);
  CHECK(compile_error(pointwise_yaml("relu", "[7]", "max_value: null")) == "");
  CHECK(compile_error(pointwise_yaml("relu", "[7]", "alpha: 1")).find("alpha") !=
        std::string::npos);
}
