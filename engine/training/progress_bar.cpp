#include "engine/training/progress_bar.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

namespace fg {

std::string progress_bar_text(int64_t step, int64_t steps) {
  if (steps <= 0) return fmt::format("{:7d}/Unknown", step);
  constexpr int64_t kWidth = 30;
  const int digits = static_cast<int>(fmt::format("{}", steps).size());
  std::string bar = fmt::format("{:{}d}/{} [", step, digits, steps);
  const auto done = static_cast<int64_t>(kWidth * (static_cast<double>(step) / steps));
  const int64_t filled = std::min(std::max<int64_t>(done, 0), kWidth);
  if (filled > 0) {
    bar.append(static_cast<size_t>(filled - 1), '=');
    bar += step < steps ? '>' : '=';
  }
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  return bar + "]";
}

std::string format_eta(double seconds) {
  // Python's "%d" of a float truncates; // and % floor (the same for eta >= 0).
  const double s = std::max(seconds, 0.0);
  const auto whole = static_cast<int64_t>(s);
  if (s > 3600) return fmt::format("{}:{:02d}:{:02d}", whole / 3600, whole % 3600 / 60, whole % 60);
  if (s > 60) return fmt::format("{}:{:02d}", whole / 60, whole % 60);
  return fmt::format("{}s", whole);
}

std::string format_step_time(double seconds) {
  if (seconds >= 1 || seconds == 0) return fmt::format("{:.0f}s/step", seconds);
  if (seconds >= 1e-3) return fmt::format("{:.0f}ms/step", seconds * 1e3);
  return fmt::format("{:.0f}us/step", seconds * 1e6);
}

std::string format_log_values(const TrainingLogs& logs) {
  std::string out;
  for (const auto& [name, value] : logs) {
    out += std::abs(value) > 1e-3 ? fmt::format(" - {}: {:.4f}", name, value)
                                  : fmt::format(" - {}: {:.4e}", name, value);
  }
  return out;
}

ProgressBar::ProgressBar(std::ostream& out, bool terminal, Clock clock, double redraw_seconds)
    : out_(out), terminal_(terminal), clock_(std::move(clock)), redraw_seconds_(redraw_seconds) {
  if (!clock_) {
    clock_ = [] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
  }
}

bool ProgressBar::is_terminal(int fd) {
  return ::isatty(fd) == 1;
}

void ProgressBar::on_epoch_begin(int64_t epoch, int64_t epochs, int64_t steps) {
  epoch_ = epoch;
  epochs_ = epochs;
  steps_ = steps;
  last_draw_.reset();
  width_ = 0;
  first_step_.reset();
  last_step_ = 0;
  last_elapsed_ = 0;
  if (terminal_) {
    out_ << fmt::format("Epoch {}/{}\n", epoch + 1, epochs);
    out_.flush();
  }
}

double ProgressBar::seconds_per_step(int64_t step, double elapsed) const {
  if (step <= 0) return 0;
  if (first_step_ && step > first_step_->first)
    return (elapsed - first_step_->second) / static_cast<double>(step - first_step_->first);
  return elapsed / static_cast<double>(step);
}

void ProgressBar::draw(const std::string& line, bool final) {
  std::string text = "\r" + line;
  if (width_ > line.size()) text.append(width_ - line.size(), ' ');
  width_ = line.size();
  if (final) text += '\n';
  out_ << text;
  out_.flush();
}

void ProgressBar::on_batch_end(const BatchProgress& p) {
  if (!first_step_) first_step_ = std::make_pair(p.step, p.elapsed_seconds);
  last_step_ = p.step;
  last_elapsed_ = p.elapsed_seconds;
  if (!terminal_) return;
  const double now = clock_();
  if (last_draw_ && now - *last_draw_ < redraw_seconds_) return;
  last_draw_ = now;
  const double eta = seconds_per_step(p.step, p.elapsed_seconds) *
                     static_cast<double>(std::max<int64_t>(p.steps - p.step, 0));
  draw(
      progress_bar_text(p.step, p.steps) + " - ETA: " + format_eta(eta) + format_log_values(p.logs),
      false);
}

void ProgressBar::on_epoch_end(const EpochResult& r) {
  const int64_t steps = steps_ > 0 ? steps_ : last_step_;
  // The per-step time of the training steps (the epoch's seconds when no batch was reported).
  const double per_step = last_step_ > 0 ? seconds_per_step(last_step_, last_elapsed_)
                          : steps > 0    ? r.seconds / static_cast<double>(steps)
                                         : 0.0;
  const std::string times = fmt::format("{:.0f}s", r.seconds);
  const std::string rate = fmt::format("{:.0f} samples/s", r.samples_per_second);
  if (terminal_) {
    draw(progress_bar_text(steps, steps) + " - " + times + " " + format_step_time(per_step) +
             " - " + rate + format_log_values(r.logs),
         true);
    return;
  }
  out_ << fmt::format("Epoch {}/{} - {}/{} - {} - {} - {}{}\n", r.epoch + 1, r.epochs, steps, steps,
                      times, format_step_time(per_step), rate, format_log_values(r.logs));
  out_.flush();
}

}  // namespace fg
