// Each loss against the naive Keras definitions of tests/reference/keras_training.hpp: the value,
// and the gradient against central differences of the naive loss; the fused softmax / sigmoid
// steps against (p - y) / count; odd sizes, partial batches, label smoothing, sparse ids.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/training/losses.hpp"
#include "tests/reference/keras_training.hpp"

namespace ref = fg::reference;

namespace {

void check_near(const std::vector<float>& got, const std::vector<double>& want, double rtol,
                double atol, const char* what) {
  REQUIRE(got.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i)
    if (!(std::abs(got[i] - want[i]) <= atol + rtol * std::abs(want[i]))) {
      ++bad;
      FAIL_CHECK(what << "[" << i << "]: got " << got[i] << ", want " << want[i]);
    }
}

fg::LossSpec spec(fg::LossKind kind, bool from_logits = false, double smoothing = 0.0) {
  fg::LossSpec s;
  s.kind = kind;
  s.name = fg::loss_kind_name(kind);
  s.from_logits = from_logits;
  s.label_smoothing = smoothing;
  return s;
}

// Runs a dense-target loss and checks value and gradient against the naive row loss.
void check_dense_loss(const fg::LossSpec& loss, const fg::Dims& shape,
                      const std::vector<float>& pred, const std::vector<float>& target,
                      const ref::RowLoss& row) {
  fg::LossInput in;
  in.prediction = pred.data();
  in.shape = shape;
  in.target = target.data();
  std::vector<float> gradient(pred.size());
  const double value = fg::compute_loss(loss, in, gradient.data());
  const std::vector<double> p(pred.begin(), pred.end());
  const double want = ref::batch_mean(p, target, shape.back(), row);
  CHECK(value == doctest::Approx(want).epsilon(1e-6));
  const double scale = 1.0 / static_cast<double>(pred.size());
  check_near(gradient, ref::numeric_gradient(pred, target, shape.back(), row), 1e-4, 1e-3 * scale,
             loss.name.c_str());
}

}  // namespace

TEST_CASE("losses: each loss and its gradient against Keras's definition, odd sizes") {
  for (const fg::Dims& shape : {fg::Dims{7, 13}, fg::Dims{13, 7}, fg::Dims{7, 3, 13}}) {
    INFO("shape " << fg::format_shape(shape));
    const int64_t last = shape.back();
    const int64_t rows = fg::num_elements(shape) / last;
    const auto probs = ref::random_distributions(rows, last, 1);
    const auto onehot = ref::one_hot(
        [&] {
          std::vector<int32_t> ids(rows);
          for (int64_t r = 0; r < rows; ++r) ids[r] = static_cast<int32_t>((r * 5 + 3) % last);
          return ids;
        }(),
        last);
    const auto logits = ref::random_values(probs.size(), 2, -4.f, 4.f);
    const auto values = ref::random_values(probs.size(), 3, -2.f, 2.f);
    const auto targets = ref::random_values(probs.size(), 4, -2.f, 2.f);
    const auto soft = ref::random_values(probs.size(), 5, 0.f, 1.f);
    using K = fg::LossKind;
    check_dense_loss(spec(K::categorical_crossentropy), shape, probs, onehot,
                     ref::categorical_crossentropy_probabilities(0));
    check_dense_loss(spec(K::categorical_crossentropy, false, 0.2), shape, probs, onehot,
                     ref::categorical_crossentropy_probabilities(0.2));
    check_dense_loss(spec(K::categorical_crossentropy, true, 0.1), shape, logits, onehot,
                     ref::categorical_crossentropy_logits(0.1));
    check_dense_loss(spec(K::binary_crossentropy), shape, probs, soft,
                     ref::binary_crossentropy_probabilities(0));
    check_dense_loss(spec(K::binary_crossentropy, true, 0.3), shape, logits, soft,
                     ref::binary_crossentropy_logits(0.3));
    check_dense_loss(spec(K::mean_squared_error), shape, values, targets,
                     ref::mean_squared_error());
    check_dense_loss(spec(K::mean_absolute_error), shape, values, targets,
                     ref::mean_absolute_error());
    fg::LossSpec h = spec(K::huber);
    check_dense_loss(h, shape, values, targets, ref::huber(1.0));
    h.delta = 0.3;
    check_dense_loss(h, shape, values, targets, ref::huber(0.3));
  }
}

TEST_CASE("losses: Keras's documented categorical_crossentropy example") {
  // keras/src/backend/tensorflow/nn.py docstring: per-sample losses [0.10536 0.11653 0.06188]
  const std::vector<float> y = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  const std::vector<float> p = {.9f, .05f, .05f, .05f, .89f, .06f, .05f, .01f, .94f};
  fg::LossInput in;
  in.prediction = p.data();
  in.target = y.data();
  in.shape = {3, 3};
  const double value = fg::compute_loss(spec(fg::LossKind::categorical_crossentropy), in, nullptr);
  CHECK(value == doctest::Approx((0.10536 + 0.11653 + 0.06188) / 3).epsilon(1e-4));
}

TEST_CASE("losses: sparse class ids, [N] or [N, 1], from probabilities and from logits") {
  const int64_t n = 13, classes = 7;
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 3) % classes);
  std::vector<float> ids_as_float(ids.begin(), ids.end());
  // the naive sparse row losses read the id from a one-column target
  std::vector<float> id_rows(n * classes, 0.f);
  for (int64_t i = 0; i < n; ++i) id_rows[i * classes] = ids_as_float[i];
  for (bool logits : {false, true}) {
    const auto pred = logits ? ref::random_values(n * classes, 7, -3.f, 3.f)
                             : ref::random_distributions(n, classes, 8);
    const ref::RowLoss row =
        logits ? ref::sparse_crossentropy_logits() : ref::sparse_crossentropy_probabilities();
    const std::vector<double> p(pred.begin(), pred.end());
    const double want = ref::batch_mean(p, id_rows, classes, row);
    const auto want_gradient = ref::numeric_gradient(pred, id_rows, classes, row);
    for (const fg::Dims& ids_shape : {fg::Dims{n}, fg::Dims{n, 1}}) {
      fg::LossInput in;
      in.prediction = pred.data();
      in.shape = {n, classes};
      in.ids = ids.data();
      in.ids_shape = ids_shape;
      std::vector<float> gradient(pred.size());
      const double value = fg::compute_loss(
          spec(fg::LossKind::sparse_categorical_crossentropy, logits), in, gradient.data());
      CHECK(value == doctest::Approx(want).epsilon(1e-6));
      check_near(gradient, want_gradient, 1e-4, 1e-6, "sparse gradient");
    }
  }
}

TEST_CASE("losses: sparse targets of the wrong shape or out of range are errors") {
  const std::vector<float> pred(7 * 13, 0.1f);
  std::vector<int32_t> ids(7, 2);
  fg::LossInput in;
  in.prediction = pred.data();
  in.shape = {7, 13};
  in.ids = ids.data();
  in.ids_shape = {7, 2};
  in.output = "classifier";
  const auto loss = spec(fg::LossKind::sparse_categorical_crossentropy);
  CHECK_THROWS_WITH_AS(
      fg::compute_loss(loss, in, nullptr),
      doctest::Contains("must be int class ids of shape (7,) (or (7, 1)), got (7, 2)"), fg::Error);
  in.ids_shape = {7};
  ids[4] = 13;
  CHECK_THROWS_WITH_AS(fg::compute_loss(loss, in, nullptr),
                       doctest::Contains("class id 13 at position 4 is out of range for 13"),
                       fg::Error);
  ids[4] = -1;
  CHECK_THROWS_AS(fg::compute_loss(loss, in, nullptr), fg::Error);
  in.ids = nullptr;
  CHECK_THROWS_AS(fg::compute_loss(loss, in, nullptr), fg::Error);
  // dense losses without targets
  fg::LossInput dense;
  dense.prediction = pred.data();
  dense.shape = {7, 13};
  CHECK_THROWS_AS(fg::compute_loss(spec(fg::LossKind::mean_squared_error), dense, nullptr),
                  fg::Error);
}

TEST_CASE("losses: the fused softmax and sigmoid steps: gradient exactly (p - y) / count") {
  const int64_t n = 127, classes = 13;
  auto logits = ref::random_values(n * classes, 11, -6.f, 6.f);
  logits[0] = 120.f;  // saturated: a clipped probability path would give no gradient here
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 7 + 1) % classes);
  const auto y = ref::one_hot(ids, classes);
  const auto p = ref::softmax_rows(logits, classes);
  fg::LossInput in;
  in.prediction = logits.data();
  in.shape = {n, classes};
  in.target = y.data();
  in.prediction_is_logits = true;  // the output is softmax(logits); the loss reads the logits
  std::vector<float> gradient(logits.size());
  const auto loss = spec(fg::LossKind::categorical_crossentropy);
  CHECK(fg::loss_uses_logits(loss, in));
  fg::compute_loss(loss, in, gradient.data());
  std::vector<double> want(p.size());
  for (size_t i = 0; i < p.size(); ++i) want[i] = (p[i] - y[i]) / n;
  check_near(gradient, want, 1e-5, 1e-9, "softmax fused gradient");
  CHECK(gradient[0] == doctest::Approx((1.0 - y[0]) / n).epsilon(1e-6));
  // sparse ids through the same fused step
  in.target = nullptr;
  in.ids = ids.data();
  in.ids_shape = {n};
  std::vector<float> sparse_gradient(logits.size());
  fg::compute_loss(spec(fg::LossKind::sparse_categorical_crossentropy), in, sparse_gradient.data());
  check_near(sparse_gradient, want, 1e-5, 1e-9, "sparse fused gradient");
  // sigmoid + binary crossentropy: (sigmoid(x) - y) / elements
  const auto targets = ref::random_values(logits.size(), 12, 0.f, 1.f);
  fg::LossInput b;
  b.prediction = logits.data();
  b.shape = {n, classes};
  b.target = targets.data();
  b.prediction_is_logits = true;
  fg::compute_loss(spec(fg::LossKind::binary_crossentropy), b, gradient.data());
  for (size_t i = 0; i < want.size(); ++i)
    want[i] = (1.0 / (1.0 + std::exp(-double(logits[i]))) - targets[i]) / want.size();
  check_near(gradient, want, 1e-5, 1e-9, "sigmoid fused gradient");
}

TEST_CASE("losses: label smoothing on a hand-made case") {
  // 3 classes, target class 1, smoothing 0.3: y' = [0.1, 0.8, 0.1]; equal logits give
  // softmax 1/3 each, so the loss is log(3) and the gradient 1/3 - y'.
  const std::vector<float> logits = {0.5f, 0.5f, 0.5f};
  const std::vector<float> y = {0, 1, 0};
  fg::LossInput in;
  in.prediction = logits.data();
  in.shape = {1, 3};
  in.target = y.data();
  std::vector<float> gradient(3);
  const double value = fg::compute_loss(spec(fg::LossKind::categorical_crossentropy, true, 0.3), in,
                                        gradient.data());
  CHECK(value == doctest::Approx(std::log(3.0)).epsilon(1e-6));
  CHECK(gradient[0] == doctest::Approx(1.0 / 3 - 0.1).epsilon(1e-6));
  CHECK(gradient[1] == doctest::Approx(1.0 / 3 - 0.8).epsilon(1e-6));
  // binary: y = 1, smoothing 0.2 -> 0.9; p = 0.9 is then the minimum of the loss (gradient 0)
  const std::vector<float> prob = {0.9f};
  const std::vector<float> one = {1.f};
  fg::LossInput b;
  b.prediction = prob.data();
  b.shape = {1, 1};
  b.target = one.data();
  fg::compute_loss(spec(fg::LossKind::binary_crossentropy, false, 0.2), b, gradient.data());
  CHECK(std::abs(gradient[0]) < 1e-5);
}

TEST_CASE("losses: a partial batch is averaged over its own size") {
  // the last batch of 7 of a data set of 39 with batch 32: its loss is the mean of its 7 rows
  const int64_t classes = 13;
  const auto probs = ref::random_distributions(7, classes, 21);
  std::vector<int32_t> ids = {0, 12, 5, 7, 7, 3, 11};
  const auto y = ref::one_hot(ids, classes);
  double sum = 0;
  for (int r = 0; r < 7; ++r) {
    double total = 0;
    for (int c = 0; c < classes; ++c) total += probs[r * classes + c];
    sum -= std::log(probs[r * classes + ids[r]] / total);
  }
  fg::LossInput in;
  in.prediction = probs.data();
  in.shape = {7, classes};
  in.target = y.data();
  CHECK(fg::compute_loss(spec(fg::LossKind::categorical_crossentropy), in, nullptr) ==
        doctest::Approx(sum / 7).epsilon(1e-6));
}

TEST_CASE("losses: a batch large enough to use threads gives the naive figures") {
  const fg::Dims shape = {127, 301};  // 38227 elements: above the parallel threshold
  const auto pred = ref::random_values(127 * 301, 31, -1.f, 1.f);
  const auto target = ref::random_values(127 * 301, 32, -1.f, 1.f);
  fg::LossInput in;
  in.prediction = pred.data();
  in.shape = shape;
  in.target = target.data();
  std::vector<float> gradient(pred.size());
  const double value =
      fg::compute_loss(spec(fg::LossKind::mean_squared_error), in, gradient.data());
  const std::vector<double> p(pred.begin(), pred.end());
  CHECK(value ==
        doctest::Approx(ref::batch_mean(p, target, 301, ref::mean_squared_error())).epsilon(1e-9));
  std::vector<double> want(pred.size());
  for (size_t i = 0; i < want.size(); ++i)
    want[i] = 2.0 * (double(pred[i]) - target[i]) / double(pred.size());
  check_near(gradient, want, 1e-6, 0, "mse gradient");
}
