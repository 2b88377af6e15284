// Keras 3's losses: each gives the batch loss and its gradient w.r.t. the prediction, on plain
// float buffers (no oneDNN). Reduction as Keras's default "sum_over_batch_size": a loss value per
// position (the prediction's last axis is reduced: classes, or the mean over features), then the
// mean over all positions of the batch, so a partial batch is averaged over its own size.
//
// The crossentropies take either probabilities (Keras's TensorFlow backend then renormalises
// categorical probabilities and clips to [1e-7, 1 - 1e-7]) or logits. Logits are used when the
// loss says from_logits, and also when the prediction is the input of the output's softmax or
// sigmoid (LossInput::prediction_is_logits): the fused step that the TensorFlow backend takes
// from a softmax's cached logits, with gradient exactly (softmax(x) - y) / positions, no clip.
#pragma once

#include <cstdint>

#include "framework/shape.hpp"
#include "framework/training_config.hpp"

namespace fg {

struct LossInput {
  const float* prediction = nullptr;  // probabilities / values, or logits (see above)
  Dims shape;                         // the prediction's full shape, batch first
  const float* target = nullptr;      // dense targets of `shape` (one-hot, probabilities, values)
  const int32_t* ids = nullptr;       // sparse_categorical_crossentropy: class ids
  Dims ids_shape;                     // shape[:-1], or shape[:-1] + [1] (Keras squeezes it)
  bool prediction_is_logits = false;  // the fused softmax / sigmoid + crossentropy
  std::string output;                 // for messages
};

// The batch loss (mean over positions); when `gradient` is not null it receives
// d loss / d prediction (d loss / d logits when logits are used), of the prediction's size.
// Throws fg::Error on shapes that do not fit and on class ids out of range.
double compute_loss(const LossSpec& loss, const LossInput& input, float* gradient);

// True when compute_loss reads the prediction as logits.
bool loss_uses_logits(const LossSpec& loss, const LossInput& input);

// The kernels behind compute_loss, on [positions, last] row-major buffers; each returns the
// mean loss and writes the gradient of that mean when `gradient` is not null.
double softmax_crossentropy_from_logits(const float* logits, const float* target, int64_t positions,
                                        int64_t classes, double label_smoothing, float* gradient);
double sparse_softmax_crossentropy_from_logits(const float* logits, const int32_t* ids,
                                               int64_t positions, int64_t classes, float* gradient);
double sigmoid_crossentropy_from_logits(const float* logits, const float* target, int64_t positions,
                                        int64_t last, double label_smoothing, float* gradient);
double categorical_crossentropy(const float* probabilities, const float* target, int64_t positions,
                                int64_t classes, double label_smoothing, float* gradient);
double sparse_categorical_crossentropy(const float* probabilities, const int32_t* ids,
                                       int64_t positions, int64_t classes, float* gradient);
double binary_crossentropy(const float* probabilities, const float* target, int64_t positions,
                           int64_t last, double label_smoothing, float* gradient);
double mean_squared_error(const float* prediction, const float* target, int64_t positions,
                          int64_t last, float* gradient);
double mean_absolute_error(const float* prediction, const float* target, int64_t positions,
                           int64_t last, float* gradient);
double huber(const float* prediction, const float* target, int64_t positions, int64_t last,
             double delta, float* gradient);

}  // namespace fg
