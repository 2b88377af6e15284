// How far the outputs of one plan are from the same outputs of another (a reduced-precision plan
// against the f32 one): the relative error of every value and, for classification outputs, how
// often the two pick the same class. graph-runner evaluate --against, Python's and the tests'
// precision checks use it; docs/performance.md ("Accuracy of reduced precision") states the
// definitions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fg {

// The floor of the relative error's denominator: |a - b| / max(|b|, kRelativeErrorFloor), b the
// reference value. Outputs of classifiers and regressors are of order 1; below 1e-3 a value's
// relative error says more about the value than about the arithmetic.
constexpr double kRelativeErrorFloor = 1e-3;

// Max and mean of |got - reference| / max(|reference|, floor) over every value added. A NaN in
// either side counts as an infinite error (it must not hide behind max()).
class RelativeError {
 public:
  void add(const float* got, const float* reference, size_t count,
           double floor = kRelativeErrorFloor);
  double max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }
  int64_t values() const { return count_; }

 private:
  double max_ = 0, sum_ = 0;
  int64_t count_ = 0;
};

// Top-1 agreement: the fraction of rows (the last axis holds the classes) whose predicted class
// is the same in both. Classes >= 2: the argmax (the first of equal maxima); classes == 1: a
// binary output, the class is value > threshold (0.5 for probabilities, 0 for logits).
class Top1Agreement {
 public:
  void add(const float* got, const float* reference, int64_t rows, int64_t classes,
           double threshold = 0.5);
  double fraction() const {
    return rows_ == 0 ? 1.0 : static_cast<double>(agreeing_) / static_cast<double>(rows_);
  }
  int64_t rows() const { return rows_; }

 private:
  int64_t rows_ = 0, agreeing_ = 0;
};

}  // namespace fg
