// The progress of fit() as Keras prints it (docs/training.md "Progress").
//
// On a terminal (Keras's verbose=1), per epoch:
//   Epoch 3/10
//    118/1875 [=>............................] - ETA: 1:02 - loss: 0.4123 - accuracy: 0.8511
// redrawn in place with '\r' (at most every `redraw_seconds`), then the final line:
//   1875/1875 [==============================] - 62s 33ms/step - 967 samples/s - loss: 0.4123 -
//   accuracy: 0.8511 - val_loss: 0.3990 - val_accuracy: 0.8602
// Elsewhere (a file, a pipe: Keras's verbose=2, on one line), per epoch:
//   Epoch 3/10 - 1875/1875 - 62s - 33ms/step - 967 samples/s - loss: 0.4123 - accuracy: 0.8511
// Values: "%.4f", or "%.4e" when abs(value) <= 1e-3, as Keras.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "fusiongraph/training.hpp"

namespace fg {

class ProgressBar : public TrainingCallback {
 public:
  using Clock = std::function<double()>;  // seconds, monotonic (only redraws are timed by it)

  // `terminal`: draw the bar (see is_terminal). `clock`: default steady_clock.
  ProgressBar(std::ostream& out, bool terminal, Clock clock = {}, double redraw_seconds = 0.1);

  // Whether a file descriptor is a terminal (isatty), e.g. is_terminal(STDOUT_FILENO).
  static bool is_terminal(int fd);

  void on_epoch_begin(int64_t epoch, int64_t epochs, int64_t steps) override;
  void on_batch_end(const BatchProgress& progress) override;
  void on_epoch_end(const EpochResult& epoch) override;

 private:
  double seconds_per_step(int64_t step, double elapsed) const;
  void draw(const std::string& line, bool final);

  std::ostream& out_;
  bool terminal_;
  Clock clock_;
  double redraw_seconds_;
  int64_t epoch_ = 0, epochs_ = 0, steps_ = 0;
  std::optional<double> last_draw_;
  size_t width_ = 0;  // of the line drawn last, to blank a longer one
  // Keras's step-time estimate leaves out the first step (warm-up): the first step seen and
  // the time then; the last step seen.
  std::optional<std::pair<int64_t, double>> first_step_;
  int64_t last_step_ = 0;
  double last_elapsed_ = 0;
};

// Keras's progress-bar texts, for callers that format their own lines.
std::string progress_bar_text(int64_t step, int64_t steps);  // " 118/1875 [==>....]"
std::string format_eta(double seconds);                      // "1:02", "1:00:05", "45s"
std::string format_step_time(double seconds);                // "33ms/step", "2s/step", "15us/step"
std::string format_log_values(const TrainingLogs& logs);     // " - loss: 0.4123 - ..."

}  // namespace fg
