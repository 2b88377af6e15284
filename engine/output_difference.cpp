#include "engine/output_difference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fg {

void RelativeError::add(const float* got, const float* reference, size_t count, double floor) {
  for (size_t i = 0; i < count; ++i) {
    const double a = got[i], b = reference[i];
    double rel = std::abs(a - b) / std::max(std::abs(b), floor);
    if (std::isnan(rel)) rel = std::numeric_limits<double>::infinity();
    max_ = std::max(max_, rel);
    sum_ += rel;
  }
  count_ += static_cast<int64_t>(count);
}

namespace {

int64_t predicted_class(const float* row, int64_t classes, double threshold) {
  if (classes == 1) return row[0] > threshold ? 1 : 0;
  return std::max_element(row, row + classes) - row;
}

}  // namespace

void Top1Agreement::add(const float* got, const float* reference, int64_t rows, int64_t classes,
                        double threshold) {
  for (int64_t r = 0; r < rows; ++r)
    agreeing_ += predicted_class(got + r * classes, classes, threshold) ==
                 predicted_class(reference + r * classes, classes, threshold);
  rows_ += rows;
}

}  // namespace fg
