// The progress bar (engine/training/progress_bar.hpp): the exact text Keras's Progbar prints,
// on a terminal (redrawn with '\r', throttled by a fake clock) and elsewhere (one line per
// epoch). Expected lines are written out by hand from Keras's format.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include "engine/training/progress_bar.hpp"

namespace {

fg::BatchProgress batch(int64_t step, double elapsed, fg::TrainingLogs logs) {
  fg::BatchProgress p;
  p.epoch = 2;
  p.epochs = 10;
  p.step = step;
  p.steps = 1875;
  p.samples = step * 32;
  p.elapsed_seconds = elapsed;
  p.logs = std::move(logs);
  return p;
}

fg::EpochResult epoch_end() {
  fg::EpochResult r;
  r.epoch = 2;
  r.epochs = 10;
  r.logs = {{"loss", 0.4}, {"accuracy", 0.85}, {"val_loss", 0.39}, {"val_accuracy", 0.86}};
  r.seconds = 62.4;
  r.samples = 60000;
  r.samples_per_second = 961.6;
  return r;
}

// One epoch of 1875 steps: step 1 after 0.5 s, then 33 ms a step.
void run_epoch(fg::ProgressBar& bar, double& now) {
  bar.on_epoch_begin(2, 10, 1875);
  now = 100.0;
  bar.on_batch_end(batch(1, 0.5, {{"loss", 0.6}, {"accuracy", 0.5}}));
  now = 100.05;  // within 0.1 s of the last drawing: not drawn
  bar.on_batch_end(batch(2, 0.533, {{"loss", 0.59}, {"accuracy", 0.5}}));
  now = 100.5;
  bar.on_batch_end(batch(118, 0.5 + 117 * 0.033, {{"loss", 0.4123}, {"accuracy", 0.8511}}));
  now = 100.55;  // the last step, throttled too: the epoch's end draws the final line
  bar.on_batch_end(batch(1875, 0.5 + 1874 * 0.033, {{"loss", 0.4}, {"accuracy", 0.85}}));
  bar.on_epoch_end(epoch_end());
}

}  // namespace

TEST_CASE("progress bar on a terminal: Keras's bar redrawn in place, then the epoch's line") {
  std::ostringstream out;
  double now = 0;
  fg::ProgressBar bar(out, /*terminal=*/true, [&] { return now; });
  run_epoch(bar, now);
  // step 1: 0.5 s a step so far, 1874 to go: ETA 937 s = 15:37. Step 118: (4.361 - 0.5) / 117 =
  // 33 ms a step (the first step left out, as Keras does), 1757 to go: 57.98 s -> "57s"; the
  // line is 2 characters shorter than the one it replaces, so 2 spaces blank them.
  const std::string want =
      "Epoch 3/10\n"
      "\r   1/1875 [..............................] - ETA: 15:37 - loss: 0.6000 - accuracy: "
      "0.5000"
      "\r 118/1875 [>.............................] - ETA: 57s - loss: 0.4123 - accuracy: "
      "0.8511  "
      "\r1875/1875 [==============================] - 62s 33ms/step - 962 samples/s - loss: "
      "0.4000 - accuracy: 0.8500 - val_loss: 0.3900 - val_accuracy: 0.8600\n";
  CHECK(out.str() == want);
}

TEST_CASE("progress bar elsewhere: one plain line per epoch") {
  std::ostringstream out;
  double now = 0;
  fg::ProgressBar bar(out, /*terminal=*/false, [&] { return now; });
  run_epoch(bar, now);
  CHECK(out.str() ==
        "Epoch 3/10 - 1875/1875 - 62s - 33ms/step - 962 samples/s - loss: 0.4000 - accuracy: "
        "0.8500 - val_loss: 0.3900 - val_accuracy: 0.8600\n");
  // An epoch without batch reports: the per-step time is the epoch's over its steps.
  std::ostringstream quiet;
  fg::ProgressBar plain(quiet, false, [&] { return now; });
  plain.on_epoch_begin(0, 1, 4);
  fg::EpochResult r;
  r.epoch = 0;
  r.epochs = 1;
  r.seconds = 2.0;
  r.samples_per_second = 64;
  r.logs = {{"loss", 0.0001234}};
  plain.on_epoch_end(r);
  CHECK(quiet.str() == "Epoch 1/1 - 4/4 - 2s - 500ms/step - 64 samples/s - loss: 1.2340e-04\n");
}

TEST_CASE("progress bar pieces: the bar, ETA, step time and values as Keras formats them") {
  CHECK(fg::progress_bar_text(0, 10) == " 0/10 [..............................]");
  CHECK(fg::progress_bar_text(5, 10) == " 5/10 [==============>...............]");
  CHECK(fg::progress_bar_text(10, 10) == "10/10 [==============================]");
  CHECK(fg::progress_bar_text(7, 13) == " 7/13 [===============>..............]");
  CHECK(fg::progress_bar_text(3, 127) == "  3/127 [..............................]");
  CHECK(fg::progress_bar_text(5, 0) == "      5/Unknown");
  CHECK(fg::format_eta(45.9) == "45s");
  CHECK(fg::format_eta(60) == "60s");
  CHECK(fg::format_eta(62.7) == "1:02");
  CHECK(fg::format_eta(3600) == "60:00");
  CHECK(fg::format_eta(3725.2) == "1:02:05");
  CHECK(fg::format_step_time(0) == "0s/step");
  CHECK(fg::format_step_time(1.6) == "2s/step");
  CHECK(fg::format_step_time(0.0334) == "33ms/step");
  CHECK(fg::format_step_time(0.0004) == "400us/step");
  CHECK(fg::format_log_values({{"loss", 0.41234}, {"mae", -0.0005}, {"x", 0.0}}) ==
        " - loss: 0.4123 - mae: -5.0000e-04 - x: 0.0000e+00");
}
