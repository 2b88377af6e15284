// Naive references for the convolution and pooling family: plain loops over the Keras
// (channels-last) layouts with double accumulation. Written from the Keras/TF definitions,
// independent of the library (no oneDNN, no code shared with layers/).
//
// 1D ops are the 2D ones with height 1 (input [B, 1, W, C], kernel [1, k, C, F]).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace fg::ref {

// A dense double tensor with a shape, row major.
struct Array {
  std::vector<int64_t> shape;
  std::vector<double> data;
  int64_t size() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

// One spatial axis: output length and the padding before it, as TF computes them.
struct AxisPlan {
  int64_t out = 0, pad_before = 0;
};

inline AxisPlan plan_axis(int64_t in, int64_t k, int64_t s, int64_t d, const std::string& padding) {
  const int64_t span = d * (k - 1) + 1;
  AxisPlan p;
  if (padding == "valid") {
    p.out = in >= span ? (in - span) / s + 1 : 0;
    p.pad_before = 0;
  } else if (padding == "same") {
    p.out = (in + s - 1) / s;
    const int64_t need = (p.out - 1) * s + span;
    const int64_t total = need > in ? need - in : 0;
    p.pad_before = total / 2;  // the odd extra pad goes after
  } else if (padding == "causal") {
    p.out = (in + s - 1) / s;
    p.pad_before = d * (k - 1);
  } else {
    throw std::invalid_argument("reference: unknown padding " + padding);
  }
  return p;
}

// Keras activations on a [..., C] array (softmax over the last axis).
inline void activate_last_axis(Array& a, const std::string& act) {
  if (act == "linear") return;
  const int64_t C = a.shape.back();
  if (act == "softmax") {
    for (int64_t r = 0; r < a.size() / C; ++r) {
      double* row = a.data.data() + r * C;
      double m = *std::max_element(row, row + C), sum = 0;
      for (int64_t c = 0; c < C; ++c) sum += std::exp(row[c] - m);
      for (int64_t c = 0; c < C; ++c) row[c] = std::exp(row[c] - m) / sum;
    }
    return;
  }
  for (double& v : a.data) {
    if (act == "relu")
      v = v > 0 ? v : 0;
    else if (act == "sigmoid")
      v = 1.0 / (1.0 + std::exp(-v));
    else if (act == "tanh")
      v = std::tanh(v);
    else if (act == "gelu")
      v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    else if (act == "softsign")
      v = v / (1.0 + std::fabs(v));
    else
      throw std::invalid_argument("reference: unknown activation " + act);
  }
}

// Keras Conv2D: x [B, H, W, C], kernel [KH, KW, C, F], bias [F] or empty.
inline Array conv2d(const Array& x, const Array& kernel, const std::vector<double>& bias,
                    int64_t sh, int64_t sw, int64_t dh, int64_t dw, const std::string& padding,
                    const std::string& activation) {
  const int64_t B = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3];
  const int64_t KH = kernel.shape[0], KW = kernel.shape[1], F = kernel.shape[3];
  if (kernel.shape[2] != C) throw std::invalid_argument("reference: channel mismatch");
  const AxisPlan ph = plan_axis(H, KH, sh, dh, padding), pw = plan_axis(W, KW, sw, dw, padding);
  Array y{{B, ph.out, pw.out, F}, {}};
  y.data.assign(static_cast<size_t>(y.size()), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oh = 0; oh < ph.out; ++oh)
      for (int64_t ow = 0; ow < pw.out; ++ow)
        for (int64_t f = 0; f < F; ++f) {
          double acc = bias.empty() ? 0.0 : bias[f];
          for (int64_t kh = 0; kh < KH; ++kh) {
            const int64_t ih = oh * sh + kh * dh - ph.pad_before;
            if (ih < 0 || ih >= H) continue;
            for (int64_t kw = 0; kw < KW; ++kw) {
              const int64_t iw = ow * sw + kw * dw - pw.pad_before;
              if (iw < 0 || iw >= W) continue;
              for (int64_t c = 0; c < C; ++c)
                acc += x.data[((b * H + ih) * W + iw) * C + c] *
                       kernel.data[((kh * KW + kw) * C + c) * F + f];
            }
          }
          y.data[((b * ph.out + oh) * pw.out + ow) * F + f] = acc;
        }
  activate_last_axis(y, activation);
  return y;
}

// Keras Conv1D: x [B, T, C], kernel [K, C, F].
inline Array conv1d(const Array& x, const Array& kernel, const std::vector<double>& bias, int64_t s,
                    int64_t d, const std::string& padding, const std::string& activation) {
  Array x4{{x.shape[0], 1, x.shape[1], x.shape[2]}, x.data};
  Array k4{{1, kernel.shape[0], kernel.shape[1], kernel.shape[2]}, kernel.data};
  // The height axis (length 1, kernel 1) gets no padding in any mode.
  Array y = conv2d(x4, k4, bias, 1, s, 1, d, padding, activation);
  return Array{{y.shape[0], y.shape[2], y.shape[3]}, y.data};
}

// Keras MaxPooling2D / AveragePooling2D (average over the cells inside the input only).
inline Array pool2d(const Array& x, bool max, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                    const std::string& padding) {
  const int64_t B = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3];
  const AxisPlan ph = plan_axis(H, kh, sh, 1, padding), pw = plan_axis(W, kw, sw, 1, padding);
  Array y{{B, ph.out, pw.out, C}, {}};
  y.data.assign(static_cast<size_t>(y.size()), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oh = 0; oh < ph.out; ++oh)
      for (int64_t ow = 0; ow < pw.out; ++ow)
        for (int64_t c = 0; c < C; ++c) {
          double best = -std::numeric_limits<double>::infinity(), sum = 0;
          int64_t count = 0;
          for (int64_t i = 0; i < kh; ++i) {
            const int64_t ih = oh * sh + i - ph.pad_before;
            if (ih < 0 || ih >= H) continue;
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t iw = ow * sw + j - pw.pad_before;
              if (iw < 0 || iw >= W) continue;
              const double v = x.data[((b * H + ih) * W + iw) * C + c];
              best = std::max(best, v);
              sum += v;
              ++count;
            }
          }
          y.data[((b * ph.out + oh) * pw.out + ow) * C + c] =
              max ? best : sum / static_cast<double>(count);
        }
  return y;
}

inline Array pool1d(const Array& x, bool max, int64_t k, int64_t s, const std::string& padding) {
  Array x4{{x.shape[0], 1, x.shape[1], x.shape[2]}, x.data};
  Array y = pool2d(x4, max, 1, k, 1, s, padding);
  return Array{{y.shape[0], y.shape[2], y.shape[3]}, y.data};
}

// Keras Global*Pooling: x [B, S..., C] reduced over the middle axes to [B, C]. With a mask
// ([B, steps], 1 = valid; 1D only), the average runs over the valid steps only.
inline Array global_pool(const Array& x, bool max, const std::vector<uint8_t>* mask = nullptr) {
  const int64_t B = x.shape[0], C = x.shape.back();
  int64_t S = 1;
  for (size_t i = 1; i + 1 < x.shape.size(); ++i) S *= x.shape[i];
  Array y{{B, C}, std::vector<double>(static_cast<size_t>(B * C), 0.0)};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      double best = -std::numeric_limits<double>::infinity(), sum = 0;
      int64_t count = 0;
      for (int64_t s = 0; s < S; ++s) {
        if (mask && !(*mask)[b * S + s]) continue;
        const double v = x.data[(b * S + s) * C + c];
        best = std::max(best, v);
        sum += v;
        ++count;
      }
      y.data[b * C + c] = max ? best : (count ? sum / static_cast<double>(count) : 0.0);
    }
  return y;
}

}  // namespace fg::ref
