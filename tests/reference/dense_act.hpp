// Naive references for the dense, shape and activation ops: plain loops, double arithmetic,
// every activation from its textbook / Keras formula. Independent of oneDNN.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fg::ref {

// Keras selu constants (keras.activations.selu).
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

inline double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
inline double softplus(double x) {
  return std::log1p(std::exp(x));
}

// One element of an elementwise activation ("softmax"/"log_softmax" are not elementwise).
// gelu is the exact erf form unless `approximate` (the tanh form, as keras gelu(approximate=True)).
inline double activation(const std::string& name, double x, bool approximate = false) {
  if (name == "linear") return x;
  if (name == "relu") return x > 0 ? x : 0;
  if (name == "relu6") return std::min(std::max(x, 0.0), 6.0);
  if (name == "sigmoid") return sigmoid(x);
  if (name == "tanh") return std::tanh(x);
  if (name == "elu") return x > 0 ? x : std::exp(x) - 1;
  if (name == "selu") return kSeluScale * (x > 0 ? x : kSeluAlpha * (std::exp(x) - 1));
  if (name == "softplus") return softplus(x);
  if (name == "softsign") return x / (1 + std::fabs(x));
  if (name == "swish" || name == "silu") return x * sigmoid(x);
  if (name == "gelu") {
    if (approximate) {
      const double c = std::sqrt(2.0 / M_PI);
      return 0.5 * x * (1 + std::tanh(c * (x + 0.044715 * x * x * x)));
    }
    return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
  }
  if (name == "mish") return x * std::tanh(softplus(x));
  throw std::runtime_error("reference: no elementwise activation " + name);
}

inline int64_t product(const std::vector<int64_t>& shape, size_t from = 0, size_t to = SIZE_MAX) {
  int64_t p = 1;
  for (size_t i = from; i < shape.size() && i < to; ++i) p *= shape[i];
  return p;
}

// Softmax (or log-softmax) over `axis` of a row-major tensor.
inline std::vector<double> softmax(const std::vector<double>& x, const std::vector<int64_t>& shape,
                                   int axis, bool log = false) {
  const int64_t outer = product(shape, 0, axis), n = shape[axis], inner = product(shape, axis + 1);
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return (o * n + k) * inner + i; };
      double m = -INFINITY;
      for (int64_t k = 0; k < n; ++k) m = std::max(m, x[at(k)]);
      double sum = 0;
      for (int64_t k = 0; k < n; ++k) sum += std::exp(x[at(k)] - m);
      for (int64_t k = 0; k < n; ++k)
        y[at(k)] = log ? x[at(k)] - m - std::log(sum) : std::exp(x[at(k)] - m) / sum;
    }
  return y;
}

// Any activation on a row-major tensor (softmax / log_softmax over the last axis, like Keras).
inline std::vector<double> apply_activation(const std::string& name, const std::vector<double>& x,
                                            const std::vector<int64_t>& shape,
                                            bool approximate = false) {
  if (name == "softmax" || name == "log_softmax")
    return softmax(x, shape, static_cast<int>(shape.size()) - 1, name == "log_softmax");
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = activation(name, x[i], approximate);
  return y;
}

// Keras Dense on the last axis: x [..., in], kernel [in, units] row major, bias [units] or empty.
inline std::vector<double> dense(const std::vector<double>& x, const std::vector<int64_t>& shape,
                                 const std::vector<double>& kernel, const std::vector<double>& bias,
                                 int64_t units, const std::string& act) {
  const int64_t in = shape.back(), rows = product(shape) / in;
  std::vector<double> y(rows * units);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t u = 0; u < units; ++u) {
      double acc = bias.empty() ? 0.0 : bias[u];
      for (int64_t i = 0; i < in; ++i) acc += x[r * in + i] * kernel[i * units + u];
      y[r * units + u] = acc;
    }
  std::vector<int64_t> out_shape = shape;
  out_shape.back() = units;
  return apply_activation(act, y, out_shape);
}

}  // namespace fg::ref
