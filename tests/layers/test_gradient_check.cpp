// The finite-difference core of the op gradient checks (tests/layers/gradient_check.hpp) on
// functions whose gradient is known in closed form.
#include <doctest/doctest.h>

#include <cmath>

#include "tests/layers/gradient_check.hpp"

using fg::test::numeric_gradient;

TEST_CASE("numeric_gradient matches known gradients (polynomial, exp, a product), every entry") {
  // f(x) = sum x_i^3 + x0 x1 + exp(x2): df/dx_i = 3 x_i^2 + [i==0] x1 + [i==1] x0 + [i==2] e^x2
  auto f = [](const std::vector<double>& x) {
    double s = 0;
    for (double v : x) s += v * v * v;
    return s + x[0] * x[1] + std::exp(x[2]);
  };
  const std::vector<double> x{0.3, -1.7, 0.9, 2.5, -0.01, 13.0, 7.0};
  const auto g = numeric_gradient(f, x, {});
  REQUIRE(g.size() == x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double want = 3 * x[i] * x[i];
    if (i == 0) want += x[1];
    if (i == 1) want += x[0];
    if (i == 2) want += std::exp(x[2]);
    CAPTURE(i);
    CHECK(g[i] == doctest::Approx(want).epsilon(1e-7));
  }
}

TEST_CASE("numeric_gradient computes only the requested entries and leaves the others zero") {
  auto f = [](const std::vector<double>& x) { return 2 * x[0] + 5 * x[3]; };
  const auto g = numeric_gradient(f, {1, 1, 1, 1}, {3});
  CHECK(g[0] == 0.0);  // not requested
  CHECK(g[3] == doctest::Approx(5.0));
}

TEST_CASE("numeric_gradient sees a wrong analytic gradient: a kink is not smoothed away") {
  // |x| at 0.3 has slope 1; a checker that returned 0 or -1 would be caught.
  auto f = [](const std::vector<double>& x) { return std::abs(x[0]); };
  CHECK(numeric_gradient(f, {0.3}, {})[0] == doctest::Approx(1.0));
  CHECK(numeric_gradient(f, {-0.3}, {})[0] == doctest::Approx(-1.0));
}
