// Naive references for the training groundwork, in double precision, written from the Keras 3
// definitions (keras/src/losses/losses.py, backend/tensorflow/nn.py, metrics/*.py,
// optimizers/*.py, optimizers/schedules/learning_rate_schedule.py) and not from the code under
// test: one sample at a time, the textbook form of each formula, gradients by central finite
// differences of the naive loss.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace fg::reference {

inline std::vector<float> random_values(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(n);
  for (auto& x : out) x = dist(rng);
  return out;
}

// Rows of `classes` probabilities (positive, each row summing to 1).
inline std::vector<float> random_distributions(int64_t rows, int64_t classes, uint32_t seed) {
  auto raw = random_values(static_cast<size_t>(rows * classes), seed, 0.05f, 1.0f);
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += raw[r * classes + c];
    for (int64_t c = 0; c < classes; ++c) raw[r * classes + c] = float(raw[r * classes + c] / sum);
  }
  return raw;
}

inline std::vector<float> one_hot(const std::vector<int32_t>& ids, int64_t classes) {
  std::vector<float> out(ids.size() * classes, 0.0f);
  for (size_t i = 0; i < ids.size(); ++i) out[i * classes + ids[i]] = 1.0f;
  return out;
}

// ---- losses: the loss of one position (a row of `last` values), then the mean over rows ----

using RowLoss = std::function<double(const double* pred, const float* target, int64_t last)>;

inline double batch_mean(const std::vector<double>& pred, const std::vector<float>& target,
                         int64_t last, const RowLoss& row) {
  const int64_t rows = static_cast<int64_t>(pred.size()) / last;
  double sum = 0;
  for (int64_t r = 0; r < rows; ++r) sum += row(&pred[r * last], &target[r * last], last);
  return sum / static_cast<double>(rows);
}

// d batch_mean / d pred by central differences (step h, in double).
inline std::vector<double> numeric_gradient(const std::vector<float>& pred,
                                            const std::vector<float>& target, int64_t last,
                                            const RowLoss& row, double h = 1e-6) {
  std::vector<double> p(pred.begin(), pred.end()), out(pred.size());
  for (size_t i = 0; i < p.size(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double up = batch_mean(p, target, last, row);
    p[i] = keep - h;
    const double down = batch_mean(p, target, last, row);
    p[i] = keep;
    out[i] = (up - down) / (2 * h);
  }
  return out;
}

constexpr double kKerasEpsilon = 1e-7;
inline double clip_probability(double p) {
  return std::min(std::max(p, kKerasEpsilon), 1.0 - kKerasEpsilon);
}

// Keras: label smoothing y (1 - s) + s / classes (categorical), y (1 - s) + s / 2 (binary).
inline RowLoss categorical_crossentropy_probabilities(double smoothing) {
  return [=](const double* p, const float* y, int64_t n) {
    double total = 0;
    for (int64_t c = 0; c < n; ++c) total += p[c];
    double loss = 0;
    for (int64_t c = 0; c < n; ++c)
      loss -= (y[c] * (1 - smoothing) + smoothing / n) * std::log(clip_probability(p[c] / total));
    return loss;
  };
}

inline RowLoss categorical_crossentropy_logits(double smoothing) {
  return [=](const double* x, const float* y, int64_t n) {
    double top = x[0];
    for (int64_t c = 1; c < n; ++c) top = std::max(top, x[c]);
    double sum = 0;
    for (int64_t c = 0; c < n; ++c) sum += std::exp(x[c] - top);
    double loss = 0;
    for (int64_t c = 0; c < n; ++c) {
      const double log_softmax = x[c] - top - std::log(sum);
      loss -= (y[c] * (1 - smoothing) + smoothing / n) * log_softmax;
    }
    return loss;
  };
}

// Sparse: the target row holds the class id in y[0] (as a float).
inline RowLoss sparse_crossentropy_probabilities() {
  return [](const double* p, const float* y, int64_t n) {
    // TF backend: logits = log(clip(p)); loss = -log softmax(logits)[k]
    double sum = 0;
    for (int64_t c = 0; c < n; ++c) sum += clip_probability(p[c]);
    return -std::log(clip_probability(p[static_cast<int>(y[0])]) / sum);
  };
}

inline RowLoss sparse_crossentropy_logits() {
  return [](const double* x, const float* y, int64_t n) {
    double top = x[0];
    for (int64_t c = 1; c < n; ++c) top = std::max(top, x[c]);
    double sum = 0;
    for (int64_t c = 0; c < n; ++c) sum += std::exp(x[c] - top);
    return -(x[static_cast<int>(y[0])] - top - std::log(sum));
  };
}

inline RowLoss binary_crossentropy_probabilities(double smoothing) {
  return [=](const double* p, const float* y, int64_t n) {
    double loss = 0;
    for (int64_t c = 0; c < n; ++c) {
      const double q = clip_probability(p[c]);
      const double t = y[c] * (1 - smoothing) + smoothing / 2;
      loss += -(t * std::log(q) + (1 - t) * std::log(1 - q));
    }
    return loss / n;
  };
}

inline RowLoss binary_crossentropy_logits(double smoothing) {
  return [=](const double* x, const float* y, int64_t n) {
    double loss = 0;
    for (int64_t c = 0; c < n; ++c) {
      const double s = 1 / (1 + std::exp(-x[c]));
      const double t = y[c] * (1 - smoothing) + smoothing / 2;
      loss += -(t * std::log(s) + (1 - t) * std::log(1 - s));
    }
    return loss / n;
  };
}

inline RowLoss mean_squared_error() {
  return [](const double* p, const float* y, int64_t n) {
    double loss = 0;
    for (int64_t c = 0; c < n; ++c) loss += (p[c] - y[c]) * (p[c] - y[c]);
    return loss / n;
  };
}

inline RowLoss mean_absolute_error() {
  return [](const double* p, const float* y, int64_t n) {
    double loss = 0;
    for (int64_t c = 0; c < n; ++c) loss += std::abs(p[c] - y[c]);
    return loss / n;
  };
}

inline RowLoss huber(double delta) {
  return [=](const double* p, const float* y, int64_t n) {
    double loss = 0;
    for (int64_t c = 0; c < n; ++c) {
      const double e = std::abs(p[c] - y[c]);
      loss += e <= delta ? 0.5 * e * e : 0.5 * delta * delta + delta * (e - delta);
    }
    return loss / n;
  };
}

inline std::vector<double> softmax_rows(const std::vector<float>& x, int64_t n) {
  std::vector<double> out(x.size());
  for (size_t r = 0; r < x.size() / n; ++r) {
    double top = x[r * n], sum = 0;
    for (int64_t c = 1; c < n; ++c) top = std::max<double>(top, x[r * n + c]);
    for (int64_t c = 0; c < n; ++c) sum += std::exp(x[r * n + c] - top);
    for (int64_t c = 0; c < n; ++c) out[r * n + c] = std::exp(x[r * n + c] - top) / sum;
  }
  return out;
}

// ---- optimizers: one parameter vector, the textbook form of each Keras rule ----

struct NaiveState {
  std::vector<double> w, m, v, v_hat, a;
  int64_t t = 0;  // steps taken
};

// Adam as Keras: alpha = lr sqrt(1 - b2^t) / (1 - b1^t); w -= alpha m / (sqrt(v) + eps).
inline void naive_adam(NaiveState& s, const std::vector<double>& g, double lr, double b1, double b2,
                       double eps, bool amsgrad, double weight_decay = 0) {
  const size_t n = s.w.size();
  s.m.resize(n, 0), s.v.resize(n, 0), s.v_hat.resize(n, 0);
  s.t += 1;
  const double alpha = lr * std::sqrt(1 - std::pow(b2, s.t)) / (1 - std::pow(b1, s.t));
  for (size_t i = 0; i < n; ++i) {
    s.w[i] = s.w[i] * (1 - weight_decay * lr);  // decoupled decay, before the update
    s.m[i] = b1 * s.m[i] + (1 - b1) * g[i];
    s.v[i] = b2 * s.v[i] + (1 - b2) * g[i] * g[i];
    s.v_hat[i] = std::max(s.v_hat[i], s.v[i]);
    s.w[i] -= alpha * s.m[i] / (std::sqrt(amsgrad ? s.v_hat[i] : s.v[i]) + eps);
  }
}

inline void naive_sgd(NaiveState& s, const std::vector<double>& g, double lr, double momentum,
                      bool nesterov) {
  s.m.resize(s.w.size(), 0);
  for (size_t i = 0; i < s.w.size(); ++i) {
    s.m[i] = momentum * s.m[i] - lr * g[i];  // velocity
    s.w[i] += nesterov ? momentum * s.m[i] - lr * g[i] : s.m[i];
  }
  s.t += 1;
}

inline void naive_rmsprop(NaiveState& s, const std::vector<double>& g, double lr, double rho,
                          double momentum, double eps, bool centered) {
  const size_t n = s.w.size();
  s.v.resize(n, 0), s.m.resize(n, 0), s.a.resize(n, 0);
  for (size_t i = 0; i < n; ++i) {
    s.v[i] = rho * s.v[i] + (1 - rho) * g[i] * g[i];
    s.a[i] = rho * s.a[i] + (1 - rho) * g[i];
    const double denominator = centered ? s.v[i] - s.a[i] * s.a[i] + eps : s.v[i] + eps;
    const double step = lr * g[i] / std::sqrt(denominator);
    s.m[i] = momentum * s.m[i] + step;
    s.w[i] -= momentum > 0 ? s.m[i] : step;
  }
  s.t += 1;
}

inline void naive_adagrad(NaiveState& s, const std::vector<double>& g, double lr, double initial,
                          double eps) {
  s.v.resize(s.w.size(), initial);
  for (size_t i = 0; i < s.w.size(); ++i) {
    s.v[i] += g[i] * g[i];
    s.w[i] -= lr * g[i] / std::sqrt(s.v[i] + eps);
  }
  s.t += 1;
}

// ---- schedules, from the Keras docstrings ----

inline double naive_exponential_decay(double initial, double steps, double rate, bool staircase,
                                      int64_t step) {
  const double exponent = staircase ? std::floor(step / steps) : step / steps;
  return initial * std::pow(rate, exponent);
}

inline double naive_cosine_decay(double initial, double decay_steps, double alpha,
                                 double warmup_target, double warmup_steps, bool warmup,
                                 int64_t step) {
  if (warmup && step < warmup_steps)
    return initial + (warmup_target - initial) * (step / warmup_steps);
  const double from = warmup ? warmup_target : initial;
  const double s = std::min<double>(step - (warmup ? warmup_steps : 0), decay_steps);
  const double cosine = 0.5 * (1 + std::cos(3.14159265358979323846 * s / decay_steps));
  return from * ((1 - alpha) * cosine + alpha);
}

}  // namespace fg::reference
