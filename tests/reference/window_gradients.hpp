// Naive references for the gradients of max pooling where finite differences do not apply:
// windows with tied maxima (e.g. all zero after a relu), where the gradient is a convention.
// Written from TensorFlow's definitions, independent of the library:
//   MaxPool (Keras MaxPooling1D/2D): each window's d output goes to the FIRST maximum of the
//     window in row-major scan order (TF's MaxPoolGrad keeps the first index whose value is
//     strictly greater than the running maximum);
//   reduce_max (Keras GlobalMaxPooling1D/2D): d output is split evenly between the tied maxima.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tests/reference/conv_pool.hpp"

namespace fg::ref {

// d input of max pooling 2D on x [B, H, W, C] for d output dy (the pool2d output's shape).
inline std::vector<double> max_pool2d_backward(const Array& x, const std::vector<double>& dy,
                                               int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                               const std::string& padding) {
  const int64_t B = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3];
  const AxisPlan ph = plan_axis(H, kh, sh, 1, padding), pw = plan_axis(W, kw, sw, 1, padding);
  std::vector<double> dx(x.data.size(), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oh = 0; oh < ph.out; ++oh)
      for (int64_t ow = 0; ow < pw.out; ++ow)
        for (int64_t c = 0; c < C; ++c) {
          double best = -std::numeric_limits<double>::infinity();
          int64_t at = -1;
          for (int64_t i = 0; i < kh; ++i) {
            const int64_t ih = oh * sh + i - ph.pad_before;
            if (ih < 0 || ih >= H) continue;
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t iw = ow * sw + j - pw.pad_before;
              if (iw < 0 || iw >= W) continue;
              const int64_t k = ((b * H + ih) * W + iw) * C + c;
              if (x.data[k] > best) {
                best = x.data[k];
                at = k;
              }
            }
          }
          dx[at] += dy[((b * ph.out + oh) * pw.out + ow) * C + c];
        }
  return dx;
}

inline std::vector<double> max_pool1d_backward(const Array& x, const std::vector<double>& dy,
                                               int64_t k, int64_t s, const std::string& padding) {
  const Array x4{{x.shape[0], 1, x.shape[1], x.shape[2]}, x.data};
  return max_pool2d_backward(x4, dy, 1, k, 1, s, padding);
}

// d input of global max pooling on x [B, S..., C] for d output dy [B, C]: split among ties.
inline std::vector<double> global_max_backward(const Array& x, const std::vector<double>& dy) {
  const int64_t B = x.shape[0], C = x.shape.back();
  int64_t S = 1;
  for (size_t i = 1; i + 1 < x.shape.size(); ++i) S *= x.shape[i];
  std::vector<double> dx(x.data.size(), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      double best = -std::numeric_limits<double>::infinity();
      int64_t ties = 0;
      for (int64_t s = 0; s < S; ++s) best = std::max(best, x.data[(b * S + s) * C + c]);
      for (int64_t s = 0; s < S; ++s) ties += x.data[(b * S + s) * C + c] == best ? 1 : 0;
      for (int64_t s = 0; s < S; ++s)
        if (x.data[(b * S + s) * C + c] == best)
          dx[(b * S + s) * C + c] = dy[b * C + c] / static_cast<double>(ties);
    }
  return dx;
}

}  // namespace fg::ref
