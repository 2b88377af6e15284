// Quantization parameters (engine/quantization/calibration.hpp, issue 13): every function
// against a naive reference written here (sorting, plain loops, std::nearbyint), the streaming
// histogram against a one-shot histogram of all the data, and the entropy method on data of a
// known distribution. See docs/quantization.md.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/quantization/calibration.hpp"
#include "framework/error.hpp"

namespace q = fg::quantization;

namespace {

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// The nearest-rank percentile of |x| of all values: the ceil(p / 100 * n)-th smallest.
double sorted_percentile_of_abs(const std::vector<float>& all, double p) {
  std::vector<double> a;
  for (float x : all) a.push_back(std::fabs(static_cast<double>(x)));
  std::sort(a.begin(), a.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(a.size()));
  const size_t k = std::min(a.size(), std::max<size_t>(1, static_cast<size_t>(rank)));
  return a[k - 1];
}

// Mean squared error of quantizing and dequantizing the values with |x| <= bulk_limit.
double bulk_mse(const std::vector<float>& all, const q::ActivationQuantization& aq,
                double bulk_limit) {
  double sum = 0;
  size_t n = 0;
  for (float x : all) {
    if (std::fabs(x) > bulk_limit) continue;
    const double back = (q::quantize_value(x, aq) - aq.zero_point) * static_cast<double>(aq.scale);
    sum += (back - x) * (back - x);
    ++n;
  }
  return sum / static_cast<double>(n);
}

// The TensorRT entropy search written out plainly over a histogram: for every candidate i
// (levels .. last non-empty bin + 1), P = the first i bins with the rest added to bin i-1, Q =
// those bins without the rest in `levels` groups (bin j in group ceil((j + 1) * levels / i) - 1),
// each group's count spread over its bins with P > 0 (1e-4 when the group is empty), KL(P||Q).
// Returns the divergence of every candidate, indexed by i (others: infinity).
std::vector<double> reference_divergences(const std::vector<uint64_t>& hist, size_t levels) {
  size_t last = 0;
  for (size_t b = 0; b < hist.size(); ++b)
    if (hist[b] > 0) last = b;
  std::vector<double> kl(hist.size() + 1, std::numeric_limits<double>::infinity());
  for (size_t i = levels; i <= std::max(levels, last + 1); ++i) {
    std::vector<double> p(i), q(i, 0.0);
    for (size_t j = 0; j < i; ++j) p[j] = static_cast<double>(hist[j]);
    for (size_t j = i; j < hist.size(); ++j) p[i - 1] += static_cast<double>(hist[j]);
    auto group_of = [&](size_t j) { return ((j + 1) * levels + i - 1) / i - 1; };
    std::vector<double> group_total(levels, 0.0);
    std::vector<size_t> group_nonzero(levels, 0);
    for (size_t j = 0; j < i; ++j) {
      group_total[group_of(j)] += static_cast<double>(hist[j]);
      if (p[j] > 0) ++group_nonzero[group_of(j)];
    }
    for (size_t j = 0; j < i; ++j)
      if (p[j] > 0) {
        const size_t g = group_of(j);
        q[j] = group_total[g] > 0 ? group_total[g] / static_cast<double>(group_nonzero[g]) : 1e-4;
      }
    double p_sum = 0, q_sum = 0;
    for (size_t j = 0; j < i; ++j) p_sum += p[j], q_sum += q[j];
    double d = 0;
    for (size_t j = 0; j < i; ++j)
      if (p[j] > 0) d += p[j] / p_sum * std::log((p[j] / p_sum) / (q[j] / q_sum));
    kl[i] = d;
  }
  return kl;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const fg::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("calibration method names round-trip and a bad name lists the choices") {
  for (q::CalibrationMethod m : {q::CalibrationMethod::minmax, q::CalibrationMethod::percentile,
                                 q::CalibrationMethod::entropy})
    CHECK(q::parse_calibration_method(q::calibration_method_name(m)) == m);
  CHECK(std::string(q::calibration_method_name(q::CalibrationMethod::minmax)) == "minmax");
  CHECK(std::string(q::calibration_method_name(q::CalibrationMethod::percentile)) == "percentile");
  CHECK(std::string(q::calibration_method_name(q::CalibrationMethod::entropy)) == "entropy");
  const std::string what = error_of([] { q::parse_calibration_method("kl"); });
  CAPTURE(what);
  CHECK(what.find("'kl'") != std::string::npos);
  CHECK(what.find("minmax, percentile, entropy") != std::string::npos);
  try {  // in the message itself, not only in the hint
    q::parse_calibration_method("");
    FAIL("no error");
  } catch (const fg::Error& e) {
    CHECK(e.message().find("choices: minmax, percentile, entropy") != std::string::npos);
  }
  CHECK_THROWS_AS(q::parse_calibration_method("MinMax"), fg::Error);
}

TEST_CASE("the observer's count, min, max and minmax threshold over several batches") {
  // batches of odd sizes, the extremes in different batches
  const std::vector<std::vector<float>> batches = {
      uniform(7, 1, -0.5f, 2.0f), uniform(13, 2, -3.0f, 0.25f), uniform(127, 3, -1.0f, 1.0f)};
  q::TensorObserver obs;
  size_t n = 0;
  float lo = std::numeric_limits<float>::infinity(), hi = -lo, abs_max = 0;
  for (const auto& b : batches) {
    obs.observe(b.data(), b.size());
    for (float x : b) {
      ++n;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
      if (std::fabs(x) > abs_max) abs_max = std::fabs(x);
    }
  }
  CHECK(obs.count() == n);
  CHECK(obs.min() == lo);
  CHECK(obs.max() == hi);
  CHECK(obs.threshold(q::CalibrationMethod::minmax) == abs_max);
  CHECK(obs.max_abs() == abs_max);
  // the observer never saw a positive-only tensor: s8, scale T / 127
  const q::ActivationQuantization aq =
      q::activation_quantization(obs, q::CalibrationMethod::minmax);
  CHECK_FALSE(aq.is_unsigned);
  CHECK(aq.zero_point == 0);
  CHECK(aq.scale == doctest::Approx(abs_max / 127.0).epsilon(1e-6));
}

TEST_CASE("the streaming histogram equals a one-shot histogram of all data over its range") {
  // the max grows batch after batch (x0.1, x1, x3, x50): the range doubles several times
  std::vector<float> all;
  q::TensorObserver obs;
  int batch = 0;
  for (float sigma : {0.1f, 1.0f, 3.0f, 50.0f, 2.0f}) {
    const std::vector<float> b = gaussian(batch % 2 ? 1009 : 4099, 10 + batch, sigma);
    obs.observe(b.data(), b.size());
    all.insert(all.end(), b.begin(), b.end());
    ++batch;
  }
  const double range = obs.histogram_range();
  const double max_abs = obs.max_abs();
  CHECK(range >= max_abs);
  CHECK(range < 2 * max_abs);
  // one-shot: bin b holds (b * width, (b + 1) * width], bin 0 also 0
  const size_t bins = q::TensorObserver::kHistogramBins;
  std::vector<uint64_t> one_shot(bins, 0);
  for (float x : all) {
    const double position = std::fabs(static_cast<double>(x)) * (static_cast<double>(bins) / range);
    size_t b = position <= 1 ? 0 : static_cast<size_t>(std::ceil(position)) - 1;
    if (b >= bins) b = bins - 1;
    ++one_shot[b];
  }
  CHECK(obs.histogram() == one_shot);

  // percentiles within one bin width of the sorted values, never below them (upper bin edge)
  const double width = range / static_cast<double>(bins);
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    CAPTURE(p);
    const double want = sorted_percentile_of_abs(all, p);
    const double got = obs.threshold(q::CalibrationMethod::percentile, p);
    CHECK(got >= want);
    CHECK(got - want <= width);
  }
  CHECK(obs.threshold(q::CalibrationMethod::percentile, 100.0) == obs.max_abs());
  // the default is 99.99
  CHECK(obs.threshold(q::CalibrationMethod::percentile) ==
        obs.threshold(q::CalibrationMethod::percentile, 99.99));
}

TEST_CASE("percentile of a small tensor against sorting: 7, 13 and 127 values in batches") {
  for (size_t n : {7, 13, 127}) {
    const std::vector<float> all = uniform(n * 3, static_cast<uint32_t>(n), -2.0f, 5.0f);
    q::TensorObserver obs;
    for (size_t i = 0; i < 3; ++i) obs.observe(all.data() + i * n, n);
    const double width = obs.histogram_range() / q::TensorObserver::kHistogramBins;
    for (double p : {10.0, 50.0, 75.0, 99.99}) {
      CAPTURE(n);
      CAPTURE(p);
      const double want = sorted_percentile_of_abs(all, p);
      const double got = obs.threshold(q::CalibrationMethod::percentile, p);
      CHECK(got >= want);
      CHECK(got - want <= width);
    }
  }
}

TEST_CASE("entropy: Gaussian bulk with a few large outliers") {
  // 200k N(0, 1) values in 4 batches, and 20 outliers at +-60: the entropy threshold clips the
  // outliers (T < max) but keeps the bulk: above the 99.9th percentile of |x| (3.29 sigma)
  std::vector<float> all;
  q::TensorObserver obs("dense_1");
  for (uint32_t b = 0; b < 4; ++b) {
    std::vector<float> batch = gaussian(50000, 100 + b);
    for (int i = 0; i < 5; ++i) batch[static_cast<size_t>(i) * 997] = (i % 2 ? -60.0f : 60.0f);
    obs.observe(batch.data(), batch.size());
    all.insert(all.end(), batch.begin(), batch.end());
  }
  const float t_entropy = obs.threshold(q::CalibrationMethod::entropy);
  const float t_minmax = obs.threshold(q::CalibrationMethod::minmax);
  const double q999 = sorted_percentile_of_abs(all, 99.9);
  CAPTURE(t_entropy);
  CAPTURE(q999);
  CHECK(t_minmax == 60.0f);
  CHECK(t_entropy < t_minmax / 2);
  CHECK(t_entropy > q999);
  // a bin edge of the histogram
  const double width = obs.histogram_range() / q::TensorObserver::kHistogramBins;
  const double edges = t_entropy / width;
  CHECK(std::fabs(edges - std::round(edges)) < 1e-3);

  // it beats minmax on the quantization error of the bulk (|x| <= 4)
  const auto aq_entropy = q::activation_quantization(obs, q::CalibrationMethod::entropy);
  const auto aq_minmax = q::activation_quantization(obs, q::CalibrationMethod::minmax);
  CHECK_FALSE(aq_entropy.is_unsigned);
  CHECK(aq_entropy.scale == doctest::Approx(t_entropy / 127.0).epsilon(1e-6));
  const double mse_entropy = bulk_mse(all, aq_entropy, 4.0);
  const double mse_minmax = bulk_mse(all, aq_minmax, 4.0);
  CAPTURE(mse_entropy);
  CAPTURE(mse_minmax);
  CHECK(mse_entropy < mse_minmax / 4);
}

TEST_CASE("entropy: a non-negative tensor (ReLU-like) is u8 with 256 levels; uniform is kept") {
  std::vector<float> relu = gaussian(100000, 7);
  for (float& x : relu) x = std::max(0.0f, x);
  for (int i = 0; i < 10; ++i) relu[static_cast<size_t>(i) * 5003] = 40.0f;
  q::TensorObserver obs;
  obs.observe(relu.data(), relu.size());
  const float t = obs.threshold(q::CalibrationMethod::entropy);
  CAPTURE(t);
  CHECK(t < 20.0f);
  CHECK(t > sorted_percentile_of_abs(relu, 99.9));
  const auto aq = q::activation_quantization(obs, q::CalibrationMethod::entropy);
  CHECK(aq.is_unsigned);
  CHECK(aq.scale == doctest::Approx(t / 255.0).epsilon(1e-6));
  CHECK(bulk_mse(relu, aq, 4.0) <
        bulk_mse(relu, q::activation_quantization(obs, q::CalibrationMethod::minmax), 4.0) / 4);

  // uniform data has nothing worth clipping: the threshold stays near the max
  const std::vector<float> flat = uniform(100000, 8, -1.0f, 1.0f);
  q::TensorObserver flat_obs;
  flat_obs.observe(flat.data(), flat.size());
  const float t_flat = flat_obs.threshold(q::CalibrationMethod::entropy);
  CAPTURE(t_flat);
  CHECK(t_flat > 0.95f * flat_obs.max_abs());
  CHECK(t_flat <= flat_obs.max_abs());
}

TEST_CASE("entropy against the search written out in the test, for s8 (128) and u8 (256)") {
  // signed: a Laplace-like bulk with outliers; unsigned: the same folded to |x|; and a skewed
  // tensor with batches of growing range (the observer's histogram was merged)
  std::vector<float> laplace = gaussian(60000, 21);
  const std::vector<float> g2 = gaussian(60000, 22);
  for (size_t i = 0; i < laplace.size(); ++i) laplace[i] = laplace[i] * std::fabs(g2[i]);
  for (int i = 0; i < 7; ++i) laplace[static_cast<size_t>(i) * 127] = (i % 2 ? 25.0f : -13.0f);
  std::vector<float> folded = laplace;
  for (float& x : folded) x = std::fabs(x);
  for (const std::vector<float>* data : {&laplace, &folded}) {
    q::TensorObserver obs;
    for (size_t b = 0; b < 4; ++b)  // 4 batches of 15000
      obs.observe(data->data() + b * 15000, 15000);
    const bool is_unsigned = obs.min() >= 0;
    const size_t levels = is_unsigned ? 256 : 128;
    CAPTURE(levels);
    const std::vector<double> kl = reference_divergences(obs.histogram(), levels);
    const size_t best = static_cast<size_t>(std::min_element(kl.begin(), kl.end()) - kl.begin());
    const double width = obs.histogram_range() / q::TensorObserver::kHistogramBins;
    const double want = std::min(static_cast<double>(obs.max_abs()), best * width);
    const float got = obs.threshold(q::CalibrationMethod::entropy);
    CAPTURE(want);
    CAPTURE(got);
    // the same candidate, or one whose divergence is equal up to rounding
    const size_t got_bins = static_cast<size_t>(std::llround(got / width));
    REQUIRE(got_bins < kl.size());
    CHECK(kl[got_bins] <= kl[best] * (1 + 1e-9) + 1e-15);
    CHECK(got == doctest::Approx(want).epsilon(1e-6));
    CHECK(got < obs.max_abs());
  }

  std::vector<float> skewed;
  q::TensorObserver obs;
  uint32_t seed = 30;
  for (float sigma : {0.5f, 4.0f, 1.0f, 9.0f}) {
    std::vector<float> b = gaussian(13 * 127, seed++, sigma);
    for (float& x : b) x = x > 0 ? x : 0.1f * x;  // leaky: mostly positive, some negative
    obs.observe(b.data(), b.size());
    skewed.insert(skewed.end(), b.begin(), b.end());
  }
  const std::vector<double> kl = reference_divergences(obs.histogram(), 128);
  const size_t best = static_cast<size_t>(std::min_element(kl.begin(), kl.end()) - kl.begin());
  const double width = obs.histogram_range() / q::TensorObserver::kHistogramBins;
  CHECK(obs.threshold(q::CalibrationMethod::entropy) ==
        doctest::Approx(std::min(static_cast<double>(obs.max_abs()), best * width)).epsilon(1e-6));
}

TEST_CASE("an all-zero tensor gets threshold 1 for every method, so scales are never 0") {
  const std::vector<float> zeros(127, 0.0f);
  q::TensorObserver obs;
  obs.observe(zeros.data(), zeros.size());
  obs.observe(zeros.data(), 13);
  for (q::CalibrationMethod m : {q::CalibrationMethod::minmax, q::CalibrationMethod::percentile,
                                 q::CalibrationMethod::entropy}) {
    CAPTURE(q::calibration_method_name(m));
    CHECK(obs.threshold(m) == 1.0f);
    const auto aq = q::activation_quantization(obs, m);
    CHECK(aq.is_unsigned);  // min() = 0 >= 0
    CHECK(aq.scale == doctest::Approx(1.0 / 255.0));
  }
  // zeros first, then values: the zeros stay in the first bin
  const std::vector<float> ones(13, 1.0f);
  obs.observe(ones.data(), ones.size());
  CHECK(obs.histogram()[0] == 140);
  CHECK(obs.histogram().back() == 13);
  CHECK(obs.threshold(q::CalibrationMethod::minmax) == 1.0f);
}

TEST_CASE("non-finite values, empty observers and bad percentiles throw fg::Error") {
  q::TensorObserver obs("conv_3");
  const std::vector<float> good = uniform(13, 5, -1.0f, 1.0f);
  obs.observe(good.data(), good.size());
  std::vector<float> bad = good;
  bad[7] = std::numeric_limits<float>::quiet_NaN();
  const std::string what = error_of([&] { obs.observe(bad.data(), bad.size()); });
  CAPTURE(what);
  CHECK(what.find("non-finite") != std::string::npos);
  CHECK(what.find("conv_3") != std::string::npos);
  bad[7] = -std::numeric_limits<float>::infinity();
  CHECK(error_of([&] { obs.observe(bad.data(), bad.size()); }).find("non-finite") !=
        std::string::npos);
  // a refused batch leaves no trace
  CHECK(obs.count() == 13);
  CHECK(obs.min() == *std::min_element(good.begin(), good.end()));

  q::TensorObserver empty;
  CHECK_THROWS_AS(empty.min(), fg::Error);
  CHECK_THROWS_AS(empty.threshold(q::CalibrationMethod::minmax), fg::Error);
  CHECK(error_of([&] { obs.threshold(q::CalibrationMethod::percentile, 0.0); }).find("(0, 100]") !=
        std::string::npos);
  CHECK_THROWS_AS(obs.threshold(q::CalibrationMethod::percentile, 100.5), fg::Error);
  const std::vector<float> zeros(7, 0.0f);
  q::TensorObserver zero_obs;
  zero_obs.observe(zeros.data(), zeros.size());
  CHECK_THROWS_AS(zero_obs.threshold(q::CalibrationMethod::percentile, -1.0), fg::Error);
}

TEST_CASE("denormal thresholds and weights still give positive scales") {
  const float tiny = std::numeric_limits<float>::denorm_min() * 3;  // / 127 underflows to 0
  REQUIRE(tiny / 127.0f == 0.0f);
  const std::vector<float> values = {tiny, -tiny, 0.0f};
  q::TensorObserver obs;
  obs.observe(values.data(), values.size());
  for (q::CalibrationMethod m : {q::CalibrationMethod::minmax, q::CalibrationMethod::percentile,
                                 q::CalibrationMethod::entropy}) {
    const auto aq = q::activation_quantization(obs, m);
    CHECK(aq.scale > 0.0f);
    CHECK(std::isfinite(1.0f / aq.scale));
    CHECK(q::quantize_value(tiny, aq) == 0);
  }
  const std::vector<float> kernel = {tiny, 1.0f, -tiny, -2.0f};  // [2, 2]
  const std::vector<float> scales = q::weight_scales(kernel.data(), kernel.size(), 2);
  CHECK(scales[0] == std::numeric_limits<float>::min());
  CHECK(scales[1] == 2.0f / 127.0f);
  CHECK(q::quantize_weights(kernel.data(), kernel.size(), 2, scales) ==
        std::vector<int8_t>{0, 64, 0, -127});  // 1 / (2 / 127) = 63.5 -> 64 (even)
}

TEST_CASE("round half to even: ties go to the even integer, against std::nearbyint") {
  CHECK(q::round_half_to_even(2.5f) == 2.0f);
  CHECK(q::round_half_to_even(-2.5f) == -2.0f);
  CHECK(q::round_half_to_even(3.5f) == 4.0f);
  CHECK(q::round_half_to_even(-3.5f) == -4.0f);
  CHECK(q::round_half_to_even(0.5f) == 0.0f);
  CHECK(q::round_half_to_even(1.5f) == 2.0f);
  CHECK(q::round_half_to_even(2.4999f) == 2.0f);
  CHECK(q::round_half_to_even(2.5001f) == 3.0f);
  CHECK(q::round_half_to_even(-0.4f) == 0.0f);
  // std::nearbyint in the default mode (FE_TONEAREST) is round half to even
  REQUIRE(std::fegetround() == FE_TONEAREST);
  std::vector<float> values = uniform(1000, 9, -300.0f, 300.0f);
  for (int k = -260; k <= 260; ++k) values.push_back(static_cast<float>(k) + 0.5f);
  for (float v : values) {
    CAPTURE(v);
    CHECK(q::round_half_to_even(v) == std::nearbyint(v));
  }
}

TEST_CASE("quantize_value: rounding, zero point and saturation for s8 and u8") {
  q::ActivationQuantization s8;
  s8.scale = 0.5f;
  CHECK(q::quantize_value(1.25f, s8) == 2);    // 2.5 -> 2
  CHECK(q::quantize_value(-1.25f, s8) == -2);  // -2.5 -> -2
  CHECK(q::quantize_value(1.75f, s8) == 4);    // 3.5 -> 4
  CHECK(q::quantize_value(0.3f, s8) == 1);     // 0.6
  CHECK(q::quantize_value(63.5f, s8) == 127);
  CHECK(q::quantize_value(63.75f, s8) == 127);  // 127.5 saturates
  CHECK(q::quantize_value(1000.0f, s8) == 127);
  CHECK(q::quantize_value(-64.0f, s8) == -128);
  CHECK(q::quantize_value(-1000.0f, s8) == -128);
  CHECK(q::quantize_value(std::numeric_limits<float>::infinity(), s8) == 127);

  q::ActivationQuantization u8;
  u8.scale = 0.25f;
  u8.is_unsigned = true;
  CHECK(q::quantize_value(0.625f, u8) == 2);  // 2.5
  CHECK(q::quantize_value(-0.5f, u8) == 0);
  CHECK(q::quantize_value(63.75f, u8) == 255);
  CHECK(q::quantize_value(64.0f, u8) == 255);  // 256 saturates
  CHECK(q::quantize_value(-std::numeric_limits<float>::infinity(), u8) == 0);
  u8.zero_point = 128;
  CHECK(q::quantize_value(0.0f, u8) == 128);
  CHECK(q::quantize_value(-32.0f, u8) == 0);
  CHECK(q::quantize_value(-33.0f, u8) == 0);

  // against a naive reference on many values
  const std::vector<float> xs = uniform(1000, 11, -40.0f, 40.0f);
  for (const q::ActivationQuantization& aq : {s8, u8})
    for (float x : xs) {
      const double r = std::nearbyint(x / aq.scale + static_cast<float>(aq.zero_point));
      const double lo = aq.is_unsigned ? 0 : -128, hi = aq.is_unsigned ? 255 : 127;
      CHECK(q::quantize_value(x, aq) == static_cast<int32_t>(std::min(hi, std::max(lo, r))));
    }
  CHECK_THROWS_AS(q::quantize_value(std::numeric_limits<float>::quiet_NaN(), s8), fg::Error);
  q::ActivationQuantization zero_scale;
  zero_scale.scale = 0;
  CHECK_THROWS_AS(q::quantize_value(1.0f, zero_scale), fg::Error);
}

TEST_CASE("per-output-channel weight scales and s8 weights against plain loops") {
  struct Shape {
    size_t rows, channels;  // rows = product of all axes but the last
    std::string what;
  };
  for (const Shape& s : {Shape{13, 7, "dense [13, 7]"}, Shape{3 * 3 * 5, 13, "conv2d [3,3,5,13]"},
                         Shape{3 * 13, 127, "conv1d [3, 13, 127]"}, Shape{1, 7, "dense [1, 7]"},
                         Shape{64, 32, "dense [64, 32]"}}) {
    CAPTURE(s.what);
    std::vector<float> w =
        uniform(s.rows * s.channels, static_cast<uint32_t>(s.channels), -0.3f, 0.2f);
    // channel 2 all zero, channel 0 ten times larger than the others
    for (size_t r = 0; r < s.rows; ++r) {
      w[r * s.channels + 2] = 0.0f;
      w[r * s.channels + 0] *= 10.0f;
    }
    const std::vector<float> scales = q::weight_scales(w.data(), w.size(), s.channels);
    REQUIRE(scales.size() == s.channels);
    for (size_t c = 0; c < s.channels; ++c) {
      float m = 0;
      for (size_t r = 0; r < s.rows; ++r) m = std::max(m, std::fabs(w[r * s.channels + c]));
      CHECK(scales[c] == (m > 0 ? m / 127.0f : 1.0f));  // no denormal weights here
    }
    CHECK(scales[2] == 1.0f);
    const std::vector<int8_t> qw = q::quantize_weights(w.data(), w.size(), s.channels, scales);
    REQUIRE(qw.size() == w.size());
    int reached_127 = 0;
    for (size_t r = 0; r < s.rows; ++r)
      for (size_t c = 0; c < s.channels; ++c) {
        const float x = w[r * s.channels + c];
        const float want = std::min(127.0f, std::max(-127.0f, std::nearbyint(x / scales[c])));
        CHECK(qw[r * s.channels + c] == static_cast<int8_t>(want));
        if (std::abs(qw[r * s.channels + c]) == 127) ++reached_127;
        // dequantized within half a step
        CHECK(std::fabs(qw[r * s.channels + c] * scales[c] - x) <= 0.5f * scales[c] * 1.0001f);
      }
    CHECK(reached_127 >= static_cast<int>(s.channels) - 1);  // every non-zero channel's max
  }

  // exact ties with scale 1 (channel max 127): 2.5 -> 2, -2.5 -> -2, 3.5 -> 4; -127 never -128
  const std::vector<float> ties = {2.5f, -127.0f, -2.5f,   127.0f,
                                   3.5f, 0.5f,    -127.0f, 1.5f};  // [4, 2]
  const std::vector<float> tie_scales = q::weight_scales(ties.data(), ties.size(), 2);
  CHECK(tie_scales == std::vector<float>{1.0f, 1.0f});
  CHECK(q::quantize_weights(ties.data(), ties.size(), 2, tie_scales) ==
        std::vector<int8_t>{2, -127, -2, 127, 4, 0, -127, 2});
  // a scale smaller than the weights' saturates at +-127
  CHECK(q::quantize_weights(ties.data(), ties.size(), 2, {0.5f, 0.5f}) ==
        std::vector<int8_t>{5, -127, -5, 127, 7, 1, -127, 3});  // 5, -254, -5, 254, 7, 1, ...
}

TEST_CASE("weight quantization refuses mismatched sizes, bad scales and non-finite weights") {
  const std::vector<float> w = uniform(12, 3, -1.0f, 1.0f);
  const std::string what = error_of([&] { q::weight_scales(w.data(), w.size(), 5); });
  CAPTURE(what);
  CHECK(what.find("12 values") != std::string::npos);
  CHECK(what.find("5 output channels") != std::string::npos);
  CHECK_THROWS_AS(q::weight_scales(w.data(), w.size(), 0), fg::Error);
  CHECK_THROWS_AS(q::quantize_weights(w.data(), w.size(), 4, {1.0f, 1.0f, 1.0f}), fg::Error);
  CHECK_THROWS_AS(q::quantize_weights(w.data(), w.size(), 3, {1.0f, 0.0f, 1.0f}), fg::Error);
  std::vector<float> nan_w = w;
  nan_w[4] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(q::weight_scales(nan_w.data(), nan_w.size(), 3), fg::Error);
  CHECK_THROWS_AS(q::quantize_weights(nan_w.data(), nan_w.size(), 3, {1.0f, 1.0f, 1.0f}),
                  fg::Error);
}
