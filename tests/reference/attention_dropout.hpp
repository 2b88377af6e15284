// Naive reference for cross_attention in training with attention dropout: the forward of
// ref::cross_attention (tests/reference/tensor_attention_fusion.hpp) with the softmax weights
// a[b, h, i, j] multiplied by keep[b, h, i, j] (0 or 1 / (1 - rate): the dropout's draw) before
// the context C = a V. Plain loops in double, row major, the batch first.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "tests/reference/tensor_attention_fusion.hpp"

namespace fg::ref {

inline std::vector<double> cross_attention_dropped(const AttentionArgs& a,
                                                   const std::vector<double>& keep) {
  const int64_t B = a.batch, H = a.heads, kd = a.key_dim, vd = a.value_dim, O = a.output_dim;
  auto project = [&](const std::vector<double>& x, int64_t steps, int64_t in,
                     const std::vector<double>& w, const std::vector<double>& bias, int64_t dim) {
    std::vector<double> out(static_cast<size_t>(B * steps * H * dim));
    for (int64_t bt = 0; bt < B * steps; ++bt)
      for (int64_t e = 0; e < H * dim; ++e) {
        double s = bias.empty() ? 0.0 : bias[e];
        for (int64_t c = 0; c < in; ++c) s += x[bt * in + c] * w[c * H * dim + e];
        out[bt * H * dim + e] = s;
      }
    return out;
  };
  const auto Q = project(a.query, a.tq, a.dq, a.wq, a.bq, kd);
  const auto K = project(a.kv, a.tk, a.dk, a.wk, a.bk, kd);
  const auto V = project(a.kv, a.tk, a.dk, a.wv, a.bv, vd);
  std::vector<double> C(static_cast<size_t>(B * a.tq * H * vd), 0.0), w(a.tk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < a.tq; ++i) {
        double top = -std::numeric_limits<double>::infinity(), total = 0;
        for (int64_t j = 0; j < a.tk; ++j) {
          double s = 0;
          for (int64_t e = 0; e < kd; ++e)
            s += Q[((b * a.tq + i) * H + h) * kd + e] * K[((b * a.tk + j) * H + h) * kd + e];
          w[j] = s / std::sqrt(static_cast<double>(kd));
          top = std::max(top, w[j]);
        }
        for (int64_t j = 0; j < a.tk; ++j) total += (w[j] = std::exp(w[j] - top));
        for (int64_t j = 0; j < a.tk; ++j) {
          const double p = w[j] / total * keep[((b * H + h) * a.tq + i) * a.tk + j];
          for (int64_t e = 0; e < vd; ++e)
            C[((b * a.tq + i) * H + h) * vd + e] += p * V[((b * a.tk + j) * H + h) * vd + e];
        }
      }
  std::vector<double> y(static_cast<size_t>(B * a.tq * O));
  for (int64_t bt = 0; bt < B * a.tq; ++bt)
    for (int64_t o = 0; o < O; ++o) {
      double s = a.bo.empty() ? 0.0 : a.bo[o];
      for (int64_t e = 0; e < H * vd; ++e) s += C[bt * H * vd + e] * a.wo[e * O + o];
      y[bt * O + o] = s;
    }
  return y;
}

}  // namespace fg::ref
