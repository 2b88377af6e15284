// Metrics on hand-made cases whose expected values follow from Keras's definitions: ties in
// argmax (first max), top-k ties at the boundary (tf.math.in_top_k), the binary threshold, the
// accuracy resolution from shapes, and epoch values as sample-weighted means over partial batches.
#include <doctest/doctest.h>

#include <vector>

#include "engine/training/metrics.hpp"
#include "tests/reference/keras_training.hpp"

namespace {

fg::MetricSpec named(const std::string& name) {
  fg::MetricSpec m;
  m.name = m.written = name;
  return m;
}

fg::MetricInput dense(const std::vector<float>& pred, const std::vector<float>& target,
                      fg::Dims shape) {
  fg::MetricInput in;
  in.prediction = pred.data();
  in.target = target.data();
  in.shape = std::move(shape);
  return in;
}

}  // namespace

TEST_CASE("metrics: accuracy resolves from the shapes as Keras 3's compile_utils") {
  using K = fg::MetricKind;
  CHECK(fg::resolve_metric("accuracy", {32, 1}, {32, 1}) == K::binary_accuracy);
  CHECK(fg::resolve_metric("acc", {32, 13}, {32}) == K::sparse_categorical_accuracy);
  CHECK(fg::resolve_metric("accuracy", {32, 13}, {32, 1}) == K::sparse_categorical_accuracy);
  CHECK(fg::resolve_metric("accuracy", {32, 13}, {32, 13}) == K::categorical_accuracy);
  CHECK(fg::resolve_metric("accuracy", {32, 7, 13}, {32, 7}) == K::sparse_categorical_accuracy);
  CHECK(fg::resolve_metric("mae", {32, 13}, {32, 13}) == K::mean_absolute_error);
  CHECK_THROWS_AS(fg::resolve_metric("f1", {32, 13}, {32, 13}), fg::Error);
}

TEST_CASE("metrics: categorical accuracy, ties go to the first maximum") {
  // row 0: tie between classes 0 and 2 -> argmax 0, target 0: hit
  // row 1: tie between classes 1 and 2 -> argmax 1, target 1: hit
  // row 2: clear max at 2, target 0: miss (a last-maximum argmax would score 0 of 3)
  const std::vector<float> p = {0.4f, 0.2f, 0.4f, 0.1f, 0.45f, 0.45f, 0.1f, 0.2f, 0.7f};
  const std::vector<float> y = {1, 0, 0, 0, 1, 0, 1, 0, 0};
  fg::Metric m(named("categorical_accuracy"), fg::MetricKind::categorical_accuracy);
  CHECK(m.update(dense(p, y, {3, 3})) == doctest::Approx(2.0 / 3));
  // sparse ids, [N] and [N, 1]
  const std::vector<int32_t> ids = {0, 1, 0};
  for (const fg::Dims& ids_shape : {fg::Dims{3}, fg::Dims{3, 1}}) {
    fg::MetricInput in;
    in.prediction = p.data();
    in.shape = {3, 3};
    in.ids = ids.data();
    in.ids_shape = ids_shape;
    fg::Metric s(named("sparse_categorical_accuracy"), fg::MetricKind::sparse_categorical_accuracy);
    CHECK(s.update(in) == doctest::Approx(2.0 / 3));
  }
  fg::MetricInput bad;
  bad.prediction = p.data();
  bad.shape = {3, 3};
  bad.ids = ids.data();
  bad.ids_shape = {3, 3};
  fg::Metric s(named("sparse_categorical_accuracy"), fg::MetricKind::sparse_categorical_accuracy);
  CHECK_THROWS_AS(s.update(bad), fg::Error);
}

TEST_CASE("metrics: top-k follows tf.math.in_top_k, ties at the boundary count as in") {
  // 7 classes, k = 2. Row 0: target 3 scores 0.5, two classes score higher (0.9, 0.6): out.
  // Row 1: target 3 ties with one class at 0.6 behind 0.9: one strictly higher -> in.
  // Row 2: target's score is NaN: never in.
  const float nan = std::nanf("");
  const std::vector<float> p = {0.9f, 0.6f, 0.1f, 0.5f, 0.f, 0.f, 0.f,  //
                                0.9f, 0.6f, 0.1f, 0.6f, 0.f, 0.f, 0.f,  //
                                0.1f, 0.1f, 0.1f, nan,  0.f, 0.f, 0.f};
  std::vector<float> y(21, 0.f);
  y[3] = y[7 + 3] = y[14 + 3] = 1.f;
  fg::MetricSpec spec = named("top_k_categorical_accuracy");
  spec.k = 2;
  fg::Metric m(spec, fg::MetricKind::top_k_categorical_accuracy);
  CHECK(m.update(dense(p, y, {3, 7})) == doctest::Approx(1.0 / 3));
  spec.k = 5;  // Keras's default: row 0 is in (2 higher < 5)
  fg::Metric m5(spec, fg::MetricKind::top_k_categorical_accuracy);
  CHECK(m5.update(dense(p, y, {3, 7})) == doctest::Approx(2.0 / 3));
}

TEST_CASE("metrics: binary accuracy compares y with p > threshold, mean over the last axis") {
  // 0.5 is not above the threshold 0.5, so it predicts 0
  const std::vector<float> p = {0.5f, 0.51f, 0.2f, 0.9f};
  const std::vector<float> y = {0.f, 1.f, 1.f, 1.f};
  fg::Metric m(named("binary_accuracy"), fg::MetricKind::binary_accuracy);
  CHECK(m.update(dense(p, y, {2, 2})) == doctest::Approx(0.75));
  fg::MetricSpec high = named("binary_accuracy");
  high.threshold = 0.95;
  fg::Metric h(high, fg::MetricKind::binary_accuracy);
  CHECK(h.update(dense(p, y, {2, 2})) == doctest::Approx(0.25));
}

TEST_CASE("metrics: epoch values are sample-weighted means over partial batches") {
  // 13 samples in batches of 7 and 6 (the last one partial): the epoch mse is the mean over all
  // 13 samples, not the mean of the two batch means.
  const auto pred = fg::reference::random_values(13 * 7, 41, -1.f, 1.f);
  const auto target = fg::reference::random_values(13 * 7, 42, -1.f, 1.f);
  std::vector<double> per_sample(13);
  for (int s = 0; s < 13; ++s) {
    double sum = 0;
    for (int c = 0; c < 7; ++c) sum += std::pow(double(pred[s * 7 + c]) - target[s * 7 + c], 2);
    per_sample[s] = sum / 7;
  }
  double all = 0;
  for (double v : per_sample) all += v;
  fg::Metric m(named("mse"), fg::MetricKind::mean_squared_error);
  fg::MetricInput first = dense(pred, target, {7, 7});
  fg::MetricInput second = dense(pred, target, {6, 7});
  second.prediction = pred.data() + 49;
  second.target = target.data() + 49;
  m.update(first);
  m.update(second);
  CHECK(m.result() == doctest::Approx(all / 13).epsilon(1e-9));
  // with sample weights: sum(v w) / sum(w)
  const std::vector<float> w = {1, 0, 2, 0, 1, 3, 1};
  double weighted = 0, weights = 0;
  for (int s = 0; s < 7; ++s) weighted += per_sample[s] * w[s], weights += w[s];
  fg::Metric mw(named("mse"), fg::MetricKind::mean_squared_error);
  first.sample_weight = w.data();
  CHECK(mw.update(first) == doctest::Approx(weighted / weights).epsilon(1e-9));
  // mae over a rank-3 output: one value per position
  fg::Metric mae(named("mae"), fg::MetricKind::mean_absolute_error);
  double abs_sum = 0;
  for (int i = 0; i < 13 * 7; ++i) abs_sum += std::abs(double(pred[i]) - target[i]);
  CHECK(mae.update(dense(pred, target, {13, 7, 1})) == doctest::Approx(abs_sum / 91).epsilon(1e-9));
  mae.reset();
  CHECK(mae.result() == 0.0);
}
