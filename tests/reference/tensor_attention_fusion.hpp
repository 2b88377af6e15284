// Naive references for tensor_fusion, low_rank_fusion and cross_attention: plain loops, double
// accumulation, written from the formulas (docs/ops/fusion_tensor_attention.md), independent of
// oneDNN and of the layer code. Data is row major with the batch first.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace fg::ref {

// z[b] = flatten over (i_1, ..., i_M) in C order of prod_m v_m[b, i_m], v_m = [x_m; 1].
inline std::vector<double> tensor_fusion(const std::vector<std::vector<double>>& xs,
                                         const std::vector<int64_t>& dims, int64_t batch) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d + 1;
  std::vector<double> z(static_cast<size_t>(batch * total));
  const size_t m_count = dims.size();
  std::vector<int64_t> idx(m_count);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t flat = 0; flat < total; ++flat) {
      int64_t rest = flat;
      for (size_t m = m_count; m-- > 0;) {
        idx[m] = rest % (dims[m] + 1);
        rest /= dims[m] + 1;
      }
      double v = 1;
      for (size_t m = 0; m < m_count; ++m)
        v *= idx[m] == dims[m] ? 1.0 : xs[m][b * dims[m] + idx[m]];
      z[b * total + flat] = v;
    }
  return z;
}

// y[b, u] = sum_r prod_m (sum_i v_m[b, i] * factor_m[r, i, u]) + bias[u], v_m = [x_m; 1];
// factor_m is [rank, d_m + 1, units]; bias may be empty.
inline std::vector<double> low_rank_fusion(const std::vector<std::vector<double>>& xs,
                                           const std::vector<int64_t>& dims, int64_t batch,
                                           const std::vector<std::vector<double>>& factors,
                                           const std::vector<double>& bias, int64_t rank,
                                           int64_t units) {
  std::vector<double> y(static_cast<size_t>(batch * units), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t u = 0; u < units; ++u) {
      double sum = 0;
      for (int64_t r = 0; r < rank; ++r) {
        double prod = 1;
        for (size_t m = 0; m < dims.size(); ++m) {
          const int64_t d = dims[m];
          double h = 0;
          for (int64_t i = 0; i <= d; ++i) {
            const double v = i == d ? 1.0 : xs[m][b * d + i];
            h += v * factors[m][(r * (d + 1) + i) * units + u];
          }
          prod *= h;
        }
        sum += prod;
      }
      y[b * units + u] = sum + (bias.empty() ? 0.0 : bias[u]);
    }
  return y;
}

struct AttentionArgs {
  int64_t batch = 0, tq = 0, tk = 0, dq = 0, dk = 0;
  int64_t heads = 0, key_dim = 0, value_dim = 0, output_dim = 0;
  std::vector<double> query, kv;  // [B, Tq, dq], [B, Tk, dk]
  // Keras MultiHeadAttention layouts; biases empty when use_bias is false.
  std::vector<double> wq, bq, wk, bk, wv, bv, wo, bo;
  std::vector<uint8_t> key_mask;  // [B, Tk], empty = none
};

// y[b, i] = sum_h sum_v C[b, i, h, v] wo[h, v, :] + bo, with
// C[b, i, h] = sum_j a[b, h, i, j] V[b, j, h], a = softmax_j(Q.K / sqrt(key_dim)) over the
// unmasked keys j; all weights 0 when no key of sample b is unmasked.
inline std::vector<double> cross_attention(const AttentionArgs& a) {
  const int64_t B = a.batch, H = a.heads, kd = a.key_dim, vd = a.value_dim, O = a.output_dim;
  auto project = [&](const std::vector<double>& x, int64_t steps, int64_t in,
                     const std::vector<double>& w, const std::vector<double>& bias, int64_t dim) {
    std::vector<double> out(static_cast<size_t>(B * steps * H * dim));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < steps; ++t)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t e = 0; e < dim; ++e) {
            double s = bias.empty() ? 0.0 : bias[h * dim + e];
            for (int64_t c = 0; c < in; ++c)
              s += x[(b * steps + t) * in + c] * w[(c * H + h) * dim + e];
            out[((b * steps + t) * H + h) * dim + e] = s;
          }
    return out;
  };
  const auto Q = project(a.query, a.tq, a.dq, a.wq, a.bq, kd);
  const auto K = project(a.kv, a.tk, a.dk, a.wk, a.bk, kd);
  const auto V = project(a.kv, a.tk, a.dk, a.wv, a.bv, vd);
  std::vector<double> C(static_cast<size_t>(B * a.tq * H * vd), 0.0);
  std::vector<double> w(static_cast<size_t>(a.tk));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < a.tq; ++i) {
        double top = -std::numeric_limits<double>::infinity();
        bool any = false;
        for (int64_t j = 0; j < a.tk; ++j) {
          const bool keep = a.key_mask.empty() || a.key_mask[b * a.tk + j] != 0;
          if (!keep) continue;
          double s = 0;
          for (int64_t e = 0; e < kd; ++e)
            s += Q[((b * a.tq + i) * H + h) * kd + e] * K[((b * a.tk + j) * H + h) * kd + e];
          w[j] = s / std::sqrt(static_cast<double>(kd));
          top = any ? std::max(top, w[j]) : w[j];
          any = true;
        }
        if (!any) continue;  // every key masked: the weights are all 0
        double total = 0;
        for (int64_t j = 0; j < a.tk; ++j) {
          const bool keep = a.key_mask.empty() || a.key_mask[b * a.tk + j] != 0;
          w[j] = keep ? std::exp(w[j] - top) : 0.0;
          total += w[j];
        }
        for (int64_t j = 0; j < a.tk; ++j)
          for (int64_t e = 0; e < vd; ++e)
            C[((b * a.tq + i) * H + h) * vd + e] +=
                w[j] / total * V[((b * a.tk + j) * H + h) * vd + e];
      }
  std::vector<double> y(static_cast<size_t>(B * a.tq * O));
  for (int64_t bt = 0; bt < B * a.tq; ++bt)
    for (int64_t o = 0; o < O; ++o) {
      double s = a.bo.empty() ? 0.0 : a.bo[o];
      for (int64_t h = 0; h < H; ++h)
        for (int64_t e = 0; e < vd; ++e) s += C[(bt * H + h) * vd + e] * a.wo[(h * vd + e) * O + o];
      y[bt * O + o] = s;
    }
  return y;
}

}  // namespace fg::ref
