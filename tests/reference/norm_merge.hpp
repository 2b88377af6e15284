// Naive references for the normalization and merge ops: plain loops, double accumulation,
// independent of oneDNN and of the layer code. Shapes include the batch; data is row major.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace fg::ref {

inline int64_t dims_product(const std::vector<int64_t>& shape, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= shape[i];
  return p;
}

// Keras BatchNormalization at inference over `axis` (non-negative); gamma/beta may be empty.
inline std::vector<double> batch_norm(const std::vector<double>& x,
                                      const std::vector<int64_t>& shape, int axis,
                                      const std::vector<double>& gamma,
                                      const std::vector<double>& beta,
                                      const std::vector<double>& mean,
                                      const std::vector<double>& var, double epsilon) {
  const int64_t outer = dims_product(shape, 0, axis), c = shape[axis],
                inner = dims_product(shape, axis + 1, shape.size());
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t at = (o * c + k) * inner + i;
        double v = (x[at] - mean[k]) / std::sqrt(var[k] + epsilon);
        if (!gamma.empty()) v *= gamma[k];
        if (!beta.empty()) v += beta[k];
        y[at] = v;
      }
  return y;
}

// Keras LayerNormalization over the axes in `axes` (non-negative, sorted): either the trailing
// axes, or any set (computed generally by gathering). gamma/beta have the normalized dims'
// shape (flattened in axis order); empty means off.
inline std::vector<double> layer_norm(const std::vector<double>& x,
                                      const std::vector<int64_t>& shape,
                                      const std::vector<int>& axes,
                                      const std::vector<double>& gamma,
                                      const std::vector<double>& beta, double epsilon) {
  const size_t rank = shape.size();
  std::vector<bool> norm(rank, false);
  for (int a : axes) norm[a] = true;
  std::vector<int64_t> strides(rank, 1);
  for (int d = static_cast<int>(rank) - 2; d >= 0; --d) strides[d] = strides[d + 1] * shape[d + 1];
  // Enumerate the "kept" positions, and for each, the normalized group.
  std::vector<int> kept, normed;
  for (size_t d = 0; d < rank; ++d) (norm[d] ? normed : kept).push_back(static_cast<int>(d));
  int64_t n_kept = 1, n_norm = 1;
  for (int d : kept) n_kept *= shape[d];
  for (int d : normed) n_norm *= shape[d];
  std::vector<double> y(x.size());
  std::vector<int64_t> offs(n_norm);
  for (int64_t j = 0; j < n_norm; ++j) {
    int64_t rest = j, off = 0;
    for (int q = static_cast<int>(normed.size()) - 1; q >= 0; --q) {
      off += (rest % shape[normed[q]]) * strides[normed[q]];
      rest /= shape[normed[q]];
    }
    offs[j] = off;
  }
  for (int64_t k = 0; k < n_kept; ++k) {
    int64_t rest = k, base = 0;
    for (int q = static_cast<int>(kept.size()) - 1; q >= 0; --q) {
      base += (rest % shape[kept[q]]) * strides[kept[q]];
      rest /= shape[kept[q]];
    }
    double mean = 0, var = 0;
    for (int64_t j = 0; j < n_norm; ++j) mean += x[base + offs[j]];
    mean /= static_cast<double>(n_norm);
    for (int64_t j = 0; j < n_norm; ++j)
      var += (x[base + offs[j]] - mean) * (x[base + offs[j]] - mean);
    var /= static_cast<double>(n_norm);
    for (int64_t j = 0; j < n_norm; ++j) {
      double v = (x[base + offs[j]] - mean) / std::sqrt(var + epsilon);
      if (!gamma.empty()) v *= gamma[j];
      if (!beta.empty()) v += beta[j];
      y[base + offs[j]] = v;
    }
  }
  return y;
}

// Concatenation along `axis` (non-negative).
inline std::vector<double> concat(const std::vector<std::vector<double>>& xs,
                                  const std::vector<std::vector<int64_t>>& shapes, int axis) {
  const int64_t outer = dims_product(shapes[0], 0, axis);
  std::vector<double> y;
  for (int64_t o = 0; o < outer; ++o)
    for (size_t i = 0; i < xs.size(); ++i) {
      const int64_t chunk = dims_product(shapes[i], axis, shapes[i].size());
      for (int64_t j = 0; j < chunk; ++j) y.push_back(xs[i][o * chunk + j]);
    }
  return y;
}

// Elementwise merge of inputs of equal rank, size-1 dims broadcasting to `out_shape`.
// kind: add, subtract, multiply, average, maximum, minimum.
inline std::vector<double> merge(const std::string& kind,
                                 const std::vector<std::vector<double>>& xs,
                                 const std::vector<std::vector<int64_t>>& shapes,
                                 const std::vector<int64_t>& out_shape) {
  const size_t rank = out_shape.size();
  const int64_t total = dims_product(out_shape, 0, rank);
  std::vector<double> y(total);
  for (int64_t o = 0; o < total; ++o) {
    std::vector<int64_t> idx(rank);
    int64_t rest = o;
    for (int d = static_cast<int>(rank) - 1; d >= 0; --d) {
      idx[d] = rest % out_shape[d];
      rest /= out_shape[d];
    }
    std::vector<double> v;
    for (size_t i = 0; i < xs.size(); ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < rank; ++d) off = off * shapes[i][d] + (shapes[i][d] == 1 ? 0 : idx[d]);
      v.push_back(xs[i][off]);
    }
    double r = v[0];
    for (size_t i = 1; i < v.size(); ++i) {
      if (kind == "add" || kind == "average")
        r += v[i];
      else if (kind == "subtract")
        r -= v[i];
      else if (kind == "multiply")
        r *= v[i];
      else if (kind == "maximum")
        r = v[i] > r ? v[i] : r;
      else if (kind == "minimum")
        r = v[i] < r ? v[i] : r;
    }
    if (kind == "average") r /= static_cast<double>(v.size());
    y[o] = r;
  }
  return y;
}

}  // namespace fg::ref
