// Naive references for the fusion ops weighted_average, gated, film and upsampling2d: plain
// loops, double accumulation, independent of oneDNN and of the layer code. Data is row major
// with the batch first; Keras kernels are [in, out].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace fg::ref {

// y = sum_m w_m x_m (w already normalised if the op normalises).
inline std::vector<double> weighted_average(const std::vector<std::vector<double>>& xs,
                                            const std::vector<double>& w) {
  std::vector<double> y(xs[0].size(), 0.0);
  for (size_t m = 0; m < xs.size(); ++m)
    for (size_t i = 0; i < y.size(); ++i) y[i] += w[m] * xs[m][i];
  return y;
}

inline std::vector<double> softmax_vec(const std::vector<double>& v) {
  double mx = v[0];
  for (double x : v) mx = std::max(mx, x);
  double sum = 0;
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) sum += (out[i] = std::exp(v[i] - mx));
  for (double& x : out) x /= sum;
  return out;
}

// x [B, in] @ kernel [in, out] + bias [out] (bias may be empty).
inline std::vector<double> affine(const std::vector<double>& x, int64_t B, int64_t in,
                                  const std::vector<double>& kernel,
                                  const std::vector<double>& bias, int64_t out) {
  std::vector<double> y(B * out);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bias.empty() ? 0.0 : bias[o];
      for (int64_t i = 0; i < in; ++i) acc += x[b * in + i] * kernel[i * out + o];
      y[b * out + o] = acc;
    }
  return y;
}

// Gated multimodal unit: xs[m] [B, d[m]], kernels[m] [d[m], U], biases[m] [U] (or empty);
// gate_kernel [sum d, G], gate_bias [G] (or empty), G = U (sigmoid) or M*U (softmax, column
// m*U + j is modality m, unit j).
inline std::vector<double> gated(const std::vector<std::vector<double>>& xs,
                                 const std::vector<int64_t>& d, int64_t B, int64_t U,
                                 const std::vector<std::vector<double>>& kernels,
                                 const std::vector<std::vector<double>>& biases,
                                 const std::vector<double>& gate_kernel,
                                 const std::vector<double>& gate_bias, bool sigmoid) {
  const size_t M = xs.size();
  std::vector<std::vector<double>> h(M);
  for (size_t m = 0; m < M; ++m) {
    h[m] = affine(xs[m], B, d[m], kernels[m], biases[m], U);
    for (double& v : h[m]) v = std::tanh(v);
  }
  int64_t total = 0;
  for (int64_t v : d) total += v;
  std::vector<double> x(B * total);
  for (int64_t b = 0; b < B; ++b) {
    int64_t at = 0;
    for (size_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < d[m]; ++i) x[b * total + at++] = xs[m][b * d[m] + i];
  }
  const int64_t G = sigmoid ? U : static_cast<int64_t>(M) * U;
  std::vector<double> s = affine(x, B, total, gate_kernel, gate_bias, G);
  std::vector<double> y(B * U, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < U; ++j) {
      if (sigmoid) {
        const double z = 1.0 / (1.0 + std::exp(-s[b * G + j]));
        y[b * U + j] = z * h[0][b * U + j] + (1.0 - z) * h[1][b * U + j];
      } else {
        std::vector<double> logits(M);
        for (size_t m = 0; m < M; ++m) logits[m] = s[b * G + m * U + j];
        const std::vector<double> z = softmax_vec(logits);
        for (size_t m = 0; m < M; ++m) y[b * U + j] += z[m] * h[m][b * U + j];
      }
    }
  return y;
}

// FiLM: x [B, inner..., C] (inner = product of the middle dims), c [B, dc].
inline std::vector<double> film(const std::vector<double>& x, int64_t B, int64_t inner, int64_t C,
                                const std::vector<double>& c, int64_t dc,
                                const std::vector<double>& gamma_kernel,
                                const std::vector<double>& gamma_bias,
                                const std::vector<double>& beta_kernel,
                                const std::vector<double>& beta_bias) {
  const std::vector<double> g = affine(c, B, dc, gamma_kernel, gamma_bias, C);
  const std::vector<double> be = affine(c, B, dc, beta_kernel, beta_bias, C);
  std::vector<double> y(x.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t p = 0; p < inner; ++p)
      for (int64_t k = 0; k < C; ++k) {
        const int64_t at = (b * inner + p) * C + k;
        y[at] = g[b * C + k] * x[at] + be[b * C + k];
      }
  return y;
}

// Keras UpSampling2D on [B, H, W, C]: nearest = repeat; bilinear = tf.image.resize bilinear
// with half-pixel centres (in = (o + 0.5) / s - 0.5; lower = max(floor(in), 0),
// upper = min(ceil(in), n - 1), weight of upper = in - floor(in)).
inline std::vector<double> upsampling2d(const std::vector<double>& x, int64_t B, int64_t H,
                                        int64_t W, int64_t C, int64_t sh, int64_t sw,
                                        bool bilinear) {
  const int64_t OH = H * sh, OW = W * sw;
  std::vector<double> y(B * OH * OW * C);
  struct Tap {
    int64_t lo, hi;
    double t;
  };
  auto taps = [&](int64_t o, int64_t s, int64_t n) {
    if (!bilinear) return Tap{o / s, o / s, 0.0};
    const double in = (static_cast<double>(o) + 0.5) / static_cast<double>(s) - 0.5;
    const double f = std::floor(in);
    return Tap{std::max<int64_t>(static_cast<int64_t>(f), 0),
               std::min<int64_t>(static_cast<int64_t>(std::ceil(in)), n - 1), in - f};
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oh = 0; oh < OH; ++oh) {
      const Tap th = taps(oh, sh, H);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const Tap tw = taps(ow, sw, W);
        for (int64_t c = 0; c < C; ++c) {
          auto at = [&](int64_t h, int64_t w) { return x[((b * H + h) * W + w) * C + c]; };
          const double top = at(th.lo, tw.lo) * (1 - tw.t) + at(th.lo, tw.hi) * tw.t;
          const double bot = at(th.hi, tw.lo) * (1 - tw.t) + at(th.hi, tw.hi) * tw.t;
          y[((b * OH + oh) * OW + ow) * C + c] = top * (1 - th.t) + bot * th.t;
        }
      }
    }
  return y;
}

}  // namespace fg::ref
