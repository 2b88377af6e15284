#include "engine/quantization/calibration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "framework/error.hpp"

namespace fg::quantization {

namespace {

constexpr const char* kMethodChoices = "minmax, percentile, entropy";
// A floor for every scale, so that thresholds and weights in the denormal range (whose / 127
// would underflow to 0) still give a positive scale whose reciprocal is finite.
constexpr float kSmallestScale = std::numeric_limits<float>::min();

// The error for an observer, naming its tensor when it has a name.
fg::Error observer_error(const std::string& tensor_name, std::string message) {
  fg::Error e(std::move(message));
  if (!tensor_name.empty()) e.tensor(tensor_name);
  return e;
}

// The KL divergence of the TensorRT entropy calibration for the first `bins` bins of `hist` as
// candidate threshold: P is those bins with the outliers beyond them added to the last one; Q
// is the same bins (without the outliers) merged into `levels` groups, each group's count
// spread evenly over its bins where P is non-zero. Where Q is 0 but P is not (a group of empty
// bins whose last bin received the outliers), Q gets kEmptyBinCount instead of 0, so that
// clipping into empty bins costs a large but finite divergence rather than an infinite one.
double candidate_divergence(const std::vector<uint64_t>& hist, size_t bins, size_t levels,
                            uint64_t outliers) {
  std::vector<double> p(hist.begin(), hist.begin() + static_cast<std::ptrdiff_t>(bins));
  p[bins - 1] += static_cast<double>(outliers);
  std::vector<double> q(bins, 0.0);
  constexpr double kEmptyBinCount = 1e-4;
  for (size_t g = 0; g < levels; ++g) {
    const size_t begin = g * bins / levels, end = (g + 1) * bins / levels;
    double total = 0;
    size_t nonzero = 0;
    for (size_t j = begin; j < end; ++j) {
      total += static_cast<double>(hist[j]);
      if (p[j] > 0) ++nonzero;
    }
    if (nonzero == 0) continue;
    for (size_t j = begin; j < end; ++j)
      if (p[j] > 0) q[j] = total > 0 ? total / static_cast<double>(nonzero) : kEmptyBinCount;
  }
  double p_sum = 0, q_sum = 0;
  for (size_t j = 0; j < bins; ++j) p_sum += p[j], q_sum += q[j];
  double divergence = 0;
  for (size_t j = 0; j < bins; ++j) {
    if (p[j] == 0) continue;
    const double pj = p[j] / p_sum, qj = q[j] / q_sum;
    divergence += pj * std::log(pj / qj);
  }
  return divergence;
}

}  // namespace

const char* calibration_method_name(CalibrationMethod m) {
  switch (m) {
    case CalibrationMethod::minmax:
      return "minmax";
    case CalibrationMethod::percentile:
      return "percentile";
    case CalibrationMethod::entropy:
      return "entropy";
  }
  return "unknown";
}

CalibrationMethod parse_calibration_method(const std::string& name) {
  for (CalibrationMethod m :
       {CalibrationMethod::minmax, CalibrationMethod::percentile, CalibrationMethod::entropy})
    if (name == calibration_method_name(m)) return m;
  throw fg::Error(
      fmt::format("unknown calibration method '{}' (choices: {})", name, kMethodChoices))
      .hint(fmt::format("use one of {}", kMethodChoices));
}

TensorObserver::TensorObserver(std::string tensor_name) : tensor_name_(std::move(tensor_name)) {}

void TensorObserver::observe(const float* data, size_t count) {
  if (count == 0) return;
  if (data == nullptr) throw observer_error(tensor_name_, "calibration: the batch pointer is null");
  // first pass: checks and the batch's extremes, so that a bad batch leaves no trace
  float batch_min = data[0], batch_max = data[0], batch_max_abs = 0;
  for (size_t i = 0; i < count; ++i) {
    const float v = data[i];
    if (!std::isfinite(v))
      throw observer_error(tensor_name_,
                           fmt::format("calibration: the tensor has non-finite values ({} at "
                                       "index {} of a batch of {})",
                                       v, i, count))
          .hint("calibrate with data for which the float model computes finite values");
    batch_min = std::min(batch_min, v);
    batch_max = std::max(batch_max, v);
    batch_max_abs = std::max(batch_max_abs, std::fabs(v));
  }
  min_ = count_ == 0 ? batch_min : std::min(min_, batch_min);
  max_ = count_ == 0 ? batch_max : std::max(max_, batch_max);
  max_abs_ = std::max(max_abs_, batch_max_abs);
  count_ += count;

  // the histogram's range: set by the first non-zero batch, doubled (pairs of bins merged, which
  // moves no value out of its bin's interval) until the batch fits
  if (range_ == 0) {
    range_ = batch_max_abs;
  } else {
    while (static_cast<double>(batch_max_abs) > range_) {
      for (size_t b = 0; b < kHistogramBins / 2; ++b)
        histogram_[b] = histogram_[2 * b] + histogram_[2 * b + 1];
      std::fill(histogram_.begin() + kHistogramBins / 2, histogram_.end(), 0);
      range_ *= 2;
    }
  }
  // bin b holds (b * width, (b + 1) * width] (bin 0 also 0): right-closed, so that merging two
  // bins gives exactly the bin of the doubled range, and |x| = range lands in the last bin
  const double bins_per_unit = range_ > 0 ? static_cast<double>(kHistogramBins) / range_ : 0;
  for (size_t i = 0; i < count; ++i) {
    const double position = std::fabs(static_cast<double>(data[i])) * bins_per_unit;
    const double b = std::max(0.0, std::ceil(position) - 1);
    ++histogram_[std::min(kHistogramBins - 1, static_cast<size_t>(b))];
  }
}

void TensorObserver::check_observed() const {
  if (count_ == 0)
    throw observer_error(tensor_name_, "calibration: no values were observed for the tensor")
        .hint("run at least one calibration batch through the model");
}

float TensorObserver::min() const {
  check_observed();
  return min_;
}

float TensorObserver::max() const {
  check_observed();
  return max_;
}

float TensorObserver::threshold(CalibrationMethod method, double percentile) const {
  check_observed();
  if (method == CalibrationMethod::percentile && !(percentile > 0 && percentile <= 100))
    throw observer_error(tensor_name_,
                         fmt::format("calibration: percentile {} is outside (0, 100]", percentile))
        .hint("99.99 keeps all but the largest 0.01% of |x|");
  if (max_abs_ == 0) return 1.0f;  // all zeros: any positive threshold quantizes them exactly
  switch (method) {
    case CalibrationMethod::minmax:
      return max_abs_;
    case CalibrationMethod::percentile:
      return percentile_threshold(percentile);
    case CalibrationMethod::entropy:
      return entropy_threshold(min_ >= 0 ? 256 : 128);
  }
  throw fg::Error("calibration: unknown calibration method");
}

float TensorObserver::percentile_threshold(double percentile) const {
  // the nearest-rank percentile: the rank-th smallest |x|, rank = ceil(p / 100 * count)
  const double exact_rank = percentile / 100.0 * static_cast<double>(count_);
  const uint64_t rank = std::min<uint64_t>(
      count_, std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(exact_rank))));
  const double width = range_ / static_cast<double>(kHistogramBins);
  uint64_t seen = 0;
  for (size_t b = 0; b < kHistogramBins; ++b) {
    seen += histogram_[b];
    if (seen >= rank)
      return static_cast<float>(std::min(static_cast<double>(max_abs_), (b + 1) * width));
  }
  return max_abs_;
}

float TensorObserver::entropy_threshold(size_t quantized_levels) const {
  // candidates: the first `bins` bins for bins = levels .. the last non-empty bin + 1 (beyond
  // it P no longer changes and Q only gets coarser)
  size_t used = kHistogramBins;
  while (used > 0 && histogram_[used - 1] == 0) --used;
  std::vector<uint64_t> outliers_beyond(kHistogramBins + 1, 0);  // sum of bins >= index
  for (size_t b = kHistogramBins; b-- > 0;)
    outliers_beyond[b] = outliers_beyond[b + 1] + histogram_[b];
  size_t best_bins = std::max(quantized_levels, used);
  double best = std::numeric_limits<double>::infinity();
  for (size_t bins = quantized_levels; bins <= std::max(quantized_levels, used); ++bins) {
    const double d =
        candidate_divergence(histogram_, bins, quantized_levels, outliers_beyond[bins]);
    if (d < best) best = d, best_bins = bins;
  }
  const double width = range_ / static_cast<double>(kHistogramBins);
  return static_cast<float>(std::min(static_cast<double>(max_abs_), best_bins * width));
}

ActivationQuantization activation_quantization(const TensorObserver& obs, CalibrationMethod m,
                                               double percentile) {
  const float t = obs.threshold(m, percentile);
  ActivationQuantization q;
  q.is_unsigned = obs.min() >= 0;
  q.scale = std::max(t / (q.is_unsigned ? 255.0f : 127.0f), kSmallestScale);
  q.zero_point = 0;
  return q;
}

int32_t quantize_value(float x, const ActivationQuantization& q) {
  if (std::isnan(x)) throw fg::Error("quantization: cannot quantize NaN");
  if (!(std::isfinite(q.scale) && q.scale > 0))
    throw fg::Error(fmt::format("quantization: the scale is {}, expected finite and > 0", q.scale));
  const float lo = q.is_unsigned ? 0.0f : -128.0f, hi = q.is_unsigned ? 255.0f : 127.0f;
  const float r = round_half_to_even(x / q.scale + static_cast<float>(q.zero_point));
  return static_cast<int32_t>(std::clamp(r, lo, hi));
}

}  // namespace fg::quantization
