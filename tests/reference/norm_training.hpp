// Naive references for the normalization ops in training mode (Keras 3): plain loops, double
// accumulation, independent of oneDNN and of the layer code. Shapes include the batch; data is
// row major.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "tests/reference/norm_merge.hpp"

namespace fg::ref {

// The batch's per-channel mean and biased variance over every axis but `axis` (non-negative).
struct BatchMoments {
  std::vector<double> mean, variance;
};

inline BatchMoments batch_moments(const std::vector<double>& x, const std::vector<int64_t>& shape,
                                  int axis) {
  const int64_t outer = dims_product(shape, 0, axis), c = shape[axis],
                inner = dims_product(shape, axis + 1, shape.size());
  const double count = static_cast<double>(outer * inner);
  BatchMoments m{std::vector<double>(c, 0.0), std::vector<double>(c, 0.0)};
  for (int64_t k = 0; k < c; ++k) {
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) m.mean[k] += x[(o * c + k) * inner + i];
    m.mean[k] /= count;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const double d = x[(o * c + k) * inner + i] - m.mean[k];
        m.variance[k] += d * d;
      }
    m.variance[k] /= count;  // biased, as Keras 3
  }
  return m;
}

// Keras 3 BatchNormalization(training=True): normalised with the batch's moments.
inline std::vector<double> batch_norm_training(const std::vector<double>& x,
                                               const std::vector<int64_t>& shape, int axis,
                                               const std::vector<double>& gamma,
                                               const std::vector<double>& beta, double epsilon) {
  const BatchMoments m = batch_moments(x, shape, axis);
  return batch_norm(x, shape, axis, gamma, beta, m.mean, m.variance, epsilon);
}

// moving = moving * momentum + batch * (1 - momentum), per entry.
inline std::vector<double> moving_update(const std::vector<double>& moving,
                                         const std::vector<double>& batch, double momentum) {
  std::vector<double> out(moving.size());
  for (size_t k = 0; k < moving.size(); ++k)
    out[k] = moving[k] * momentum + batch[k] * (1 - momentum);
  return out;
}

}  // namespace fg::ref
