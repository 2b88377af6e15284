// Quantization parameters for int8 post-training static quantization (issue 13), as plain
// numbers: the statistics of an activation tensor over calibration batches, the clipping
// threshold each calibration method derives from them, the activation scale / zero point, and
// per-output-channel symmetric s8 weights. No plans, no oneDNN: the planner feeds observe()
// with the tensors of each calibration batch and turns the results into oneDNN attributes.
// The methods, the streaming histogram and its error: docs/quantization.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/int8_weights.hpp"  // weight_scales, quantize_weights, round_half_to_even

namespace fg::quantization {

enum class CalibrationMethod { minmax, percentile, entropy };

// "minmax", "percentile", "entropy".
const char* calibration_method_name(CalibrationMethod m);
// The method of that name; anything else throws fg::Error listing the choices.
CalibrationMethod parse_calibration_method(const std::string& name);

// Statistics of one activation tensor over all calibration batches, streaming: observe() is
// called once per batch and keeps the count, min, max and a histogram of |x| (kHistogramBins
// equal bins over [0, histogram_range()], bin b holding (b * width, (b + 1) * width], bin 0 also
// 0). When a batch's max |x| exceeds the range, the range doubles (bins merged in pairs) until
// it fits, so histogram_range() < 2 * max |x| and percentile / entropy need no second pass over
// the data. Not thread-safe: one observer per tensor, fed by one thread at a time.
class TensorObserver {
 public:
  static constexpr size_t kHistogramBins = 2048;

  // The name goes into error messages (fg::Error::tensor); it may stay empty.
  explicit TensorObserver(std::string tensor_name = "");

  // Adds `count` values. NaN or inf values: throws fg::Error saying the tensor has non-finite
  // values, and the observer is left as it was before the call.
  void observe(const float* data, size_t count);

  size_t count() const { return count_; }
  // The smallest / largest value observed; throw fg::Error when nothing was observed.
  float min() const;
  float max() const;

  // The clipping threshold T > 0 for the method (docs/quantization.md, "Calibration methods"):
  //   minmax:     max |x|
  //   percentile: the `percentile`-th percentile of |x| (0 < percentile <= 100), as the upper
  //               edge of the histogram bin holding it, at most max |x| (error < one bin width)
  //   entropy:    TensorRT-style KL-divergence minimisation over the |x| histogram: 128
  //               quantized levels when the tensor has negative values (s8), 256 when min() >= 0
  //               (u8); T is a bin edge, at most max |x|
  // All-zero tensor: T = 1, so that scales are never 0. Nothing observed or a percentile
  // outside (0, 100]: throws fg::Error.
  float threshold(CalibrationMethod method, double percentile = 99.99) const;

  // The histogram of |x| and the upper end of its range (0 while every value seen was 0).
  const std::vector<uint64_t>& histogram() const { return histogram_; }
  double histogram_range() const { return range_; }
  float max_abs() const { return max_abs_; }
  const std::string& tensor_name() const { return tensor_name_; }

 private:
  void check_observed() const;
  float percentile_threshold(double percentile) const;
  float entropy_threshold(size_t quantized_levels) const;

  std::string tensor_name_;
  size_t count_ = 0;
  float min_ = 0, max_ = 0, max_abs_ = 0;
  double range_ = 0;
  std::vector<uint64_t> histogram_ = std::vector<uint64_t>(kHistogramBins, 0);
};

struct ActivationQuantization {
  float scale = 1;
  int32_t zero_point = 0;
  bool is_unsigned = false;
};

// Symmetric: min() >= 0 -> u8, scale = T / 255, zero_point 0; otherwise s8, scale = T / 127,
// zero_point 0 (T = obs.threshold(m, percentile)). Scales are at least FLT_MIN (the smallest
// normal float), so a denormal T cannot give a scale of 0.
ActivationQuantization activation_quantization(const TensorObserver& obs, CalibrationMethod m,
                                               double percentile = 99.99);

// f32 -> u8/s8 as oneDNN's reorder does it: round half to even of x / scale + zero_point (in
// f32), saturated to [0, 255] (is_unsigned) or [-128, 127]. NaN throws fg::Error; +-inf
// saturate.
int32_t quantize_value(float x, const ActivationQuantization& q);

}  // namespace fg::quantization
