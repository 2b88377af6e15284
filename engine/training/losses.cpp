// The losses of keras/src/losses/losses.py with the TensorFlow backend's crossentropies
// (keras/src/backend/tensorflow/nn.py). Sums in double; a position per loop iteration, so the
// batch splits across threads when it is large enough to pay.
#include "engine/training/losses.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace fg {

namespace {

constexpr double kEpsilon = 1e-7;           // keras.backend.epsilon()
constexpr int64_t kParallelWork = 1 << 15;  // elements below which one thread is faster

// Keras label smoothing: y (1 - s) + s / classes (categorical), y (1 - s) + s / 2 (binary).
inline double smooth(double y, double s, double spread) {
  return y * (1.0 - s) + s / spread;
}

// x clipped to [lo, hi]; `inside` is TensorFlow's clip gradient mask (equality passes).
inline double clip(double x, bool& inside) {
  inside = x >= kEpsilon && x <= 1.0 - kEpsilon;
  return std::min(std::max(x, kEpsilon), 1.0 - kEpsilon);
}

void check_class_ids(const int32_t* ids, int64_t positions, int64_t classes,
                     const std::string& output) {
  for (int64_t p = 0; p < positions; ++p)
    if (ids[p] < 0 || ids[p] >= classes)
      throw Error(fmt::format("class id {} at position {} is out of range for {} classes", ids[p],
                              p, classes))
          .tensor(output)
          .hint(fmt::format("sparse targets are class ids in [0, {}]", classes - 1));
}

}  // namespace

double softmax_crossentropy_from_logits(const float* logits, const float* target, int64_t positions,
                                        int64_t classes, double label_smoothing, float* gradient) {
  double sum = 0.0;
  const double scale = 1.0 / static_cast<double>(positions);
#pragma omp parallel for reduction(+ : sum) if (positions * classes > kParallelWork)
  for (int64_t p = 0; p < positions; ++p) {
    const float* x = logits + p * classes;
    const float* y = target + p * classes;
    const double top = *std::max_element(x, x + classes);
    double exp_sum = 0.0;
    for (int64_t c = 0; c < classes; ++c) exp_sum += std::exp(x[c] - top);
    const double log_sum = std::log(exp_sum) + top;
    double loss = 0.0;
    for (int64_t c = 0; c < classes; ++c) {
      const double yc = smooth(y[c], label_smoothing, static_cast<double>(classes));
      loss += yc * (log_sum - x[c]);
      if (gradient)
        gradient[p * classes + c] =
            static_cast<float>((std::exp(x[c] - log_sum) - yc) * scale);  // (p - y) / positions
    }
    sum += loss;
  }
  return sum * scale;
}

double sparse_softmax_crossentropy_from_logits(const float* logits, const int32_t* ids,
                                               int64_t positions, int64_t classes,
                                               float* gradient) {
  double sum = 0.0;
  const double scale = 1.0 / static_cast<double>(positions);
#pragma omp parallel for reduction(+ : sum) if (positions * classes > kParallelWork)
  for (int64_t p = 0; p < positions; ++p) {
    const float* x = logits + p * classes;
    const double top = *std::max_element(x, x + classes);
    double exp_sum = 0.0;
    for (int64_t c = 0; c < classes; ++c) exp_sum += std::exp(x[c] - top);
    const double log_sum = std::log(exp_sum) + top;
    sum += log_sum - x[ids[p]];
    if (gradient)
      for (int64_t c = 0; c < classes; ++c)
        gradient[p * classes + c] =
            static_cast<float>((std::exp(x[c] - log_sum) - (c == ids[p] ? 1.0 : 0.0)) * scale);
  }
  return sum * scale;
}

// tf.nn.sigmoid_cross_entropy_with_logits: max(x, 0) - x y + log(1 + exp(-|x|)), gradient
// sigmoid(x) - y; Keras then takes the mean over the last axis.
double sigmoid_crossentropy_from_logits(const float* logits, const float* target, int64_t positions,
                                        int64_t last, double label_smoothing, float* gradient) {
  const int64_t n = positions * last;
  const double scale = 1.0 / static_cast<double>(n);
  double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) if (n > kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const double x = logits[i];
    const double y = smooth(target[i], label_smoothing, 2.0);
    sum += std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x)));
    if (gradient) gradient[i] = static_cast<float>((1.0 / (1.0 + std::exp(-x)) - y) * scale);
  }
  return sum * scale;
}

// TensorFlow backend without logits: q = p / sum(p), clipped to [eps, 1 - eps],
// loss -sum y log q. The gradient goes back through the clip (zero outside) and the
// renormalisation: dL/dp_j = (g_j - sum_i g_i q_i) / sum(p), g_i = -y_i / q_i.
double categorical_crossentropy(const float* probabilities, const float* target, int64_t positions,
                                int64_t classes, double label_smoothing, float* gradient) {
  double sum = 0.0;
  const double scale = 1.0 / static_cast<double>(positions);
#pragma omp parallel for reduction(+ : sum) if (positions * classes > kParallelWork)
  for (int64_t p = 0; p < positions; ++p) {
    const float* x = probabilities + p * classes;
    const float* y = target + p * classes;
    double total = 0.0;
    for (int64_t c = 0; c < classes; ++c) total += x[c];
    double loss = 0.0, weighted = 0.0;
    for (int64_t c = 0; c < classes; ++c) {
      bool inside = false;
      const double q = clip(x[c] / total, inside);
      const double yc = smooth(y[c], label_smoothing, static_cast<double>(classes));
      loss -= yc * std::log(q);
      if (inside) weighted += (-yc / q) * (x[c] / total);
    }
    sum += loss;
    if (!gradient) continue;
    for (int64_t c = 0; c < classes; ++c) {
      bool inside = false;
      const double q = clip(x[c] / total, inside);
      const double yc = smooth(y[c], label_smoothing, static_cast<double>(classes));
      const double g = inside ? -yc / q : 0.0;
      gradient[p * classes + c] = static_cast<float>((g - weighted) / total * scale);
    }
  }
  return sum * scale;
}

// TensorFlow backend without logits: logits = log(clip(p)), then the sparse softmax
// crossentropy: -log c_k + log sum_j c_j (which renormalises implicitly).
double sparse_categorical_crossentropy(const float* probabilities, const int32_t* ids,
                                       int64_t positions, int64_t classes, float* gradient) {
  double sum = 0.0;
  const double scale = 1.0 / static_cast<double>(positions);
#pragma omp parallel for reduction(+ : sum) if (positions * classes > kParallelWork)
  for (int64_t p = 0; p < positions; ++p) {
    const float* x = probabilities + p * classes;
    double total = 0.0;
    for (int64_t c = 0; c < classes; ++c) {
      bool inside = false;
      total += clip(x[c], inside);
    }
    bool inside_k = false;
    sum += -std::log(clip(x[ids[p]], inside_k)) + std::log(total);
    if (!gradient) continue;
    for (int64_t c = 0; c < classes; ++c) {
      bool inside = false;
      const double cc = clip(x[c], inside);
      const double g = 1.0 / total - (c == ids[p] ? 1.0 / cc : 0.0);
      gradient[p * classes + c] = static_cast<float>(inside ? g * scale : 0.0);
    }
  }
  return sum * scale;
}

// Keras 3 TensorFlow backend: clip to [eps, 1 - eps], -(y log p + (1 - y) log(1 - p)) (no eps
// inside the logs, unlike tf.keras 2.x), mean over the last axis.
double binary_crossentropy(const float* probabilities, const float* target, int64_t positions,
                           int64_t last, double label_smoothing, float* gradient) {
  const int64_t n = positions * last;
  const double scale = 1.0 / static_cast<double>(n);
  double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) if (n > kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    bool inside = false;
    const double p = clip(probabilities[i], inside);
    const double y = smooth(target[i], label_smoothing, 2.0);
    sum -= y * std::log(p) + (1.0 - y) * std::log(1.0 - p);
    if (gradient)
      gradient[i] = static_cast<float>(inside ? (-y / p + (1.0 - y) / (1.0 - p)) * scale : 0.0);
  }
  return sum * scale;
}

double mean_squared_error(const float* prediction, const float* target, int64_t positions,
                          int64_t last, float* gradient) {
  const int64_t n = positions * last;
  const double scale = 1.0 / static_cast<double>(n);
  double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) if (n > kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(prediction[i]) - target[i];
    sum += d * d;
    if (gradient) gradient[i] = static_cast<float>(2.0 * d * scale);
  }
  return sum * scale;
}

// d|x|/dx at 0 is 0, as TensorFlow's sign.
double mean_absolute_error(const float* prediction, const float* target, int64_t positions,
                           int64_t last, float* gradient) {
  const int64_t n = positions * last;
  const double scale = 1.0 / static_cast<double>(n);
  double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) if (n > kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(prediction[i]) - target[i];
    sum += std::abs(d);
    if (gradient) gradient[i] = static_cast<float>((d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0) * scale);
  }
  return sum * scale;
}

// keras/src/losses/losses.py huber: 0.5 e^2 where |e| <= delta, else delta |e| - 0.5 delta^2.
double huber(const float* prediction, const float* target, int64_t positions, int64_t last,
             double delta, float* gradient) {
  const int64_t n = positions * last;
  const double scale = 1.0 / static_cast<double>(n);
  double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) if (n > kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(prediction[i]) - target[i];
    const double a = std::abs(e);
    sum += a <= delta ? 0.5 * e * e : delta * a - 0.5 * delta * delta;
    if (gradient)
      gradient[i] = static_cast<float>((a <= delta ? e : (e > 0 ? delta : -delta)) * scale);
  }
  return sum * scale;
}

bool loss_uses_logits(const LossSpec& loss, const LossInput& input) {
  const bool crossentropy = loss.kind == LossKind::categorical_crossentropy ||
                            loss.kind == LossKind::sparse_categorical_crossentropy ||
                            loss.kind == LossKind::binary_crossentropy;
  return crossentropy && (loss.from_logits || input.prediction_is_logits);
}

namespace {

// Sparse ids: shape[:-1], or shape[:-1] + [1].
void check_ids_shape(const LossInput& in) {
  Dims expected(in.shape.begin(), in.shape.end() - 1);
  Dims with_one = expected;
  with_one.push_back(1);
  if (in.ids == nullptr || (in.ids_shape != expected && in.ids_shape != with_one))
    throw Error(fmt::format("sparse targets for output '{}' must be int class ids of shape {} "
                            "(or {}), got {}",
                            in.output, format_shape(expected), format_shape(with_one),
                            in.ids == nullptr ? "none" : format_shape(in.ids_shape)))
        .tensor(in.output)
        .hint(
            "sparse_categorical_crossentropy takes class ids; one-hot targets go with "
            "categorical_crossentropy");
}

}  // namespace

double compute_loss(const LossSpec& loss, const LossInput& in, float* gradient) {
  if (in.shape.size() < 2 || in.prediction == nullptr)
    throw Error(fmt::format("loss '{}' needs a batch of predictions with a feature axis, got {}",
                            loss.name, format_shape(in.shape)))
        .tensor(in.output);
  const int64_t last = in.shape.back();
  const int64_t total = num_elements(in.shape);
  if (last < 1 || total < 1)
    throw Error(fmt::format("loss '{}' got an empty batch {}", loss.name, format_shape(in.shape)))
        .tensor(in.output);
  const int64_t positions = total / last;
  const bool logits = loss_uses_logits(loss, in);
  if (loss.kind == LossKind::sparse_categorical_crossentropy) {
    check_ids_shape(in);
    check_class_ids(in.ids, positions, last, in.output);
    return logits
               ? sparse_softmax_crossentropy_from_logits(in.prediction, in.ids, positions, last,
                                                         gradient)
               : sparse_categorical_crossentropy(in.prediction, in.ids, positions, last, gradient);
  }
  if (in.target == nullptr)
    throw Error(fmt::format("loss '{}' for output '{}' needs targets of shape {}", loss.name,
                            in.output, format_shape(in.shape)))
        .tensor(in.output);
  switch (loss.kind) {
    case LossKind::categorical_crossentropy:
      return logits ? softmax_crossentropy_from_logits(in.prediction, in.target, positions, last,
                                                       loss.label_smoothing, gradient)
                    : categorical_crossentropy(in.prediction, in.target, positions, last,
                                               loss.label_smoothing, gradient);
    case LossKind::binary_crossentropy:
      return logits ? sigmoid_crossentropy_from_logits(in.prediction, in.target, positions, last,
                                                       loss.label_smoothing, gradient)
                    : binary_crossentropy(in.prediction, in.target, positions, last,
                                          loss.label_smoothing, gradient);
    case LossKind::mean_squared_error:
      return mean_squared_error(in.prediction, in.target, positions, last, gradient);
    case LossKind::mean_absolute_error:
      return mean_absolute_error(in.prediction, in.target, positions, last, gradient);
    case LossKind::huber:
      return huber(in.prediction, in.target, positions, last, loss.delta, gradient);
    case LossKind::sparse_categorical_crossentropy:
      break;
  }
  return 0.0;
}

}  // namespace fg
