// Keras 3's metrics (keras/src/metrics/accuracy_metrics.py, regression_metrics.py) on plain
// float buffers: a value per position (the last axis reduced), accumulated over an epoch as
// Keras's Mean does (total += sum(value * weight), count += sum(weight)), so the epoch value is
// the sample-weighted mean that Keras's progress bar shows. Metrics read the output as the model
// returns it (probabilities after a softmax / sigmoid), not the logits.
#pragma once

#include <cstdint>
#include <string>

#include "framework/shape.hpp"
#include "framework/training_config.hpp"

namespace fg {

enum class MetricKind {
  categorical_accuracy,
  sparse_categorical_accuracy,
  binary_accuracy,
  top_k_categorical_accuracy,
  mean_squared_error,
  mean_absolute_error,
};

// `accuracy` as keras/src/trainers/compile_utils.py resolves it from the shapes: binary when the
// prediction's last axis is 1; else sparse when the targets have a lower rank, or a last axis of
// 1; else categorical. Other names map to their kind.
MetricKind resolve_metric(const std::string& name, const Dims& prediction_shape,
                          const Dims& target_shape);

// A running weighted mean.
struct MeanAccumulator {
  double total = 0.0;
  double count = 0.0;

  void add(double value_sum, double weight_sum) {
    total += value_sum;
    count += weight_sum;
  }
  double result() const { return count > 0 ? total / count : 0.0; }
  void reset() { total = count = 0.0; }
};

struct MetricInput {
  const float* prediction = nullptr;
  Dims shape;                     // the prediction's full shape, batch first
  const float* target = nullptr;  // dense targets of `shape`
  const int32_t* ids = nullptr;   // sparse targets: shape[:-1] or shape[:-1] + [1]
  Dims ids_shape;
  const float* sample_weight = nullptr;  // optional, one per sample (shape[0])
  std::string output;                    // for messages
};

class Metric {
 public:
  Metric(MetricSpec spec, MetricKind kind);

  // Adds one batch; returns the batch's own (weighted) mean.
  double update(const MetricInput& input);
  double result() const { return mean_.result(); }
  void reset() { mean_.reset(); }
  const MeanAccumulator& accumulator() const { return mean_; }
  void restore(const MeanAccumulator& state) { mean_ = state; }

  MetricKind kind() const { return kind_; }
  const MetricSpec& spec() const { return spec_; }

 private:
  MetricSpec spec_;
  MetricKind kind_;
  MeanAccumulator mean_;
};

// The per-position values of one metric ([positions] = elements / last axis), for tests and for
// callers that keep their own accumulators.
void metric_values(MetricKind kind, const MetricSpec& spec, const MetricInput& input,
                   double* values);

}  // namespace fg
