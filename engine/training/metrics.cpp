// Keras 3's metric functions. Argmax returns the first maximum (as NumPy and TensorFlow);
// top-k follows tf.math.in_top_k: the target is in the top k when fewer than k classes score
// strictly higher (ties at the boundary count as in), and never when its score is not finite.
#include "engine/training/metrics.hpp"

#include <fmt/format.h>

#include <cmath>
#include <vector>

namespace fg {

namespace {

int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

bool in_top_k(const float* x, int64_t n, int64_t target, int64_t k) {
  if (!std::isfinite(x[target])) return false;
  int64_t higher = 0;
  for (int64_t i = 0; i < n; ++i)
    if (x[i] > x[target]) ++higher;
  return higher < k;
}

bool is_sparse(MetricKind kind) {
  return kind == MetricKind::sparse_categorical_accuracy;
}

void check_input(MetricKind kind, const MetricInput& in) {
  if (in.shape.size() < 2 || in.prediction == nullptr || num_elements(in.shape) < 1)
    throw Error(fmt::format("a metric needs a batch of predictions with a feature axis, got {}",
                            format_shape(in.shape)))
        .tensor(in.output);
  if (is_sparse(kind)) {
    Dims expected(in.shape.begin(), in.shape.end() - 1);
    Dims with_one = expected;
    with_one.push_back(1);
    if (in.ids == nullptr || (in.ids_shape != expected && in.ids_shape != with_one))
      throw Error(fmt::format("sparse_categorical_accuracy for output '{}' needs int class ids of "
                              "shape {}, got {}",
                              in.output, format_shape(expected),
                              in.ids ? format_shape(in.ids_shape) : "none"))
          .tensor(in.output);
  } else if (in.target == nullptr) {
    throw Error(fmt::format("a metric for output '{}' needs targets of shape {}", in.output,
                            format_shape(in.shape)))
        .tensor(in.output);
  }
}

}  // namespace

MetricKind resolve_metric(const std::string& name, const Dims& prediction_shape,
                          const Dims& target_shape) {
  if (name == "accuracy" || name == "acc") {
    const Dim pred_last = prediction_shape.empty() ? 1 : prediction_shape.back();
    const Dim target_last = target_shape.empty() ? 1 : target_shape.back();
    if (pred_last == 1) return MetricKind::binary_accuracy;
    if (target_shape.size() < prediction_shape.size() || (target_last == 1 && pred_last > 1))
      return MetricKind::sparse_categorical_accuracy;
    return MetricKind::categorical_accuracy;
  }
  if (name == "categorical_accuracy") return MetricKind::categorical_accuracy;
  if (name == "sparse_categorical_accuracy") return MetricKind::sparse_categorical_accuracy;
  if (name == "binary_accuracy") return MetricKind::binary_accuracy;
  if (name == "top_k_categorical_accuracy") return MetricKind::top_k_categorical_accuracy;
  if (name == "mse" || name == "mean_squared_error") return MetricKind::mean_squared_error;
  if (name == "mae" || name == "mean_absolute_error") return MetricKind::mean_absolute_error;
  throw Error(fmt::format("unknown metric '{}'", name));
}

void metric_values(MetricKind kind, const MetricSpec& spec, const MetricInput& in, double* values) {
  check_input(kind, in);
  const int64_t last = in.shape.back();
  const int64_t positions = num_elements(in.shape) / last;
  for (int64_t p = 0; p < positions; ++p) {
    const float* x = in.prediction + p * last;
    const float* y = in.target ? in.target + p * last : nullptr;
    double v = 0.0;
    switch (kind) {
      case MetricKind::categorical_accuracy:
        v = argmax(x, last) == argmax(y, last) ? 1.0 : 0.0;
        break;
      case MetricKind::sparse_categorical_accuracy:
        v = argmax(x, last) == in.ids[p] ? 1.0 : 0.0;
        break;
      case MetricKind::top_k_categorical_accuracy:
        v = in_top_k(x, last, argmax(y, last), spec.k) ? 1.0 : 0.0;
        break;
      case MetricKind::binary_accuracy:  // y == (p > threshold); Keras 3 averages the elements,
                                         // the mean of these per-position means when unweighted
        for (int64_t c = 0; c < last; ++c)
          v += (x[c] > spec.threshold ? 1.0f : 0.0f) == y[c] ? 1.0 : 0.0;
        v /= static_cast<double>(last);
        break;
      case MetricKind::mean_squared_error:
        for (int64_t c = 0; c < last; ++c) v += (double(x[c]) - y[c]) * (double(x[c]) - y[c]);
        v /= static_cast<double>(last);
        break;
      case MetricKind::mean_absolute_error:
        for (int64_t c = 0; c < last; ++c) v += std::abs(double(x[c]) - y[c]);
        v /= static_cast<double>(last);
        break;
    }
    values[p] = v;
  }
}

Metric::Metric(MetricSpec spec, MetricKind kind) : spec_(std::move(spec)), kind_(kind) {}

double Metric::update(const MetricInput& in) {
  check_input(kind_, in);
  const int64_t last = in.shape.back();
  const int64_t positions = num_elements(in.shape) / last;
  const int64_t per_sample = positions / in.shape[0];
  std::vector<double> values(static_cast<size_t>(positions));
  metric_values(kind_, spec_, in, values.data());
  double total = 0.0, count = 0.0;
  for (int64_t p = 0; p < positions; ++p) {
    const double w = in.sample_weight ? in.sample_weight[p / per_sample] : 1.0;
    total += values[p] * w;
    count += w;
  }
  mean_.add(total, count);
  return count > 0 ? total / count : 0.0;
}

}  // namespace fg
